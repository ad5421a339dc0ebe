/*
 * ingest.c
 *		Module start-up: settings, shared memory hooks, the launcher.
 *
 * ingest loads CSV files into tables from background workers, as the role
 * that enqueued them. With shared_preload_libraries = 'ingest' the
 * postmaster reserves shared memory and starts the launcher; loaded any
 * other way (CREATE EXTENSION alone) the SQL functions work but no worker
 * runs, and enqueue says so.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"

#include "identity.h"
#include "ingest.h"
#include "launcher.h"
#include "shmem.h"

PG_MODULE_MAGIC;

int			ingest_max_workers = 4;
int			ingest_batch_rows = 10000;
int			ingest_worker_idle_timeout = 30000;
char	   *ingest_allowed_dirs = NULL;
bool		ingest_preloaded = false;
int			ingest_max_attempts = 3;
int			ingest_job_timeout = 0;
double		ingest_max_file_size = 0;
int			ingest_max_record_size = 256 * 1024 * 1024;
int			ingest_upload_ttl = 24 * 3600;
int			ingest_max_queued_per_role = 0;
int			ingest_max_running_per_role = -1;
int			ingest_max_chunks_per_upload = 10000;
int			ingest_max_worker_deaths = 3;
char	   *ingest_tenant_key = NULL;
int			ingest_max_error_rows = 10000;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("ingest.max_workers",
							"Most ingest workers running at once, in all databases.",
							NULL,
							&ingest_max_workers,
							4, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.batch_rows",
							"Records inserted per batch (one executor call).",
							"A session's value is captured at enqueue and used for its jobs.",
							&ingest_batch_rows,
							10000, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.worker_idle_timeout",
							"How long an idle ingest worker waits for a job before it exits.",
							"An idle worker leaves at once when another database needs a worker or a DROP DATABASE wants its database.",
							&ingest_worker_idle_timeout,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ingest.allowed_dirs",
							   "Directories (comma-separated, absolute) whose files ingest.enqueue_file may read.",
							   "Empty: no server file may be loaded.",
							   &ingest_allowed_dirs,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);

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

	/*
	 * In bytes, as the setting is documented; a real rather than an int,
	 * whose bytes would stop at 2 GB. Memory units ('500MB') work as usual.
	 */
	DefineCustomRealVariable("ingest.max_file_size",
							 "Largest source a job may load, in bytes; 0 means no limit.",
							 "Checked at enqueue where the size is known, as uploaded chunks arrive, and by the worker as it reads.",
							 &ingest_max_file_size,
							 0, 0, 1e18,
							 PGC_SUSET, GUC_UNIT_BYTE,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_record_size",
							"Largest CSV record (all its fields) a worker accepts.",
							"A larger record is rejected; a worker never buffers more than this for one record.",
							&ingest_max_record_size,
							256 * 1024 * 1024, 1024, INGEST_MAX_RECORD_SIZE_LIMIT,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.upload_ttl",
							"How long an upload may go without a chunk before it is removed.",
							NULL,
							&ingest_upload_ttl,
							24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_queued_per_role",
							"Jobs a role may have queued or uploading at once; 0 means no limit.",
							"ALTER ROLE ... SET ingest.max_queued_per_role overrides it for one role.",
							&ingest_max_queued_per_role,
							0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_running_per_role",
							"Jobs of one role that may run at once in a database; -1 means half of ingest.max_workers, at least 1.",
							"ALTER ROLE ... SET ingest.max_running_per_role overrides it for one role.",
							&ingest_max_running_per_role,
							-1, -1, MAX_BACKENDS,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_chunks_per_upload",
							"Chunks one upload may have; their numbers run from 0 to this minus 1.",
							"Bounds the rows one upload adds to ingest.job_chunks whatever the chunk size; ingest.max_file_size bounds its bytes.",
							&ingest_max_chunks_per_upload,
							10000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_worker_deaths",
							"Times a job's worker may die under it (a crash, the OOM killer, a restart) before the job fails.",
							"Counted apart from attempts, whatever the job's max_attempts; only an ingest_admin member's ingest.retry starts the count again.",
							&ingest_max_worker_deaths,
							3, 1, INGEST_MAX_ATTEMPTS_LIMIT,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ingest.tenant_key",
							   "Where a session's tenant is read from: a setting, optionally with a path into its JSON value.",
							   "For example app.tenant, or request.jwt.claims->>sub. Empty: jobs are isolated by role only.",
							   &ingest_tenant_key,
							   "",
							   PGC_SUSET, 0,
							   identity_check_tenant_key, NULL, NULL);

	DefineCustomIntVariable("ingest.max_error_rows",
							"Rejected records kept in ingest.job_errors per job.",
							"Past it rejected records are counted in rows_rejected but not kept, so a job's rejections take bounded room whatever max_errors allows.",
							&ingest_max_error_rows,
							10000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("ingest");

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	ingest_preloaded = true;
	shmem_install_hooks();
	launcher_register();
}
