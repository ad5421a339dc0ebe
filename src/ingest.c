/*
 * ingest.c
 *		Module start-up: each module's settings, shared memory hooks, the
 *		launcher.
 *
 * ingest loads CSV files into tables from background workers, as the role
 * that enqueued them. With shared_preload_libraries = 'ingest' the
 * postmaster reserves shared memory and starts the launcher; loaded any
 * other way (CREATE EXTENSION alone) the SQL functions work but no worker
 * runs, and enqueue says so.
 *
 * Each module defines its own settings in its init function, beside the
 * code that reads them; _PG_init only calls them in turn.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"

#include "dropdir.h"
#include "enqueue.h"
#include "identity.h"
#include "joblog.h"
#include "settings.h"
#include "launcher.h"
#include "loader.h"
#include "parallel.h"
#include "reader.h"
#include "shmem.h"
#include "upload.h"
#include "worker.h"

PG_MODULE_MAGIC;

bool		ingest_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	launcher_init();
	worker_init();
	loader_init();
	parallel_init();
	reader_init();
	enqueue_init();
	upload_init();
	dropdir_init();
	identity_init();
	joblog_init();
	MarkGUCPrefixReserved("ingest");

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	ingest_preloaded = true;
	shmem_install_hooks();
	launcher_register();
}
