-- 15_walls: what one role can make ingest keep or hold is bounded.
--   1. uploads: an empty chunk is refused; chunk numbers stop at
--      ingest.max_chunks_per_upload; a chunk sent again writes nothing (the job row keeps
--      its version), so resending neither grows the tables nor keeps an upload alive;
--   2. messages from user code (a trigger raising 1 MB) are cut to 2 kB in job_errors and
--      in last_error;
--   3. ingest.retry of a job whose worker died ingest.max_worker_deaths times is for
--      ingest_admin only (the deaths themselves: TAP test 019);
--   4. job_errors keeps at most ingest.max_error_rows rejected records per job;
--   5. a source type the library does not know fails the job.
CREATE ROLE regress_walls NOLOGIN;
CREATE ROLE regress_walls_admin NOLOGIN IN ROLE ingest_admin;
CREATE TABLE walls (n int);
GRANT SELECT, INSERT ON walls TO regress_walls;
CREATE FUNCTION walls_loud() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.n < 0 THEN
        RAISE EXCEPTION '%', repeat('x', 1024 * 1024) USING DETAIL = repeat('d', 1024 * 1024);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER walls_loud BEFORE INSERT ON walls FOR EACH ROW EXECUTE FUNCTION walls_loud();

-- 1. uploads (try_verbose: 13_uploads)
SET ROLE regress_walls;
SELECT ingest.begin_upload('walls') AS id \gset
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 0, %L::bytea)', :id, ''));
SELECT ingest.upload_chunk(:id, 0, convert_to(E'n\n1\n', 'UTF8'));
RESET ROLE;
SELECT xmin AS row_version, upload_activity_at AS active_at FROM ingest_private.upload_jobs WHERE id = :id \gset
-- the same chunk again: no new version of the job row, no new activity
SET ROLE regress_walls;
SELECT ingest.upload_chunk(:id, 0, convert_to(E'n\n1\n', 'UTF8'));
RESET ROLE;
SELECT xmin = :'row_version' AS same_version, upload_activity_at = :'active_at' AS same_activity
  FROM ingest_private.upload_jobs WHERE id = :id;
SET ingest.max_chunks_per_upload = 3;
SET ROLE regress_walls;
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 3, %L::bytea)', :id, '2'));
SELECT try_verbose(format('SELECT ingest.upload_chunk(%s, 2147483647, %L::bytea)', :id, '2'));
SELECT ingest.upload_chunk(:id, 2, convert_to(E'3\n', 'UTF8'));
SELECT ingest.upload_chunk(:id, 1, convert_to(E'2\n', 'UTF8'));
SELECT count(*) AS chunks, sum(bytes) AS bytes FROM ingest.upload_chunks WHERE job_id = :id;
SELECT ingest.finish_upload(:id) = :id AS finished;
RESET ROLE;
RESET ingest.max_chunks_per_upload;
SELECT ingest.wait(:id);
SELECT string_agg(n::text, ',' ORDER BY n) FROM walls;

-- 2. a trigger raising a megabyte: kept cut to INGEST_MESSAGE_MAX bytes
SET ROLE regress_walls;
SELECT ingest.enqueue_data('walls', convert_to(E'n\n-1\n4\n-2\n', 'UTF8'), '{"max_errors": 5}') AS loud \gset
SELECT ingest.enqueue_data('walls', convert_to(E'n\n-3\n', 'UTF8')) AS louder \gset
RESET ROLE;
SELECT ingest.wait(:loud), ingest.wait(:louder);
SELECT job_id = :loud AS loud, line_number, octet_length(message) AS message_bytes,
       left(message, 12) AS starts, right(message, 8) AS ends
  FROM ingest.job_errors WHERE job_id IN (:loud, :louder) ORDER BY job_id, line_number;
SELECT state, rows_inserted, rows_rejected, octet_length(last_error) <= 2048 AS last_error_cut,
       left(last_error, 30) AS starts
  FROM ingest.upload_jobs WHERE id IN (:loud, :louder) ORDER BY id;

-- 3. retry after worker deaths (set by hand here: the deaths are TAP test 019's)
UPDATE ingest.upload_jobs SET worker_deaths = 3 WHERE id = :louder;
SET ROLE regress_walls;
SELECT try_verbose(format('SELECT ingest.retry(%s)', :louder));
SET ROLE regress_walls_admin;
SELECT ingest.retry(:louder);
RESET ROLE;
SELECT state IN ('queued', 'running') AS back_in_queue, worker_deaths FROM ingest.upload_jobs WHERE id = :louder;
SELECT ingest.wait(:louder);

-- 4. rejected records kept per job: ingest.max_error_rows (the workers' value), the rest
--    counted in rows_rejected only
ALTER SYSTEM SET ingest.max_error_rows = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE regress_walls;
SELECT ingest.enqueue_data('walls', convert_to(E'n\n-1\n-2\n7\n-3\n-4\n-5\n', 'UTF8'), '{"max_errors": 100}') AS kept \gset
SELECT ingest.enqueue_data('walls', convert_to(E'n\n-1\n-2\n-3\n-4\n-5\n', 'UTF8'), '{"max_errors": 4}') AS over \gset
RESET ROLE;
SELECT ingest.wait(:kept), ingest.wait(:over);
SELECT id = :kept AS kept, state, rows_inserted, rows_rejected,
       (SELECT count(*) FROM ingest.job_errors e WHERE e.job_id = j.id) AS error_rows
  FROM ingest.upload_jobs j WHERE id IN (:kept, :over) ORDER BY id;
SELECT line_number FROM ingest.job_errors WHERE job_id = :kept ORDER BY line_number;
ALTER SYSTEM RESET ingest.max_error_rows;
SELECT pg_reload_conf();

-- 5. a job row with a source type this library does not know (one written by another
--    version) fails the job; it is never read as a file
ALTER TABLE ingest_private.upload_jobs DROP CONSTRAINT upload_jobs_source_type_check;
BEGIN;
SELECT ingest.enqueue_data('walls', convert_to(E'n\n8\n', 'UTF8')) AS odd \gset
UPDATE ingest_private.upload_jobs SET source_type = 'ftp', source = '/etc/passwd' WHERE id = :odd;
COMMIT;
SELECT ingest.wait(:odd);
SELECT state, rows_inserted, regexp_replace(last_error, '[0-9]+', 'N') AS last_error FROM ingest.upload_jobs WHERE id = :odd;
DELETE FROM ingest_private.upload_jobs WHERE id = :odd;
ALTER TABLE ingest_private.upload_jobs ADD CONSTRAINT upload_jobs_source_type_check
    CHECK (source_type IN ('file', 'data', 'chunks', 'lo'));

DROP TABLE walls;
DROP FUNCTION walls_loud();
DROP ROLE regress_walls, regress_walls_admin;
