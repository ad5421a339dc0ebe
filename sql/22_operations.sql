-- 22_operations: what administrators and clients watch and clean up. ingest.workers
-- shows a running job's owner, target, size, progress and rate, advancing after every
-- batch (not only at commit_every checkpoints), to the job's role and tenant and to
-- ingest_admin only; ingest.discard drops a finished job's stored bytes (its owner in
-- its tenant, or ingest_admin), after which ingest.retry refuses the job.
-- (The LOG line per job and the workers' sweep after ingest.keep_failed_data are in
-- test/t/026_operations.pl: they need the server log and a reload.)
CREATE TABLE ops_t (id int, v text);
GRANT SELECT, INSERT ON ops_t TO regress_tenant_a, regress_tenant_b;
-- the load below stops at row 2500, on an advisory lock this session holds, after two
-- batches of 1000 rows went in (still uncommitted: no commit_every)
CREATE FUNCTION ops_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id = 2500 THEN PERFORM pg_advisory_xact_lock_shared(22022); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER gate BEFORE INSERT ON ops_t FOR EACH ROW EXECUTE FUNCTION ops_gate();
-- 5000 records of 8 bytes after a 5-byte header: 40005 bytes
SELECT convert_to('id,v' || chr(10) || string_agg(lpad(i::text, 5, '0') || ',x' || chr(10), ''), 'UTF8') AS five
  FROM generate_series(1, 5000) i \gset
-- wait_for_rows(job, n): true once ingest.workers shows the job with at least n rows,
-- as the calling role and tenant see it (false after 30 s)
CREATE FUNCTION wait_for_rows(job bigint, n bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    LOOP
        IF EXISTS (SELECT 1 FROM ingest.workers w WHERE w.job_id = job AND w.rows >= n) THEN
            RETURN true;
        END IF;
        IF clock_timestamp() >= deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;
-- try_all(sql): as try(), with the detail and the hint
CREATE FUNCTION try_all(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d text;
    h text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g')
        || E'\nDETAIL: ' || d || E'\nHINT: ' || h;
END $$;
GRANT EXECUTE ON FUNCTION wait_for_rows(bigint, bigint), try_all(text) TO PUBLIC;

-- Tenants of one role: the key makes (role, tenant) the unit of visibility.
SET ingest.tenant_key = 'app.tenant';
SELECT pg_advisory_lock(22022);
SET ROLE regress_tenant_a;
SET app.tenant = 't1';
SET ingest.batch_rows = 1000;
SELECT ingest.enqueue_data('ops_t', :'five') AS id \gset
RESET ingest.batch_rows;
SELECT wait_for_rows(:id, 2000);
-- the owner sees its job in progress: 2000 rows and 16005 bytes read (the header and
-- 2000 records) of 40005, while the job's row has no checkpoint yet
SELECT job_id = :id AS its_job, rows, bytes, bytes_total, owner, target,
       round(progress::numeric, 4) AS progress, progress = bytes::float8 / bytes_total AS progress_is_share,
       rows_per_second > 0 AS has_rate, started_at <= now() AS started
  FROM ingest.workers WHERE job_id IS NOT NULL;
SELECT state, bytes_done, rows_inserted, worker_pid AS wpid FROM ingest.upload_jobs WHERE id = :id \gset
SELECT :'state' AS state, :bytes_done AS bytes_done, :rows_inserted AS rows_inserted;
-- another tenant of the same role: the worker's row, without any of the job's details
SET app.tenant = 't2';
SELECT count(*) AS workers, count(job_id) AS jobs, count(owner) AS owners, count(target) AS targets,
       count(rows) AS rows, count(bytes) AS bytes, count(bytes_total) AS totals,
       count(progress) AS progresses, count(rows_per_second) AS rates, count(started_at) AS starts
  FROM ingest.workers WHERE pid = :wpid;
-- (the superuser, which sees all, sees every detail in the same row)
RESET ROLE;
SELECT count(*) AS workers, count(job_id) AS jobs, count(owner) AS owners, count(progress) AS progresses
  FROM ingest.workers WHERE pid = :wpid;
-- another role
SET ROLE regress_tenant_b;
SET app.tenant = 't1';
SELECT count(*) AS jobs, count(owner) AS owners, count(target) AS targets, count(progress) AS progresses
  FROM ingest.workers WHERE job_id IS NOT NULL OR owner IS NOT NULL;
-- an ingest_admin member sees it
SET ROLE regress_auditor;
SELECT job_id = :id AS its_job, owner, target, rows FROM ingest.workers WHERE job_id IS NOT NULL;
-- a running job's bytes cannot be discarded, by its owner either
SET ROLE regress_tenant_a;
SELECT try(format('SELECT ingest.discard(%s)', :id));
RESET ROLE;
SELECT pg_advisory_unlock(22022);
SET ROLE regress_tenant_a;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, bytes_done, bytes_total FROM ingest.upload_jobs WHERE id = :id;
-- the worker is idle again: no job shown
SELECT count(job_id) AS jobs FROM ingest.workers;

-- ingest.discard. A failed job of tenant t1 keeps its bytes for ingest.retry.
SELECT ingest.enqueue_data('ops_t', csv(E'id,v\n1,a\nnot a number,b\n')) AS failed \gset
SELECT ingest.wait(:failed);
RESET ROLE;
SELECT octet_length(data) AS stored FROM ingest_private.job_data WHERE job_id = :failed;
-- another role, and another tenant of the same role: as if the job did not exist; the
-- bytes stay
SET ROLE regress_tenant_b;
SELECT try(format('SELECT ingest.discard(%s)', :failed));
SET ROLE regress_tenant_a;
SET app.tenant = 't2';
SELECT try(format('SELECT ingest.discard(%s)', :failed));
RESET ROLE;
SELECT count(*) AS kept FROM ingest_private.job_data WHERE job_id = :failed;
-- its owner in its tenant: the bytes go (the count of them is returned), the row stays
SET ROLE regress_tenant_a;
SET app.tenant = 't1';
SELECT ingest.discard(:failed) AS discarded;
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :failed;
-- and a retry is refused, saying why
SELECT try_all(format('SELECT ingest.retry(%s)', :failed));
SELECT state FROM ingest.upload_jobs WHERE id = :failed;
-- a second discard finds nothing left
SELECT ingest.discard(:failed) AS discarded_again;
RESET ROLE;
SELECT count(*) AS kept FROM ingest_private.job_data WHERE job_id = :failed;

-- A queued job (in the transaction that queued it: no worker can take it yet) is
-- refused; cancelled, its bytes can go, and it cannot be retried then.
SET ROLE regress_tenant_a;
BEGIN;
SELECT ingest.enqueue_data('ops_t', csv(E'id,v\n7,q\n')) AS queued \gset
SELECT try(format('SELECT ingest.discard(%s)', :queued));
SELECT ingest.cancel(:queued);
SELECT ingest.discard(:queued) AS discarded;
COMMIT;
SELECT try(format('SELECT ingest.retry(%s)', :queued));
SELECT state FROM ingest.upload_jobs WHERE id = :queued;

-- An upload cancelled before it was finished: its chunks go.
SELECT ingest.begin_upload('ops_t') AS up \gset
SELECT ingest.upload_chunk(:up, 0, csv(E'id,v\n8,'));
SELECT ingest.upload_chunk(:up, 1, csv(E'u\n'));
SELECT ingest.cancel(:up);
SELECT count(*) AS chunks FROM ingest.upload_chunks WHERE job_id = :up;
SELECT ingest.discard(:up) AS discarded;
SELECT count(*) AS chunks FROM ingest.upload_chunks WHERE job_id = :up;

-- A job that succeeded with keep_data: its kept bytes can go too.
SELECT ingest.enqueue_data('ops_t', csv(E'id,v\n9,k\n'), '{"keep_data": true}') AS kept \gset
SELECT ingest.wait(:kept);
SELECT ingest.discard(:kept) AS discarded;
RESET ROLE;
SELECT count(*) AS kept FROM ingest_private.job_data WHERE job_id = :kept;

-- An ingest_admin member discards another role's failed job, whatever its tenant.
SET ROLE regress_tenant_b;
SET app.tenant = 'tb';
SELECT ingest.enqueue_data('ops_t', csv(E'id,v\nx,1\n')) AS b_failed \gset
SELECT ingest.wait(:b_failed);
SET ROLE regress_auditor;
SET app.tenant = 'other';
SELECT ingest.discard(:b_failed) AS discarded;
SET ROLE regress_tenant_b;
SET app.tenant = 'tb';
SELECT try(format('SELECT ingest.retry(%s)', :b_failed));
-- a failed job whose bytes were kept is retried as before
SELECT ingest.enqueue_data('ops_t', csv(E'id,v\ny,1\n')) AS b_failed2 \gset
SELECT ingest.wait(:b_failed2);
SELECT ingest.retry(:b_failed2);
SELECT ingest.wait(:b_failed2);
RESET ROLE;
RESET app.tenant;
RESET ingest.tenant_key;

-- NULL: nothing (strict); no such job: the usual error
SELECT ingest.discard(NULL);
SELECT try('SELECT ingest.discard(-1)');
SELECT count(*) AS ops_rows FROM ops_t;
