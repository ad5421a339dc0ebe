/* ingest--1.1--1.2.sql: walls between jobs, and tenants that share one role */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.2'" to load this file. \quit

/*
 * Schemas
 *
 * The job tables move to a schema no role but the extension's owner may use;
 * users read them through views of the same names in schema ingest. A role
 * that can name a table can queue a lock request on it (CREATE RULE, CREATE
 * TRIGGER and COMMENT ON lock before they check ownership), and every other
 * session's request then waits behind it: enqueues and claims must never
 * touch a table a user can name.
 */
CREATE SCHEMA ingest_private;
COMMENT ON SCHEMA ingest_private IS 'ingest''s job tables, written and read by its C code only; users read ingest.upload_jobs and ingest.job_errors';

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

ALTER TABLE ingest.upload_jobs SET SCHEMA ingest_private;
ALTER TABLE ingest.job_errors SET SCHEMA ingest_private;
ALTER TABLE ingest.job_data SET SCHEMA ingest_private;
ALTER TABLE ingest.job_chunks SET SCHEMA ingest_private;
ALTER VIEW ingest._queue SET SCHEMA ingest_private;

-- A cancel of a running job is a row here, not an update of the job's row: an update
-- would lock that row until the cancelling transaction ends, and a session that left it
-- open would hold up the worker's every write to its job. Written and read by ingest
-- only (no policy, no grant); the worker deletes the job's row when it records the outcome.
CREATE TABLE ingest_private.job_cancels (
    job_id       bigint PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ingest_private.job_cancels IS 'cancels of running jobs waiting to take effect (ingest.cancel)';
ALTER TABLE ingest_private.job_cancels ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_cancels', '');
COMMENT ON COLUMN ingest_private.upload_jobs.cancel_requested IS
    'set by ingest.cancel on a running job in version 1.1; from 1.2 on a pending cancel is a row of ingest_private.job_cancels and this stays false';

-- Turns, quotas and the running count are per (owner, tenant); '' stands for no
-- tenant, which a session with ingest.tenant_key set can never have.
CREATE INDEX upload_jobs_tenant_started_idx
    ON ingest_private.upload_jobs (owner, (COALESCE(tenant, '')), started_at);
DROP INDEX ingest_private.upload_jobs_active_idx;
CREATE INDEX upload_jobs_active_idx ON ingest_private.upload_jobs (owner, (COALESCE(tenant, '')))
    WHERE state IN ('uploading', 'queued', 'running');

-- What a role may not read of others' jobs must not be read off the planner's
-- estimates either: under row-level security and security barriers, leakproof
-- comparisons (text, oid) still use column statistics, so EXPLAIN would answer
-- "how many rows have raw_line between 'a' and 'b'". No statistics are kept of
-- what one job's rows say.
ALTER TABLE ingest_private.upload_jobs
    ALTER COLUMN tenant SET STATISTICS 0, ALTER COLUMN source SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0, ALTER COLUMN options SET STATISTICS 0,
    ALTER COLUMN settings SET STATISTICS 0, ALTER COLUMN target SET STATISTICS 0;
ALTER TABLE ingest_private.job_errors
    ALTER COLUMN message SET STATISTICS 0, ALTER COLUMN raw_line SET STATISTICS 0,
    ALTER COLUMN sqlstate SET STATISTICS 0;
ALTER TABLE ingest_private.job_data ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE ingest_private.job_chunks ALTER COLUMN data SET STATISTICS 0;
ALTER INDEX ingest_private.upload_jobs_tenant_started_idx ALTER COLUMN 2 SET STATISTICS 0;
ALTER INDEX ingest_private.upload_jobs_active_idx ALTER COLUMN 2 SET STATISTICS 0;
DELETE FROM pg_catalog.pg_statistic s
 USING pg_catalog.pg_attribute a, pg_catalog.pg_class c
 WHERE a.attrelid = s.starelid AND a.attnum = s.staattnum AND a.attstattarget = 0
   AND c.oid = s.starelid AND c.relnamespace = 'ingest_private'::regnamespace;

/*
 * Functions
 */
CREATE FUNCTION ingest.current_tenant()
RETURNS text
AS 'MODULE_PATHNAME', 'ingest_current_tenant'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION ingest.current_tenant() IS
    'this session''s tenant as ingest reads it (ingest.tenant_key), or NULL';

-- May this session see this job (its role and tenant's, or any for ingest_admin)? Asked
-- per row by the views over the rows a job has (job_errors, upload_chunks).
CREATE FUNCTION ingest._job_visible(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_job_visible'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;

-- Policies ask it once per row: may this session see a job of this tenant?
CREATE FUNCTION ingest._tenant_visible(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_tenant_visible'
LANGUAGE C STABLE PARALLEL SAFE;

-- Did the calling transaction queue this job (it cannot start before that commits)?
CREATE FUNCTION ingest._enqueued_here(job_id bigint)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT ingest._xid_is_current(j.xmin) FROM ingest_private.upload_jobs j
                     WHERE j.id = _enqueued_here.job_id), false)
$$;

CREATE OR REPLACE FUNCTION ingest.wait(job_id bigint, timeout interval DEFAULT '10 min')
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_state text;
    deadline  timestamptz := clock_timestamp() + timeout;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ingest.wait must be called in a READ COMMITTED transaction'
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'A REPEATABLE READ or SERIALIZABLE snapshot never sees the job finish.';
    END IF;
    LOOP
        SELECT j.state INTO job_state FROM ingest.upload_jobs j WHERE j.id = wait.job_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ingest job % does not exist', wait.job_id
                USING ERRCODE = 'undefined_object',
                      HINT = 'A role sees only its own jobs; a job is visible only once the transaction that enqueued it has committed.';
        END IF;
        IF job_state = 'uploading' THEN
            RAISE EXCEPTION 'ingest job % is still uploading', wait.job_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Send the remaining chunks and call ingest.finish_upload first.';
        END IF;
        IF job_state = 'queued' AND ingest._enqueued_here(wait.job_id) THEN
            RAISE EXCEPTION 'ingest job % was enqueued in this transaction and cannot start before it commits', wait.job_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Commit, then call ingest.wait in a new transaction (in psql: a separate statement).';
        END IF;
        IF job_state IN ('succeeded', 'failed', 'cancelled') OR clock_timestamp() >= deadline THEN
            RETURN job_state;
        END IF;
        PERFORM pg_catalog.pg_sleep(LEAST(0.05, GREATEST(EXTRACT(epoch FROM deadline - clock_timestamp()), 0)));
    END LOOP;
END
$$;

/*
 * Policies: a role sees its own jobs of its own tenant (ingest_admin: all).
 * Users read the tables through the views below, which filter the same way;
 * the policies stay as a second wall.
 */
DROP POLICY own_jobs ON ingest_private.upload_jobs;
CREATE POLICY own_jobs ON ingest_private.upload_jobs FOR SELECT
    USING ((owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
            AND ingest._tenant_visible(tenant))
           OR pg_catalog.pg_has_role('ingest_admin', 'USAGE'));

/*
 * Views
 */

-- What users read of the job tables: their own jobs (with ingest.tenant_key set, their
-- own tenant's), every job for ingest_admin. security_barrier: a caller's function in a
-- WHERE clause never sees a row before this filter.
CREATE VIEW ingest.upload_jobs WITH (security_barrier) AS
    SELECT j.*
    FROM ingest_private.upload_jobs j
    WHERE (j.owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
           AND ingest._tenant_visible(j.tenant))
       OR pg_catalog.pg_has_role('ingest_admin', 'USAGE');

COMMENT ON VIEW ingest.upload_jobs IS 'one row per load job; each role (with ingest.tenant_key set, each tenant) sees only its own jobs';

-- The job's visibility is checked in the scan of the rows themselves (a join would let the
-- planner evaluate a caller's leakproof condition, raw_line = '...', on every job's rows
-- first, and EXPLAIN ANALYZE count what it found).
CREATE VIEW ingest.job_errors WITH (security_barrier) AS
    SELECT e.*
    FROM ingest_private.job_errors e
    WHERE ingest._job_visible(e.job_id);

COMMENT ON VIEW ingest.job_errors IS 'one row per rejected record (at most ingest.max_error_rows per job), of the jobs the caller sees';


-- The scheduler's order: roles take turns, the role whose last job started longest ago
-- first; within a role its tenants take turns the same way (with ingest.tenant_key set),
-- and within a tenant higher priority, then older jobs first. A role's many tenants share
-- its turn: they never push other roles back.
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
                  AND r.state = 'running') AS running,
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
    FROM ingest_private.upload_jobs j
    WHERE j.state IN ('uploading', 'queued', 'running') OR j.finished_at > now() - interval '1 hour'
    GROUP BY j.owner, j.tenant;

COMMENT ON VIEW ingest.role_stats IS
    'ingest.stats per job owner and tenant with jobs unfinished or finished in the last hour, with the quotas (per owner and tenant; max_queued 0: no limit)';

CREATE OR REPLACE VIEW ingest.upload_chunks WITH (security_barrier) AS
    SELECT c.job_id, c.seq, pg_catalog.octet_length(c.data) AS bytes
    FROM ingest_private.job_chunks c
    WHERE ingest._job_visible(c.job_id);

/*
 * Privileges: captured settings (JWT claims, API keys in custom settings) are
 * for ingest_admin only; every other column of ingest.upload_jobs stays
 * readable. The tables themselves, in ingest_private, are the extension
 * owner's alone.
 */
GRANT SELECT (id, owner, target, source, source_type, options, state, attempts, rows_inserted,
              rows_rejected, bytes_total, bytes_done, records_done, cancel_requested, last_error,
              worker_pid, created_at, started_at, finished_at, max_attempts, timeout, priority,
              run_after, upload_activity_at, worker_deaths, tenant)
    ON ingest.upload_jobs TO PUBLIC;
GRANT SELECT ON ingest.upload_jobs TO ingest_admin;
GRANT SELECT ON ingest.job_errors TO PUBLIC;
REVOKE ALL ON ingest_private.upload_jobs, ingest_private.job_errors FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest.current_tenant() TO PUBLIC;

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
