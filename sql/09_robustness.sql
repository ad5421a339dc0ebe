-- 09_robustness: malformed input never crashes anything; each job ends with a state and a
-- reason; what goes wrong around a job (owner or target dropped) fails that job only.
CREATE TABLE rb (id int, t text);

-- an unterminated quote at the end of the input: that record is rejected, the rest loads
SELECT ingest.enqueue_data('rb', csv(E'id,t\n1,ok\n2,"never closed\n3,still inside\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number FROM errors(:id);
SELECT * FROM rb ORDER BY id;
TRUNCATE rb;

-- with strict_quotes, a stray quote inside an unquoted field, and text after a closing
-- quote: rejected, with the parser resynchronised at the next line (COPY's reading, the
-- default, is 17_copy_compat's)
SELECT ingest.enqueue_data('rb', csv(E'id,t\n1,ab"c\n2,"x"y\n3,fine\n'), '{"max_errors": 5, "strict_quotes": true}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number FROM errors(:id);
SELECT * FROM rb ORDER BY id;
TRUNCATE rb;

-- blank lines: counted as lines (the bad record is on line 6), no rows of their own
SELECT ingest.enqueue_data('rb', csv(E'id,t\n1,a\n\n2,b\n\nx,c\n3,d\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number, sqlstate FROM errors(:id);
SELECT * FROM rb ORDER BY id;
TRUNCATE rb;

-- bytes that are not valid UTF-8, and a NUL byte: those records are rejected
SELECT ingest.enqueue_data('rb',
       csv(E'id,t\n1,good\n') || '\x322c80ff0a'::bytea || csv(E'3,good\n') || '\x342c610062'::bytea || csv(E'\n5,last\n'),
       '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number, sqlstate FROM errors(:id);
SELECT * FROM rb ORDER BY id;
TRUNCATE rb;

-- binary garbage: the job fails with a reason, and nothing is inserted (without a header:
-- a header is read at enqueue, which would refuse this at once)
SELECT ingest.enqueue_data('rb', decode(repeat('00ff22fe0d0a2c5c', 4096), 'hex'),
                           '{"header": false}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, last_error IS NOT NULL AS has_reason FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM rb;
-- an empty input
SELECT ingest.enqueue_data('rb', ''::bytea) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
-- a big field (2 MB) loads whole
SELECT ingest.enqueue_data('rb', csv('id,t' || E'\n' || '1,"' || replace(repeat('xy"', 699050), '"', '""') || 'z"' || E'\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT id, length(t), md5(t) = md5(repeat('xy"', 699050) || 'z') AS same FROM rb;
TRUNCATE rb;
-- a header with fewer or more names than fields
SELECT ingest.enqueue_data('rb', csv(E'id\n1,extra\n'), '{"max_errors": 5}') AS id \gset
SELECT ingest.wait(:id);
SELECT state, rows_inserted, rows_rejected FROM ingest.upload_jobs WHERE id = :id;
SELECT line_number FROM errors(:id);
TRUNCATE rb;

-- the target dropped between enqueue and run: that job fails
CREATE TABLE doomed (id int);
BEGIN;
SELECT ingest.enqueue_data('doomed', csv(E'id\n1\n')) AS id \gset
DROP TABLE doomed;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;

-- the owner dropped between enqueue and run: that job fails, nothing is inserted
CREATE ROLE regress_gone NOLOGIN;
GRANT INSERT ON rb TO regress_gone;
BEGIN;
SET LOCAL ROLE regress_gone;
SELECT ingest.enqueue_data('rb', csv(E'id,t\n1,orphan\n')) AS id \gset
RESET ROLE;
REVOKE INSERT ON rb FROM regress_gone;
DROP ROLE regress_gone;
COMMIT;
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM rb;

-- a statement_timeout in the enqueuing session is not the load's: a 300,000-row file
-- takes far longer than 100 ms and still loads
COPY (SELECT i AS id, 'x' AS t FROM generate_series(1, 300000) i)
    TO '/tmp/ingest_regress_files/many.csv' WITH (FORMAT csv, HEADER);
SET statement_timeout = '100ms';
SELECT ingest.enqueue_file('rb', '/tmp/ingest_regress_files/many.csv') AS id \gset
RESET statement_timeout;
SELECT ingest.wait(:id);
SELECT state, rows_inserted FROM ingest.upload_jobs WHERE id = :id;
SELECT count(*) FROM rb;
TRUNCATE rb;

-- after all that the workers still work
SELECT ingest.enqueue_data('rb', csv(E'id,t\n1,still fine\n')) AS id \gset
SELECT ingest.wait(:id);
SELECT * FROM rb;
-- every job of the suites has finished, none is left queued or running, every finished
-- job has its finish time, and every failed one says why
SELECT count(*) FILTER (WHERE state IN ('queued', 'running')) AS unfinished,
       count(*) FILTER (WHERE finished_at IS NULL) AS no_finish_time,
       count(*) FILTER (WHERE state = 'failed' AND last_error IS NULL) AS failed_without_reason,
       count(*) > 50 AS many_jobs
  FROM ingest.upload_jobs;
