-- 08_notify: NOTIFY ingest when a job finishes, with a JSON payload naming the job and its
-- state. psql prints each notification after the statement during which it arrived:
--   Asynchronous notification "ingest" with payload "..." received from server process with PID n.
-- The PID changes from run to run, so the lines are written to a file with \o (opened
-- before the enqueue: a quick job may finish before psql reads its next line) and shown
-- with the PID (and the job id) replaced.
CREATE TABLE notify_t (id int PRIMARY KEY);
-- notifications(file, job): the notification lines psql wrote to file, PID and job id masked
CREATE FUNCTION notifications(file text, job bigint) RETURNS SETOF text
    LANGUAGE sql VOLATILE
    AS $$ SELECT regexp_replace(regexp_replace(l, 'PID [0-9]+', 'PID <pid>'),
                                '([^0-9])' || job || '([^0-9])', '\1<job>\2', 'g')
            FROM regexp_split_to_table(pg_read_file(file), E'\n') WITH ORDINALITY AS t(l, n)
           WHERE l LIKE 'Asynchronous notification%'
           ORDER BY n $$;
-- payloads(file): the payloads of those lines, as jsonb
CREATE FUNCTION payloads(file text) RETURNS SETOF jsonb
    LANGUAGE sql VOLATILE
    AS $$ SELECT (regexp_match(l, 'with payload "(.*)" received from server process'))[1]::jsonb
            FROM regexp_split_to_table(pg_read_file(file), E'\n') WITH ORDINALITY AS t(l, n)
           WHERE l LIKE 'Asynchronous notification "ingest"%'
           ORDER BY n $$;

LISTEN ingest;

-- a job that succeeds
\o /tmp/ingest_regress_files/notify_1.out
SELECT ingest.enqueue_data('notify_t', csv(E'id\n1\n2\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT pg_sleep(0.3);
\o
SELECT state FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM notifications('/tmp/ingest_regress_files/notify_1.out', :id);
-- the payload is JSON naming the job id and its final state
SELECT p ? 'job_id' OR p ? 'id' AS names_job,
       EXISTS (SELECT 1 FROM jsonb_each_text(p) e WHERE e.value = :'id') AS has_job_id,
       EXISTS (SELECT 1 FROM jsonb_each_text(p) e WHERE e.value = 'succeeded') AS has_state
  FROM payloads('/tmp/ingest_regress_files/notify_1.out') p;

-- a job that fails
\o /tmp/ingest_regress_files/notify_2.out
SELECT ingest.enqueue_data('notify_t', csv(E'id\n1\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT pg_sleep(0.3);
\o
SELECT state FROM ingest.upload_jobs WHERE id = :id;
SELECT * FROM notifications('/tmp/ingest_regress_files/notify_2.out', :id);
SELECT EXISTS (SELECT 1 FROM jsonb_each_text(p) e WHERE e.value = :'id') AS has_job_id,
       EXISTS (SELECT 1 FROM jsonb_each_text(p) e WHERE e.value = 'failed') AS has_state
  FROM payloads('/tmp/ingest_regress_files/notify_2.out') p;

-- a queued job that is cancelled finishes too
BEGIN;
SELECT ingest.enqueue_data('notify_t', csv(E'id\n3\n')) AS id \gset
SELECT ingest.cancel(:id);
\o /tmp/ingest_regress_files/notify_3.out
COMMIT;
SELECT pg_sleep(0.3);
\o
SELECT * FROM notifications('/tmp/ingest_regress_files/notify_3.out', :id);

-- a rolled-back enqueue notifies nobody
BEGIN;
SELECT ingest.enqueue_data('notify_t', csv(E'id\n4\n')) AS id \gset
\o /tmp/ingest_regress_files/notify_4.out
ROLLBACK;
SELECT pg_sleep(0.5);
\o
SELECT count(*) FROM notifications('/tmp/ingest_regress_files/notify_4.out', 0);

UNLISTEN ingest;
