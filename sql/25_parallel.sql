-- 25_parallel: the "parallel" option. true is refused at enqueue where a file could never
-- be loaded in parts (compression, another encoding, an upload in chunks; no commit_every
-- with max_prepared_transactions 0 is 027's, as pg_regress's instance has 2), saying why,
-- and nothing is queued; with commit_every it is queued, and a source of more
-- than ingest.parallel_min_bytes is cut into parts that workers load as the owner, with
-- the line and record numbers of one worker's load. job_parts is the workers' alone.
CREATE TABLE par_t (id int PRIMARY KEY, a text);
GRANT INSERT, SELECT ON par_t TO regress_plain;
SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset

-- the value must be a boolean
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": "yes"}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": 1}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": null}')$$);

-- true: refused where a split is impossible, saying why
SELECT try($$SELECT ingest.enqueue_data('par_t', '\x1f8b0800000000000003'::bytea, '{"parallel": true, "commit_every": 10, "compression": "gzip", "header": false}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "commit_every": 10, "encoding": "LATIN1"}')$$);
-- gzip and UTF-16 recognised by their first bytes
SELECT try($$SELECT ingest.enqueue_data('par_t', '\x1f8b0800000000000003'::bytea, '{"parallel": true, "commit_every": 10, "header": false}')$$);
SELECT try($$SELECT ingest.enqueue_data('par_t', '\xfeff00690064000a'::bytea, '{"parallel": true, "commit_every": 10, "header": false}')$$);
-- an upload in chunks is read in order; enqueue_dir refuses before listing the folder
SELECT try($$SELECT ingest.begin_upload('par_t', '{"parallel": true, "commit_every": 10}')$$);
SELECT try($$SELECT ingest.enqueue_dir('par_t', '/tmp/ingest_regress_files', 'no-such-*.csv', '{"parallel": true, "compression": "gzip"}')$$);
SET ROLE regress_plain;
SELECT try($$SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n'), '{"parallel": true, "encoding": "LATIN1"}')$$);
RESET ROLE;
SELECT count(*) - :jobs_before AS jobs_queued_by_refusals FROM ingest.upload_jobs;

-- false, absent, and true on a file too small to split (the database's encoding named is
-- no obstacle): one worker loads it
SELECT ingest.enqueue_data('par_t', csv(E'id,a\n1,x\n2,y\n'), '{"parallel": false}') AS j1 \gset
SELECT ingest.enqueue_data('par_t', csv(E'id,a\n3,z\n'), '{"commit_every": 1}') AS j2 \gset
SELECT ingest.enqueue_data('par_t', csv(E'id,a\n4,w\n'), '{"commit_every": 1, "parallel": true, "encoding": "UTF8"}') AS j2b \gset
SELECT wait_for_state(:j1, 'succeeded'), wait_for_state(:j2, 'succeeded'), wait_for_state(:j2b, 'succeeded');
SELECT * FROM job(:j1);
SELECT * FROM job(:j2);
SELECT * FROM job(:j2b);
SELECT * FROM par_t ORDER BY id;
SELECT count(*) AS parts_of_small_jobs FROM ingest_private.job_parts WHERE job_id IN (:j1, :j2, :j2b);

-- stored data in parts: parts of 200 bytes (the setting is the server's, read by workers)
ALTER SYSTEM SET ingest.parallel_min_bytes = 200;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
CREATE TABLE par_d (id int PRIMARY KEY, note text, n int);
GRANT INSERT, SELECT ON par_d TO regress_plain;
-- 60 records; quoted fields with line ends; bad n on records 10, 33 and 51
SELECT string_agg(i || ',' || CASE WHEN i % 7 = 0 THEN '"two' || E'\n' || 'lines"' ELSE 'r' || i END
                  || ',' || CASE WHEN i IN (10, 33, 51) THEN 'bad' ELSE i::text END, E'\n' ORDER BY i)
       AS body FROM generate_series(1, 60) i \gset
SET ROLE regress_plain;
SELECT ingest.enqueue_data('par_d', csv('id,note,n' || E'\n' || :'body' || E'\n'),
    '{"commit_every": 5, "max_errors": 10, "parallel": true}') AS jp \gset
RESET ROLE;
SELECT wait_for_state(:jp, 'succeeded');
SELECT state, rows_inserted, rows_rejected, records_done, bytes_done = bytes_total AS all_bytes
  FROM ingest.upload_jobs WHERE id = :jp;
SELECT count(*) >= 3 AS three_parts_or_more, bool_and(state = 'done') AS all_done,
       min(first_line) AS first_line, count(DISTINCT first_line) = count(*) AS lines_differ
  FROM ingest_private.job_parts WHERE job_id = :jp;
SELECT line_number, record_number, sqlstate, message FROM ingest.job_errors WHERE job_id = :jp
 ORDER BY line_number;
SELECT count(*) AS rows, sum(n) AS sum_n FROM par_d;
-- every part loads as the job's owner: a policy's WITH CHECK rejects the same records in
-- all parts, whichever worker loads them
CREATE TABLE par_rls (id int PRIMARY KEY, note text, n int);
ALTER TABLE par_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE par_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY small_n ON par_rls FOR INSERT TO regress_plain WITH CHECK (n < 40);
CREATE POLICY read_all ON par_rls FOR SELECT TO regress_plain USING (true);
GRANT INSERT, SELECT ON par_rls TO regress_plain;
SET ROLE regress_plain;
SELECT ingest.enqueue_data('par_rls', csv('id,note,n' || E'\n' || :'body' || E'\n'),
    '{"commit_every": 5, "max_errors": 30, "parallel": true}') AS jr \gset
RESET ROLE;
SELECT wait_for_state(:jr, 'succeeded');
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :jr;
SELECT count(*) > 1 AS parts FROM ingest_private.job_parts WHERE job_id = :jr;
SELECT sqlstate, count(*), min(record_number), max(record_number) FROM ingest.job_errors
 WHERE job_id = :jr GROUP BY sqlstate ORDER BY sqlstate;
SELECT max(n) AS max_n, count(*) AS rows FROM par_rls;

-- without commit_every: all-or-nothing in parts by two-phase commit (two parts at most, as
-- pg_regress's instance has max_prepared_transactions = 2): the same rows and rejected
-- records as above, committed together, and no prepared transaction or identifier left
CREATE TABLE par_2pc (id int PRIMARY KEY, note text, n int);
GRANT INSERT, SELECT ON par_2pc TO regress_plain;
-- (a large object: uploaded data is read from ingest's own table, which a part to be
-- prepared may not lock, so it is refused)
SELECT try($$SELECT ingest.enqueue_data('par_2pc', csv(E'id,note,n\n1,a,1\n'), '{"parallel": true}')$$);
SET ROLE regress_plain;
SELECT lo_from_bytea(0, csv('id,note,n' || E'\n' || :'body' || E'\n')) AS lo2pc \gset
SELECT ingest.enqueue_lo('par_2pc', :lo2pc, '{"max_errors": 10, "parallel": true}') AS j2pc \gset
RESET ROLE;
SELECT wait_for_state(:j2pc, 'succeeded');
SELECT state, rows_inserted, rows_rejected, records_done FROM ingest.upload_jobs WHERE id = :j2pc;
SELECT count(*) AS parts, bool_and(state = 'done') AS all_done, bool_and(gid IS NULL) AS no_gid
  FROM ingest_private.job_parts WHERE job_id = :j2pc;
SELECT line_number, record_number, sqlstate FROM ingest.job_errors WHERE job_id = :j2pc
 ORDER BY line_number;
SELECT count(*) AS rows, sum(n) AS sum_n FROM par_2pc;
SELECT count(*) AS prepared_left FROM pg_prepared_xacts;
-- more records rejected than max_errors: the job fails as one worker fails it (the same
-- record named), and no row of any part stays
TRUNCATE par_2pc;
SET ROLE regress_plain;
SELECT ingest.enqueue_lo('par_2pc', :lo2pc, '{"max_errors": 2, "parallel": true}') AS j2pf \gset
RESET ROLE;
SELECT wait_for_state(:j2pf, 'failed');
SELECT state, rows_inserted, rows_rejected, regexp_replace(last_error, 'object \d+', 'object N') AS last_error
  FROM ingest.upload_jobs WHERE id = :j2pf;
SELECT count(*) AS rows_left FROM par_2pc;
SELECT count(*) AS prepared_left FROM pg_prepared_xacts;

-- the workers' table: no other role reads or changes it
SET ROLE regress_plain;
SELECT try($$SELECT count(*) FROM ingest_private.job_parts$$);
SELECT try($$UPDATE ingest_private.job_parts SET state = 'queued'$$);
RESET ROLE;
ALTER SYSTEM RESET ingest.parallel_min_bytes;
SELECT pg_reload_conf();

-- skip_lines: a preamble whose last line ends in a CRLF cut by the end of a read (the
-- CR the last byte of the first 256 kB read,
-- the LF the first of the next): the LF ends the same line, so the rejected record is
-- on line 4, as it would be with the CRLF in one read (parts are cut by this count too)
CREATE TABLE par_skip (id int PRIMARY KEY, a text);
SELECT ingest.enqueue_data('par_skip',
    csv(repeat('x', 262144 - 1) || E'\r\nid,a\n1,x\nbad,y\n2,z\n'),
    '{"skip_lines": 1, "max_errors": 1}') AS j3 \gset
SELECT wait_for_state(:j3, 'succeeded');
SELECT * FROM job(:j3);
SELECT * FROM errors(:j3);
SELECT * FROM par_skip ORDER BY id;
