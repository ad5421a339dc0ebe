/* ingest--1.2--1.3.sql: each function's EXECUTE privilege granted by name */

\echo Use "ALTER EXTENSION ingest UPDATE TO '1.3'" to load this file. \quit

/*
 * Privileges of functions
 *
 * A function is created executable by PUBLIC, and 1.0 ended with GRANT EXECUTE ON
 * ALL FUNCTIONS: the worker's _batch_* and the other internal functions were
 * callable by every role. From 1.3 on every function's privilege is stated: first
 * taken from PUBLIC, then granted to whom calls it. (Revoking first also makes the
 * ACL the same whatever the function's history: a fresh 1.3 install agrees.)
 *
 * A function called in a view is run with the privileges of the role that selects
 * from the view, not the view's owner's: the internal functions the views call are
 * granted to whoever may read those views.
 */
REVOKE ALL ON FUNCTION
    ingest.enqueue_data(regclass, bytea, jsonb),
    ingest.enqueue_file(regclass, text, jsonb),
    ingest.enqueue_lo(regclass, oid, jsonb),
    ingest.begin_upload(regclass, jsonb),
    ingest.upload_chunk(bigint, int, bytea),
    ingest.finish_upload(bigint, bigint),
    ingest.cancel(bigint),
    ingest.retry(bigint),
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

-- The API: what a role may load, see or change is decided inside each function
-- (privileges on the target, the job's owner and tenant), so every role may call them.
GRANT EXECUTE ON FUNCTION
    ingest.enqueue_data(regclass, bytea, jsonb),
    ingest.enqueue_file(regclass, text, jsonb),
    ingest.enqueue_lo(regclass, oid, jsonb),
    ingest.begin_upload(regclass, jsonb),
    ingest.upload_chunk(bigint, int, bytea),
    ingest.finish_upload(bigint, bigint),
    ingest.cancel(bigint),
    ingest.retry(bigint),
    ingest.wait(bigint, interval),
    ingest.queue_position(bigint),
    ingest.purge(interval),
    ingest.current_tenant()
  TO PUBLIC;

-- Called by the views every role reads (ingest.workers, ingest.upload_jobs,
-- ingest.job_errors, ingest.upload_chunks) and by ingest.wait, which runs as its
-- caller. Each answers for the calling role and tenant only: _worker_status shows job
-- details of visible jobs only, _job_visible and _tenant_visible say what the views
-- would show anyway, _enqueued_here only whether the caller's own transaction queued
-- a job.
GRANT EXECUTE ON FUNCTION
    ingest._worker_status(),
    ingest._job_visible(bigint),
    ingest._tenant_visible(text),
    ingest._enqueued_here(bigint)
  TO PUBLIC;

-- Called by ingest.role_stats and ingest.stats, which only ingest_admin reads (and by
-- the C code as the extension's owner): the quotas of any role.
GRANT EXECUTE ON FUNCTION
    ingest._role_setting(oid, text),
    ingest._max_running(oid)
  TO ingest_admin;

-- Nobody else: _xid_is_current is called by _enqueued_here (SECURITY DEFINER, as the
-- owner); _batch_rows and _batch_mark are named by the worker's INSERT, which runs as
-- the job's owner but calls neither (in a worker a scan of _batch_rows() is planned as
-- ingest's custom scan, which reads the batch itself and drops the _batch_mark qual),
-- so the owner needs no privilege on them; _wake_workers is run by the update scripts.

/*
 * Jobs queued while the extension waited for this update start when it commits.
 */
SELECT ingest._wake_workers();
