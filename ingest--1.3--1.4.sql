/* ingest--1.3--1.4.sql: re-uploads, drop folders and operations (issue 13) */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.4'" to load this file. \quit

/*
 * on_conflict (issue 13): records that went in without error but wrote no row are
 * counted apart from inserted and rejected ones. The views over upload_jobs take the
 * new column (j.* is expanded when a view is created, so they are created again).
 */
ALTER TABLE ingest_private.upload_jobs ADD COLUMN rows_skipped bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE VIEW ingest.upload_jobs WITH (security_barrier) AS
    SELECT j.*
    FROM ingest_private.upload_jobs j
    WHERE (j.owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
           AND ingest._tenant_visible(j.tenant))
       OR pg_catalog.pg_has_role('ingest_admin', 'USAGE');

CREATE OR REPLACE VIEW ingest.role_stats AS
    SELECT j.owner::text AS role,
           count(*) FILTER (WHERE j.state = 'queued') AS jobs_queued,
           count(*) FILTER (WHERE j.state = 'uploading') AS jobs_uploading,
           count(*) FILTER (WHERE j.state = 'running') AS jobs_running,
           count(*) FILTER (WHERE j.state = 'succeeded' AND j.finished_at > now() - interval '1 hour') AS jobs_succeeded_last_hour,
           count(*) FILTER (WHERE j.state = 'failed' AND j.finished_at > now() - interval '1 hour') AS jobs_failed_last_hour,
           COALESCE(sum(j.rows_inserted) FILTER (WHERE j.state = 'succeeded' AND j.finished_at > now() - interval '1 hour'), 0)::bigint AS rows_loaded_last_hour,
           COALESCE(EXTRACT(epoch FROM now() - min(j.created_at) FILTER (WHERE j.state = 'queued')), 0)::float8 AS oldest_queued_seconds,
           ingest._role_setting(j.owner, 'ingest.max_queued_per_role') AS max_queued,
           ingest._max_running(j.owner) AS max_running,
           j.tenant,
           COALESCE(sum(j.rows_skipped) FILTER (WHERE j.state = 'succeeded' AND j.finished_at > now() - interval '1 hour'), 0)::bigint AS rows_skipped_last_hour
    FROM ingest_private.upload_jobs j
    -- every count is of unfinished jobs or of the last hour: read those through
    -- their indexes, not the whole history
    WHERE j.state IN ('uploading', 'queued', 'running') OR j.finished_at > now() - interval '1 hour'
    GROUP BY j.owner, j.tenant;


GRANT SELECT (rows_skipped) ON ingest.upload_jobs TO PUBLIC;

COMMENT ON COLUMN ingest_private.upload_jobs.records_done IS 'checkpoint: data records (inserted, rejected or skipped) already committed; a resumed job skips them';
COMMENT ON COLUMN ingest_private.upload_jobs.rows_skipped IS
    'records that went in without error but wrote no row: a conflict with on_conflict nothing (or update with no column to set), a BEFORE trigger that returned NULL';


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
           current_setting('ingest.max_workers')::int AS workers_allowed,
           COALESCE(sum(r.rows_skipped_last_hour), 0)::bigint AS rows_skipped_last_hour
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
 * Drop folders: ingest.enqueue_dir, and the files it enqueued (ingest_private.dir_files,
 * read by ingest_admin through the view ingest.dir_files). As in ingest--1.4.sql.
 */
CREATE TABLE ingest_private.dir_files (
    dir         text NOT NULL,
    name        text NOT NULL,
    size        bigint NOT NULL,
    mtime       timestamptz NOT NULL,
    job_id      bigint NOT NULL,
    owner       regrole NOT NULL,
    tenant      text,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dir, name, size, mtime)
);
ALTER TABLE ingest_private.dir_files
    ALTER COLUMN dir SET STATISTICS 0, ALTER COLUMN name SET STATISTICS 0,
    ALTER COLUMN tenant SET STATISTICS 0;
ALTER TABLE ingest_private.dir_files ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.dir_files', '');
-- a job's reader looks up the identity of the file enqueue_dir enqueued it for
CREATE INDEX dir_files_job_idx ON ingest_private.dir_files (job_id);

CREATE FUNCTION ingest.enqueue_dir(target regclass, dir text, pattern text DEFAULT '*.csv',
                                   options jsonb DEFAULT '{}')
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_dir'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;

CREATE VIEW ingest.dir_files AS
    SELECT f.dir, f.name, f.size, f.mtime, f.job_id, f.owner, f.tenant, f.enqueued_at
    FROM ingest_private.dir_files f;

REVOKE ALL ON ingest_private.dir_files, ingest.dir_files FROM PUBLIC;
GRANT SELECT ON ingest.dir_files TO ingest_admin;
REVOKE ALL ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) TO PUBLIC;

COMMENT ON TABLE ingest_private.dir_files IS
    'the files ingest.enqueue_dir enqueued, one row per (dir, name, size, mtime), kept while the file lies in the directory (ingest.purge keeps them)';
COMMENT ON VIEW ingest.dir_files IS
    'the files ingest.enqueue_dir enqueued (directory, name, size, modification time) and their jobs; for ingest_admin';
COMMENT ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) IS
    'queue a load of each file of a directory on the server (under ingest.allowed_dirs) whose name matches pattern and that was not enqueued before (same name, size and modification time), one job each, in name order; returns the job ids';

/*
 * One file, several workers (issue 14): the parts of a job, and the scheduler's view
 * counting the workers that help a job with its parts as running jobs of its role.
 */
-- The parts of a job loaded by several workers (the option "parallel"): byte ranges of its
-- source cut at record boundaries (src/split.c), each with the physical line and the data
-- record it starts at. A part's rows commit with its counters here (its checkpoint, and
-- 'done' with its last rows), so a crash redoes only what no part committed. Workers only.
CREATE TABLE ingest_private.job_parts (
    job_id        bigint NOT NULL REFERENCES ingest_private.upload_jobs (id) ON DELETE CASCADE,
    part          int NOT NULL CHECK (part >= 0),
    start_offset  bigint NOT NULL,
    end_offset    bigint NOT NULL,
    first_line    bigint NOT NULL,
    first_record  bigint NOT NULL,
    state         text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    worker_pid    int,
    records_done  bigint NOT NULL DEFAULT 0,
    rows_inserted bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    rows_skipped  bigint NOT NULL DEFAULT 0,
    errors_stored bigint NOT NULL DEFAULT 0,
    bytes_done    bigint NOT NULL DEFAULT 0,
    last_error    text,
    sqlstate      text,
    PRIMARY KEY (job_id, part)
);
ALTER TABLE ingest_private.job_parts ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_parts', '');

CREATE OR REPLACE VIEW ingest_private._queue AS
    WITH queued AS (
        SELECT j.id, j.owner, COALESCE(j.tenant, '') AS tenant, j.run_after,
               row_number() OVER (PARTITION BY j.owner, COALESCE(j.tenant, '')
                                  ORDER BY j.priority DESC, j.id) AS turn
        FROM ingest_private.upload_jobs j
        WHERE j.state = 'queued'),
    -- MATERIALIZED: once per (role, tenant) and once per role, not once per queued job
    tenants AS MATERIALIZED (
        SELECT o.owner, o.tenant,
               (SELECT max(r.started_at) FROM ingest_private.upload_jobs r
                WHERE r.owner = o.owner AND COALESCE(r.tenant, '') = o.tenant) AS last_start,
               (SELECT count(*) FROM ingest_private.upload_jobs r
                WHERE r.owner = o.owner AND COALESCE(r.tenant, '') = o.tenant
                  AND r.state = 'running')
               -- and the workers that help a running job with its parts
               + (SELECT count(*) FROM ingest_private.job_parts p
                  JOIN ingest_private.upload_jobs r ON r.id = p.job_id
                  WHERE r.owner = o.owner AND COALESCE(r.tenant, '') = o.tenant
                    AND r.state = 'running' AND p.state = 'running'
                    AND p.worker_pid IS DISTINCT FROM r.worker_pid) AS running,
               ingest._max_running(o.owner) AS max_running
        FROM (SELECT DISTINCT owner, tenant FROM queued) o),
    roles AS MATERIALIZED (
        SELECT o.owner,
               (SELECT max(r.started_at) FROM ingest_private.upload_jobs r
                WHERE r.owner = o.owner) AS last_start
        FROM (SELECT DISTINCT owner FROM queued) o),
    ranked AS (
        SELECT q.id, q.owner, q.run_after, t.running, t.max_running,
               row_number() OVER (PARTITION BY q.owner
                                  ORDER BY q.turn, t.last_start NULLS FIRST, q.tenant, q.id) AS role_turn
        FROM queued q JOIN tenants t USING (owner, tenant))
    SELECT k.id, k.owner, k.run_after, k.running, k.max_running,
           row_number() OVER (ORDER BY k.role_turn, r.last_start NULLS FIRST, k.owner::oid, k.id) AS place
    FROM ranked k JOIN roles r USING (owner);

REVOKE ALL ON ingest_private.job_parts FROM PUBLIC;
COMMENT ON TABLE ingest_private.job_parts IS 'the parts of a job loaded by several workers (option parallel): byte ranges cut at record boundaries, with their first line and record, state and counters';

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
