/*
 * jobs_queue.c
 *		The scheduler's side of the job table, for workers: claim the next
 *		job, take back the jobs of vanished workers, and tell whether any
 *		job waits.
 *
 * The order jobs run in is the view ingest_private._queue (priority, the
 * owners' turns, ingest.max_running_per_role); here a worker takes the
 * first job of it that it may, without ever waiting for a row a user's
 * session has locked. Claims, and orphan checks, are serialized per
 * database by locks on sub-objects of the extension, which no SQL command
 * can lock, so no session can hold up the workers with them.
 *
 * Part of the jobs service (jobs.h). Shared memory is not read here: the
 * worker says which jobs live workers run (JobsLiveFn).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "identity.h"
#include "settings.h"
#include "jobs_internal.h"

/* objsubids of the extension object locked to serialize orphan checks and claims */
#define ORPHAN_LOCK_SUBID 1
#define CLAIM_LOCK_SUBID 2

/*
 * Jobs left 'running' by a worker that is gone (it crashed, was terminated,
 * or the server restarted) go back to the queue. With commit_every the rows
 * of committed batches stay and the checkpoint says where to resume; without
 * it the aborted attempt left nothing behind. A job cancelled meanwhile ends
 * cancelled. A worker's death is counted in worker_deaths, apart from the
 * attempts a job's options allow: whatever took the worker down (a crash
 * restarts the whole server) must not do so more than
 * ingest.max_worker_deaths times, however many attempts the owner asked for
 * or how often it calls ingest.retry. A job whose worker died max_attempts
 * times ends failed as well.
 *
 * A row locked by a session (an ingest.cancel not yet committed) is skipped,
 * never waited for: *incomplete then asks for another look later.
 *
 * live_jobs lists the jobs that live workers run (at most max_live), and is
 * called after the snapshot is taken (see below). Returns how many jobs
 * were taken back.
 */
#define ORPHANS_WHERE \
	"state = 'running' AND (COALESCE(worker_pid, 0), id) NOT IN " \
	"  (SELECT * FROM unnest($1::int4[], $2::int8[]))"

#define REQUEUE_ORPHANS_SQL \
	"WITH orphans AS (" \
	"  SELECT id, " CANCEL_PENDING_SQL("upload_jobs") " AS cancelled " \
	"  FROM ingest_private.upload_jobs WHERE " ORPHANS_WHERE \
	"  FOR NO KEY UPDATE OF upload_jobs SKIP LOCKED), " \
	"done AS (" \
	"  UPDATE ingest_private.upload_jobs j SET " \
	"    state = CASE WHEN o.cancelled THEN 'cancelled' " \
	"                 WHEN j.worker_deaths + 1 >= $3 OR j.attempts >= j.max_attempts THEN 'failed' " \
	"                 ELSE 'queued' END, " \
	"    last_error = CASE WHEN o.cancelled THEN 'cancelled by ingest.cancel()' " \
	"                      WHEN j.worker_deaths + 1 >= $3 THEN 'the worker running this job died ' " \
	"                           || j.worker_deaths + 1 || ' times (ingest.max_worker_deaths is ' || $3 " \
	"                           || '); the job is not retried' " \
	"                      WHEN j.attempts >= j.max_attempts THEN 'the worker running this job exited unexpectedly ' " \
	"                           || j.attempts || ' times; the job is not retried' " \
	"                      ELSE 'the worker running this job exited unexpectedly; the job was taken back' END, " \
	"    finished_at = CASE WHEN o.cancelled OR j.worker_deaths + 1 >= $3 " \
	"                            OR j.attempts >= j.max_attempts " \
	"                       THEN pg_catalog.clock_timestamp() END, " \
	"    worker_deaths = j.worker_deaths + 1, " \
	"    worker_pid = NULL " \
	"  FROM orphans o WHERE j.id = o.id " \
	"  RETURNING j.id, j.state, j.owner, j.target, j.rows_inserted, j.rows_rejected, j.rows_skipped) " \
	"SELECT id, owner::text, target::text, rows_inserted, rows_rejected, state, " \
	"  CASE WHEN state <> 'queued' THEN " \
	"  pg_catalog.pg_notify('ingest', pg_catalog.json_build_object(" \
	"    'job_id', id, 'state', state)::text)::text END, rows_skipped " \
	"FROM done"

/* after the update, which sees it: orphans left because a session had them locked */
#define ORPHANS_LEFT_SQL \
	"SELECT EXISTS (SELECT 1 FROM ingest_private.upload_jobs WHERE " ORPHANS_WHERE ")"

int
jobs_requeue_orphans(JobsLiveFn live_jobs, int max_live, bool *incomplete)
{
	int		   *pids = palloc(sizeof(int) * Max(max_live, 1));
	int64	   *ids = palloc(sizeof(int64) * Max(max_live, 1));
	int			n;
	Datum	   *pid_elems;
	Datum	   *id_elems;
	Oid			types[3] = {INT4ARRAYOID, INT8ARRAYOID, INT4OID};
	Datum		values[3];
	int			requeued;
	IdentitySave save;
	SPIPlanPtr	plan;
	Snapshot	snap;
	int			rc;
	bool		isnull;

	/*
	 * One orphan check at a time per database: otherwise a check could take
	 * back a job that another check had just queued and a worker claimed.
	 * Only orphan checks change rows of vanished workers, so under this lock
	 * the orphans our snapshot sees stay orphans until we update them. The
	 * lock is on a sub-object of the extension, which no SQL command can
	 * lock, so no session can hold up the workers with it.
	 */
	LockDatabaseObject(ExtensionRelationId, catalog_extension_oid(false),
					   ORPHAN_LOCK_SUBID, ExclusiveLock);

	SPI_connect();
	identity_enter_system(&save);
	plan = SPI_prepare(REQUEUE_ORPHANS_SQL, 3, types);
	if (plan == NULL)
		elog(ERROR, "ingest: could not prepare the orphan check: %s",
			 SPI_result_code_string(SPI_result));

	/*
	 * Take the snapshot first, read the live jobs second. A worker publishes
	 * its job in shared memory before its claim commits, so every job this
	 * snapshot sees 'running' under a live worker is in the list; read the
	 * other way round, a claim committed in between would look orphaned and
	 * run twice.
	 */
	snap = RegisterSnapshot(GetLatestSnapshot());
	n = live_jobs(pids, ids, max_live);
	pid_elems = palloc(sizeof(Datum) * Max(n, 1));
	id_elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		pid_elems[i] = Int32GetDatum(pids[i]);
		id_elems[i] = Int64GetDatum(ids[i]);
	}
	values[0] = PointerGetDatum(construct_array(pid_elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(id_elems, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = Int32GetDatum(ingest_max_worker_deaths);

	rc = SPI_execute_snapshot(plan, values, NULL, snap, InvalidSnapshot, false, true, 0);
	if (rc < 0)
		elog(ERROR, "ingest: orphan check failed: %s", SPI_result_code_string(rc));
	requeued = (int) SPI_processed;
	UnregisterSnapshot(snap);
	/* the jobs that ended here (failed after too many deaths, or cancelled) are logged */
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		JobState	state = jobs_state_from_name(SPI_getvalue(tup, SPI_tuptable->tupdesc, 6));

		if (state != JOB_QUEUED)
			jobs_log_ended(DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull)),
						   state, tup, SPI_tuptable->tupdesc);
	}

	rc = SPI_execute_with_args(ORPHANS_LEFT_SQL, 2, types, values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ingest: orphan check failed: %s", SPI_result_code_string(rc));
	*incomplete = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	identity_leave_system(&save);
	SPI_finish();
	if (requeued > 0)
		ereport(LOG,
				(errmsg("ingest: %d job(s) left running by a vanished worker were taken back",
						requeued)));
	return requeued;
}

static Jsonb *
copy_jsonb(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	MemoryContext old;
	Jsonb	   *j;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	j = (Jsonb *) PG_DETOAST_DATUM_COPY(d);
	MemoryContextSwitchTo(old);
	return j;
}

/*
 * Claim the next job of this database in the scheduler's order (the view
 * ingest._queue): not waiting for a retry, its owner under
 * ingest.max_running_per_role. Claims are serialized per database, so two
 * workers never both count a role one short of its limit; a claim is a
 * short transaction, and never waits for a row lock: a job row a session
 * has locked (an ingest.cancel not yet committed, say) is skipped for the
 * next candidate, so no user transaction can hold up the queue.
 */
/*
 * A job under which a worker died runs only while no other such job runs. A
 * crash restarts every backend, so the jobs that ran beside the one that
 * crashed are counted a death too; kept apart from then on, a job that is
 * not the cause is counted at most once for it, and the cause reaches
 * ingest.max_worker_deaths by itself.
 */
#define CANDIDATES_SQL \
	"SELECT q.id FROM ingest_private._queue q JOIN ingest_private.upload_jobs j ON j.id = q.id " \
	"WHERE (q.run_after IS NULL OR q.run_after <= pg_catalog.clock_timestamp()) " \
	"  AND q.running < q.max_running " \
	"  AND (j.worker_deaths = 0 OR NOT EXISTS (SELECT 1 FROM ingest_private.upload_jobs r " \
	"       WHERE r.state = 'running' AND r.worker_deaths > 0)) " \
	"ORDER BY q.place LIMIT 64"

#define LOCK_CANDIDATE_SQL \
	"SELECT owner::oid, tenant, xmin FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'queued' " \
	"FOR NO KEY UPDATE SKIP LOCKED"

#define CLAIM_SQL \
	"UPDATE ingest_private.upload_jobs SET state = 'running', attempts = attempts + 1, " \
	"  started_at = pg_catalog.clock_timestamp(), finished_at = NULL, last_error = NULL, " \
	"  run_after = NULL, worker_pid = pg_catalog.pg_backend_pid() " \
	"WHERE id = $1 " \
	"RETURNING id, owner::oid, target::oid, source, source_type, options, settings, " \
	"  attempts, records_done, rows_inserted, rows_rejected, " \
	"  COALESCE(bytes_total, -1), " CANCEL_PENDING_SQL("upload_jobs") ", max_attempts, " \
	"  COALESCE((EXTRACT(epoch FROM timeout) * 1000)::int8, 0), tenant, rows_skipped"

/*
 * Rejected records past the checkpoint were recorded by an attempt that did
 * not commit them; the new attempt reads those records again. (A job loaded
 * in parts has a checkpoint per part, and each part drops its own when it
 * is claimed: jobs_part_claim.) A failed job
 * counts them all in rows_rejected, kept in job_errors or not (past
 * ingest.max_error_rows): the checkpoint's records are inserted, rejected or
 * skipped, which gives the committed count (the subtraction stays for jobs
 * of versions before rows_skipped, whose skipped rows were not counted).
 */
#define DROP_STALE_ERRORS_SQL \
	"WITH stale AS (DELETE FROM ingest_private.job_errors WHERE job_id = $1 AND record_number > $2 " \
	"  AND NOT EXISTS (SELECT 1 FROM ingest_private.job_parts p WHERE p.job_id = $1) RETURNING 1) " \
	"UPDATE ingest_private.upload_jobs SET rows_rejected = GREATEST(0, LEAST(rows_rejected - (SELECT count(*) FROM stale), " \
	"  records_done - rows_inserted - rows_skipped)) " \
	"WHERE id = $1 RETURNING rows_rejected, " \
	"  (SELECT count(*) FROM ingest_private.job_errors e WHERE e.job_id = $1 AND e.record_number <= $2)"

/*
 * The first candidate in the queue's order that no session has locked, now
 * locked by us; 0 when there is none. Its owner and tenant in *owner and
 * *tenant.
 *
 * The job's row is visible as soon as the transaction that queued it has
 * committed, and the commit callback wakes us then; but that transaction
 * sends its catalog invalidations only later in its commit, and GRANT,
 * REVOKE and ALTER ROLE lock no table we would wait on. A job queued in the
 * transaction that also revoked a privilege or changed a role could then be
 * loaded under the privileges of before. The transaction releases the lock
 * on its own id after sending its invalidations: wait for that lock, then
 * take the invalidations in.
 */
static int64
lock_next_candidate(Oid *owner, char **tenant)
{
	SPITupleTable *candidates;
	uint64		ncandidates;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	jobs_exec_as_owner(CANDIDATES_SQL, 0, NULL, NULL, NULL, false);
	candidates = SPI_tuptable;
	ncandidates = SPI_processed;
	for (uint64 i = 0; i < ncandidates; i++)
	{
		values[0] = SPI_getbinval(candidates->vals[i], candidates->tupdesc, 1, &isnull);
		jobs_exec_as_owner(LOCK_CANDIDATE_SQL, 1, types, values, NULL, false);
		if (SPI_processed == 1)
		{
			TransactionId queued_by;

			*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			*tenant = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			queued_by = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
			/* (a job this transaction took back from a vanished worker: no wait) */
			if (TransactionIdIsNormal(queued_by) && !TransactionIdIsCurrentTransactionId(queued_by))
				XactLockTableWait(queued_by, NULL, NULL, XLTW_None);
			AcceptInvalidationMessages();
			return DatumGetInt64(values[0]);
		}
	}
	return 0;
}

/* The row CLAIM_SQL returned, as an IngestJob with its fields in cxt. */
static void
read_claimed(HeapTuple tup, TupleDesc desc, IngestJob *job, MemoryContext cxt)
{
	bool		isnull;

	job->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	job->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
	job->target = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
	job->source = jobs_copy_text(tup, desc, 4, cxt);
	job->source_type = jobs_source_from_name(SPI_getvalue(tup, desc, 5));
	job->options = copy_jsonb(tup, desc, 6, cxt);
	job->settings = copy_jsonb(tup, desc, 7, cxt);
	job->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
	job->done.records_done = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
	job->done.rows_inserted = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
	job->done.rows_rejected = DatumGetInt64(SPI_getbinval(tup, desc, 11, &isnull));
	job->bytes_total = DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
	job->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
	job->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
	job->timeout_ms = DatumGetInt64(SPI_getbinval(tup, desc, 15, &isnull));
	job->tenant = jobs_copy_text(tup, desc, 16, cxt);
	job->done.rows_skipped = DatumGetInt64(SPI_getbinval(tup, desc, 17, &isnull));
}

/*
 * Claim the next job. A worker that has run a job of one owner and tenant
 * runs no other's (served_owner valid): JOB_CLAIM_OTHER_OWNER says the next
 * job is another's, to be run by a fresh worker.
 */
JobClaim
jobs_claim(IngestJob *job, Oid served_owner, const char *served_tenant, bool *more_queued)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	JobClaim	result = JOB_CLAIM_NONE;
	int64		id;
	Oid			owner = InvalidOid;
	char	   *tenant = NULL;

	LockDatabaseObject(ExtensionRelationId, catalog_extension_oid(false),
					   CLAIM_LOCK_SUBID, ExclusiveLock);
	SPI_connect();
	id = lock_next_candidate(&owner, &tenant);
	if (id != 0 && OidIsValid(served_owner) &&
		(owner != served_owner || (tenant == NULL) != (served_tenant == NULL) ||
		 (tenant != NULL && strcmp(tenant, served_tenant) != 0)))
		result = JOB_CLAIM_OTHER_OWNER;
	else if (id != 0)
	{
		Oid			types[2] = {INT8OID, INT8OID};
		Datum		values[2];

		values[0] = Int64GetDatum(id);
		jobs_exec_as_owner(CLAIM_SQL, 1, types, values, NULL, false);
		if (SPI_processed != 1)
			elog(ERROR, "ingest: job " INT64_FORMAT " could not be claimed", id);
		result = JOB_CLAIM_TAKEN;
		read_claimed(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, job, caller);

		values[0] = Int64GetDatum(job->id);
		values[1] = Int64GetDatum(job->done.records_done);
		jobs_exec_as_owner(DROP_STALE_ERRORS_SQL, 2, types, values, NULL, false);
		job->done.rows_rejected = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		job->done.errors_stored = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		*more_queued = jobs_queued_exist();
	}
	SPI_finish();
	return result;
}

/* Are jobs waiting in this database? */
bool
jobs_queued_exist(void)
{
	bool		isnull;
	bool		result;
	Oid			relid = catalog_jobs_table();
	char	   *sql;

	/*
	 * Also asked of a database still at an older version, whose jobs wait
	 * for its update: its table is where that version keeps it.
	 */
	if (!OidIsValid(relid))
		return false;
	SPI_connect();
	/* not read-only: the snapshot must see a claim just made */
	sql = psprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE state = 'queued')",
				   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											  get_rel_name(relid)));
	jobs_exec_as_owner(sql, 0, NULL, NULL, NULL, false);
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return result;
}

/*
 * The queued parts a helper may claim, under an owner filter on j; the
 * running jobs of the part's owner and tenant and the workers helping them
 * stay under ingest.max_running_per_role.
 */
#define CLAIMABLE_PARTS_SQL(owner_filter) \
	"FROM ingest_private.job_parts q " \
	"  JOIN ingest_private.upload_jobs j ON j.id = q.job_id " \
	"  WHERE q.state = 'queued' AND j.state = 'running' AND NOT " CANCEL_PENDING_SQL("j") \
	"    AND NOT " PART_FAILED_SQL("q") \
	"    AND " owner_filter \
	"    AND (SELECT count(*) FROM ingest_private.upload_jobs r WHERE r.owner = j.owner " \
	"           AND COALESCE(r.tenant, '') = COALESCE(j.tenant, '') AND r.state = 'running') " \
	"      + (SELECT count(*) FROM ingest_private.job_parts h JOIN ingest_private.upload_jobs r ON r.id = h.job_id " \
	"           WHERE r.owner = j.owner AND COALESCE(r.tenant, '') = COALESCE(j.tenant, '') " \
	"             AND r.state = 'running' AND h.state = 'running' AND h.worker_pid IS DISTINCT FROM r.worker_pid) " \
	"      < ingest._max_running(j.owner) "

/* j's job is of the owner ($1) and tenant ($2) a worker serves */
#define SERVED_SQL "(j.owner::oid = $1 AND COALESCE(j.tenant, '') = COALESCE($2, '')) "

/*
 * An idle worker helps a running job with its parts: the first queued part
 * of a running job of the owner and tenant it serves (of any, if it serves
 * none yet) not being cancelled, within ingest.max_running_per_role.
 * Claims of jobs go first (worker.c claims a part only when no job may
 * start), and are serialized with these by the same lock, so the count
 * holds. *job gets the job's row; false when there is no part to help with.
 */
#define CLAIM_PART_SQL \
	"UPDATE ingest_private.job_parts p SET state = 'running', worker_pid = pg_catalog.pg_backend_pid(), " \
	"  last_error = NULL, sqlstate = NULL " \
	"WHERE (p.job_id, p.part) = (SELECT q.job_id, q.part " CLAIMABLE_PARTS_SQL("($1 = 0 OR " SERVED_SQL ")") \
	"  ORDER BY q.job_id, q.part LIMIT 1 FOR UPDATE OF q SKIP LOCKED) " \
	"RETURNING p.job_id, " JOB_PART_COLUMNS

#define OTHERS_PART_SQL \
	"SELECT EXISTS (SELECT 1 " CLAIMABLE_PARTS_SQL("NOT " SERVED_SQL) ")"

#define HELPED_JOB_SQL \
	"SELECT id, owner::oid, target::oid, source, source_type, options, settings, " \
	"  attempts, records_done, rows_inserted, rows_rejected, " \
	"  COALESCE(bytes_total, -1), " CANCEL_PENDING_SQL("upload_jobs") ", max_attempts, " \
	"  COALESCE((EXTRACT(epoch FROM timeout) * 1000)::int8, 0), tenant, rows_skipped " \
	"FROM ingest_private.upload_jobs WHERE id = $1"

/* $1 and $2 of SERVED_SQL: the owner and tenant a worker serves */
static void
bind_served(Oid served_owner, const char *served_tenant, Datum *values, char *nulls)
{
	values[0] = ObjectIdGetDatum(served_owner);
	values[1] = served_tenant ? CStringGetTextDatum(served_tenant) : (Datum) 0;
	nulls[1] = served_tenant ? ' ' : 'n';
}

bool
jobs_claim_part(IngestJob *job, JobPart *part, Oid served_owner, const char *served_tenant)
{
	MemoryContext caller = CurrentMemoryContext;
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	bool		isnull;
	int64		job_id;

	LockDatabaseObject(ExtensionRelationId, catalog_extension_oid(false),
					   CLAIM_LOCK_SUBID, ExclusiveLock);
	bind_served(served_owner, served_tenant, values, nulls);
	SPI_connect();
	jobs_exec_as_owner(CLAIM_PART_SQL, 2, types, values, nulls, false);
	if (SPI_processed != 1)
	{
		SPI_finish();
		return false;
	}
	job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	jobs_read_part(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, part);

	types[0] = INT8OID;
	values[0] = Int64GetDatum(job_id);
	jobs_exec_as_owner(HELPED_JOB_SQL, 1, types, values, NULL, false);
	if (SPI_processed != 1)
		elog(ERROR, "ingest: job " INT64_FORMAT " of a claimed part is missing", job_id);
	read_claimed(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, job, caller);
	SPI_finish();
	jobs_part_drop_stale_errors(job_id, part);
	return true;
}

/*
 * Does a part of another owner's (or another tenant's) job wait for a helper
 * that this worker, bound to served_owner and served_tenant, cannot be? Its
 * idle worker then makes room, as for another owner's job (worker.c): parts
 * would otherwise wait for helpers until idle workers time out.
 */
bool
jobs_other_part_waits(Oid served_owner, const char *served_tenant)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	bool		isnull;
	bool		waits;

	bind_served(served_owner, served_tenant, values, nulls);
	SPI_connect();
	jobs_exec_as_owner(OTHERS_PART_SQL, 2, types, values, nulls, false);
	waits = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return waits;
}
