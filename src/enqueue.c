/*
 * enqueue.c
 *		Create a job: validate its options and target, capture the
 *		submitter's context, insert it, and wake workers when the
 *		transaction commits.
 *
 * Shared by the SQL functions that create jobs (api.c: enqueue_data,
 * enqueue_file; upload.c: begin_upload, enqueue_lo; dropdir.c: enqueue_dir)
 * and by those that make workers act at commit (retry, finish_upload, cancel
 * of a running job).
 *
 * Enqueueing is fast and does no loading: it validates the options and the
 * caller's privileges on the target (so a job that could never run is an
 * ERROR now, not a failed job later), captures the caller's settings, and
 * inserts the job row. The job row is written as the extension's owner,
 * never as the caller, so that nobody can forge a job owned by someone else.
 *
 * Workers are woken when the enqueuing transaction commits, from an
 * XactCallback: a rolled-back enqueue wakes nobody, and a committed one is
 * seen at once, with no polling. A cancel of a running job reaches its
 * worker (through shared memory) the same way.
 */
#include "postgres.h"

#include <limits.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "atcommit.h"
#include "compat.h"
#include "enqueue.h"
#include "conflict.h"
#include "header.h"
#include "identity.h"
#include "settings.h"
#include "jobs.h"
#include "options.h"
#include "parallel.h"
#include "reader.h"
#include "shmem.h"
#include "target.h"

int			ingest_max_attempts = 3;
int			ingest_job_timeout = 0;
int			ingest_max_queued_per_role = 0;

static bool wake_at_commit = false;
static bool callback_registered = false;

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PREPARE:
			/* workers of jobs enqueued in it look for work every second */
			wake_at_commit = false;
			break;
		case XACT_EVENT_COMMIT:
			if (wake_at_commit)
				shmem_request_db(MyDatabaseId);
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/* GUCs of a job's creation: defaults captured into the job, and the queue's quota */
void
enqueue_init(void)
{
	DefineCustomIntVariable("ingest.max_attempts",
							"Attempts a job gets when it fails transiently or its worker vanishes.",
							"Serialization failures, deadlocks, lock timeouts and lack of resources are retried with exponential backoff; other errors fail the job at once. Captured at enqueue; the max_attempts option overrides it.",
							&ingest_max_attempts,
							3, 1, INGEST_MAX_ATTEMPTS_LIMIT,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.job_timeout",
							"Longest one attempt of a job may run; 0 means no limit.",
							"Captured at enqueue; the timeout option overrides it.",
							&ingest_job_timeout,
							0, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* read by jobs_insert and jobs_retry through ingest._role_setting */
	DefineCustomIntVariable("ingest.max_queued_per_role",
							"Jobs a role may have queued or uploading at once; 0 means no limit.",
							"ALTER ROLE ... SET ingest.max_queued_per_role overrides it for one role.",
							&ingest_max_queued_per_role,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

/* Workers of this database are woken when the current transaction commits. */
void
enqueue_wake_at_commit(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		callback_registered = true;
	}
	wake_at_commit = true;
}

/*
 * The worker running job_id is told of its cancel when the current
 * transaction commits (jobs_cancel flagged it in the table): a cancel
 * rolled back, or taken back by ROLLBACK TO SAVEPOINT, cancels nothing.
 */
static void
tell_cancel(void *arg)
{
	(void) shmem_cancel_job(*(int64 *) arg);
}

void
enqueue_cancel_at_commit(int64 job_id)
{
	int64	   *id = MemoryContextAlloc(TopMemoryContext, sizeof(int64));

	*id = job_id;
	at_commit(tell_cancel, id, "called ingest.cancel on a running job");
}

/*
 * The on_conflict option against the table: its arbiter exists, and the
 * role may update what "update" would update (cols NULL: not known yet).
 */
static void
check_conflict(Oid target, const IngestOptions *opts, const IngestColumns *cols)
{
	Relation	rel;
	IngestConflict c;

	if (opts->on_conflict == INGEST_CONFLICT_ERROR)
		return;
	rel = target_open(target, AccessShareLock);
	conflict_resolve(rel, opts, &c, CurrentMemoryContext);
	conflict_check_privileges(rel, &c, cols, GetUserId());
	relation_close(rel, AccessShareLock);
}

/* The target and its columns as the options name them, and the conflict key. */
static void
check_target(Oid target, const IngestOptions *opts)
{
	IngestColumns cols;
	bool		cols_known;

	cols_known = target_check_enqueue(target, opts, GetUserId(), &cols);
	check_conflict(target, opts, cols_known ? &cols : NULL);
}

/*
 * Validate and create a job owned by the current role: queued, or
 * uploading (begin_upload). size is -1 when not known yet.
 */
int64
enqueue_job(Oid target, const char *source, JobSourceType source_type, Jsonb *options,
			int64 size, bytea *data, bool uploading, const SourceHead *head)
{
	IngestOptions opts;
	JobSpec		spec;
	int64		id;

	options_parse(options, &opts);
	check_target(target, &opts);
	if (size >= 0)
		reader_check_size(size, source_type == JOB_SOURCE_FILE ? psprintf("file \"%s\"", source) :
					   source_type == JOB_SOURCE_LO ? source : "the uploaded data");
	if (head != NULL)
		header_check_early(target, &opts, head);
	parallel_check_enqueue(&opts, source_type, head);

	memset(&spec, 0, sizeof(spec));
	spec.owner = GetUserId();
	spec.tenant = identity_require_tenant();
	spec.target = target;
	spec.source = source;
	spec.source_type = source_type;
	spec.state = uploading ? JOB_UPLOADING : JOB_QUEUED;
	spec.options = options;
	spec.settings = identity_capture_settings();
	spec.bytes_total = size;
	spec.max_attempts = opts.max_attempts > 0 ? opts.max_attempts : ingest_max_attempts;
	spec.timeout_ms = opts.timeout_ms >= 0 ? opts.timeout_ms : ingest_job_timeout;
	spec.priority = opts.priority;
	spec.data = data;
	id = jobs_insert(&spec);

	if (!uploading)
		enqueue_wake_at_commit();

	if (!ingest_preloaded || !shmem_available())
		ereport(WARNING,
				(errmsg("ingest is not in shared_preload_libraries: no worker will run job " INT64_FORMAT, id),
				 errhint("Add ingest to shared_preload_libraries and restart the server; queued jobs then run.")));
	return id;
}

/* An ERROR naming argument argno of a SQL function when it is NULL. */
void
enqueue_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/* NULL options mean the defaults, as '{}' does. */
Jsonb *
enqueue_options_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return PG_GETARG_JSONB_P(argno);
}

/*
 * Files on the database server are for superusers and members of
 * pg_read_server_files only (enqueue_file, enqueue_dir): COPY FROM a file
 * asks the same, and the worker asks again of the job's owner.
 */
void
enqueue_check_server_files(const char *function)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to load a file on the database server"),
				 errdetail("Only superusers and members of pg_read_server_files may use %s.", function),
				 errhint("Send the file's bytes with ingest.enqueue_data instead.")));
}

/*
 * What enqueue_job checks of the target and the options, alone: for a
 * caller that creates its jobs later, or none (enqueue_dir on a folder with
 * no new file still refuses a bad call).
 */
void
enqueue_check_target(Oid target, Jsonb *options)
{
	IngestOptions opts;

	options_parse(options, &opts);
	check_target(target, &opts);
	parallel_check_enqueue(&opts, JOB_SOURCE_FILE, NULL);
}
