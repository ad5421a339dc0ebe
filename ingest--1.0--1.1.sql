/* ingest--1.0--1.1.sql: retries, limits, uploads in chunks, large objects, quotas, fair scheduling */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.1'" to load this file. \quit

/*
 * Tables
 */
ALTER TABLE ingest.upload_jobs DROP CONSTRAINT upload_jobs_state_check;
ALTER TABLE ingest.upload_jobs ADD CONSTRAINT upload_jobs_state_check
    CHECK (state IN ('uploading', 'queued', 'running', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE ingest.upload_jobs DROP CONSTRAINT upload_jobs_source_type_check;
ALTER TABLE ingest.upload_jobs ADD CONSTRAINT upload_jobs_source_type_check
    CHECK (source_type IN ('file', 'data', 'chunks', 'lo'));

ALTER TABLE ingest.upload_jobs
    ADD COLUMN max_attempts int NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    ADD COLUMN timeout      interval,
    ADD COLUMN priority     int NOT NULL DEFAULT 0,
    ADD COLUMN run_after    timestamptz,
    ADD COLUMN upload_activity_at timestamptz;

COMMENT ON COLUMN ingest.upload_jobs.state IS 'uploading (chunks still arriving), queued, running, succeeded, failed or cancelled';
COMMENT ON COLUMN ingest.upload_jobs.source_type IS 'file: a server file; data: bytes in ingest.job_data; chunks: bytes in ingest.job_chunks; lo: a large object';
COMMENT ON COLUMN ingest.upload_jobs.attempts IS 'how many times a worker has started this job (ingest.retry starts the count again)';
COMMENT ON COLUMN ingest.upload_jobs.max_attempts IS 'attempts allowed for transient failures and vanished workers: the max_attempts option, else ingest.max_attempts at enqueue';
COMMENT ON COLUMN ingest.upload_jobs.timeout IS 'longest an attempt may run: the timeout option, else ingest.job_timeout at enqueue; NULL: no limit';
COMMENT ON COLUMN ingest.upload_jobs.priority IS 'orders a role''s own queued jobs (higher first); roles take turns whatever their priorities';
COMMENT ON COLUMN ingest.upload_jobs.run_after IS 'a job retried after a transient failure waits until then (exponential backoff)';
COMMENT ON COLUMN ingest.upload_jobs.upload_activity_at IS 'when the last chunk of an upload arrived; uploads idle longer than ingest.upload_ttl are removed';
COMMENT ON COLUMN ingest.upload_jobs.bytes_total IS 'size of the source; for an upload, the bytes received so far';

ALTER TABLE ingest.job_errors ADD COLUMN record_number bigint;
COMMENT ON COLUMN ingest.job_errors.record_number IS 'ordinal of the rejected data record (1-based, header excluded); a resumed or retried job drops the rejections past its checkpoint';

CREATE TABLE ingest.job_chunks (
    job_id  bigint NOT NULL REFERENCES ingest.upload_jobs (id) ON DELETE CASCADE,
    seq     int NOT NULL CHECK (seq >= 0),
    data    bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);

COMMENT ON TABLE ingest.job_chunks IS 'bytes sent with ingest.upload_chunk, one row per chunk, read back by the worker in order';
-- uncompressed out of line, as job_data: the worker reads each chunk slice by slice
ALTER TABLE ingest.job_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE ingest.job_chunks ENABLE ROW LEVEL SECURITY;
SELECT pg_catalog.pg_extension_config_dump('ingest.job_chunks', '');

-- the scheduler asks when each role last started a job; stats and purge look at finished jobs by age
CREATE INDEX upload_jobs_owner_started_idx ON ingest.upload_jobs (owner, started_at);
CREATE INDEX upload_jobs_finished_idx ON ingest.upload_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX upload_jobs_uploading_idx ON ingest.upload_jobs (upload_activity_at) WHERE state = 'uploading';
-- quotas and the scheduler count a role's unfinished jobs at every enqueue and claim:
-- the cost must not grow with the role's history of finished jobs
CREATE INDEX upload_jobs_active_idx ON ingest.upload_jobs (owner)
    WHERE state IN ('uploading', 'queued', 'running');

/*
 * Functions
 */
CREATE FUNCTION ingest.retry(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_retry'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.retry(bigint) IS
    'put a failed or cancelled job back in the queue (it resumes from its checkpoint); false if it was neither';

CREATE FUNCTION ingest.begin_upload(target regclass, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_begin_upload'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.begin_upload(regclass, jsonb) IS
    'start an upload in chunks into target (validated as enqueue_data is); returns the job id';

CREATE FUNCTION ingest.upload_chunk(job_id bigint, seq int, data bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_upload_chunk'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.upload_chunk(bigint, int, bytea) IS
    'store chunk seq (0-based) of an upload; sending the same chunk again is a no-op; returns the bytes received so far';

CREATE FUNCTION ingest.finish_upload(job_id bigint, total_bytes bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_finish_upload'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.finish_upload(bigint, bigint) IS
    'check that chunks 0..n-1 (and total_bytes, if given) arrived and queue the job; returns the job id (call ingest.wait after the commit)';

CREATE FUNCTION ingest.enqueue_lo(target regclass, loid oid, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_lo'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.enqueue_lo(regclass, oid, jsonb) IS
    'queue a load of a large object (psql \lo_import) into target; option unlink removes it after a successful load';

CREATE FUNCTION ingest.purge(older_than interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_purge'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.purge(interval) IS
    'delete the caller''s jobs (every job for ingest_admin) that finished longer ago than older_than, with their rejected rows and bytes; returns how many';

CREATE FUNCTION ingest.queue_position(job_id bigint)
RETURNS int
AS 'MODULE_PATHNAME', 'ingest_queue_position'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION ingest.queue_position(bigint) IS
    'how many queued jobs will start before this one, in the scheduler''s order (0: next or running; NULL: finished or uploading)';

-- wait: an upload still receiving chunks is an error, not ten minutes of waiting
CREATE OR REPLACE FUNCTION ingest.wait(job_id bigint, timeout interval DEFAULT '10 min')
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_state text;
    job_xmin  xid;
    deadline  timestamptz := clock_timestamp() + timeout;
BEGIN
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'ingest.wait must be called in a READ COMMITTED transaction'
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'A REPEATABLE READ or SERIALIZABLE snapshot never sees the job finish.';
    END IF;
    LOOP
        SELECT j.state, j.xmin INTO job_state, job_xmin FROM ingest.upload_jobs j WHERE j.id = wait.job_id;
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
        IF job_state = 'queued' AND ingest._xid_is_current(job_xmin) THEN
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
 * Views
 */

/*
 * The scheduler's order, the one place it is defined: roles take turns (the
 * role whose last job started longest ago goes first), and within a role
 * higher priority, then older jobs first. Workers claim the first eligible
 * row (not waiting for a retry, its role under ingest.max_running_per_role);
 * ingest.queue_position reads the same order.
 */
CREATE VIEW ingest._queue AS
    WITH queued AS (
        SELECT j.id, j.owner, j.run_after,
               row_number() OVER (PARTITION BY j.owner ORDER BY j.priority DESC, j.id) AS turn
        FROM ingest.upload_jobs j
        WHERE j.state = 'queued'),
    -- MATERIALIZED: once per role, not once per queued job
    roles AS MATERIALIZED (
        SELECT o.owner,
               (SELECT max(r.started_at) FROM ingest.upload_jobs r WHERE r.owner = o.owner) AS last_start,
               (SELECT count(*) FROM ingest.upload_jobs r
                WHERE r.owner = o.owner AND r.state = 'running') AS running,
               ingest._max_running(o.owner) AS max_running
        FROM (SELECT DISTINCT owner FROM queued) o)
    SELECT q.id, q.owner, q.run_after, r.running, r.max_running,
           row_number() OVER (ORDER BY q.turn, r.last_start NULLS FIRST, q.owner::oid, q.id) AS place
    FROM queued q JOIN roles r USING (owner);

REVOKE ALL ON ingest._queue FROM PUBLIC;

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
           ingest._max_running(j.owner) AS max_running
    FROM ingest.upload_jobs j
    -- every count is of unfinished jobs or of the last hour: read those through
    -- their indexes, not the whole history
    WHERE j.state IN ('uploading', 'queued', 'running') OR j.finished_at > now() - interval '1 hour'
    GROUP BY j.owner;

COMMENT ON VIEW ingest.role_stats IS
    'ingest.stats per job owner with jobs unfinished or finished in the last hour, with the owner''s quotas (max_queued 0: no limit)';

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

COMMENT ON VIEW ingest.stats IS
    'one row: jobs by state, work of the last hour, age of the oldest queued job, workers busy (all databases) and allowed';

/*
 * What a client that lost its connection in the middle of an upload asks
 * to learn which chunks arrived. job_chunks has no policy (only the
 * extension's owner reads it) and a view runs with its owner's rights, so
 * the view filters as upload_jobs' policy own_jobs does; security_barrier
 * keeps a caller's functions from seeing rows before that filter.
 * octet_length reads the size from the TOAST pointer, not the bytes.
 */
CREATE VIEW ingest.upload_chunks WITH (security_barrier) AS
    SELECT c.job_id, c.seq, pg_catalog.octet_length(c.data) AS bytes
    FROM ingest.job_chunks c JOIN ingest.upload_jobs j ON j.id = c.job_id
    WHERE j.owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR pg_catalog.pg_has_role('ingest_admin', 'USAGE');

COMMENT ON VIEW ingest.upload_chunks IS
    'the chunks received of the caller''s uploads (every upload for ingest_admin): job_id, seq, bytes';

/*
 * Privileges
 */
GRANT SELECT ON ingest.upload_chunks TO PUBLIC;
GRANT EXECUTE ON FUNCTION ingest.retry(bigint), ingest.begin_upload(regclass, jsonb),
    ingest.upload_chunk(bigint, int, bytea), ingest.finish_upload(bigint, bigint),
    ingest.enqueue_lo(regclass, oid, jsonb), ingest.purge(interval),
    ingest.queue_position(bigint) TO PUBLIC;
GRANT SELECT ON ingest.stats, ingest.role_stats TO ingest_admin;

/*
 * Jobs queued while the extension waited for this update (a worker runs
 * nothing at an older version than its library's) start when it commits.
 */
CREATE FUNCTION ingest._wake_workers()
RETURNS void
AS 'MODULE_PATHNAME', 'ingest_wake_workers'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE EXECUTE ON FUNCTION ingest._wake_workers() FROM PUBLIC;
SELECT ingest._wake_workers();
