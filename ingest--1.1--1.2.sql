/* ingest--1.1--1.2.sql: walls between jobs, and tenants that share one role */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.2'" to load this file. \quit

/*
 * Tables
 */
ALTER TABLE ingest.upload_jobs
    ADD COLUMN worker_deaths int NOT NULL DEFAULT 0,
    ADD COLUMN tenant        text;

COMMENT ON COLUMN ingest.upload_jobs.worker_deaths IS
    'times the worker running this job died under it (crash, OOM killer, restart); at ingest.max_worker_deaths the job fails, and only an ingest_admin member''s ingest.retry starts the count again';
COMMENT ON COLUMN ingest.upload_jobs.tenant IS
    'the enqueuing session''s tenant, read where ingest.tenant_key says (NULL when it was not set); with the key set, a session sees and acts on the jobs of its own role and tenant only';
COMMENT ON COLUMN ingest.upload_jobs.settings IS
    'the enqueuing session''s settings that travel with the job (every one changed from the server''s defaults, but identity, transaction, timeout, logging and connection settings), re-applied by the worker; readable by ingest_admin only';

-- A cancel of a running job is a row here, not an update of the job's row: an update
-- would lock that row until the cancelling transaction ends, and a session that left it
-- open would hold up the worker's every write to its job. Written and read by ingest
-- only (no policy, no grant); the worker deletes the job's row when it records the outcome.
CREATE TABLE ingest.job_cancels (
    job_id       bigint PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ingest.job_cancels IS 'cancels of running jobs waiting to take effect (ingest.cancel)';
ALTER TABLE ingest.job_cancels ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest.job_cancels', '');
COMMENT ON COLUMN ingest.upload_jobs.cancel_requested IS
    'set by ingest.cancel on a running job in version 1.1; from 1.2 on a pending cancel is a row of ingest.job_cancels and this stays false';

-- Turns, quotas and the running count are per (owner, tenant); '' stands for no
-- tenant, which a session with ingest.tenant_key set can never have.
DROP INDEX ingest.upload_jobs_owner_started_idx;
CREATE INDEX upload_jobs_owner_started_idx
    ON ingest.upload_jobs (owner, (COALESCE(tenant, '')), started_at);
DROP INDEX ingest.upload_jobs_active_idx;
CREATE INDEX upload_jobs_active_idx ON ingest.upload_jobs (owner, (COALESCE(tenant, '')))
    WHERE state IN ('uploading', 'queued', 'running');

/*
 * Functions
 */
CREATE FUNCTION ingest.current_tenant()
RETURNS text
AS 'MODULE_PATHNAME', 'ingest_current_tenant'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION ingest.current_tenant() IS
    'this session''s tenant as ingest reads it (ingest.tenant_key), or NULL';

-- Policies ask it once per row: may this session see a job of this tenant?
CREATE FUNCTION ingest._tenant_visible(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_tenant_visible'
LANGUAGE C STABLE PARALLEL SAFE;

/*
 * Policies: a role sees its own jobs of its own tenant (ingest_admin: all)
 */
DROP POLICY own_jobs ON ingest.upload_jobs;
CREATE POLICY own_jobs ON ingest.upload_jobs FOR SELECT
    USING ((owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
            AND ingest._tenant_visible(tenant))
           OR pg_catalog.pg_has_role('ingest_admin', 'USAGE'));

/*
 * Views
 */

-- The scheduler's order: (role, tenant) pairs take turns, the one whose last
-- job started longest ago first; within a pair, higher priority, then older.
CREATE OR REPLACE VIEW ingest._queue AS
    WITH queued AS (
        SELECT j.id, j.owner, COALESCE(j.tenant, '') AS tenant, j.run_after,
               row_number() OVER (PARTITION BY j.owner, COALESCE(j.tenant, '')
                                  ORDER BY j.priority DESC, j.id) AS turn
        FROM ingest.upload_jobs j
        WHERE j.state = 'queued'),
    -- MATERIALIZED: once per (role, tenant), not once per queued job
    roles AS MATERIALIZED (
        SELECT o.owner, o.tenant,
               (SELECT max(r.started_at) FROM ingest.upload_jobs r
                WHERE r.owner = o.owner AND COALESCE(r.tenant, '') = o.tenant) AS last_start,
               (SELECT count(*) FROM ingest.upload_jobs r
                WHERE r.owner = o.owner AND COALESCE(r.tenant, '') = o.tenant
                  AND r.state = 'running') AS running,
               ingest._max_running(o.owner) AS max_running
        FROM (SELECT DISTINCT owner, tenant FROM queued) o)
    SELECT q.id, q.owner, q.run_after, r.running, r.max_running,
           row_number() OVER (ORDER BY q.turn, r.last_start NULLS FIRST, q.owner::oid, q.tenant, q.id) AS place
    FROM queued q JOIN roles r USING (owner, tenant);

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
           j.tenant
    FROM ingest.upload_jobs j
    WHERE j.state IN ('uploading', 'queued', 'running') OR j.finished_at > now() - interval '1 hour'
    GROUP BY j.owner, j.tenant;

COMMENT ON VIEW ingest.role_stats IS
    'ingest.stats per job owner and tenant with jobs unfinished or finished in the last hour, with the quotas (per owner and tenant; max_queued 0: no limit)';

CREATE OR REPLACE VIEW ingest.upload_chunks WITH (security_barrier) AS
    SELECT c.job_id, c.seq, pg_catalog.octet_length(c.data) AS bytes
    FROM ingest.job_chunks c JOIN ingest.upload_jobs j ON j.id = c.job_id
    WHERE (j.owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
           AND ingest._tenant_visible(j.tenant))
       OR pg_catalog.pg_has_role('ingest_admin', 'USAGE');

/*
 * Privileges: captured settings (JWT claims, API keys in custom settings) are
 * for ingest_admin only; every other column stays readable, through own_jobs
 * (xmin too: ingest.wait, running as the caller, asks whether its own
 * transaction queued the job).
 */
REVOKE SELECT ON ingest.upload_jobs FROM PUBLIC;
GRANT SELECT (id, owner, target, source, source_type, options, state, attempts, rows_inserted,
              rows_rejected, bytes_total, bytes_done, records_done, cancel_requested, last_error,
              worker_pid, created_at, started_at, finished_at, max_attempts, timeout, priority,
              run_after, upload_activity_at, worker_deaths, tenant, xmin)
    ON ingest.upload_jobs TO PUBLIC;
GRANT SELECT ON ingest.upload_jobs TO ingest_admin;
GRANT EXECUTE ON FUNCTION ingest.current_tenant() TO PUBLIC;

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
