/*
 * jobs.c
 *		Every read and state change of ingest.upload_jobs and ingest.job_errors.
 *
 * The state machine has one home: queued -> running -> succeeded | failed |
 * cancelled, and running -> queued when a worker vanished. Users may only
 * read these tables, so every change here runs as the extension's owner
 * (identity_extension_owner), whoever the caller is; callers check first
 * what the calling role may do.
 *
 * Each function opens its own SPI connection (nested if the caller has one)
 * and copies results into the caller's memory context.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "catalog/pg_extension.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "catalog/namespace.h"
#include "commands/extension.h"
#include "catalog.h"
#include "compat.h"
#include "identity.h"
#include "ingest.h"
#include "jobs.h"
#include "shmem.h"

const char *const job_source_names[] = {"file", "data", "chunks", "lo"};

/* last_error of an upload cancelled before finish_upload (ingest.retry refuses it) */
#define UPLOAD_CANCELLED "upload cancelled by ingest.cancel() before it was finished"

/*
 * Is a cancel of job alias.id pending? A cancel of a running job is a row of
 * ingest.job_cancels, not an update of the job's row: an update would lock
 * that row until the cancelling transaction ends, and a session that left
 * it open would hold the worker's every write to its job, the outcome
 * included. cancel_requested is the form 1.1 wrote.
 */
#define CANCEL_PENDING_SQL(alias) \
	"(" alias ".cancel_requested OR EXISTS (SELECT 1 FROM ingest_private.job_cancels c " \
	"  WHERE c.job_id = " alias ".id))"

/* objsubids of the extension object locked to serialize orphan checks and claims */
#define ORPHAN_LOCK_SUBID 1
#define CLAIM_LOCK_SUBID 2

/*
 * Run one statement as the extension owner; returns SPI's result code. The
 * caller has SPI connected.
 */
int
jobs_exec_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, bool read_only)
{
	IdentitySave save;
	int			rc;

	identity_enter_system(&save);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	identity_leave_system(&save);
	if (rc < 0)
		elog(ERROR, "ingest: SPI_execute_with_args failed (%d) for: %s", rc, sql);
	return rc;
}

#define exec_as_owner jobs_exec_as_owner

/*
 * A message as ingest's tables keep it: at most INGEST_MESSAGE_MAX bytes,
 * cut between characters. Messages come from user code (a trigger may raise
 * megabytes); what a job stores must stay small whatever they say.
 */
char *
jobs_clip_message(const char *message)
{
	int			len = strlen(message);
	int			keep;

	if (len <= INGEST_MESSAGE_MAX)
		return (char *) message;
	keep = pg_mbcliplen(message, len, INGEST_MESSAGE_MAX - 4);
	return psprintf("%.*s ...", keep, message);
}

static void check_schema_version(void);
static char *copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt);

static bool
is_admin(Oid role)
{
	Oid			admin = get_role_oid("ingest_admin", true);

	return superuser_arg(role) || (OidIsValid(admin) && has_privs_of_role(role, admin));
}

/* The same error whether the job does not exist or is another role's or tenant's. */
static void
job_not_found(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("ingest job " INT64_FORMAT " does not exist", job_id),
			 identity_tenant_scoped()
			 ? errhint("A session sees and manages only the jobs of its own role and tenant, unless its role is a member of ingest_admin.")
			 : errhint("A role sees and manages only its own jobs, unless it is a member of ingest_admin.")));
}

/*
 * May caller, the session's user, see and act on a job of owner and tenant?
 * Its own jobs of its own tenant, or every job for ingest_admin.
 */
static bool
visible_to(Oid owner, const char *tenant, Oid caller)
{
	return (owner == caller && identity_tenant_matches(tenant)) || is_admin(caller);
}

/*
 * The parameters that scope a query to the caller's jobs, as the policy
 * own_jobs scopes reads: "(owner = $n::regrole AND (NOT $n+1 OR tenant =
 * $n+2)) OR $n+3" (CALLER_SQL). Fills four parameters from values[first].
 */
#define CALLER_SQL(n, n1, n2, n3) \
	"((owner = $" #n "::regrole AND (NOT $" #n1 " OR tenant = $" #n2 ")) OR $" #n3 ")"

static void
caller_params(Oid caller, Oid *types, Datum *values, char *nulls, int first)
{
	char	   *tenant = identity_session_tenant();

	types[first] = OIDOID;
	values[first] = ObjectIdGetDatum(caller);
	types[first + 1] = BOOLOID;
	values[first + 1] = BoolGetDatum(identity_tenant_scoped());
	types[first + 2] = TEXTOID;
	values[first + 2] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	nulls[first + 2] = tenant ? ' ' : 'n';
	types[first + 3] = BOOLOID;
	values[first + 3] = BoolGetDatum(is_admin(caller));
}

/*
 * A job's owner (InvalidOid if there is no such job), its tenant, and with
 * state not NULL its state, in the caller's memory context.
 */
static Oid
fetch_job(int64 job_id, char **tenant, char **state)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	Oid			owner = InvalidOid;
	bool		isnull;
	MemoryContext cxt = CurrentMemoryContext;

	*tenant = NULL;
	SPI_connect();
	exec_as_owner("SELECT owner::oid, state, tenant FROM ingest_private.upload_jobs WHERE id = $1",
				  1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (state)
			*state = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		*tenant = copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, cxt);
	}
	SPI_finish();
	return owner;
}

/*
 * The owner of a job the caller may see (its own, or any for ingest_admin),
 * and its state in *state when state is not NULL; an ERROR otherwise, the
 * same whether the job does not exist or belongs to someone else.
 */
Oid
jobs_check_visible(int64 job_id, Oid caller, char **state)
{
	Oid			owner;
	char	   *tenant;

	check_schema_version();
	owner = fetch_job(job_id, &tenant, state);
	if (!OidIsValid(owner) || !visible_to(owner, tenant, caller))
		job_not_found(job_id);
	return owner;
}

/*
 * The lock that orders the quota checks of one (role, tenant), held to
 * commit: a role's lock on its own row of pg_authid, with 48 bits of hashes
 * of the tenant beside it, so that another tenant's transaction left open
 * does not hold this one's enqueues (a collision by chance is all but
 * impossible, and one made on purpose would take some 2^48 tries). The
 * advisory tag in the default lock method is out of reach of SQL's advisory
 * locks, which live in the user lock method.
 */
static void
lock_quota(Oid owner, const char *tenant)
{
	LOCKTAG		tag;
	uint32		h1 = 0;
	uint32		h2 = 0;

	if (tenant)
	{
		h1 = hash_bytes((const unsigned char *) tenant, strlen(tenant));
		h2 = hash_bytes_extended((const unsigned char *) tenant, strlen(tenant), 0x1ee7) & 0xFFFF;
	}
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, owner, h1, h2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * May caller see the job job_id (false also when there is none)? For the
 * views over tables a job's rows hang off (ingest.job_errors,
 * ingest.upload_chunks), checked in the same scan as the caller's own
 * conditions, so that none of those is ever evaluated on another's rows
 * before this check; and for ingest.workers, which reads jobs from shared
 * memory. The answer for the last job asked is kept: a job's
 * owner and tenant never change.
 */
bool
jobs_job_visible(int64 job_id, Oid caller)
{
	static int64 last_id = 0;
	static Oid	last_caller = InvalidOid;
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static char *last_tenant = NULL;
	static bool last_visible = false;
	char	   *tenant = identity_session_tenant();
	Oid			owner;
	char	   *job_tenant;

	if (job_id == last_id && caller == last_caller && COMPAT_MY_LXID == last_lxid &&
		((tenant == NULL && last_tenant == NULL) ||
		 (tenant && last_tenant && strcmp(tenant, last_tenant) == 0)))
		return last_visible;

	owner = fetch_job(job_id, &job_tenant, NULL);

	last_visible = OidIsValid(owner) && visible_to(owner, job_tenant, caller);
	last_id = job_id;
	last_caller = caller;
	last_lxid = COMPAT_MY_LXID;
	if (last_tenant)
		pfree(last_tenant);
	last_tenant = tenant ? MemoryContextStrdup(TopMemoryContext, tenant) : NULL;
	return last_visible;
}

/*
 * ingest.max_queued_per_role: the owner's jobs queued or uploading. Checked
 * under a lock on the role (in this database, held to commit) so that
 * concurrent enqueues by one role cannot all slip under the limit.
 */
static void
check_queue_quota(Oid owner, const char *tenant)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(owner), (Datum) 0};
	char		nulls[2] = {' ', tenant ? ' ' : 'n'};
	int64		limit;
	int64		queued;
	bool		isnull;
	IdentitySave save;
	SPIPlanPtr	plan;
	int			rc;

	exec_as_owner("SELECT ingest._role_setting($1, 'ingest.max_queued_per_role')",
				  1, types, values, NULL, true);
	limit = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || limit <= 0)
		return;

	lock_quota(owner, tenant);
	if (tenant)
		values[1] = CStringGetTextDatum(tenant);

	/*
	 * Count with the latest snapshot, not the transaction's: in REPEATABLE
	 * READ or SERIALIZABLE that one may predate jobs the role queued and
	 * committed since (the lock orders only overlapping enqueues), and would
	 * let the role past its quota. Not read-only, so the jobs this
	 * transaction queued itself are counted too.
	 */
	identity_enter_system(&save);
	plan = SPI_prepare("SELECT count(*) FROM ingest_private.upload_jobs "
					   "WHERE owner = $1::regrole AND COALESCE(tenant, '') = COALESCE($2, '') "
					   "  AND state IN ('queued', 'uploading')",
					   2, types);
	if (plan == NULL)
		elog(ERROR, "ingest: could not prepare the quota count: %s",
			 SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot,
							  false, false, 0);
	identity_leave_system(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ingest: quota count failed: %s", SPI_result_code_string(rc));
	queued = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (queued >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 tenant
				 ? errmsg("tenant \"%s\" of role \"%s\" already has " INT64_FORMAT " ingest jobs queued or uploading, the most ingest.max_queued_per_role allows",
						  tenant, GetUserNameFromId(owner, false), queued)
				 : errmsg("role \"%s\" already has " INT64_FORMAT " ingest jobs queued or uploading, the most ingest.max_queued_per_role allows",
						  GetUserNameFromId(owner, false), queued),
				 errhint("Wait for some of them to finish (or cancel them), or ask an administrator to raise the limit with ALTER ROLE ... SET ingest.max_queued_per_role.")));
}

int64
jobs_insert(const JobSpec *spec)
{
	Oid			types[12] = {REGROLEOID, REGCLASSOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
	INT8OID, TEXTOID, INT4OID, INT8OID, INT4OID, TEXTOID};
	Datum		values[12];
	char		nulls[12] = "            ";
	int64		id;
	bool		isnull;

	values[0] = ObjectIdGetDatum(spec->owner);
	values[1] = ObjectIdGetDatum(spec->target);
	values[2] = CStringGetTextDatum(spec->source);
	values[3] = CStringGetTextDatum(job_source_names[spec->source_type]);
	values[4] = JsonbPGetDatum(spec->options);
	values[5] = JsonbPGetDatum(spec->settings);
	values[6] = Int64GetDatum(spec->bytes_total);
	if (spec->bytes_total < 0)
		nulls[6] = 'n';
	values[7] = CStringGetTextDatum(spec->uploading ? "uploading" : "queued");
	values[8] = Int32GetDatum(spec->max_attempts);
	values[9] = Int64GetDatum(spec->timeout_ms);
	values[10] = Int32GetDatum(spec->priority);
	if (spec->tenant)
		values[11] = CStringGetTextDatum(spec->tenant);
	else
		nulls[11] = 'n';

	check_schema_version();
	SPI_connect();
	check_queue_quota(spec->owner, spec->tenant);
	exec_as_owner("INSERT INTO ingest_private.upload_jobs "
				  "(owner, target, source, source_type, options, settings, bytes_total, state, "
				  " max_attempts, timeout, priority, upload_activity_at, tenant) "
				  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
				  "  CASE WHEN $10 > 0 THEN $10 * interval '1 ms' END, $11, "
				  "  CASE WHEN $8 = 'uploading' THEN pg_catalog.clock_timestamp() END, $12) "
				  "RETURNING id",
				  12, types, values, nulls, false);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (spec->data != NULL)
	{
		Oid			dtypes[2] = {INT8OID, BYTEAOID};
		Datum		dvalues[2] = {Int64GetDatum(id), PointerGetDatum(spec->data)};

		exec_as_owner("INSERT INTO ingest_private.job_data (job_id, data) VALUES ($1, $2)",
					  2, dtypes, dvalues, NULL, false);
	}
	SPI_finish();
	return id;
}

/*
 * Cancel a job the caller can see. A queued (or uploading) job ends at once;
 * a running one is flagged in the table (*running is then set, and the
 * caller flags it in shared memory for its worker, which checks between
 * records, once this transaction commits: a cancel rolled back cancels
 * nothing).
 */
bool
jobs_cancel(int64 job_id, Oid caller, bool *running)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	char	   *state;
	bool		result = false;

	(void) jobs_check_visible(job_id, caller, &state);

	SPI_connect();
	if (strcmp(state, "queued") == 0 || strcmp(state, "uploading") == 0)
	{
		exec_as_owner("WITH done AS ("
					  "  UPDATE ingest_private.upload_jobs SET state = 'cancelled', finished_at = pg_catalog.clock_timestamp(), "
					  "    last_error = CASE WHEN state = 'uploading' THEN '" UPLOAD_CANCELLED "' "
					  "                      ELSE 'cancelled by ingest.cancel()' END "
					  "  WHERE id = $1 AND state IN ('queued', 'uploading') RETURNING id)"
					  "SELECT pg_catalog.pg_notify('ingest', pg_catalog.json_build_object("
					  "  'job_id', id, 'state', 'cancelled')::text) FROM done",
					  1, types, values, NULL, false);
		result = (SPI_processed == 1);
	}
	if (!result && (strcmp(state, "running") == 0 || strcmp(state, "queued") == 0))
	{
		bool		isnull;

		exec_as_owner("WITH r AS (SELECT id FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'running'), "
					  "ins AS (INSERT INTO ingest_private.job_cancels (job_id) SELECT id FROM r "
					  "        ON CONFLICT DO NOTHING) "
					  "SELECT count(*) FROM r",
					  1, types, values, NULL, false);
		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) == 1;
		*running = result;
	}
	SPI_finish();
	return result;
}

/*
 * ingest.retry: a failed or cancelled job goes back to the queue with a
 * fresh count of attempts. It resumes from its checkpoint, so rows that
 * earlier attempts committed are not loaded twice. An upload cancelled
 * before finish_upload never had all its bytes: it cannot be queued.
 */
bool
jobs_retry(int64 job_id, Oid caller)
{
	Oid			types[2] = {INT8OID, BOOLOID};
	Datum		values[2] = {Int64GetDatum(job_id)};
	Oid			owner = jobs_check_visible(job_id, caller, NULL);
	bool		result;
	bool		isnull;

	bool		admin = is_admin(caller);
	int			deaths = 0;
	char	   *tenant = NULL;

	SPI_connect();
	exec_as_owner("SELECT state = 'cancelled' AND last_error = '" UPLOAD_CANCELLED "', worker_deaths, tenant "
				  "FROM ingest_private.upload_jobs WHERE id = $1",
				  1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		tenant = copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, CurrentMemoryContext);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("ingest job " INT64_FORMAT " is an upload cancelled before it was finished and cannot be retried", job_id),
					 errhint("Begin a new upload with ingest.begin_upload.")));
		deaths = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}

	/*
	 * A job under which workers died that often may take the server down
	 * again with it: its owner cannot start it over, an administrator can.
	 */
	if (deaths >= ingest_max_worker_deaths && !admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("ingest job " INT64_FORMAT " cannot be retried: the worker running it died %d times",
						job_id, deaths),
				 errdetail("A job whose worker died ingest.max_worker_deaths (%d) times may crash the server again.",
						   ingest_max_worker_deaths),
				 errhint("A member of ingest_admin can retry it after finding the cause in the server log.")));
	check_queue_quota(owner, tenant);
	values[1] = BoolGetDatum(admin);
	exec_as_owner("DELETE FROM ingest_private.job_cancels WHERE job_id = $1", 1, types, values, NULL, false);
	exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', attempts = 0, run_after = NULL, "
				  "  finished_at = NULL, cancel_requested = false, worker_pid = NULL, "
				  "  worker_deaths = CASE WHEN $2 THEN 0 ELSE worker_deaths END "
				  "WHERE id = $1 AND state IN ('failed', 'cancelled')",
				  2, types, values, NULL, false);
	result = (SPI_processed == 1);
	SPI_finish();
	return result;
}

/* ingest.purge: finished jobs older than older_than, the caller's or (admin) all. */
int64
jobs_purge(Interval *older_than, Oid caller)
{
	Oid			types[5];
	Datum		values[5];
	char		nulls[5] = "     ";
	int64		n;
	bool		isnull;

	types[0] = INTERVALOID;
	values[0] = IntervalPGetDatum(older_than);
	caller_params(caller, types, values, nulls, 1);
	SPI_connect();
	exec_as_owner("WITH gone AS ("
				  "  DELETE FROM ingest_private.upload_jobs "
				  "  WHERE state IN ('succeeded', 'failed', 'cancelled') "
				  "    AND finished_at < pg_catalog.now() - $1 AND " CALLER_SQL(2, 3, 4, 5)
				  "  RETURNING id), "
				  "stale AS (DELETE FROM ingest_private.job_cancels WHERE job_id IN (SELECT id FROM gone)) "
				  "SELECT count(*) FROM gone",
				  5, types, values, nulls, false);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * ingest.queue_position: place in the scheduler's order (ingest._queue),
 * 0 for the next job or a running one; false when the job is not waiting.
 */
bool
jobs_queue_position(int64 job_id, Oid caller, int *position)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	char	   *state;
	bool		isnull;
	bool		found = false;

	(void) jobs_check_visible(job_id, caller, &state);
	if (strcmp(state, "running") == 0)
	{
		*position = 0;
		return true;
	}
	if (strcmp(state, "queued") != 0)
		return false;

	SPI_connect();
	exec_as_owner("SELECT place - 1 FROM ingest_private._queue WHERE id = $1", 1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		*position = (int) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/* The installed version of the extension here, or NULL; its OID in *extoid. */
char *
jobs_extension_version(Oid *extoid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	*extoid = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("ingest"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		v = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		*extoid = ((Form_pg_extension) GETSTRUCT(tup))->oid;
		version = isnull ? pstrdup("") : TextDatumGetCString(v);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Sessions calling our functions in a database whose extension was created
 * at an older version than the loaded library's: a clear error rather than
 * one about a missing column.
 */
static void
check_schema_version(void)
{
	Oid			extoid;
	char	   *version = jobs_extension_version(&extoid);

	if (version != NULL && strcmp(version, INGEST_SCHEMA_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"ingest\" is at version %s, but the loaded library needs version %s",
						version, INGEST_SCHEMA_VERSION),
				 errhint("Run ALTER EXTENSION ingest UPDATE.")));
}

/* The extension exists here and is not being created or dropped right now. */
bool
jobs_extension_ready(void)
{
	Oid			nsp;

	if (!OidIsValid(get_extension_oid("ingest", true)))
		return false;
	nsp = get_namespace_oid("ingest", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("upload_jobs", nsp)) &&
		OidIsValid(get_relname_relid("job_errors", nsp));
}

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
	"  RETURNING j.id, j.state) " \
	"SELECT id, state, CASE WHEN state <> 'queued' THEN " \
	"  pg_catalog.pg_notify('ingest', pg_catalog.json_build_object(" \
	"    'job_id', id, 'state', state)::text)::text END " \
	"FROM done"

/* after the update, which sees it: orphans left because a session had them locked */
#define ORPHANS_LEFT_SQL \
	"SELECT EXISTS (SELECT 1 FROM ingest_private.upload_jobs WHERE " ORPHANS_WHERE ")"

int
jobs_requeue_orphans(bool *incomplete)
{
	int			max = ingest_shared->nslots;
	int		   *pids = palloc(sizeof(int) * max);
	int64	   *ids = palloc(sizeof(int64) * max);
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
	LockDatabaseObject(ExtensionRelationId, get_extension_oid("ingest", false),
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
	n = shmem_live_jobs(MyDatabaseId, pids, ids, max);
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

static char *
copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
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
	"SELECT owner::oid, tenant FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'queued' " \
	"FOR NO KEY UPDATE SKIP LOCKED"

#define CLAIM_SQL \
	"UPDATE ingest_private.upload_jobs SET state = 'running', attempts = attempts + 1, " \
	"  started_at = pg_catalog.clock_timestamp(), finished_at = NULL, last_error = NULL, " \
	"  run_after = NULL, worker_pid = pg_catalog.pg_backend_pid() " \
	"WHERE id = $1 " \
	"RETURNING id, owner::oid, target::oid, source, source_type, options, settings, " \
	"  attempts, records_done, rows_inserted, rows_rejected, " \
	"  COALESCE(bytes_total, -1), " CANCEL_PENDING_SQL("upload_jobs") ", max_attempts, " \
	"  COALESCE((EXTRACT(epoch FROM timeout) * 1000)::int8, 0), tenant"

/*
 * Rejected records past the checkpoint were recorded by an attempt that did
 * not commit them; the new attempt reads those records again.
 */
#define DROP_STALE_ERRORS_SQL \
	"WITH stale AS (DELETE FROM ingest_private.job_errors WHERE job_id = $1 AND record_number > $2 RETURNING 1) " \
	"UPDATE ingest_private.upload_jobs SET rows_rejected = rows_rejected - (SELECT count(*) FROM stale) " \
	"WHERE id = $1 RETURNING rows_rejected, " \
	"  (SELECT count(*) FROM ingest_private.job_errors e WHERE e.job_id = $1 AND e.record_number <= $2)"

/*
 * The first candidate in the queue's order that no session has locked, now
 * locked by us; 0 when there is none. Its owner and tenant in *owner and
 * *tenant.
 */
static int64
lock_next_candidate(Oid *owner, char **tenant)
{
	SPITupleTable *candidates;
	uint64		ncandidates;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	exec_as_owner(CANDIDATES_SQL, 0, NULL, NULL, NULL, false);
	candidates = SPI_tuptable;
	ncandidates = SPI_processed;
	for (uint64 i = 0; i < ncandidates; i++)
	{
		values[0] = SPI_getbinval(candidates->vals[i], candidates->tupdesc, 1, &isnull);
		exec_as_owner(LOCK_CANDIDATE_SQL, 1, types, values, NULL, false);
		if (SPI_processed == 1)
		{
			*owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			*tenant = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			return DatumGetInt64(values[0]);
		}
	}
	return 0;
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
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	JobClaim	result = JOB_CLAIM_NONE;
	int64		id;
	Oid			owner = InvalidOid;
	char	   *tenant = NULL;

	LockDatabaseObject(ExtensionRelationId, get_extension_oid("ingest", false),
					   CLAIM_LOCK_SUBID, ExclusiveLock);
	SPI_connect();
	id = lock_next_candidate(&owner, &tenant);
	if (id != 0 && OidIsValid(served_owner) &&
		(owner != served_owner || (tenant == NULL) != (served_tenant == NULL) ||
		 (tenant != NULL && strcmp(tenant, served_tenant) != 0)))
		result = JOB_CLAIM_OTHER_OWNER;
	else if (id != 0)
	{
		const char *type;
		Oid			types[2] = {INT8OID, INT8OID};
		Datum		values[2];

		values[0] = Int64GetDatum(id);
		exec_as_owner(CLAIM_SQL, 1, types, values, NULL, false);
		if (SPI_processed != 1)
			elog(ERROR, "ingest: job " INT64_FORMAT " could not be claimed", id);
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		result = JOB_CLAIM_TAKEN;
		job->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		job->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		job->target = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		job->source = copy_text(tup, desc, 4, caller);
		type = SPI_getvalue(tup, desc, 5);
		job->source_type = JOB_SOURCE_UNKNOWN;
		for (int i = 0; i < lengthof(job_source_names); i++)
			if (strcmp(type, job_source_names[i]) == 0)
				job->source_type = (JobSourceType) i;
		job->options = copy_jsonb(tup, desc, 6, caller);
		job->settings = copy_jsonb(tup, desc, 7, caller);
		job->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		job->records_done = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		job->rows_inserted = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
		job->rows_rejected = DatumGetInt64(SPI_getbinval(tup, desc, 11, &isnull));
		job->bytes_total = DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
		job->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
		job->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
		job->timeout_ms = DatumGetInt64(SPI_getbinval(tup, desc, 15, &isnull));
		job->tenant = copy_text(tup, desc, 16, caller);

		values[0] = Int64GetDatum(job->id);
		values[1] = Int64GetDatum(job->records_done);
		exec_as_owner(DROP_STALE_ERRORS_SQL, 2, types, values, NULL, false);
		job->rows_rejected = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		job->errors_stored = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

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

	/*
	 * Also asked of a database still at an older version, whose jobs wait
	 * for its update: its table is where that version keeps it.
	 */
	if (!OidIsValid(relid))
		return false;
	SPI_connect();
	/* not read-only: the snapshot must see a claim just made */
	exec_as_owner(psprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE state = 'queued')",
						   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													  get_rel_name(relid))),
				  0, NULL, NULL, NULL, false);
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return result;
}

bool
jobs_cancel_requested(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	bool		result = false;

	SPI_connect();
	exec_as_owner("SELECT " CANCEL_PENDING_SQL("j") " FROM ingest_private.upload_jobs j WHERE id = $1",
				  1, types, values, NULL, true);
	if (SPI_processed == 1)
		result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return result;
}

void
jobs_checkpoint(const IngestJob *job, int64 records_done, int64 rows_inserted,
				int64 rows_rejected, int64 bytes_done)
{
	Oid			types[5] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[5];

	values[0] = Int64GetDatum(job->id);
	values[1] = Int64GetDatum(records_done);
	values[2] = Int64GetDatum(rows_inserted);
	values[3] = Int64GetDatum(rows_rejected);
	values[4] = Int64GetDatum(bytes_done);
	SPI_connect();
	exec_as_owner("UPDATE ingest_private.upload_jobs SET records_done = $2, rows_inserted = $3, "
				  "rows_rejected = $4, bytes_done = $5 WHERE id = $1",
				  5, types, values, NULL, false);
	SPI_finish();
}

/*
 * After a transient failure: back to the queue, to be claimed again once
 * delay_ms have passed. Counters are those of committed work.
 */
void
jobs_retry_later(const IngestJob *job, int64 records_done, int64 rows_inserted,
				 int64 rows_rejected, int64 bytes_done, const char *last_error,
				 int64 delay_ms)
{
	Oid			types[7] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, INT8OID};
	Datum		values[7];

	values[0] = Int64GetDatum(job->id);
	values[1] = Int64GetDatum(records_done);
	values[2] = Int64GetDatum(rows_inserted);
	values[3] = Int64GetDatum(rows_rejected);
	values[4] = Int64GetDatum(bytes_done);
	values[5] = CStringGetTextDatum(jobs_clip_message(last_error));
	values[6] = Int64GetDatum(delay_ms);
	SPI_connect();
	exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', records_done = $2, "
				  "  rows_inserted = $3, rows_rejected = $4, bytes_done = $5, last_error = $6, "
				  "  run_after = pg_catalog.clock_timestamp() + $7 * interval '1 ms', worker_pid = NULL "
				  "WHERE id = $1",
				  7, types, values, NULL, false);
	SPI_finish();
}

/* A successful job's stored bytes are no longer needed (unless keep_data). */
void
jobs_drop_data(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};

	SPI_connect();
	exec_as_owner("DELETE FROM ingest_private.job_data WHERE job_id = $1", 1, types, values, NULL, false);
	exec_as_owner("DELETE FROM ingest_private.job_chunks WHERE job_id = $1", 1, types, values, NULL, false);
	SPI_finish();
}

/* Final state, counters and NOTIFY ingest, in the caller's transaction. */
void
jobs_finish(const IngestJob *job, const char *state, int64 records_done,
			int64 rows_inserted, int64 rows_rejected, int64 bytes_done,
			const char *last_error)
{
	Oid			types[7] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";

	values[0] = Int64GetDatum(job->id);
	values[1] = CStringGetTextDatum(state);
	values[2] = Int64GetDatum(records_done);
	values[3] = Int64GetDatum(rows_inserted);
	values[4] = Int64GetDatum(rows_rejected);
	values[5] = Int64GetDatum(bytes_done);
	if (last_error)
		values[6] = CStringGetTextDatum(jobs_clip_message(last_error));
	else
		nulls[6] = 'n';

	SPI_connect();
	exec_as_owner("DELETE FROM ingest_private.job_cancels WHERE job_id = $1", 1, types, values, NULL, false);
	exec_as_owner("WITH done AS ("
				  "  UPDATE ingest_private.upload_jobs SET state = $2, records_done = $3, "
				  "    rows_inserted = $4, rows_rejected = $5, bytes_done = $6, "
				  "    last_error = $7, finished_at = pg_catalog.clock_timestamp(), cancel_requested = false "
				  "  WHERE id = $1 RETURNING id, state) "
				  "SELECT pg_catalog.pg_notify('ingest', pg_catalog.json_build_object("
				  "  'job_id', id, 'state', state)::text) FROM done",
				  7, types, values, nulls, false);
	SPI_finish();
}

void
jobs_record_error(int64 job_id, int64 line, int64 record_number,
				  const char *sqlstate, const char *message, const char *raw_line)
{
	Oid			types[6] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(job_id);
	if (line > 0)
		values[1] = Int64GetDatum(line);
	else
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(sqlstate);
	values[3] = CStringGetTextDatum(jobs_clip_message(message));
	if (raw_line)
		values[4] = CStringGetTextDatum(raw_line);
	else
		nulls[4] = 'n';

	SPI_connect();
	values[5] = Int64GetDatum(record_number);
	exec_as_owner("INSERT INTO ingest_private.job_errors (job_id, line_number, sqlstate, message, raw_line, record_number) "
				  "VALUES ($1, $2, $3, $4, $5, $6)",
				  6, types, values, nulls, false);
	SPI_finish();
}

/* ---------- uploads ---------- */

/*
 * An upload in chunks is a job in state 'uploading' whose bytes arrive as
 * rows of ingest.job_chunks; finish_upload queues it. Every call on an
 * upload first locks its job row, so the calls for one upload run one at
 * a time and bytes_total, the bytes received so far, stays exact however
 * many connections send chunks at once.
 */

/*
 * Lock upload job_id for a call by its owner (finishing: finish_upload,
 * else upload_chunk) and return the bytes received so far; an ERROR
 * unless the caller began the upload and it is still uploading. The
 * caller has SPI connected.
 */
static int64
lock_upload(int64 job_id, Oid caller, bool finishing)
{
	Oid			types[5];
	Datum		values[5];
	char		nulls[5] = "     ";
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Oid			owner;
	char	   *state;
	char	   *source_type;
	char	   *tenant;

	types[0] = INT8OID;
	values[0] = Int64GetDatum(job_id);
	caller_params(caller, types, values, nulls, 1);

	/*
	 * Lock only an upload the caller itself began and that still receives
	 * chunks: a row lock held by a transaction its client leaves open (even
	 * one aborted by an error here) must never be one a worker waits for.
	 * Not read-only: after waiting for the lock, see the row as it is now.
	 */
	exec_as_owner("SELECT owner::oid, state, source_type, COALESCE(bytes_total, 0), tenant "
				  "FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'uploading' "
				  "  AND owner = $2::regrole AND (NOT $3 OR tenant = $4) "
				  "FOR UPDATE",
				  4, types, values, nulls, false);
	if (SPI_processed == 1)
		return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));

	/* why not, without locking */
	exec_as_owner("SELECT owner::oid, state, source_type, COALESCE(bytes_total, 0), tenant "
				  "FROM ingest_private.upload_jobs WHERE id = $1 AND " CALLER_SQL(2, 3, 4, 5),
				  5, types, values, nulls, false);
	if (SPI_processed != 1)
		job_not_found(job_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	owner = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	state = SPI_getvalue(tup, desc, 2);
	source_type = SPI_getvalue(tup, desc, 3);
	tenant = SPI_getvalue(tup, desc, 5);
	if (strcmp(source_type, "chunks") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("ingest job " INT64_FORMAT " is not an upload in chunks", job_id),
				 errhint("ingest.begin_upload starts an upload.")));
	/*
	 * ingest_admin sees every job, but only the role (and tenant) that began
	 * an upload sends its bytes: they are loaded with that session's settings.
	 */
	if (owner != caller || !identity_tenant_matches(tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 tenant
				 ? errmsg("only role \"%s\" with tenant \"%s\", which began upload job " INT64_FORMAT ", may %s",
						  GetUserNameFromId(owner, false), tenant, job_id,
						  finishing ? "finish it" : "send its chunks")
				 : errmsg("only role \"%s\", which began upload job " INT64_FORMAT ", may %s",
						  GetUserNameFromId(owner, false), job_id,
						  finishing ? "finish it" : "send its chunks")));
	if (strcmp(state, "uploading") != 0)
	{
		bool		cancelled = (strcmp(state, "cancelled") == 0);

		if (finishing)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("upload job " INT64_FORMAT " cannot be finished: it is in state \"%s\"", job_id, state),
					 cancelled ? errdetail("It was cancelled before it was finished.")
					 : errdetail("ingest.finish_upload has already queued it."),
					 cancelled ? errhint("Begin a new upload with ingest.begin_upload.")
					 : errhint("Follow it with ingest.wait(" INT64_FORMAT ") or in ingest.upload_jobs.", job_id)));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("upload job " INT64_FORMAT " no longer accepts chunks: it is in state \"%s\"", job_id, state),
				 cancelled ? errdetail("It was cancelled.")
				 : errdetail("ingest.finish_upload has already queued it.")));
	}
	elog(ERROR, "ingest: upload job " INT64_FORMAT " could not be locked", job_id);
	return 0;					/* keep compiler quiet */
}

/*
 * Store chunk seq of an upload; returns the bytes received so far. The
 * same chunk sent again (a client that did not see the first reply) is a
 * no-op; other bytes under the same number are an ERROR, never a silent
 * replacement.
 */
int64
jobs_upload_chunk(int64 job_id, int32 seq, bytea *data, Oid caller)
{
	Oid			types[3] = {INT8OID, INT4OID, BYTEAOID};
	Datum		values[3];
	Oid			utypes[2] = {INT8OID, INT8OID};
	Datum		uvalues[2];
	int64		total;
	bool		isnull;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(seq);
	values[2] = PointerGetDatum(data);

	SPI_connect();
	total = lock_upload(job_id, caller, false);

	/* not read-only: a chunk committed while we waited for the lock must be seen */
	exec_as_owner("SELECT data = $3, pg_catalog.octet_length(data) FROM ingest_private.job_chunks "
				  "WHERE job_id = $1 AND seq = $2",
				  3, types, values, NULL, false);
	if (SPI_processed == 1)
	{
		bool		same = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		int32		stored = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("chunk %d of upload job " INT64_FORMAT " was already received with other bytes",
							seq, job_id),
					 errdetail("The chunk received has %d bytes, this one has %d.",
							   stored, (int) VARSIZE_ANY_EXHDR(data)),
					 errhint("Send the same bytes again, or cancel the upload and begin a new one.")));
	}
	else
	{
		exec_as_owner("INSERT INTO ingest_private.job_chunks (job_id, seq, data) VALUES ($1, $2, $3)",
					  3, types, values, NULL, false);
		total += VARSIZE_ANY_EXHDR(data);

		/*
		 * Only a new chunk is written down and keeps the upload alive: a
		 * chunk sent again changes nothing, so resending one chunk forever
		 * neither grows the tables nor outlives ingest.upload_ttl.
		 */
		uvalues[0] = Int64GetDatum(job_id);
		uvalues[1] = Int64GetDatum(total);
		exec_as_owner("UPDATE ingest_private.upload_jobs SET bytes_total = $2, "
					  "  upload_activity_at = pg_catalog.clock_timestamp() WHERE id = $1",
					  2, utypes, uvalues, NULL, false);
	}
	SPI_finish();
	return total;
}

/*
 * Queue an upload whose chunks 0..n-1 all arrived (and add up to
 * total_bytes, unless that is -1); returns its size.
 */
int64
jobs_finish_upload(int64 job_id, int64 total_bytes, Oid caller)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		nchunks;
	int32		first = 0;
	int32		last = -1;
	int64		size;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	(void) lock_upload(job_id, caller, true);

	exec_as_owner("SELECT count(*), min(seq), max(seq), "
				  "  COALESCE(sum(pg_catalog.octet_length(data)), 0)::int8 "
				  "FROM ingest_private.job_chunks WHERE job_id = $1",
				  1, types, values, NULL, false);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	nchunks = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (nchunks > 0)
	{
		first = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		last = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	}
	size = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));

	/* seq numbers are distinct and >= 0: n chunks are 0..n-1 exactly when the last is n-1 */
	if (nchunks > 0 && last != nchunks - 1)
	{
		int32		missing;

		exec_as_owner("SELECT COALESCE(prev, -1) + 1 FROM ("
					  "  SELECT seq, lag(seq) OVER (ORDER BY seq) AS prev "
					  "  FROM ingest_private.job_chunks WHERE job_id = $1) s "
					  "WHERE seq <> COALESCE(prev, -1) + 1 ORDER BY seq LIMIT 1",
					  1, types, values, NULL, false);
		missing = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chunk %d of upload job " INT64_FORMAT " is missing (chunks %d to %d received)",
						missing, job_id, first, last),
				 errdetail_plural("%d chunk was received.", "%d chunks were received.",
								  (unsigned long) nchunks, (int) nchunks),
				 errhint("Send it with ingest.upload_chunk; the view ingest.upload_chunks lists the chunks received.")));
	}
	if (total_bytes >= 0 && total_bytes != size)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("upload job " INT64_FORMAT " received " INT64_FORMAT " bytes, not the " INT64_FORMAT " given as total_bytes",
						job_id, size, total_bytes),
				 errdetail_plural("%d chunk was received.", "%d chunks were received.",
								  (unsigned long) nchunks, (int) nchunks),
				 errhint("The view ingest.upload_chunks lists each chunk received with its size.")));

	values[1] = Int64GetDatum(size);
	exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', bytes_total = $2 WHERE id = $1",
				  2, types, values, NULL, false);
	SPI_finish();
	return size;
}

/*
 * Uploads that received nothing for longer than ingest.upload_ttl are
 * removed, their chunks with them (ON DELETE CASCADE). Bounded per call,
 * and an upload whose row is locked (a chunk arriving right now) is left
 * alone. Returns how many were removed.
 */
int64
jobs_expire_uploads(void)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(ingest_upload_ttl)};
	int64		n;

	SPI_connect();
	exec_as_owner("DELETE FROM ingest_private.upload_jobs WHERE id IN ("
				  "  SELECT id FROM ingest_private.upload_jobs "
				  "  WHERE state = 'uploading' "
				  "    AND upload_activity_at < pg_catalog.clock_timestamp() - $1 * interval '1 s' "
				  "  ORDER BY upload_activity_at LIMIT 1000 "
				  "  FOR UPDATE SKIP LOCKED)",
				  1, types, values, NULL, false);
	n = (int64) SPI_processed;
	SPI_finish();
	if (n > 0)
		ereport(LOG,
				(errmsg("ingest: removed " INT64_FORMAT " upload(s) that received no chunk for longer than ingest.upload_ttl (%d s)",
						n, ingest_upload_ttl)));
	return n;
}
