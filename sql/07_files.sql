-- 07_files: ingest.enqueue_file. Superusers and members of pg_read_server_files only,
-- and only files whose resolved path stays under ingest.allowed_dirs (here
-- /tmp/ingest_regress_files, see test/regress.conf; test/lib/regress-prep.sh made the
-- symlinks and the files outside it).
SHOW ingest.allowed_dirs;
CREATE TABLE files_t (a int, b text);
GRANT SELECT, INSERT ON files_t TO regress_tenant_a, regress_filer;
COPY (SELECT * FROM (VALUES (1, 'one'), (2, 'two, with comma')) v(a, b))
    TO '/tmp/ingest_regress_files/two.csv' WITH (FORMAT csv, HEADER);
COPY (SELECT * FROM (VALUES (3, 'three')) v(a, b))
    TO '/tmp/ingest_regress_files/sub/inside.csv' WITH (FORMAT csv, HEADER);

-- a superuser loads a file in the allowed directory
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/two.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT source, source_type, state, rows_inserted, bytes_total, bytes_done FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM files_t ORDER BY a;

-- a symlink that stays inside is followed; the job records the resolved path
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/inside_link.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT source, state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
-- a redundant path is normalised
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files//sub/./inside.csv', '{"header": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT source, state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM files_t ORDER BY a;

SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset
-- refused, for a superuser too: outside, .. out of it, a symlink out of it (file and
-- directory), a sibling directory sharing its name as a prefix, relative paths
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_outside/secret.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/../ingest_regress_outside/secret.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/escape.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/escape_dir/in_dir.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files_evil/x.csv');
SELECT ingest.enqueue_file('files_t', '/etc/passwd');
SELECT ingest.enqueue_file('files_t', 'two.csv');
SELECT ingest.enqueue_file('files_t', '../../../../tmp/ingest_regress_files/two.csv');
-- not a readable regular file
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/missing.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/sub');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files');
SELECT ingest.enqueue_file('files_t', '');
SELECT ingest.enqueue_file('files_t', NULL);
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;

-- a role that is neither superuser nor member of pg_read_server_files is refused
SET ROLE regress_tenant_a;
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/two.csv');
RESET ROLE;
-- a member of pg_read_server_files may, inside the allowed directory only
SET ROLE regress_filer;
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/two.csv') AS id \gset
SELECT ingest.wait(:id);
SELECT owner, state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_outside/secret.csv');
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/escape.csv');
RESET ROLE;
SELECT count(*) AS rows, count(*) FILTER (WHERE b IN ('secret', 'evil', 'outside-dir')) AS outside_rows FROM files_t;

-- a file job with bad records: line numbers and options as for data
COPY (SELECT 'a,b' UNION ALL SELECT '10,ok' UNION ALL SELECT 'x,bad' UNION ALL SELECT '11,"two' UNION ALL SELECT 'lines"' UNION ALL SELECT 'y,bad')
    TO '/tmp/ingest_regress_files/bad.csv';
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/bad.csv', '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT line_number, sqlstate FROM errors(:id);
SELECT a, replace(b, E'\n', '\n') AS b FROM files_t WHERE a >= 10 ORDER BY a;

-- the file is read when the job runs: removed between enqueue and run, the job fails
-- cleanly and says why
COPY (SELECT 'a,b' UNION ALL SELECT '20,gone') TO '/tmp/ingest_regress_files/gone.csv';
BEGIN;
SELECT ingest.enqueue_file('files_t', '/tmp/ingest_regress_files/gone.csv') AS id \gset
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -f /tmp/ingest_regress_files/gone.csv';
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM files_t WHERE a = 20;
