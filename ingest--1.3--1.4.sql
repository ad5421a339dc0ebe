/* ingest--1.3--1.4.sql: re-uploads, drop folders and operations (issue 13) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.4'" to load this file. \quit

/*
 * ingest.workers gains owner, target, bytes_total, progress and rows_per_second, at the
 * end. Its function's result type changes, so the function and the views over it
 * (workers, stats) are dropped and created again, with their privileges and comments.
 */
DROP VIEW ingest.stats;
DROP VIEW ingest.workers;
DROP FUNCTION ingest._worker_status();

CREATE FUNCTION ingest._worker_status(
    OUT pid int, OUT datname name, OUT job_id bigint, OUT rows bigint,
    OUT bytes bigint, OUT started_at timestamptz, OUT owner regrole, OUT target regclass,
    OUT bytes_total bigint, OUT progress float8, OUT rows_per_second float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ingest_worker_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW ingest.workers AS
    SELECT pid, datname, job_id, rows, bytes, started_at,
           owner, target, bytes_total, progress, rows_per_second
    FROM ingest._worker_status();

CREATE VIEW ingest.stats AS
    SELECT COALESCE(sum(r.jobs_queued), 0)::bigint AS jobs_queued,
           COALESCE(sum(r.jobs_uploading), 0)::bigint AS jobs_uploading,
           COALESCE(sum(r.jobs_running), 0)::bigint AS jobs_running,
           COALESCE(sum(r.jobs_succeeded_last_hour), 0)::bigint AS jobs_succeeded_last_hour,
           COALESCE(sum(r.jobs_failed_last_hour), 0)::bigint AS jobs_failed_last_hour,
           COALESCE(sum(r.rows_loaded_last_hour), 0)::bigint AS rows_loaded_last_hour,
           COALESCE(max(r.oldest_queued_seconds), 0)::float8 AS oldest_queued_seconds,
           (SELECT count(*) FROM ingest._worker_status() w WHERE w.job_id IS NOT NULL) AS workers_busy,
           current_setting('ingest.max_workers')::int AS workers_allowed
    FROM ingest.role_stats r;

REVOKE ALL ON FUNCTION ingest._worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest._worker_status() TO PUBLIC;
GRANT SELECT ON ingest.workers TO PUBLIC;
GRANT SELECT ON ingest.stats TO ingest_admin;

COMMENT ON VIEW ingest.workers IS
    'one row per running ingest worker, read live from shared memory (progress after every batch); job details only for jobs the caller can see';
COMMENT ON COLUMN ingest.workers.rows IS 'rows inserted so far, in the open transaction too (a resumed job counts its earlier attempts'' rows)';
COMMENT ON COLUMN ingest.workers.bytes IS 'source bytes read so far, as bytes_total counts them; advances after every batch';
COMMENT ON COLUMN ingest.workers.target IS 'the job''s table; NULL for a job of another database (its oid names a table of that database''s catalog)';
COMMENT ON COLUMN ingest.workers.progress IS 'bytes / bytes_total, from 0 to 1; NULL when the source''s size is unknown or 0';
COMMENT ON COLUMN ingest.workers.rows_per_second IS 'rows this attempt inserted per second since started_at';
COMMENT ON VIEW ingest.stats IS
    'one row: jobs by state, work of the last hour, age of the oldest queued job, workers busy (all databases) and allowed';

/*
 * ingest.discard: a failed or cancelled job's stored bytes go (ingest.retry then
 * refuses the job); for its owner in its tenant, or ingest_admin.
 */
CREATE FUNCTION ingest.discard(job_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_discard'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION ingest.discard(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest.discard(bigint) TO PUBLIC;

COMMENT ON FUNCTION ingest.discard(bigint) IS
    'drop the stored bytes of a failed or cancelled job (ingest.retry then refuses it); returns the bytes dropped';

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
