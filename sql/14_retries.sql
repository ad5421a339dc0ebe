-- 14_retries: transient failures retried with backoff, non-transient ones not; resuming
-- from the checkpoint without duplicates or gaps; the job timeout; cancelling a running
-- job; ingest.retry; validation of the options.
--
-- Failures are made by triggers. A sequence counts what they did: nextval is not undone
-- by a rollback, so a trigger can fail on the first call(s) only, whichever attempt of
-- the job makes them, and the suite can tell how many rows a worker really processed
-- without timing anything.
CREATE TABLE rt (id int, v text);
CREATE SEQUENCE rt_calls;
-- rt_flaky(sqlstate, n): raise that SQLSTATE on the first n rows, then let rows through
CREATE FUNCTION rt_flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('rt_calls') <= TG_ARGV[1]::int THEN
    RAISE EXCEPTION 'flaky trigger: %', TG_ARGV[0] USING ERRCODE = TG_ARGV[0];
  END IF;
  RETURN NEW;
END $$;
-- the data of these jobs: rows 1..3
SELECT csv(E'id,v\n1,a\n2,b\n3,c\n') AS three \gset
-- rows and distinct rows of rt
CREATE FUNCTION rt_rows(OUT n bigint, OUT ids bigint, OUT sum bigint) LANGUAGE sql
    AS $$ SELECT count(*), count(DISTINCT id), sum(id) FROM rt $$;
-- last_error with job ids masked
CREATE FUNCTION rt_err(bigint) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT regexp_replace(last_error, 'job [0-9]+', 'job N', 'g')
            FROM ingest.upload_jobs WHERE id = $1 $$;

-- A serialization failure (40001) twice: with max_attempts 3 (ingest.max_attempts'
-- default) the third attempt succeeds, with exactly the file's rows.
CREATE TRIGGER flaky BEFORE INSERT ON rt FOR EACH ROW EXECUTE FUNCTION rt_flaky('40001', '2');
SELECT ingest.enqueue_data('rt', :'three') AS id \gset
SELECT max_attempts FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
SELECT count(*) AS errors FROM ingest.job_errors WHERE job_id = :id;
TRUNCATE rt;
-- with max_attempts 1 it fails at once, saying so; nothing is loaded, no record is
-- blamed for it
SELECT setval('rt_calls', 1, false);
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*) AS errors FROM ingest.job_errors WHERE job_id = :id;
SELECT * FROM rt_rows();
-- retried until max_attempts runs out: the last message counts the attempts
SELECT setval('rt_calls', 1, false);
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": 2}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
DROP TRIGGER flaky ON rt;

-- A deadlock (40P01), once: retried, the second attempt succeeds.
SELECT setval('rt_calls', 1, false);
CREATE TRIGGER flaky BEFORE INSERT ON rt FOR EACH ROW EXECUTE FUNCTION rt_flaky('40P01', '1');
SELECT ingest.enqueue_data('rt', :'three') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
DROP TRIGGER flaky ON rt;
TRUNCATE rt;

-- A real lock timeout (55P03): this session holds an advisory lock; the trigger's first
-- call waits for it under a short lock_timeout. Retried, the second attempt succeeds.
CREATE FUNCTION rt_locker() RETURNS trigger LANGUAGE plpgsql SET lock_timeout = '100ms' AS $$
BEGIN
  IF nextval('rt_calls') = 1 THEN
    PERFORM pg_advisory_xact_lock(4201);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER locker BEFORE INSERT ON rt FOR EACH ROW EXECUTE FUNCTION rt_locker();
SELECT setval('rt_calls', 1, false);
SELECT pg_advisory_lock(4201);
SELECT ingest.enqueue_data('rt', :'three') AS id \gset
SELECT ingest.wait(:id);
SELECT pg_advisory_unlock(4201);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
DROP TRIGGER locker ON rt;
TRUNCATE rt;

-- Errors that would fail the same way again are not retried, whatever max_attempts:
-- a bad value (22P02), a unique violation (23505).
SELECT ingest.enqueue_data('rt', csv(E'id,v\n1,a\nx,b\n'), '{"max_attempts": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
CREATE TABLE rt_pk (id int PRIMARY KEY);
INSERT INTO rt_pk VALUES (2);
SELECT ingest.enqueue_data('rt_pk', csv(E'id\n1\n2\n3\n'), '{"max_attempts": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_pk;
SELECT * FROM rt_rows();

-- Backoff: after a transient failure the job waits in the queue with run_after set, one
-- second (the first delay) after the failure. To look at it while it waits, its role may
-- run one job at a time, and its second job, which blocks on an advisory lock this
-- session holds, runs meanwhile; the first job runs again once the second is done.
CREATE ROLE regress_retry NOLOGIN;
ALTER ROLE regress_retry SET ingest.max_running_per_role = 1;
CREATE TABLE rt_block (id int);
CREATE FUNCTION rt_block() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(4202);
  RETURN NEW;
END $$;
CREATE TRIGGER block BEFORE INSERT ON rt_block FOR EACH ROW EXECUTE FUNCTION rt_block();
GRANT INSERT, SELECT ON rt, rt_block TO regress_retry;
GRANT USAGE ON SEQUENCE rt_calls TO regress_retry;
CREATE TRIGGER flaky BEFORE INSERT ON rt FOR EACH ROW EXECUTE FUNCTION rt_flaky('40001', '1');
SELECT setval('rt_calls', 1, false);
SELECT pg_advisory_lock(4202);
BEGIN;
SET LOCAL ROLE regress_retry;
SELECT ingest.enqueue_data('rt', :'three') AS first \gset
SELECT ingest.enqueue_data('rt_block', csv(E'id\n1\n')) AS second \gset
COMMIT;
-- the second job runs (and waits for the lock) only once the first has failed
SELECT wait_for_state(:second, 'running');
SELECT state, attempts, rt_err(:first) AS last_error, worker_pid IS NULL AS no_worker,
       run_after BETWEEN started_at + interval '1 s' AND clock_timestamp() + interval '1 s' AS backoff_1s
  FROM ingest.upload_jobs WHERE id = :first;
SELECT count(*) AS rows_of_first FROM rt;
SELECT pg_advisory_unlock(4202);
SELECT ingest.wait(:second), ingest.wait(:first);
SELECT * FROM job(:first);
SELECT * FROM rt_rows();
DROP TRIGGER flaky ON rt;
TRUNCATE rt;

-- commit_every > 0, a transient failure in the middle of the file: the next attempt
-- resumes from the last checkpoint. 100 records, a commit every 10, bad values at records
-- 5, 25, 45, 52, 75 and 95; record 55 fails (40001) on the first attempt only, after 50
-- records were committed. Rows and rejections land exactly once; rt_early counts how
-- often the trigger saw records 1-50: only in the first attempt.
CREATE SEQUENCE rt_early;
CREATE FUNCTION rt_midfile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <= 50 THEN
    PERFORM nextval('rt_early');
  END IF;
  IF NEW.id = 55 THEN
    IF nextval('rt_calls') <= TG_ARGV[0]::int THEN
      RAISE EXCEPTION 'flaky trigger: 40001' USING ERRCODE = '40001';
    END IF;
  END IF;
  RETURN NEW;
END $$;
SELECT csv('id,v' || E'\n' || string_agg(CASE WHEN i IN (5, 25, 45, 52, 75, 95) THEN 'bad' ELSE i::text END || ',r' || i,
                                         E'\n' ORDER BY i)) AS hundred
  FROM generate_series(1, 100) i \gset
CREATE TRIGGER midfile BEFORE INSERT ON rt FOR EACH ROW EXECUTE FUNCTION rt_midfile('1');
SELECT setval('rt_calls', 1, false);
SELECT ingest.enqueue_data('rt', :'hundred', '{"commit_every": 10, "max_errors": 50}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT records_done, bytes_done = bytes_total AS all_read FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM rt_rows();
SELECT pg_sequence_last_value('rt_early') AS early_rows_seen;
SELECT count(*) AS errors, count(DISTINCT line_number) AS lines,
       array_agg(line_number ORDER BY line_number) AS at_lines
  FROM ingest.job_errors WHERE job_id = :id;
TRUNCATE rt;
-- commit_every 0: the failed attempt leaves nothing, the next one loads everything once
SELECT setval('rt_calls', 1, false);
SELECT ingest.enqueue_data('rt', :'hundred', '{"max_errors": 50}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
SELECT count(*) AS errors, count(DISTINCT line_number) AS lines FROM ingest.job_errors WHERE job_id = :id;
TRUNCATE rt;
-- ... and with one attempt only it fails: nothing of it stays in the table; the rejected
-- records it had found are listed, and counted, once
SELECT setval('rt_calls', 1, false);
SELECT ingest.enqueue_data('rt', :'hundred', '{"max_errors": 50, "max_attempts": 1}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT * FROM rt_rows();
SELECT count(*) AS errors, array_agg(line_number ORDER BY line_number) AS at_lines
  FROM ingest.job_errors WHERE job_id = :id;
DROP TRIGGER midfile ON rt;
TRUNCATE rt;

-- Timeout: a trigger sleeps 20 ms per row after row 20, so 200 rows would take about
-- 4 s. With a one-second timeout the job fails, is not retried, and keeps exactly the rows
-- of the batches it committed (commit_every 10; the first two commit at once).
CREATE TABLE rt_slow (id int);
CREATE FUNCTION rt_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id > 20 THEN
    PERFORM pg_sleep(0.02);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER slow BEFORE INSERT ON rt_slow FOR EACH ROW EXECUTE FUNCTION rt_slow();
SELECT csv('id' || E'\n' || string_agg(i::text, E'\n' ORDER BY i)) AS slow200
  FROM generate_series(1, 200) i \gset
-- slow_outcome(id): the job's end and the table against it
CREATE FUNCTION rt_slow_outcome(bigint, OUT state text, OUT attempts int, OUT timeout interval,
    OUT last_error text, OUT whole_batches boolean, OUT table_matches boolean)
    LANGUAGE sql
    AS $$ SELECT j.state, j.attempts, j.timeout, regexp_replace(j.last_error, 'line [0-9]+', 'line N'),
                 j.rows_inserted BETWEEN 20 AND 190 AND j.rows_inserted % 10 = 0,
                 (SELECT count(*) = j.rows_inserted AND count(DISTINCT id) = j.rows_inserted
                         AND coalesce(max(id), 0) = j.rows_inserted FROM rt_slow)
            FROM ingest.upload_jobs j WHERE j.id = $1 $$;
-- the option as an interval
SELECT ingest.enqueue_data('rt_slow', :'slow200', '{"timeout": "1 s", "commit_every": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM rt_slow_outcome(:id);
SELECT count(*) AS errors FROM ingest.job_errors WHERE job_id = :id;
TRUNCATE rt_slow;
-- the option as a number of seconds
SELECT ingest.enqueue_data('rt_slow', :'slow200', '{"timeout": 1, "commit_every": 10}') AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM rt_slow_outcome(:id);
TRUNCATE rt_slow;
-- ingest.job_timeout, captured at enqueue (the session's value; the option overrides it)
SET ingest.job_timeout = '1s';
SELECT ingest.enqueue_data('rt_slow', :'slow200', '{"commit_every": 10}') AS id \gset
BEGIN;
SELECT ingest.enqueue_data('rt_slow', :'slow200', '{"timeout": 0}') AS no_limit,
       ingest.enqueue_data('rt_slow', :'slow200', '{"timeout": "2 min"}') AS two_min \gset
SELECT id = :no_limit AS no_limit, timeout FROM ingest.upload_jobs WHERE id IN (:no_limit, :two_min) ORDER BY id;
ROLLBACK;
RESET ingest.job_timeout;
SELECT ingest.wait(:id);
SELECT * FROM rt_slow_outcome(:id);
-- ingest.retry after the cause is gone: the job runs again, resumes from its checkpoint,
-- and ends with every row exactly once
DROP TRIGGER slow ON rt_slow;
SELECT ingest.retry(:id);
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*), count(DISTINCT id), min(id), max(id) FROM rt_slow;
-- retry of a succeeded job: false, nothing happens
SELECT ingest.retry(:id);
SELECT state, attempts FROM ingest.upload_jobs WHERE id = :id;
-- of a queued one: false
BEGIN;
SELECT ingest.enqueue_data('rt_slow', :'slow200') AS id \gset
SELECT ingest.retry(:id);
ROLLBACK;
TRUNCATE rt_slow;

-- Cancel a running job. The trigger counts rows in rt_fired and sleeps 10 ms per row; the
-- batch (ingest.batch_rows 10000, one transaction) of 2,000 rows would take 20 s. The job
-- stops within a row of the cancel, ends cancelled, and leaves nothing.
CREATE TABLE rt_cancel (id int);
CREATE SEQUENCE rt_fired;
CREATE FUNCTION rt_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('rt_fired');
  PERFORM pg_sleep(0.01);
  RETURN NEW;
END $$;
CREATE TRIGGER counted BEFORE INSERT ON rt_cancel FOR EACH ROW EXECUTE FUNCTION rt_counted();
-- wait_for_rows(n): until the trigger has seen n rows
CREATE FUNCTION rt_wait_fired(n bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
  WHILE coalesce(pg_sequence_last_value('rt_fired'), 0) < n LOOP
    IF clock_timestamp() > deadline THEN
      RETURN false;
    END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN true;
END $$;
SELECT csv('id' || E'\n' || string_agg(i::text, E'\n' ORDER BY i)) AS cancel2000
  FROM generate_series(1, 2000) i \gset
SELECT ingest.enqueue_data('rt_cancel', :'cancel2000') AS id \gset
SELECT rt_wait_fired(5);
-- a cancel that is rolled back cancels nothing: the job goes on past 50 rows
BEGIN;
SELECT ingest.cancel(:id);
ROLLBACK;
-- nor one rolled back to a savepoint in a transaction that commits
BEGIN;
SAVEPOINT s;
SELECT ingest.cancel(:id);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT rt_wait_fired(50);
SELECT state, cancel_requested FROM ingest.upload_jobs WHERE id = :id;
SELECT ingest.cancel(:id);
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*) AS errors FROM ingest.job_errors WHERE job_id = :id;
SELECT count(*) AS rows FROM rt_cancel;
SELECT pg_sequence_last_value('rt_fired') < 1000 AS stopped_within_the_batch;
-- with commit_every 50: the committed batches stay, exactly; the batch in flight is
-- rolled back (the trigger had seen at most its 50 rows: a cancel that comes while its
-- last row is inserted stops it before it commits)
SELECT setval('rt_fired', 1, false);
SELECT ingest.enqueue_data('rt_cancel', (SELECT csv('id' || E'\n' || string_agg(i::text, E'\n' ORDER BY i)) FROM generate_series(1, 1000) i),
       '{"commit_every": 50}') AS id \gset
SELECT rt_wait_fired(120);
SELECT ingest.cancel(:id);
SELECT ingest.wait(:id);
SELECT state, rt_err(:id) AS last_error, rows_inserted >= 100 AS two_batches_or_more,
       rows_inserted % 50 = 0 AS whole_batches,
       pg_sequence_last_value('rt_fired') - rows_inserted BETWEEN 0 AND 50 AS stopped_in_batch,
       rows_inserted = records_done AS checkpoint_matches
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) = (SELECT rows_inserted FROM ingest.upload_jobs WHERE id = :id) AS table_matches_job,
       count(*) = count(DISTINCT id) AND count(*) = max(id) AS rows_1_to_n
  FROM rt_cancel;
SELECT count(*) AS errors FROM ingest.job_errors WHERE job_id = :id;
-- retry of a cancelled job: true; it resumes from its checkpoint and completes
DROP TRIGGER counted ON rt_cancel;
SELECT ingest.retry(:id);
SELECT ingest.wait(:id);
SELECT * FROM job(:id);
SELECT count(*), count(DISTINCT id), min(id), max(id) FROM rt_cancel;

-- ingest.retry and roles: another role's job "does not exist" for the caller; a member of
-- ingest_admin may retry it (it runs again as its owner).
CREATE TABLE rt_owned (id int);
GRANT INSERT ON rt_owned TO regress_tenant_a;
SET ROLE regress_tenant_a;
SELECT ingest.enqueue_data('rt_owned', csv(E'id\nnot a number\n')) AS id \gset
RESET ROLE;
SELECT ingest.wait(:id);
SET ROLE regress_tenant_b;
SELECT try(format('SELECT ingest.retry(%s)', :id));
RESET ROLE;
SET ROLE regress_auditor;
SELECT ingest.retry(:id);
RESET ROLE;
SELECT ingest.wait(:id);
SELECT owner, state, attempts, rt_err(:id) AS last_error FROM ingest.upload_jobs WHERE id = :id;
SELECT try('SELECT ingest.retry(-1)');

-- Options: max_attempts an integer from 1 to 100; timeout an interval or a number of
-- seconds, not negative; ingest.max_attempts captured at enqueue.
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": 0}');
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": 101}');
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": "x"}');
SELECT ingest.enqueue_data('rt', :'three', '{"max_attempts": 2.5}');
SELECT ingest.enqueue_data('rt', :'three', '{"timeout": -1}');
SELECT ingest.enqueue_data('rt', :'three', '{"timeout": "-1 s"}');
SELECT ingest.enqueue_data('rt', :'three', '{"timeout": "banana"}');
SELECT ingest.enqueue_data('rt', :'three', '{"timeout": true}');
BEGIN;
SET LOCAL ingest.max_attempts = 5;
SELECT ingest.enqueue_data('rt', :'three') AS from_guc,
       ingest.enqueue_data('rt', :'three', '{"max_attempts": 100}') AS from_option \gset
SELECT max_attempts FROM ingest.upload_jobs WHERE id IN (:from_guc, :from_option) ORDER BY id;
ROLLBACK;

DROP TABLE rt, rt_pk, rt_block, rt_slow, rt_cancel, rt_owned;
DROP SEQUENCE rt_calls, rt_early, rt_fired;
DROP FUNCTION rt_flaky(), rt_locker(), rt_block(), rt_midfile(), rt_slow(), rt_counted(),
    rt_rows(), rt_err(bigint), rt_slow_outcome(bigint), rt_wait_fired(bigint);
DROP ROLE regress_retry;

-- A per-role setting is read for the job's owner as the server reads it: '2.0' is 2, and
-- a value that cannot be read falls back to the one in effect instead of failing claims.
CREATE ROLE rt_setting_role;
ALTER ROLE rt_setting_role SET ingest.max_running_per_role = '3.0';
SELECT ingest._role_setting('rt_setting_role'::regrole, 'ingest.max_running_per_role') AS three,
       ingest._max_running('rt_setting_role'::regrole) AS max_running;
ALTER ROLE rt_setting_role SET ingest.max_queued_per_role = '0x10';
SELECT ingest._role_setting('rt_setting_role'::regrole, 'ingest.max_queued_per_role') AS server_value;
DROP ROLE rt_setting_role;

-- ingest.purge refuses a negative age (it would delete jobs that just finished)
SELECT ingest.purge('-1 day');
