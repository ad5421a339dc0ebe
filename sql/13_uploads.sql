-- 13_uploads: uploads in chunks (begin_upload, upload_chunk, finish_upload, the view
-- upload_chunks), large objects (enqueue_lo), ingest.max_file_size as chunks arrive,
-- keep_data, purge, and the expiry of abandoned uploads (ingest.upload_ttl).
CREATE ROLE regress_up_a NOLOGIN;
CREATE ROLE regress_up_b NOLOGIN;
CREATE ROLE regress_up_admin NOLOGIN IN ROLE ingest_admin;
CREATE TABLE up (id int PRIMARY KEY, name text NOT NULL);
GRANT SELECT, INSERT ON up TO regress_up_a, regress_up_b;
-- bytes [from, from + len) of a text's UTF-8 encoding (1-based): chunks cut anywhere
CREATE FUNCTION public.cut(text, int, int) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT substring(pg_catalog.convert_to($1, 'UTF8') FROM $2 FOR $3) $$;
-- try_verbose(sql): like try, with the DETAIL and HINT (numbers masked)
CREATE FUNCTION public.try_verbose(sql text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    d text;
    h text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM || E'\nDETAIL: ' || d || E'\nHINT: ' || h,
                          '[0-9]+', 'N', 'g');
END $$;
GRANT EXECUTE ON FUNCTION public.cut(text, int, int), public.try_verbose(text) TO PUBLIC;

-- The file: 56 bytes. The chunks cut a record in two, the two bytes of "ë" apart, and a
-- quoted field that spans two lines; line 7 holds a bad id.
\set file '\'id,name\n1,alice\n2,zoë\n3,"two\nlines"\n4,dave\nx,bad\n5,eve\n\''
SELECT octet_length(convert_to(:file, 'UTF8')) AS file_bytes,
       position('\xc3ab'::bytea IN convert_to(:file, 'UTF8')) AS e_at;

SET ROLE regress_up_a;
SELECT ingest.begin_upload('up', '{"max_errors": 1}') AS id \gset
SELECT state, source, source_type, bytes_total FROM ingest.upload_jobs WHERE id = :id;
-- not queued yet: no worker takes it, it has no place in the queue
SELECT ingest.queue_position(:id);
-- chunks may arrive in any order; each call returns the bytes received so far
SELECT ingest.upload_chunk(:id, 0, cut(:file, 1, 13));
SELECT ingest.upload_chunk(:id, 2, cut(:file, 22, 7));
SELECT ingest.upload_chunk(:id, 1, cut(:file, 14, 8));
-- the same chunk again (a client that missed the reply): nothing changes
SELECT ingest.upload_chunk(:id, 1, cut(:file, 14, 8));
-- other bytes under a number already received: an error, the chunk stays as it was
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :id, cut(:file, 14, 7)));
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :id, cut(:file, 15, 8)));
-- a chunk is missing: finish_upload says which
SELECT ingest.upload_chunk(:id, 4, cut(:file, 41, 16));
SELECT try_verbose(format('SELECT ingest.finish_upload(%s)', :id));
SELECT job_id = :id AS own_job, seq, bytes FROM ingest.upload_chunks ORDER BY seq;
SELECT ingest.upload_chunk(:id, 3, cut(:file, 29, 12));
-- total_bytes that do not match what arrived
SELECT try_verbose(format('SELECT ingest.finish_upload(%s, 55)', :id));
SELECT state, bytes_total FROM ingest.upload_jobs WHERE id = :id;
-- (queued in the finishing transaction: no worker can take it before the commit)
BEGIN;
SELECT ingest.finish_upload(:id, 56) = :id AS finished;
SELECT state, bytes_total FROM ingest.upload_jobs WHERE id = :id;
COMMIT;
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM errors(:id);
SELECT * FROM up ORDER BY id;
-- finished: no more chunks, no second finish
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 5, %L::bytea)', :id, csv(E'6,late\n')));
SELECT try_verbose(format('SELECT ingest.finish_upload(%s)', :id));
-- the uploaded bytes went with the success (no keep_data)
SELECT count(*) FROM ingest.upload_chunks WHERE job_id = :id;
RESET ROLE;
SELECT count(*) AS chunks_stored FROM ingest_private.job_chunks WHERE job_id = :id;

-- keep_data: the chunks stay after the success
SET ROLE regress_up_a;
SELECT ingest.begin_upload('up', '{"keep_data": true}') AS kept \gset
SELECT ingest.upload_chunk(:kept, 0, csv(E'id,name\n10,ke'));
SELECT ingest.upload_chunk(:kept, 1, csv(E'pt\n'));
SELECT ingest.finish_upload(:kept) = :kept AS finished;
SELECT ingest.wait(:kept);
SELECT state, rows_inserted, bytes_total FROM ingest.upload_jobs WHERE id = :kept;
SELECT seq, bytes FROM ingest.upload_chunks WHERE job_id = :kept ORDER BY seq;
SELECT * FROM up WHERE id = 10;

-- Who may send chunks: another role does not even see the upload; a member of
-- ingest_admin sees it but may not send its bytes; nobody sees others' chunks.
SELECT ingest.begin_upload('up') AS open_a \gset
SELECT ingest.upload_chunk(:open_a, 0, csv(E'id,name\n20,open\n'));
SET ROLE regress_up_b;
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :open_a, csv(E'21,intruder\n')));
SELECT try_verbose(format('SELECT ingest.finish_upload(%s)', :open_a));
SELECT count(*) AS chunks_b_sees FROM ingest.upload_chunks;
SELECT ingest.begin_upload('up') AS open_b \gset
SELECT ingest.upload_chunk(:open_b, 0, csv(E'id,name\n30,b\n'));
SELECT job_id = :open_b AS own_job, seq, bytes FROM ingest.upload_chunks;
SET ROLE regress_up_admin;
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :open_a, csv(E'21,admin\n')));
SELECT try_verbose(format('SELECT ingest.finish_upload(%s)', :open_a));
SELECT count(*) AS chunks_admin_sees FROM ingest.upload_chunks WHERE job_id IN (:open_a, :open_b);
SET ROLE regress_up_a;
SELECT job_id = :open_a AS own_job, seq, bytes FROM ingest.upload_chunks WHERE job_id <> :kept;
-- a job that is not an upload takes no chunks
SELECT ingest.enqueue_data('up', csv(E'id,name\n40,data\n')) AS data_job \gset
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 0, %L::bytea)', :data_job, csv('x')));
SELECT ingest.wait(:data_job);

-- waiting for an upload that is not finished is an error, not ten minutes of waiting
SELECT try_verbose(format('SELECT ingest.wait(%s)', :open_a));
-- cancel an upload: it ends cancelled, takes no more chunks and cannot be finished
SELECT ingest.cancel(:open_a);
SELECT state, last_error FROM ingest.upload_jobs WHERE id = :open_a;
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :open_a, csv(E'21,late\n')));
SELECT try_verbose(format('SELECT ingest.finish_upload(%s)', :open_a));
-- nor retried: it never had all its bytes
SELECT try_verbose(format('SELECT ingest.retry(%s)', :open_a));
SELECT state FROM ingest.upload_jobs WHERE id = :open_a;
SELECT count(*) FROM up WHERE id IN (20, 21);

-- NULL arguments: errors that say which; NULL options mean the defaults
SELECT try('SELECT ingest.begin_upload(NULL)');
SELECT try(format('SELECT ingest.upload_chunk(NULL, 0, %L::bytea)', csv('x')));
SELECT try(format('SELECT ingest.upload_chunk(%s, NULL, %L::bytea)', :open_a, csv('x')));
SELECT try(format('SELECT ingest.upload_chunk(%s, 0, NULL)', :open_a));
SELECT try(format('SELECT ingest.upload_chunk(%s, -1, %L::bytea)', :open_a, csv('x')));
SELECT try('SELECT ingest.finish_upload(NULL)');
SELECT try(format('SELECT ingest.finish_upload(%s, -5)', :open_a));
SELECT ingest.begin_upload('up', NULL) AS nullopts \gset
SELECT options, state FROM ingest.upload_jobs WHERE id = :nullopts;
SELECT ingest.cancel(:nullopts);
-- begin_upload validates as enqueue_data does: target, privileges, options
SELECT try('SELECT ingest.begin_upload(''up'', ''{"delimeter": ";"}'')');
RESET ROLE;
CREATE TABLE up_private (id int);
SET ROLE regress_up_a;
SELECT try('SELECT ingest.begin_upload(''up_private'')');
RESET ROLE;

-- ingest.max_file_size counts the bytes of an upload as they arrive: the chunk that goes
-- over is refused, what came before stays, and the client can cancel
SET ingest.max_file_size = '1kB';
SET ROLE regress_up_a;
SELECT ingest.begin_upload('up') AS big \gset
SELECT ingest.upload_chunk(:big, 0, convert_to(repeat('a', 1000), 'UTF8'));
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 1, %L::bytea)', :big, convert_to(repeat('b', 25), 'UTF8')));
SELECT ingest.upload_chunk(:big, 1, convert_to(repeat('b', 24), 'UTF8'));
SELECT state, bytes_total FROM ingest.upload_jobs WHERE id = :big;
SELECT seq, bytes FROM ingest.upload_chunks WHERE job_id = :big ORDER BY seq;
SELECT ingest.cancel(:big);
RESET ROLE;
RESET ingest.max_file_size;

-- ingest.max_queued_per_role counts uploads in progress
SET ingest.max_queued_per_role = 1;
SET ROLE regress_up_b;
SELECT try('SELECT ingest.begin_upload(''up'')');
RESET ROLE;
RESET ingest.max_queued_per_role;

-- Large objects (what psql's \lo_import makes of a client-side file).
SET ROLE regress_up_a;
SELECT lo_from_bytea(0, csv(E'id,name\n50,lo one\n51,lo two\n')) AS lo1 \gset
SELECT ingest.enqueue_lo('up', :lo1, '{"unlink": true}') AS lo_job \gset
SELECT ingest.wait(:lo_job);
SELECT state, source = 'large object ' || :lo1 AS source_ok, source_type, bytes_total,
       rows_inserted FROM ingest.upload_jobs WHERE id = :lo_job;
SELECT * FROM up WHERE id >= 50 ORDER BY id;
-- unlink: the large object is gone after the load
SELECT count(*) AS lo_left FROM pg_largeobject_metadata WHERE oid = :lo1;
-- without unlink it stays
SELECT lo_from_bytea(0, csv(E'id,name\n52,kept lo\n')) AS lo2 \gset
SELECT ingest.enqueue_lo('up', :lo2) AS lo_job \gset
SELECT ingest.wait(:lo_job);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :lo_job;
SELECT count(*) AS lo_left FROM pg_largeobject_metadata WHERE oid = :lo2;
SELECT lo_unlink(:lo2);
-- an object that does not exist
SELECT try_verbose(format('SELECT ingest.enqueue_lo(''up'', %s)', :lo2));
SELECT try('SELECT ingest.enqueue_lo(''up'', NULL)');
SELECT try('SELECT ingest.enqueue_lo(NULL, 1)');
RESET ROLE;
-- an object of another role: SELECT on it is needed, and ownership for unlink
SELECT lo_from_bytea(0, csv(E'id,name\n53,granted\n')) AS lo3 \gset
SET ROLE regress_up_a;
SELECT try_verbose(format('SELECT ingest.enqueue_lo(''up'', %s)', :lo3));
RESET ROLE;
SELECT try(format('GRANT SELECT ON LARGE OBJECT %s TO regress_up_a', :lo3));
SET ROLE regress_up_a;
SELECT try_verbose(format('SELECT ingest.enqueue_lo(''up'', %s, ''{"unlink": true}'')', :lo3));
SELECT ingest.enqueue_lo('up', :lo3) AS lo_job \gset
SELECT ingest.wait(:lo_job);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :lo_job;
RESET ROLE;
SELECT count(*) AS lo_left FROM pg_largeobject_metadata WHERE oid = :lo3;
-- the worker checks again: SELECT revoked between the enqueue and the load
BEGIN;
SET LOCAL ROLE regress_up_a;
SELECT ingest.enqueue_lo('up', :lo3) AS lo_job \gset
RESET ROLE;
SELECT try(format('REVOKE SELECT ON LARGE OBJECT %s FROM regress_up_a', :lo3));
COMMIT;
SELECT ingest.wait(:lo_job);
SELECT state, rows_inserted, regexp_replace(last_error, '[0-9]+', 'N', 'g') AS last_error
  FROM ingest.upload_jobs WHERE id = :lo_job;
SELECT lo_unlink(:lo3);

-- purge: only finished jobs, only the caller's, only those older than the interval.
-- regress_up_a has finished jobs (succeeded, cancelled, one with its chunks kept) and
-- none in progress; regress_up_b has one upload in progress.
SET ROLE regress_up_a;
SELECT state, count(*) FROM ingest.upload_jobs GROUP BY state ORDER BY state;
SELECT ingest.purge('1 day');
SELECT ingest.purge('0 s');
SELECT count(*) AS jobs_left FROM ingest.upload_jobs;
SET ROLE regress_up_b;
SELECT state, count(*) FROM ingest.upload_jobs GROUP BY state ORDER BY state;
SELECT ingest.purge('0 s');
SELECT state, count(*) FROM ingest.upload_jobs GROUP BY state ORDER BY state;
RESET ROLE;
SELECT count(*) AS kept_chunks_left FROM ingest_private.job_chunks WHERE job_id = :kept;
SELECT count(*) AS open_b_chunks FROM ingest_private.job_chunks WHERE job_id = :open_b;

-- ingest.upload_ttl: uploads that received nothing for longer are removed with their
-- chunks, here by the sweep of the next begin_upload. Made idle by hand, inside the
-- transaction, so that only this transaction's begin_upload can have removed them.
SHOW ingest.upload_ttl;
BEGIN;
SET LOCAL ROLE regress_up_a;
SELECT ingest.begin_upload('up') AS stale \gset
SELECT ingest.upload_chunk(:stale, 0, csv(E'id,name\n60,stale\n'));
SELECT ingest.begin_upload('up') AS idle \gset
SELECT ingest.upload_chunk(:idle, 0, csv(E'id,name\n61,idle\n'));
RESET ROLE;
UPDATE ingest.upload_jobs SET upload_activity_at = now() - interval '2 days' WHERE id = :stale;
UPDATE ingest.upload_jobs SET upload_activity_at = now() - interval '2 hours' WHERE id = :idle;
SET LOCAL ROLE regress_up_a;
SELECT ingest.begin_upload('up') AS fresh \gset
RESET ROLE;
SELECT id = :idle AS is_idle, id = :fresh AS is_fresh FROM ingest.upload_jobs
 WHERE id IN (:stale, :idle, :fresh) ORDER BY id;
SELECT count(*) AS stale_chunks FROM ingest_private.job_chunks WHERE job_id = :stale;
-- active again before commit, so that no worker's sweep can take it meanwhile
UPDATE ingest.upload_jobs SET upload_activity_at = now() WHERE id = :idle;
COMMIT;
-- an hour: the upload idle for two hours goes too, the fresh one stays
ALTER SYSTEM SET ingest.upload_ttl = '1h';
SELECT pg_reload_conf();
\c
SHOW ingest.upload_ttl;
BEGIN;
UPDATE ingest.upload_jobs SET upload_activity_at = now() - interval '2 hours' WHERE id = :idle;
SET LOCAL ROLE regress_up_a;
SELECT ingest.begin_upload('up') AS fresh2 \gset
RESET ROLE;
SELECT id = :fresh AS is_fresh, id = :fresh2 AS is_fresh2 FROM ingest.upload_jobs
 WHERE id IN (:idle, :fresh, :fresh2) ORDER BY id;
SELECT count(*) AS idle_chunks FROM ingest_private.job_chunks WHERE job_id = :idle;
COMMIT;
ALTER SYSTEM RESET ingest.upload_ttl;
SELECT pg_reload_conf();
SELECT ingest.cancel(:fresh), ingest.cancel(:fresh2), ingest.cancel(:open_b);
