-- 02_jobs: enqueue returns an id at once; a worker picks the job up after commit (and
-- only after commit); rollback leaves nothing; ingest.wait and ingest.cancel.
-- (CONTEXT lines name line numbers inside ingest.wait: not shown)
\set SHOW_CONTEXT never
CREATE TABLE items (id int PRIMARY KEY, name text);

-- enqueue_data returns the new job's id; ingest.wait blocks until it has finished
SELECT ingest.enqueue_data('items', csv(E'id,name\n1,one\n2,two\n')) AS id \gset
SELECT :id > 0 AS has_id;
SELECT ingest.wait(:id);
SELECT owner = current_user::regrole AS owned_by_me, target, source_type, options, state, attempts, rows_inserted, rows_rejected,
       bytes_total, bytes_done, last_error, cancel_requested,
       worker_pid IS NOT NULL AND worker_pid <> pg_backend_pid() AS run_by_a_worker,
       created_at <= started_at AND started_at <= finished_at AS times_in_order
  FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM items ORDER BY id;
-- the bytes of a data job are not kept once it has finished (or, if they are, they are
-- the bytes that were sent)
SELECT count(*) = 0 OR bool_and(data = csv(E'id,name\n1,one\n2,two\n')) AS job_data_ok
  FROM ingest_private.job_data WHERE job_id = :id;

-- the options given are stored as given
SELECT ingest.enqueue_data('items', csv(E'3;three\n'),
       '{"header": false, "delimiter": ";", "max_errors": 2, "commit_every": 100}') AS id \gset
SELECT ingest.wait(:id);
SELECT options, state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM items WHERE id = 3;

-- Before commit the job exists for its own transaction only, and no worker takes it:
-- it is still queued half a second later; ingest.wait refuses to wait on it there (the
-- job cannot start before the commit).
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n4,four\n')) AS id \gset
SELECT state, attempts FROM ingest.upload_jobs WHERE id = :id;
SELECT pg_sleep(0.5);
SELECT state, attempts, started_at IS NULL AS not_started FROM ingest.upload_jobs WHERE id = :id;
SELECT try(format('SELECT ingest.wait(%s, %L)', :id, '200 ms'));
SELECT count(*) FROM items WHERE id = 4;
COMMIT;
-- after commit it runs
SELECT ingest.wait(:id);
SELECT * FROM items WHERE id = 4;

-- A rolled-back enqueue leaves nothing: no job, no data, no rows.
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n5,five\n')) AS id \gset
ROLLBACK;
SELECT count(*) AS jobs FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS data FROM ingest_private.job_data WHERE job_id = :id;
SELECT pg_sleep(0.5);
SELECT count(*) AS rows FROM items WHERE id = 5;
-- ... also when only a subtransaction rolls back
BEGIN;
SAVEPOINT s;
SELECT ingest.enqueue_data('items', csv(E'id,name\n6,six\n')) AS id \gset
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS jobs FROM ingest.upload_jobs WHERE id = :id;
SELECT pg_sleep(0.5);
SELECT count(*) AS rows FROM items WHERE id = 6;
-- ... and a failed transaction
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n7,seven\n')) AS id \gset
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS jobs FROM ingest.upload_jobs WHERE id = :id;
SELECT pg_sleep(0.5);
SELECT count(*) AS rows FROM items WHERE id = 7;

-- Several jobs from one transaction all run after its commit, each as its own job.
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n10,ten\n')) AS j1 \gset
SELECT ingest.enqueue_data('items', csv(E'id,name\n11,eleven\n')) AS j2 \gset
SELECT ingest.enqueue_data('items', csv(E'id,name\n12,twelve\n')) AS j3 \gset
COMMIT;
SELECT :j1 < :j2 AND :j2 < :j3 AS ids_increase;
SELECT ingest.wait(:j1) AS j1, ingest.wait(:j2) AS j2, ingest.wait(:j3) AS j3;
SELECT id, name FROM items WHERE id >= 10 ORDER BY id;

-- ingest.wait
SELECT ingest.wait(:j1, '0 s');
SELECT ingest.wait(NULL);
SELECT ingest.wait(-1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT ingest.wait(:j1);
ROLLBACK;
-- ingest.wait returns the current state when its timeout passes, and can be interrupted.
-- The job below stays running: its rows wait for an advisory lock this session holds.
CREATE TABLE gated (id int);
CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(20240); RETURN NEW; END $$;
CREATE TRIGGER gate BEFORE INSERT ON gated FOR EACH ROW EXECUTE FUNCTION gate();
SELECT pg_advisory_lock(20240);
SELECT ingest.enqueue_data('gated', csv(E'id\n1\n')) AS id \gset
SELECT wait_for_state(:id, 'running');
SELECT ingest.wait(:id, '300 ms');
SET statement_timeout = '300ms';
SELECT ingest.wait(:id);
RESET statement_timeout;
SELECT pg_advisory_unlock(20240);
SELECT ingest.wait(:id);
SELECT * FROM gated;

-- ingest.cancel of a queued job: cancelled at once, never run
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n20,twenty\n')) AS id \gset
SELECT ingest.cancel(:id);
SELECT state, finished_at IS NOT NULL AS finished FROM ingest.upload_jobs WHERE id = :id;
COMMIT;
SELECT ingest.wait(:id);
SELECT pg_sleep(0.5);
SELECT state, attempts, rows_inserted, started_at IS NULL AS never_started
  FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) AS rows FROM items WHERE id = 20;
-- cancel of a finished job (cancelled, succeeded) returns false and changes nothing
SELECT ingest.cancel(:id);
SELECT ingest.cancel(:j1);
SELECT state, cancel_requested FROM ingest.upload_jobs WHERE id = :j1;
-- cancel of a job that does not exist
SELECT ingest.cancel(-1);
-- a cancel that rolls back cancels nothing
BEGIN;
SELECT ingest.enqueue_data('items', csv(E'id,name\n21,twenty-one\n')) AS id \gset
SAVEPOINT s;
SELECT ingest.cancel(:id);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT ingest.wait(:id);
SELECT * FROM items WHERE id = 21;
