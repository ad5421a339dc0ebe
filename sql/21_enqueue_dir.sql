-- 21_enqueue_dir: ingest.enqueue_dir, a drop folder whose new files are enqueued once each.
-- test/lib/regress-prep.sh made /tmp/ingest_regress_files/drop (under ingest.allowed_dirs)
-- with a subdirectory, a FIFO and two symlinks (one leaving the allowed directory, one
-- staying inside it); the CSV files are written here. A file modified less than
-- ingest.dir_settle_time (5 s) ago waits for a later call, so each is aged with touch.
CREATE TABLE dir_t (a int, b text);
GRANT SELECT, INSERT ON dir_t TO regress_tenant_a, regress_filer;
CREATE TABLE dir_noinsert (a int, b text);
CREATE VIEW dir_v AS SELECT 1 AS a;

-- drop_file(name, lines, age): write the file (one line per element) in the drop folder
-- and set its modification time (touch -d: '1 minute ago', '1 hour', ...; NULL: now).
-- A name ending in .gz is written through gzip.
CREATE FUNCTION pg_temp.drop_file(name text, lines text[], age text DEFAULT '1 minute ago')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    path text := '/tmp/ingest_regress_files/drop/' || name;
BEGIN
    IF name LIKE '%.gz' THEN
        EXECUTE format('COPY (SELECT unnest(%L::text[])) TO PROGRAM %L', lines, 'gzip -c > ' || path);
    ELSE
        EXECUTE format('COPY (SELECT unnest(%L::text[])) TO %L', lines, path);
    END IF;
    IF age IS NOT NULL THEN
        EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', format('cat >/dev/null; touch -d %L %s', age, path));
    END IF;
END $$;
-- drop_cmd(cmd): a shell command in the drop folder
CREATE FUNCTION pg_temp.drop_cmd(cmd text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'cat >/dev/null; cd /tmp/ingest_regress_files/drop && ' || cmd);
END $$;
-- jobs(ids): waits for the jobs of an array of ids, then shows them in id order: what
-- enqueue_dir queued, and how it went
CREATE FUNCTION pg_temp.jobs(ids bigint[])
RETURNS TABLE (source text, owner regrole, state text, rows_inserted bigint, rows_rejected bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ingest.wait(id) FROM unnest(ids) id;
    RETURN QUERY
        SELECT replace(j.source, '/tmp/ingest_regress_files/drop/', '.../'), j.owner, j.state,
               j.rows_inserted, j.rows_rejected
          FROM ingest.upload_jobs j WHERE j.id = ANY (ids) ORDER BY j.id;
END $$;

SELECT pg_temp.drop_file('b.csv', '{a\,b, 2\,bee}');
SELECT pg_temp.drop_file('a.csv', '{a\,b, 1\,ay}');
SELECT pg_temp.drop_file('c.csv.gz', '{a\,b, 3\,sea}');
SELECT pg_temp.drop_file('.hidden.csv', '{a\,b, 90\,hidden}');
SELECT pg_temp.drop_file('d.csv.tmp', '{a\,b, 91\,partial}');
SELECT pg_temp.drop_file('A.CSV', '{a\,b, 92\,upper}');
SELECT pg_temp.drop_file('sub/nested.csv', '{a\,b, 93\,nested}');

-- the signature of the contract
SELECT p.oid::regprocedure, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid)
  FROM pg_proc p WHERE p.oid = 'ingest.enqueue_dir'::regproc;

-- '*.csv': a.csv and b.csv, in name order, one job each; not the hidden file, the
-- partial .tmp, the upper-case name, the subdirectory's file, the FIFO or the symlinks
-- (the one leaving the allowed directory, and the one staying inside it)
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT * FROM dir_t ORDER BY a;

-- again: nothing new, nothing enqueued (a trailing slash names the same directory)
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop/', '*.csv');

-- a gzip file, through the compression option's default (auto), with options passed on
SELECT array_agg(id) AS ids
  FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', '*.csv.gz', '{"max_errors": 5}') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT options FROM ingest.upload_jobs WHERE id = ANY (:'ids');
-- fnmatch patterns: brackets, case, and a leading dot matched only explicitly
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', '[A-Z]*') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', '.*.csv') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT * FROM dir_t ORDER BY a;

-- what is remembered, for ingest_admin
SELECT dir, name, size, owner, tenant, job_id IS NOT NULL AS has_job, enqueued_at <= now() AS enqueued
  FROM ingest.dir_files ORDER BY name COLLATE "C";

-- a changed file (new size and time) is a new file: enqueued again, whole; the identity it
-- had is forgotten
SELECT pg_temp.drop_file('a.csv', '{a\,b, 1\,ay, 4\,changed}', '30 seconds ago');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT name, size FROM ingest.dir_files WHERE name = 'a.csv';
-- a file removed from the folder is forgotten at the next call; put back, it is a new file
SELECT pg_temp.drop_cmd('rm b.csv');
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
SELECT count(*) AS b_remembered FROM ingest.dir_files WHERE name = 'b.csv';
SELECT pg_temp.drop_file('b.csv', '{a\,b, 2\,bee}');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');

-- a file that changes after it was enqueued, before its job runs, fails that job, which
-- loads nothing; the next call enqueues the new version, loaded once
SELECT pg_temp.drop_file('m.csv', '{a\,b, 12\,first}');
BEGIN;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT pg_temp.drop_file('m.csv', '{a\,b, 12\,second, 13\,second}', '20 seconds ago');
COMMIT;
SELECT * FROM pg_temp.jobs(:'ids');
SELECT regexp_replace(last_error, 'modified at [0-9-]+ [0-9:.]+[-+][0-9:]+', 'modified at ...', 'g') AS last_error
  FROM ingest.upload_jobs WHERE id = (:'ids'::bigint[])[1];
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT a, b FROM dir_t WHERE a IN (12, 13) ORDER BY a;
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');

-- a file modified within ingest.dir_settle_time may still be being written: it waits
SELECT pg_temp.drop_file('e.csv', '{a\,b, 5\,fresh}', NULL);
SET ingest.dir_settle_time = '1h';
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
RESET ingest.dir_settle_time;
SHOW ingest.dir_settle_time;
SELECT pg_temp.drop_cmd('touch -d ''10 seconds ago'' e.csv');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
-- a modification time in the future waits too, even with no settle time
SELECT pg_temp.drop_file('f.csv', '{a\,b, 6\,future}', '1 hour');
SET ingest.dir_settle_time = 0;
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
SELECT pg_temp.drop_cmd('touch -d ''1 minute ago'' f.csv');
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
RESET ingest.dir_settle_time;

-- a call rolled back takes back what it remembered with its jobs
SELECT pg_temp.drop_file('r.csv', '{a\,b, 7\,rolled back}');
BEGIN;
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
ROLLBACK;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');

-- a file whose header does not fit the table is a failed job (the worker checks the
-- header), remembered like any other: it does not stop the files after it, and is not
-- enqueued again until it changes
SELECT pg_temp.drop_file('h1.csv', '{x\,y, 1\,2}');
SELECT pg_temp.drop_file('h2.csv', '{a\,b, 8\,after}');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT last_error FROM ingest.upload_jobs WHERE id = (:'ids'::bigint[])[1];
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');

-- a file over ingest.max_file_size is passed over with a WARNING (not remembered: tried
-- again at each call); the others are enqueued
SELECT pg_temp.drop_file('big.csv', '{a\,b, 9\,too big for the limit}');
SELECT pg_temp.drop_file('small.csv', '{a\,b, 10\,x}');
SET ingest.max_file_size = 16;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
RESET ingest.max_file_size;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');

SELECT count(*) AS jobs_before FROM ingest.upload_jobs \gset
-- refused, for a superuser too, and nothing queued: NULL arguments, patterns with a
-- slash or empty, paths that are relative, outside the allowed directories (by .., by a
-- symlinked directory, by a sibling sharing their name's prefix), not a directory, missing;
-- bad options; a target that is not a table
SELECT * FROM ingest.enqueue_dir(NULL, '/tmp/ingest_regress_files/drop');
SELECT * FROM ingest.enqueue_dir('dir_t', NULL);
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', NULL);
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', '');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files', 'drop/*.csv');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', repeat('*', 300));
SELECT * FROM ingest.enqueue_dir('dir_t', 'drop');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_outside');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/../ingest_regress_outside');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/escape_dir');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files_evil');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop/a.csv');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/missing');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', '*.csv', '{"nope": 1}');
SELECT * FROM ingest.enqueue_dir('dir_v', '/tmp/ingest_regress_files/drop');
SELECT count(*) - :jobs_before AS jobs_queued FROM ingest.upload_jobs;
-- a directory listed in ingest.allowed_dirs is itself allowed
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files', 'no-such-*.csv');

-- a role that is neither superuser nor member of pg_read_server_files is refused, as by
-- enqueue_file, before anything about the path is looked at
SET ROLE regress_tenant_a;
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/no-such-dir');
-- and nobody but ingest_admin reads what was remembered
SELECT count(*) FROM ingest.dir_files;
SELECT count(*) FROM ingest_private.dir_files;
RESET ROLE;

-- a member of pg_read_server_files may: the files another role enqueued are not enqueued
-- again (a file is remembered per database, whoever enqueued it); a new one is, as its job
SELECT pg_temp.drop_file('g.csv', '{a\,b, 11\,filer}');
SET ROLE regress_filer;
SELECT count(*) FROM ingest.dir_files;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
-- its privileges on the target decide, as for its own INSERT
SELECT * FROM ingest.enqueue_dir('dir_noinsert', '/tmp/ingest_regress_files/drop');
-- outside the allowed directories, refused as for a superuser
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/escape_dir');
RESET ROLE;
SET ROLE regress_auditor;
SELECT name, owner FROM ingest.dir_files WHERE name = 'g.csv';
RESET ROLE;

-- the queue quota ends a call with what it enqueued; the rest wait for the next call
ALTER ROLE regress_filer SET ingest.max_queued_per_role = 2;
SELECT pg_temp.drop_file('q1.csv', '{a\,b, 21\,q}');
SELECT pg_temp.drop_file('q2.csv', '{a\,b, 22\,q}');
SELECT pg_temp.drop_file('q3.csv', '{a\,b, 23\,q}');
SET ROLE regress_filer;
BEGIN;
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', 'q*.csv') id \gset
COMMIT;
SELECT * FROM pg_temp.jobs(:'ids');
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop', 'q*.csv') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
-- ingest.purge keeps what was remembered: a purged job's file is not enqueued again
SELECT ingest.purge('0 seconds') > 0 AS purged;
SELECT count(*) AS jobs_left FROM ingest.upload_jobs;
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
RESET ROLE;
ALTER ROLE regress_filer RESET ingest.max_queued_per_role;
SELECT name, owner FROM ingest.dir_files WHERE owner = 'regress_filer'::regrole ORDER BY name;

-- with ingest.tenant_key set, a session without a tenant cannot enqueue; a job and its
-- remembered file carry the session's tenant, and another tenant does not enqueue the
-- file again
SET ingest.tenant_key = 'app.tenant';
SELECT pg_temp.drop_file('t.csv', '{a\,b, 30\,tenant}');
SELECT * FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
SET app.tenant = 'acme';
SELECT array_agg(id) AS ids FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop') id \gset
SELECT * FROM pg_temp.jobs(:'ids');
SELECT tenant FROM ingest.upload_jobs WHERE id = ANY (:'ids');
SELECT name, tenant FROM ingest.dir_files WHERE name = 't.csv';
SET app.tenant = 'globex';
SELECT count(*) AS enqueued FROM ingest.enqueue_dir('dir_t', '/tmp/ingest_regress_files/drop');
RESET app.tenant;
RESET ingest.tenant_key;

-- every row once: what the folder's files hold, each file loaded once (a.csv twice: it
-- changed; b.csv twice: removed and put back)
SELECT a, b, count(*) FROM dir_t GROUP BY a, b ORDER BY a;
