/* ingest--1.5.sql: every object of the ingest extension, version 1.5, in one file
 *
 * CREATE EXTENSION ingest runs this file alone. A database created at an older version
 * reaches the same objects through the upgrade scripts (ingest--1.0.sql, then
 * ingest--1.0--1.1.sql, ingest--1.1--1.2.sql, ingest--1.2--1.3.sql,
 * ingest--1.3--1.4.sql, ingest--1.4--1.5.sql);
 * test/t/008_extension_lifecycle.pl checks that both give the same catalog. A change
 * of schema goes into a new upgrade script and into this file (renamed to the new
 * version).
 *
 * Sections: schemas, roles and schema privileges, tables, indexes, functions,
 * row-level security, views, privileges of relations, privileges of functions,
 * comments.
 */

\echo Use "CREATE EXTENSION ingest" to load this file. \quit

/*
 * Schemas
 *
 * Schema ingest (created by CREATE EXTENSION, from ingest.control) holds what users
 * call and read: the functions and the views. The job tables are in ingest_private,
 * which no role but the extension's owner may use. A role that can name a table can
 * queue a lock request on it (CREATE RULE, CREATE TRIGGER and COMMENT ON lock before
 * they check ownership), and every other session's request then waits behind it:
 * enqueues and claims must never touch a table a user can name.
 */
CREATE SCHEMA ingest_private;

/*
 * Roles and privileges of schemas
 *
 * Members of ingest_admin see and cancel every job, not only their own, and read the
 * captured settings and the statistics. Roles are cluster-wide, so the role outlives
 * DROP EXTENSION and may already exist when the extension is created in a second
 * database.
 */
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ingest_admin') THEN
        CREATE ROLE ingest_admin NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA ingest TO PUBLIC;

/*
 * Tables
 *
 * Written and read by the extension's C code only, as the extension's owner. Jobs,
 * their errors, their bytes and pending cancels belong in a dump of the database
 * (extension tables are otherwise left out of pg_dump). Row-level security is enabled
 * on each: the policies below (and, for the tables without a policy, no row at all)
 * are a second wall behind the schema's.
 *
 * What a role may not read of others' jobs must not be read off the planner's
 * estimates either: under row-level security and security barriers, leakproof
 * comparisons (text, oid) still use column statistics, so EXPLAIN would answer "how
 * many rows have raw_line between 'a' and 'b'". No statistics are kept of what one
 * job's rows say (SET STATISTICS 0).
 */
CREATE TABLE ingest_private.upload_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner           regrole NOT NULL,
    target          regclass NOT NULL,
    source          text NOT NULL,
    source_type     text NOT NULL CHECK (source_type IN ('file', 'data', 'chunks', 'lo')),
    options         jsonb NOT NULL DEFAULT '{}',
    settings        jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('uploading', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts        int NOT NULL DEFAULT 0,
    rows_inserted   bigint NOT NULL DEFAULT 0,
    rows_rejected   bigint NOT NULL DEFAULT 0,
    bytes_total     bigint,
    bytes_done      bigint NOT NULL DEFAULT 0,
    records_done    bigint NOT NULL DEFAULT 0,
    -- unused from 1.2 on (a cancel is a row of job_cancels); kept for old rows
    cancel_requested boolean NOT NULL DEFAULT false,
    last_error      text,
    worker_pid      int,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    max_attempts    int NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    timeout         interval,
    priority        int NOT NULL DEFAULT 0,
    run_after       timestamptz,
    upload_activity_at timestamptz,
    worker_deaths   int NOT NULL DEFAULT 0,
    tenant          text,
    rows_skipped    bigint NOT NULL DEFAULT 0
);
ALTER TABLE ingest_private.upload_jobs
    ALTER COLUMN tenant SET STATISTICS 0, ALTER COLUMN source SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0, ALTER COLUMN options SET STATISTICS 0,
    ALTER COLUMN settings SET STATISTICS 0, ALTER COLUMN target SET STATISTICS 0;
ALTER TABLE ingest_private.upload_jobs ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.upload_jobs', '');

CREATE TABLE ingest_private.job_errors (
    job_id      bigint NOT NULL REFERENCES ingest_private.upload_jobs (id) ON DELETE CASCADE,
    line_number bigint,
    sqlstate    text,
    message     text NOT NULL,
    raw_line    text,
    record_number bigint
);
ALTER TABLE ingest_private.job_errors
    ALTER COLUMN message SET STATISTICS 0, ALTER COLUMN raw_line SET STATISTICS 0,
    ALTER COLUMN sqlstate SET STATISTICS 0;
ALTER TABLE ingest_private.job_errors ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_errors', '');

-- data: EXTERNAL, stored uncompressed out of line, so the worker can read any slice
-- without decompressing (or holding in memory) everything before it.
CREATE TABLE ingest_private.job_data (
    job_id  bigint PRIMARY KEY REFERENCES ingest_private.upload_jobs (id) ON DELETE CASCADE,
    data    bytea NOT NULL
);
ALTER TABLE ingest_private.job_data ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE ingest_private.job_data ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE ingest_private.job_data ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_data', '');

-- data: uncompressed out of line, as job_data: the worker reads each chunk slice by slice
CREATE TABLE ingest_private.job_chunks (
    job_id  bigint NOT NULL REFERENCES ingest_private.upload_jobs (id) ON DELETE CASCADE,
    seq     int NOT NULL CHECK (seq >= 0),
    data    bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);
ALTER TABLE ingest_private.job_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE ingest_private.job_chunks ALTER COLUMN data SET STATISTICS 0;
ALTER TABLE ingest_private.job_chunks ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_chunks', '');

-- A cancel of a running job is a row here, not an update of the job's row: an update
-- would lock that row until the cancelling transaction ends, and a session that left it
-- open would hold up the worker's every write to its job. The worker deletes the job's
-- row when it records the outcome.
CREATE TABLE ingest_private.job_cancels (
    job_id       bigint PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ingest_private.job_cancels ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_cancels', '');

-- The files ingest.enqueue_dir enqueued, one row per identity (directory, name, size,
-- modification time), whoever enqueued it: a later, retried or concurrent call never
-- enqueues the same file again. No foreign key to the job: ingest.purge keeps the row, so a
-- purged job's file still lying in the folder is not loaded again; the row goes when
-- enqueue_dir finds no file of that identity in the directory any more.
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

-- The parts of a job loaded by several workers (the option "parallel"): byte ranges of its
-- source cut at record boundaries (src/split.c), each with the physical line and the data
-- record it starts at. A part's rows commit with its counters here (its checkpoint, and
-- 'done' with its last rows), so a crash redoes only what no part committed. A job without
-- commit_every is all-or-nothing: each part's transaction is prepared (two-phase commit,
-- 'prepared' with its counters), and all are committed together once every part is
-- prepared ('done' is that decision) or rolled back together. Workers only.
CREATE TABLE ingest_private.job_parts (
    job_id        bigint NOT NULL REFERENCES ingest_private.upload_jobs (id) ON DELETE CASCADE,
    part          int NOT NULL CHECK (part >= 0),
    start_offset  bigint NOT NULL,
    end_offset    bigint NOT NULL,
    first_line    bigint NOT NULL,
    first_record  bigint NOT NULL,
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'prepared', 'done', 'failed', 'serial')),
    worker_pid    int,
    records_done  bigint NOT NULL DEFAULT 0,
    rows_inserted bigint NOT NULL DEFAULT 0,
    rows_rejected bigint NOT NULL DEFAULT 0,
    rows_skipped  bigint NOT NULL DEFAULT 0,
    errors_stored bigint NOT NULL DEFAULT 0,
    bytes_done    bigint NOT NULL DEFAULT 0,
    last_error    text,
    sqlstate      text,
    -- the global identifier of the part's prepared transaction (all-or-nothing jobs):
    -- random, as pg_prepared_xacts shows it to every role
    gid           text UNIQUE,
    PRIMARY KEY (job_id, part)
);
ALTER TABLE ingest_private.job_parts ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest_private.job_parts', '');

/*
 * Indexes
 */
-- Workers claim the oldest queued job; keep that look-up cheap however long the history is.
CREATE INDEX upload_jobs_queued_idx ON ingest_private.upload_jobs (id) WHERE state = 'queued';
CREATE INDEX upload_jobs_owner_idx ON ingest_private.upload_jobs (owner);
-- the scheduler asks when each role last started a job; stats and purge look at finished
-- jobs by age; abandoned uploads are found by their last chunk's time
CREATE INDEX upload_jobs_owner_started_idx ON ingest_private.upload_jobs (owner, started_at);
CREATE INDEX upload_jobs_finished_idx ON ingest_private.upload_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX upload_jobs_uploading_idx ON ingest_private.upload_jobs (upload_activity_at) WHERE state = 'uploading';
-- Turns, quotas and the running count are per (owner, tenant); '' stands for no tenant,
-- which a session with ingest.tenant_key set can never have. Quotas and the scheduler
-- count a role's unfinished jobs at every enqueue and claim: the cost must not grow with
-- the role's history of finished jobs.
CREATE INDEX upload_jobs_tenant_started_idx
    ON ingest_private.upload_jobs (owner, (COALESCE(tenant, '')), started_at);
CREATE INDEX upload_jobs_active_idx ON ingest_private.upload_jobs (owner, (COALESCE(tenant, '')))
    WHERE state IN ('uploading', 'queued', 'running');
-- no statistics of tenants (see Tables)
ALTER INDEX ingest_private.upload_jobs_tenant_started_idx ALTER COLUMN 2 SET STATISTICS 0;
ALTER INDEX ingest_private.upload_jobs_active_idx ALTER COLUMN 2 SET STATISTICS 0;

CREATE INDEX job_errors_job_idx ON ingest_private.job_errors (job_id, line_number);
-- a job's reader looks up the identity of the file enqueue_dir enqueued it for
CREATE INDEX dir_files_job_idx ON ingest_private.dir_files (job_id);

/*
 * Functions
 */

-- The API. Each checks what the calling role may do (privileges on the target, the
-- job's owner and tenant) itself.
CREATE FUNCTION ingest.enqueue_data(target regclass, data bytea, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_data'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.enqueue_file(target regclass, path text, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_file'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.enqueue_lo(target regclass, loid oid, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_lo'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.enqueue_dir(target regclass, dir text, pattern text DEFAULT '*.csv',
                                   options jsonb DEFAULT '{}')
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_dir'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;

CREATE FUNCTION ingest.begin_upload(target regclass, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_begin_upload'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.upload_chunk(job_id bigint, seq int, data bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_upload_chunk'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.finish_upload(job_id bigint, total_bytes bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_finish_upload'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.cancel(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_cancel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.retry(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_retry'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.discard(job_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_discard'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.queue_position(job_id bigint)
RETURNS int
AS 'MODULE_PATHNAME', 'ingest_queue_position'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;

CREATE FUNCTION ingest.purge(older_than interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_purge'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION ingest.current_tenant()
RETURNS text
AS 'MODULE_PATHNAME', 'ingest_current_tenant'
LANGUAGE C STABLE PARALLEL SAFE;

-- Was this transaction id assigned by the current transaction (or one of its subtransactions)?
CREATE FUNCTION ingest._xid_is_current(xid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_xid_is_current'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;

-- Did the calling transaction queue this job (it cannot start before that commits)?
-- SECURITY DEFINER: reads the job's xmin, which the view ingest.upload_jobs does not show.
CREATE FUNCTION ingest._enqueued_here(job_id bigint)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT ingest._xid_is_current(j.xmin) FROM ingest_private.upload_jobs j
                     WHERE j.id = _enqueued_here.job_id), false)
$$;

-- Runs as its caller: it reads the job through the view, which shows the caller's jobs only.
CREATE FUNCTION ingest.wait(job_id bigint, timeout interval DEFAULT '10 min')
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

-- The running workers, read from shared memory; job details only for jobs the caller
-- can see (ingest.workers, ingest.stats).
CREATE FUNCTION ingest._worker_status(
    OUT pid int, OUT datname name, OUT job_id bigint, OUT rows bigint,
    OUT bytes bigint, OUT started_at timestamptz, OUT owner regrole, OUT target regclass,
    OUT bytes_total bigint, OUT progress float8, OUT rows_per_second float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ingest_worker_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

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

/*
 * A role's value of an ingest setting: ALTER ROLE ... IN DATABASE ... SET,
 * then ALTER ROLE ... SET, then the value in effect (server, database).
 * Quotas are about the job's owner, who need not be the session's login role.
 */
CREATE FUNCTION ingest._role_setting(role oid, name text)
RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- pg_db_role_setting keeps the text as given: '2.0' is rounded as the
    -- server rounds it, and what cannot be read as a number falls back to the
    -- value in effect rather than stop every claim with a cast error
    SELECT COALESCE(
        (SELECT CASE WHEN r.v ~ '^\s*[-+]?[0-9]+(\.[0-9]*)?\s*$'
                     THEN LEAST(GREATEST(round(r.v::numeric), -2147483648), 2147483647)::int END
         FROM (SELECT substr(c, length(name) + 2) AS v
               FROM pg_db_role_setting s, unnest(s.setconfig) AS c
               WHERE s.setrole = role
                 AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
                 AND split_part(c, '=', 1) = name
               ORDER BY s.setdatabase DESC
               LIMIT 1) r),
        current_setting(name)::int)
$$;

-- Jobs a role may have running at once in this database.
CREATE FUNCTION ingest._max_running(role oid)
RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN v >= 1 THEN v
                ELSE GREATEST(current_setting('ingest.max_workers')::int / 2, 1) END
    FROM (SELECT ingest._role_setting(role, 'ingest.max_running_per_role') AS v) s
$$;

/*
 * Called only inside a worker's INSERT: _batch_rows returns the batch of
 * converted records the worker holds, _batch_mark records which of them the
 * executor is inserting (so an error can name its line). Elsewhere they raise
 * an error; they expose nothing.
 */
CREATE FUNCTION ingest._batch_rows()
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ingest_batch_rows_srf'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;

CREATE FUNCTION ingest._batch_mark(int)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_batch_mark_fn'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- An upgrade's commit wakes the workers: jobs queued while the extension waited for it
-- (a worker runs nothing at an older version than its library's) start then.
CREATE FUNCTION ingest._wake_workers()
RETURNS void
AS 'MODULE_PATHNAME', 'ingest_wake_workers'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

/*
 * Row-level security: a role sees its own jobs of its own tenant (ingest_admin: all).
 * Users read the tables through the views below, which filter the same way; the
 * policies stay as a second wall. job_data, job_chunks and job_cancels have none:
 * nobody but the extension's owner reads a row of them.
 */
CREATE POLICY own_jobs ON ingest_private.upload_jobs FOR SELECT
    USING ((owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
            AND ingest._tenant_visible(tenant))
           OR pg_catalog.pg_has_role('ingest_admin', 'USAGE'));

CREATE POLICY own_job_errors ON ingest_private.job_errors FOR SELECT
    USING (job_id IN (SELECT id FROM ingest_private.upload_jobs));

/*
 * Views
 *
 * A view reads its tables with its owner's rights, but calls its functions with the
 * rights of the role that selects from it. security_barrier: a caller's function in a
 * WHERE clause never sees a row before the view's own filter.
 */

-- What users read of the job tables: their own jobs (with ingest.tenant_key set, their
-- own tenant's), every job for ingest_admin.
CREATE VIEW ingest.upload_jobs WITH (security_barrier) AS
    SELECT j.*
    FROM ingest_private.upload_jobs j
    WHERE (j.owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
           AND ingest._tenant_visible(j.tenant))
       OR pg_catalog.pg_has_role('ingest_admin', 'USAGE');

-- The job's visibility is checked in the scan of the rows themselves (a join would let the
-- planner evaluate a caller's leakproof condition, raw_line = '...', on every job's rows
-- first, and EXPLAIN ANALYZE count what it found).
CREATE VIEW ingest.job_errors WITH (security_barrier) AS
    SELECT e.*
    FROM ingest_private.job_errors e
    WHERE ingest._job_visible(e.job_id);

-- What a client that lost its connection in the middle of an upload asks to learn which
-- chunks arrived. octet_length reads the size from the TOAST pointer, not the bytes.
CREATE VIEW ingest.upload_chunks WITH (security_barrier) AS
    SELECT c.job_id, c.seq, pg_catalog.octet_length(c.data) AS bytes
    FROM ingest_private.job_chunks c
    WHERE ingest._job_visible(c.job_id);

-- Columns are added at the end only (CREATE OR REPLACE VIEW cannot reorder them).
CREATE VIEW ingest.workers AS
    SELECT pid, datname, job_id, rows, bytes, started_at,
           owner, target, bytes_total, progress, rows_per_second
    FROM ingest._worker_status();

-- Which files of which directories enqueue_dir enqueued, and as whose job: for ingest_admin
-- only (file names can tell what a tenant loads).
CREATE VIEW ingest.dir_files AS
    SELECT f.dir, f.name, f.size, f.mtime, f.job_id, f.owner, f.tenant, f.enqueued_at
    FROM ingest_private.dir_files f;

-- The scheduler's order, the one place it is defined: roles take turns, the role whose
-- last job started longest ago first; within a role its tenants take turns the same way
-- (with ingest.tenant_key set), and within a tenant higher priority, then older jobs
-- first. A role's many tenants share its turn: they never push other roles back. Workers
-- claim the first eligible row (not waiting for a retry, its role and tenant under
-- ingest.max_running_per_role); ingest.queue_position reads the same order.
CREATE VIEW ingest_private._queue AS
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

CREATE VIEW ingest.role_stats AS
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

/*
 * Privileges of relations
 *
 * The tables and the scheduler's view are the extension owner's alone (REVOKE makes
 * that explicit). Every role reads the views of jobs, rejected rows, chunks and
 * workers, which show it its own; captured settings (JWT claims, API keys in custom
 * settings) and the statistics of every role are for ingest_admin only.
 */
REVOKE ALL ON ingest_private.upload_jobs, ingest_private.job_errors, ingest_private._queue FROM PUBLIC;
REVOKE ALL ON ingest_private.dir_files, ingest.dir_files FROM PUBLIC;
REVOKE ALL ON ingest_private.job_parts FROM PUBLIC;
GRANT SELECT (id, owner, target, source, source_type, options, state, attempts, rows_inserted,
              rows_rejected, bytes_total, bytes_done, records_done, cancel_requested, last_error,
              worker_pid, created_at, started_at, finished_at, max_attempts, timeout, priority,
              run_after, upload_activity_at, worker_deaths, tenant, rows_skipped)
    ON ingest.upload_jobs TO PUBLIC;
GRANT SELECT ON ingest.upload_jobs TO ingest_admin;
GRANT SELECT ON ingest.job_errors, ingest.upload_chunks, ingest.workers TO PUBLIC;
GRANT SELECT ON ingest.stats, ingest.role_stats TO ingest_admin;
GRANT SELECT ON ingest.dir_files TO ingest_admin;

/*
 * Privileges of functions
 *
 * A function is created executable by PUBLIC: each is first taken from PUBLIC, then
 * granted to whom calls it. A function called in a view runs with the privileges of
 * the role that selects from the view, so the views' internal functions are granted to
 * whoever may read those views.
 */
REVOKE ALL ON FUNCTION
    ingest.enqueue_data(regclass, bytea, jsonb),
    ingest.enqueue_file(regclass, text, jsonb),
    ingest.enqueue_lo(regclass, oid, jsonb),
    ingest.enqueue_dir(regclass, text, text, jsonb),
    ingest.begin_upload(regclass, jsonb),
    ingest.upload_chunk(bigint, int, bytea),
    ingest.finish_upload(bigint, bigint),
    ingest.cancel(bigint),
    ingest.retry(bigint),
    ingest.discard(bigint),
    ingest.wait(bigint, interval),
    ingest.queue_position(bigint),
    ingest.purge(interval),
    ingest.current_tenant(),
    ingest._worker_status(),
    ingest._job_visible(bigint),
    ingest._tenant_visible(text),
    ingest._enqueued_here(bigint),
    ingest._role_setting(oid, text),
    ingest._max_running(oid),
    ingest._xid_is_current(xid),
    ingest._batch_rows(),
    ingest._batch_mark(int),
    ingest._wake_workers()
  FROM PUBLIC;

-- The API, for every role.
GRANT EXECUTE ON FUNCTION
    ingest.enqueue_data(regclass, bytea, jsonb),
    ingest.enqueue_file(regclass, text, jsonb),
    ingest.enqueue_lo(regclass, oid, jsonb),
    ingest.enqueue_dir(regclass, text, text, jsonb),
    ingest.begin_upload(regclass, jsonb),
    ingest.upload_chunk(bigint, int, bytea),
    ingest.finish_upload(bigint, bigint),
    ingest.cancel(bigint),
    ingest.retry(bigint),
    ingest.discard(bigint),
    ingest.wait(bigint, interval),
    ingest.queue_position(bigint),
    ingest.purge(interval),
    ingest.current_tenant()
  TO PUBLIC;

-- Called by the views every role reads and by ingest.wait (which runs as its caller);
-- each answers for the calling role and tenant only.
GRANT EXECUTE ON FUNCTION
    ingest._worker_status(),
    ingest._job_visible(bigint),
    ingest._tenant_visible(text),
    ingest._enqueued_here(bigint)
  TO PUBLIC;

-- Called by ingest.role_stats and ingest.stats, which only ingest_admin reads.
GRANT EXECUTE ON FUNCTION
    ingest._role_setting(oid, text),
    ingest._max_running(oid)
  TO ingest_admin;

-- No grant: _xid_is_current (called by _enqueued_here, as the owner); _batch_rows and
-- _batch_mark (named by the worker's INSERT, which runs as the job's owner but calls
-- neither: in a worker a scan of _batch_rows() is planned as ingest's custom scan, which
-- reads the batch itself and drops the _batch_mark qual); _wake_workers (run by the
-- upgrade scripts).

/*
 * Comments
 */
COMMENT ON SCHEMA ingest_private IS 'ingest''s job tables, written and read by its C code only; users read ingest.upload_jobs and ingest.job_errors';

COMMENT ON TABLE ingest_private.upload_jobs IS 'one row per load job; each role sees only its own jobs';
COMMENT ON COLUMN ingest_private.upload_jobs.owner IS 'the role rows are inserted as: the effective role (current_user) at enqueue';
COMMENT ON COLUMN ingest_private.upload_jobs.source IS 'the resolved path of a server file, or a short description of data sent with the call';
COMMENT ON COLUMN ingest_private.upload_jobs.source_type IS 'file: a server file; data: bytes in ingest.job_data; chunks: bytes in ingest.job_chunks; lo: a large object';
COMMENT ON COLUMN ingest_private.upload_jobs.options IS 'the load options as given at enqueue (validated then)';
COMMENT ON COLUMN ingest_private.upload_jobs.settings IS
    'the enqueuing session''s settings that travel with the job (every one changed from the server''s defaults, but identity, transaction, timeout, logging and connection settings), re-applied by the worker; readable by ingest_admin only';
COMMENT ON COLUMN ingest_private.upload_jobs.state IS 'uploading (chunks still arriving), queued, running, succeeded, failed or cancelled';
COMMENT ON COLUMN ingest_private.upload_jobs.attempts IS 'how many times a worker has started this job (ingest.retry starts the count again)';
COMMENT ON COLUMN ingest_private.upload_jobs.bytes_total IS 'size of the source; for an upload, the bytes received so far';
COMMENT ON COLUMN ingest_private.upload_jobs.bytes_done IS 'bytes of the source consumed by committed work';
COMMENT ON COLUMN ingest_private.upload_jobs.records_done IS 'checkpoint: data records (inserted, rejected or skipped) already committed; a resumed job skips them';
COMMENT ON COLUMN ingest_private.upload_jobs.cancel_requested IS
    'set by ingest.cancel on a running job in version 1.1; from 1.2 on a pending cancel is a row of ingest_private.job_cancels and this stays false';
COMMENT ON COLUMN ingest_private.upload_jobs.last_error IS 'why the job failed: the line and the cause';
COMMENT ON COLUMN ingest_private.upload_jobs.worker_pid IS 'the process that runs or last ran the job';
COMMENT ON COLUMN ingest_private.upload_jobs.max_attempts IS 'attempts allowed for transient failures and vanished workers: the max_attempts option, else ingest.max_attempts at enqueue';
COMMENT ON COLUMN ingest_private.upload_jobs.timeout IS 'longest an attempt may run: the timeout option, else ingest.job_timeout at enqueue; NULL: no limit';
COMMENT ON COLUMN ingest_private.upload_jobs.priority IS 'orders a role''s own queued jobs (higher first); roles take turns whatever their priorities';
COMMENT ON COLUMN ingest_private.upload_jobs.run_after IS 'a job retried after a transient failure waits until then (exponential backoff)';
COMMENT ON COLUMN ingest_private.upload_jobs.upload_activity_at IS 'when the last chunk of an upload arrived; uploads idle longer than ingest.upload_ttl are removed';
COMMENT ON COLUMN ingest_private.upload_jobs.worker_deaths IS
    'times the worker running this job died under it (crash, OOM killer, restart); at ingest.max_worker_deaths the job fails, and only an ingest_admin member''s ingest.retry starts the count again';
COMMENT ON COLUMN ingest_private.upload_jobs.tenant IS
    'the enqueuing session''s tenant, read where ingest.tenant_key says (NULL when it was not set); with the key set, a session sees and acts on the jobs of its own role and tenant only';

COMMENT ON COLUMN ingest_private.upload_jobs.rows_skipped IS
    'records that went in without error but wrote no row: a conflict with on_conflict nothing (or update with no column to set), a BEFORE trigger that returned NULL';

COMMENT ON TABLE ingest_private.job_errors IS 'one row per rejected record';
COMMENT ON COLUMN ingest_private.job_errors.line_number IS 'physical line (1-based, header included) on which the rejected record starts, counted as COPY counts';
COMMENT ON COLUMN ingest_private.job_errors.sqlstate IS 'the SQLSTATE of the error that rejected the record';
COMMENT ON COLUMN ingest_private.job_errors.raw_line IS 'the record''s fields re-joined as CSV, cut to 1 kB';
COMMENT ON COLUMN ingest_private.job_errors.record_number IS 'ordinal of the rejected data record (1-based, header excluded); a resumed or retried job drops the rejections past its checkpoint';

COMMENT ON TABLE ingest_private.job_data IS 'bytes sent with ingest.enqueue_data, read back by the worker in slices';
COMMENT ON TABLE ingest_private.job_chunks IS 'bytes sent with ingest.upload_chunk, one row per chunk, read back by the worker in order';
COMMENT ON TABLE ingest_private.job_cancels IS 'cancels of running jobs waiting to take effect (ingest.cancel)';
COMMENT ON TABLE ingest_private.job_parts IS 'the parts of a job loaded by several workers (option parallel): byte ranges cut at record boundaries, with their first line and record, state and counters';
COMMENT ON TABLE ingest_private.dir_files IS
    'the files ingest.enqueue_dir enqueued, one row per (dir, name, size, mtime), kept while the file lies in the directory (ingest.purge keeps them)';

COMMENT ON VIEW ingest.upload_jobs IS 'one row per load job; each role (with ingest.tenant_key set, each tenant) sees only its own jobs';
COMMENT ON VIEW ingest.job_errors IS 'one row per rejected record (at most ingest.max_error_rows per job), of the jobs the caller sees';
COMMENT ON VIEW ingest.upload_chunks IS
    'the chunks received of the caller''s uploads (every upload for ingest_admin): job_id, seq, bytes';
COMMENT ON VIEW ingest.dir_files IS
    'the files ingest.enqueue_dir enqueued (directory, name, size, modification time) and their jobs; for ingest_admin';
COMMENT ON VIEW ingest.workers IS
    'one row per running ingest worker, read live from shared memory (progress after every batch); job details only for jobs the caller can see';
COMMENT ON COLUMN ingest.workers.rows IS 'rows inserted so far, in the open transaction too (a resumed job counts its earlier attempts'' rows)';
COMMENT ON COLUMN ingest.workers.bytes IS 'source bytes read so far, as bytes_total counts them; advances after every batch';
COMMENT ON COLUMN ingest.workers.target IS 'the job''s table; NULL for a job of another database (its oid names a table of that database''s catalog)';
COMMENT ON COLUMN ingest.workers.progress IS 'bytes / bytes_total, from 0 to 1; NULL when the source''s size is unknown or 0';
COMMENT ON COLUMN ingest.workers.rows_per_second IS 'rows this attempt inserted per second since started_at';
COMMENT ON VIEW ingest.role_stats IS
    'ingest.stats per job owner and tenant with jobs unfinished or finished in the last hour, with the quotas (per owner and tenant; max_queued 0: no limit)';
COMMENT ON VIEW ingest.stats IS
    'one row: jobs by state, work of the last hour, age of the oldest queued job, workers busy (all databases) and allowed';

COMMENT ON FUNCTION ingest.enqueue_data(regclass, bytea, jsonb) IS
    'queue a load of CSV bytes sent with the call into target; returns the job id';
COMMENT ON FUNCTION ingest.enqueue_file(regclass, text, jsonb) IS
    'queue a load of a CSV file on the database server (under ingest.allowed_dirs) into target; returns the job id';
COMMENT ON FUNCTION ingest.enqueue_lo(regclass, oid, jsonb) IS
    'queue a load of a large object (psql \lo_import) into target; option unlink removes it after a successful load';
COMMENT ON FUNCTION ingest.enqueue_dir(regclass, text, text, jsonb) IS
    'queue a load of each file of a directory on the server (under ingest.allowed_dirs) whose name matches pattern and that was not enqueued before (same name, size and modification time), one job each, in name order; returns the job ids';
COMMENT ON FUNCTION ingest.begin_upload(regclass, jsonb) IS
    'start an upload in chunks into target (validated as enqueue_data is); returns the job id';
COMMENT ON FUNCTION ingest.upload_chunk(bigint, int, bytea) IS
    'store chunk seq (0-based) of an upload; sending the same chunk again is a no-op; returns the bytes received so far';
COMMENT ON FUNCTION ingest.finish_upload(bigint, bigint) IS
    'check that chunks 0..n-1 (and total_bytes, if given) arrived and queue the job; returns the job id (call ingest.wait after the commit)';
COMMENT ON FUNCTION ingest.cancel(bigint) IS
    'cancel a queued job at once, or ask its worker to stop a running one; false if the job had already finished';
COMMENT ON FUNCTION ingest.retry(bigint) IS
    'put a failed or cancelled job back in the queue (it resumes from its checkpoint); false if it was neither';
COMMENT ON FUNCTION ingest.discard(bigint) IS
    'drop the stored bytes of a failed or cancelled job (ingest.retry then refuses it); returns the bytes dropped';
COMMENT ON FUNCTION ingest.wait(bigint, interval) IS
    'block until the job has finished (or the timeout passed) and return its state';
COMMENT ON FUNCTION ingest.queue_position(bigint) IS
    'how many queued jobs will start before this one, in the scheduler''s order (0: next or running; NULL: finished or uploading)';
COMMENT ON FUNCTION ingest.purge(interval) IS
    'delete the caller''s jobs (every job for ingest_admin) that finished longer ago than older_than, with their rejected rows and bytes; returns how many';
COMMENT ON FUNCTION ingest.current_tenant() IS
    'this session''s tenant as ingest reads it (ingest.tenant_key), or NULL';
