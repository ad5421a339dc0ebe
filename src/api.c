/*
 * api.c
 *		The SQL-callable functions: enqueue_data, enqueue_file, cancel, retry,
 *		purge, queue_position, and the live rows of the ingest.workers view.
 *		(Uploads in chunks and large objects are in upload.c.)
 *
 * Enqueueing is fast and does no loading: it validates the options and the
 * caller's privileges on the target (so a job that could never run is an
 * ERROR now, not a failed job later), captures the caller's settings, and
 * inserts the job row. The job row is written as the extension's owner,
 * never as the caller, so that nobody can forge a job owned by someone else.
 *
 * Workers are woken when the enqueuing transaction commits, from an
 * XactCallback: a rolled-back enqueue wakes nobody, and a committed one is
 * seen at once, with no polling.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "api.h"
#include "compat.h"
#include "identity.h"
#include "ingest.h"
#include "jobs.h"
#include "options.h"
#include "reader.h"
#include "shmem.h"
#include "target.h"

PG_FUNCTION_INFO_V1(ingest_enqueue_data);
PG_FUNCTION_INFO_V1(ingest_enqueue_file);
PG_FUNCTION_INFO_V1(ingest_cancel);
PG_FUNCTION_INFO_V1(ingest_worker_status);
PG_FUNCTION_INFO_V1(ingest_xid_is_current);
PG_FUNCTION_INFO_V1(ingest_retry);
PG_FUNCTION_INFO_V1(ingest_wake_workers);
PG_FUNCTION_INFO_V1(ingest_purge);
PG_FUNCTION_INFO_V1(ingest_queue_position);
PG_FUNCTION_INFO_V1(ingest_current_tenant);
PG_FUNCTION_INFO_V1(ingest_tenant_visible);
PG_FUNCTION_INFO_V1(ingest_job_visible);

static bool wake_at_commit = false;
static bool callback_registered = false;

/*
 * Running jobs that ingest.cancel flagged in the table: their workers are
 * told when the transaction commits. Each entry remembers the subtransaction
 * level it was made at, so that ROLLBACK TO SAVEPOINT (or a PL/pgSQL
 * exception block) takes its cancel back, as it takes back the UPDATE.
 * Allocated in TopMemoryContext, emptied at every commit and abort.
 */
typedef struct PendingCancel
{
	int64		job_id;
	int			level;
} PendingCancel;

static List *cancel_at_commit = NIL;

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);

static void
forget_cancels(void)
{
	list_free_deep(cancel_at_commit);
	cancel_at_commit = NIL;
}

static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callback_registered = true;
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (cancel_at_commit != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has called ingest.cancel on a running job")));
			break;
		case XACT_EVENT_PREPARE:
			/* workers of jobs enqueued in it look for work every second */
			wake_at_commit = false;
			break;
		case XACT_EVENT_COMMIT:
			if (wake_at_commit)
				shmem_request_db(MyDatabaseId);
			wake_at_commit = false;
			foreach(lc, cancel_at_commit)
				(void) shmem_cancel_job(((PendingCancel *) lfirst(lc))->job_id);
			forget_cancels();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_at_commit = false;
			forget_cancels();
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, cancel_at_commit)
	{
		PendingCancel *pc = lfirst(lc);

		if (pc->level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			cancel_at_commit = foreach_delete_current(cancel_at_commit, lc);
			pfree(pc);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			pc->level = level - 1;
	}
}

/* Workers of this database are woken when the current transaction commits. */
void
api_wake_at_commit(void)
{
	register_callback();
	wake_at_commit = true;
}

/*
 * Validate and create a job owned by the current role: queued, or
 * uploading (begin_upload). size is -1 when not known yet.
 */
int64
api_enqueue(Oid target, const char *source, JobSourceType source_type, Jsonb *options,
			int64 size, bytea *data, bool uploading)
{
	IngestOptions opts;
	JobSpec		spec;
	int64		id;

	options_parse(options, &opts);
	target_check_enqueue(target, &opts, GetUserId());
	if (size >= 0)
		reader_check_size(size, source_type == JOB_SOURCE_FILE ? psprintf("file \"%s\"", source) :
					   source_type == JOB_SOURCE_LO ? source : "the uploaded data");

	memset(&spec, 0, sizeof(spec));
	spec.owner = GetUserId();
	spec.tenant = identity_require_tenant();
	spec.target = target;
	spec.source = source;
	spec.source_type = source_type;
	spec.uploading = uploading;
	spec.options = options;
	spec.settings = identity_capture_settings();
	spec.bytes_total = size;
	spec.max_attempts = opts.max_attempts > 0 ? opts.max_attempts : ingest_max_attempts;
	spec.timeout_ms = opts.timeout_ms >= 0 ? opts.timeout_ms : ingest_job_timeout;
	spec.priority = opts.priority;
	spec.data = data;
	id = jobs_insert(&spec);

	if (!uploading)
		api_wake_at_commit();

	if (!ingest_preloaded || !shmem_available())
		ereport(WARNING,
				(errmsg("ingest is not in shared_preload_libraries: no worker will run job " INT64_FORMAT, id),
				 errhint("Add ingest to shared_preload_libraries and restart the server; queued jobs then run.")));
	return id;
}

/* An ERROR naming argument argno when it is NULL. */
void
api_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/* NULL options mean the defaults, as '{}' does. */
Jsonb *
api_options_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return PG_GETARG_JSONB_P(argno);
}

Datum
ingest_enqueue_data(PG_FUNCTION_ARGS)
{
	bytea	   *data;
	int64		size;

	api_not_null(fcinfo, 0, "target table");
	api_not_null(fcinfo, 1, "data");
	data = PG_GETARG_BYTEA_PP(1);
	size = VARSIZE_ANY_EXHDR(data);

	PG_RETURN_INT64(api_enqueue(PG_GETARG_OID(0),
								psprintf("uploaded data (" INT64_FORMAT " bytes)", size),
								JOB_SOURCE_DATA, api_options_arg(fcinfo, 2), size, data, false));
}

Datum
ingest_enqueue_file(PG_FUNCTION_ARGS)
{
	char	   *path;
	char	   *resolved;
	int64		size;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target table and path must not be NULL")));

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to load a file on the database server"),
				 errdetail("Only superusers and members of pg_read_server_files may use ingest.enqueue_file."),
				 errhint("Send the file's bytes with ingest.enqueue_data instead.")));

	path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	resolved = reader_resolve_path(path, &size);

	PG_RETURN_INT64(api_enqueue(PG_GETARG_OID(0), resolved, JOB_SOURCE_FILE,
								api_options_arg(fcinfo, 2), size, NULL, false));
}

Datum
ingest_cancel(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	bool		running = false;
	bool		result = jobs_cancel(job_id, GetUserId(), &running);

	if (running)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		PendingCancel *pc = palloc(sizeof(PendingCancel));

		pc->job_id = job_id;
		pc->level = GetCurrentTransactionNestLevel();
		register_callback();
		cancel_at_commit = lappend(cancel_at_commit, pc);
		MemoryContextSwitchTo(old);
	}
	PG_RETURN_BOOL(result);
}

Datum
ingest_retry(PG_FUNCTION_ARGS)
{
	bool		queued = jobs_retry(PG_GETARG_INT64(0), GetUserId());

	if (queued)
		api_wake_at_commit();
	PG_RETURN_BOOL(queued);
}

/* Called by upgrade scripts: jobs that waited for the update start at its commit. */
Datum
ingest_wake_workers(PG_FUNCTION_ARGS)
{
	api_wake_at_commit();
	PG_RETURN_VOID();
}

Datum
ingest_purge(PG_FUNCTION_ARGS)
{
	Interval	zero = {0};
	Interval   *older_than;

	api_not_null(fcinfo, 0, "older_than");
	older_than = PG_GETARG_INTERVAL_P(0);
	if (DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(older_than),
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));
	PG_RETURN_INT64(jobs_purge(older_than, GetUserId()));
}

Datum
ingest_queue_position(PG_FUNCTION_ARGS)
{
	int			position;

	if (!jobs_queue_position(PG_GETARG_INT64(0), GetUserId(), &position))
		PG_RETURN_NULL();
	PG_RETURN_INT32(position);
}

/* One row per worker; job details only where the caller may see the job. */
Datum
ingest_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			userid = GetUserId();
	Oid			admin = get_role_oid("ingest_admin", true);
	bool		see_all = superuser() || (OidIsValid(admin) && has_privs_of_role(userid, admin));
	IngestWorkerSlot *copy;
	int			n = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (!shmem_available())
		return (Datum) 0;

	/* copy under the lock, look names up after */
	copy = palloc(sizeof(IngestWorkerSlot) * ingest_shared->nslots);
	LWLockAcquire(ingest_shared->lock, LW_SHARED);
	for (int i = 0; i < ingest_shared->nslots; i++)
	{
		IngestWorkerSlot *slot = &ingest_shared->slots[i];

		if (slot->state == SLOT_FREE || slot->pid == 0)
			continue;
		memcpy(&copy[n], slot, offsetof(IngestWorkerSlot, rows));
		pg_atomic_init_u64(&copy[n].rows, pg_atomic_read_u64(&slot->rows));
		pg_atomic_init_u64(&copy[n].bytes, pg_atomic_read_u64(&slot->bytes));
		n++;
	}
	LWLockRelease(ingest_shared->lock);

	for (int i = 0; i < n; i++)
	{
		IngestWorkerSlot *slot = &copy[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		char	   *datname = get_database_name(slot->dboid);
		bool		visible = slot->job_id != 0 &&
			(see_all || (slot->job_owner == userid && jobs_job_visible(slot->job_id, userid)));

		values[0] = Int32GetDatum(slot->pid);
		if (datname)
		{
			NameData   *name = palloc(sizeof(NameData));

			namestrcpy(name, datname);
			values[1] = NameGetDatum(name);
		}
		else
			nulls[1] = true;
		if (visible)
		{
			values[2] = Int64GetDatum(slot->job_id);
			values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->rows));
			values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->bytes));
			values[5] = TimestampTzGetDatum(slot->started_at);
		}
		else
			nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* For ingest.wait: a job queued by this very transaction cannot start yet. */
Datum
ingest_xid_is_current(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(DatumGetTransactionId(PG_GETARG_DATUM(0))));
}

/* ingest.current_tenant(): this session's tenant as ingest reads it, or NULL. */
Datum
ingest_current_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant = identity_session_tenant();

	if (tenant == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(tenant));
}

/*
 * ingest._tenant_visible(tenant): may this session see a job of this
 * tenant, as far as tenants go (the policies add the role)?
 */
Datum
ingest_tenant_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(identity_tenant_matches(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/* ingest._job_visible(job_id): may this session see the job (for job_errors, upload_chunks)? */
Datum
ingest_job_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(jobs_job_visible(PG_GETARG_INT64(0), GetUserId()));
}
