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

#include "ingest.h"
#include "launcher.h"
#include "shmem.h"

PG_MODULE_MAGIC;

int			ingest_max_workers = 4;
int			ingest_batch_rows = 10000;
int			ingest_worker_idle_timeout = 30000;
char	   *ingest_allowed_dirs = NULL;
bool		ingest_preloaded = false;

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

	MarkGUCPrefixReserved("ingest");

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	ingest_preloaded = true;
	shmem_install_hooks();
	launcher_register();
}
