/* ingest--1.0.sql: objects of the ingest extension, version 1.0 */

\echo Use "CREATE EXTENSION ingest" to load this file. \quit

/*
 * Roles
 *
 * Members of ingest_admin see and cancel every job, not only their own.
 * Roles are cluster-wide, so the role outlives DROP EXTENSION and may already
 * exist when the extension is created in a second database.
 */
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ingest_admin') THEN
        CREATE ROLE ingest_admin NOLOGIN;
    END IF;
END
$$;

/*
 * Tables
 */
CREATE TABLE ingest.upload_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner           regrole NOT NULL,
    target          regclass NOT NULL,
    source          text NOT NULL,
    source_type     text NOT NULL CHECK (source_type IN ('file', 'data')),
    options         jsonb NOT NULL DEFAULT '{}',
    settings        jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts        int NOT NULL DEFAULT 0,
    rows_inserted   bigint NOT NULL DEFAULT 0,
    rows_rejected   bigint NOT NULL DEFAULT 0,
    bytes_total     bigint,
    bytes_done      bigint NOT NULL DEFAULT 0,
    records_done    bigint NOT NULL DEFAULT 0,
    cancel_requested boolean NOT NULL DEFAULT false,
    last_error      text,
    worker_pid      int,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);

COMMENT ON TABLE ingest.upload_jobs IS 'one row per load job; each role sees only its own jobs';
COMMENT ON COLUMN ingest.upload_jobs.owner IS 'the role rows are inserted as: the effective role (current_user) at enqueue';
COMMENT ON COLUMN ingest.upload_jobs.source IS 'the resolved path of a server file, or a short description of data sent with the call';
COMMENT ON COLUMN ingest.upload_jobs.source_type IS 'file: read from the server''s file system; data: bytes kept in ingest.job_data';
COMMENT ON COLUMN ingest.upload_jobs.options IS 'the load options as given at enqueue (validated then)';
COMMENT ON COLUMN ingest.upload_jobs.settings IS 'the enqueuing session''s settings (custom ones, TimeZone, DateStyle, IntervalStyle, search_path), re-applied by the worker';
COMMENT ON COLUMN ingest.upload_jobs.attempts IS 'how many times a worker has started this job';
COMMENT ON COLUMN ingest.upload_jobs.bytes_done IS 'bytes of the source consumed by committed work';
COMMENT ON COLUMN ingest.upload_jobs.records_done IS 'checkpoint: data records (inserted or rejected) already committed; a resumed job skips them';
COMMENT ON COLUMN ingest.upload_jobs.cancel_requested IS 'set by ingest.cancel on a running job; the worker stops at its next batch';
COMMENT ON COLUMN ingest.upload_jobs.last_error IS 'why the job failed: the line and the cause';
COMMENT ON COLUMN ingest.upload_jobs.worker_pid IS 'the process that runs or last ran the job';

-- Workers claim the oldest queued job; keep that look-up cheap however long the history is.
CREATE INDEX upload_jobs_queued_idx ON ingest.upload_jobs (id) WHERE state = 'queued';
CREATE INDEX upload_jobs_owner_idx ON ingest.upload_jobs (owner);

CREATE TABLE ingest.job_data (
    job_id  bigint PRIMARY KEY REFERENCES ingest.upload_jobs (id) ON DELETE CASCADE,
    data    bytea NOT NULL
);

COMMENT ON TABLE ingest.job_data IS 'bytes sent with ingest.enqueue_data, read back by the worker in slices';
-- EXTERNAL: stored uncompressed out of line, so the worker can read any slice without
-- decompressing (or holding in memory) everything before it.
ALTER TABLE ingest.job_data ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE ingest.job_errors (
    job_id      bigint NOT NULL REFERENCES ingest.upload_jobs (id) ON DELETE CASCADE,
    line_number bigint,
    sqlstate    text,
    message     text NOT NULL,
    raw_line    text
);

COMMENT ON TABLE ingest.job_errors IS 'one row per rejected record';
COMMENT ON COLUMN ingest.job_errors.line_number IS 'physical line (1-based, header included) on which the rejected record starts, counted as COPY counts';
COMMENT ON COLUMN ingest.job_errors.sqlstate IS 'the SQLSTATE of the error that rejected the record';
COMMENT ON COLUMN ingest.job_errors.raw_line IS 'the record''s fields re-joined as CSV, cut to 1 kB';

CREATE INDEX job_errors_job_idx ON ingest.job_errors (job_id, line_number);

-- Jobs, their errors and the bytes of jobs still to run belong in a dump of the
-- database (extension tables are otherwise left out of pg_dump).
SELECT pg_catalog.pg_extension_config_dump('ingest.upload_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('ingest.job_errors', '');
SELECT pg_catalog.pg_extension_config_dump('ingest.job_data', '');

/*
 * Row-level security on the extension's own tables
 *
 * Nobody but the extension's own C code (running as the extension owner)
 * writes these tables; users only read them, and see only their own jobs.
 */
ALTER TABLE ingest.upload_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest.job_errors ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest.job_data ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_jobs ON ingest.upload_jobs FOR SELECT
    USING (owner::oid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
           OR pg_catalog.pg_has_role('ingest_admin', 'USAGE'));

CREATE POLICY own_job_errors ON ingest.job_errors FOR SELECT
    USING (job_id IN (SELECT id FROM ingest.upload_jobs));

/*
 * Functions
 */
CREATE FUNCTION ingest.enqueue_data(target regclass, data bytea, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_data'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.enqueue_data(regclass, bytea, jsonb) IS
    'queue a load of CSV bytes sent with the call into target; returns the job id';

CREATE FUNCTION ingest.enqueue_file(target regclass, path text, options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ingest_enqueue_file'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.enqueue_file(regclass, text, jsonb) IS
    'queue a load of a CSV file on the database server (under ingest.allowed_dirs) into target; returns the job id';

CREATE FUNCTION ingest.cancel(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_cancel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION ingest.cancel(bigint) IS
    'cancel a queued job at once, or ask its worker to stop a running one; false if the job had already finished';

CREATE FUNCTION ingest.wait(job_id bigint, timeout interval DEFAULT '10 min')
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

COMMENT ON FUNCTION ingest.wait(bigint, interval) IS
    'block until the job has finished (or the timeout passed) and return its state';

-- Was this transaction id assigned by the current transaction (or one of its subtransactions)?
CREATE FUNCTION ingest._xid_is_current(xid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'ingest_xid_is_current'
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED;

CREATE FUNCTION ingest._worker_status(
    OUT pid int, OUT datname name, OUT job_id bigint, OUT rows bigint,
    OUT bytes bigint, OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ingest_worker_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

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

/*
 * Views
 */
CREATE VIEW ingest.workers AS
    SELECT pid, datname, job_id, rows, bytes, started_at
    FROM ingest._worker_status();

COMMENT ON VIEW ingest.workers IS
    'one row per running ingest worker, read live from shared memory; job details only for jobs the caller can see';

/*
 * Privileges: what a role may load is decided by its privileges on the
 * target table, so every role may call the functions.
 */
GRANT USAGE ON SCHEMA ingest TO PUBLIC;
GRANT SELECT ON ingest.upload_jobs, ingest.job_errors, ingest.workers TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ingest TO PUBLIC;
