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

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/guc.h"

#include "enqueue.h"
#include "identity.h"
#include "ingest.h"
#include "launcher.h"
#include "reader.h"
#include "shmem.h"
#include "upload.h"
#include "worker.h"

PG_MODULE_MAGIC;

bool		ingest_preloaded = false;

int			ingest_batch_rows = 10000;
int			ingest_max_record_size = 256 * 1024 * 1024;
int			ingest_max_error_rows = 10000;

void		_PG_init(void);

/*
 * The settings of a load, read by loader.c and by the worker that records
 * a failed load's rejected records.
 */
static void
load_init(void)
{
	DefineCustomIntVariable("ingest.batch_rows",
							"Records inserted per batch (one executor call).",
							"A session's value is captured at enqueue and used for its jobs.",
							&ingest_batch_rows,
							10000, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_record_size",
							"Largest CSV record (all its fields) a worker accepts.",
							"A larger record is rejected; a worker never buffers more than this for one record.",
							&ingest_max_record_size,
							256 * 1024 * 1024, 1024, INGEST_MAX_RECORD_SIZE_LIMIT,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_error_rows",
							"Rejected records kept in ingest.job_errors per job.",
							"Past it rejected records are counted in rows_rejected but not kept, so a job's rejections take bounded room whatever max_errors allows.",
							&ingest_max_error_rows,
							10000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

void
_PG_init(void)
{
	launcher_init();
	worker_init();
	load_init();
	reader_init();
	enqueue_init();
	upload_init();
	identity_init();
	MarkGUCPrefixReserved("ingest");

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	ingest_preloaded = true;
	shmem_install_hooks();
	launcher_register();
}
