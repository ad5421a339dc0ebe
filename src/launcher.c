/*
 * launcher.c
 *		The static background worker that starts per-database workers.
 *
 * Registered at postmaster start when ingest is in shared_preload_libraries.
 * It connects to no database; it sleeps on its latch, which backends set
 * when a transaction that queued a job commits (and workers set when they
 * leave). On each wake it serves the request list in shared memory: a
 * database with an idle (or starting) worker is woken; otherwise a new
 * worker is started there if fewer than ingest.max_workers run. A request it
 * cannot serve yet stays listed; workers that see it leave after their job
 * so the cap is shared between databases.
 *
 * At start it lists every database that accepts connections, so jobs queued
 * before a restart, or left running by a crash, are picked up with nobody
 * calling anything; a worker in a database without the extension exits at
 * once.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "launcher.h"
#include "shmem.h"

/* Handles of the workers we started, by slot: to notice ones that never attached. */
static BackgroundWorkerHandle **handles = NULL;

/* Databases waiting for room in the shared request list. */
static List *overflow = NIL;

/*
 * When we last said that no background worker slot was free: said again at
 * most every NO_SLOT_WARN_MS while the shortage lasts. Under a shortage
 * workers keep starting in the slots that free up and then ask in vain for
 * colleagues, so "once until a start succeeds" would be said over and over.
 */
#define NO_SLOT_WARN_MS		(5 * 60 * 1000)
static TimestampTz warned_no_slot_at = 0;

int			ingest_max_workers = 4;

/* GUCs of the launcher */
void
launcher_init(void)
{
	DefineCustomIntVariable("ingest.max_workers",
							"Most ingest workers running at once, in all databases.",
							NULL,
							&ingest_max_workers,
							4, 0, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

void
launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "ingest");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ingest_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "ingest launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "ingest launcher");
	RegisterBackgroundWorker(&bgw);
}

static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	ingest_shared->launcher_pid = 0;
	ingest_shared->launcher_latch = NULL;
	LWLockRelease(ingest_shared->lock);
}

/* Every database that accepts connections, as candidates for a worker. */
static void
list_all_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext old;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			old = MemoryContextSwitchTo(TopMemoryContext);
			overflow = list_append_unique_oid(overflow, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
}

/* Forget workers that stopped without detaching (they failed before attaching, or died). */
static void
reap_workers(void)
{
	IngestShared *s = ingest_shared;

	for (int i = 0; i < s->nslots; i++)
	{
		pid_t		pid;

		if (handles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(handles[i]);
		handles[i] = NULL;
		shmem_release_dead_slot(i);
	}
}

static bool
start_worker(int slotno, Oid dboid)
{
	BackgroundWorker bgw;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	bool		ok;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "ingest");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "ingest_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "ingest worker for database %u", dboid);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "ingest worker");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	bgw.bgw_notify_pid = MyProcPid;

	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&bgw, &handle);
	MemoryContextSwitchTo(old);
	if (ok)
		handles[slotno] = handle;
	return ok;
}

/* Move overflowed databases into the shared list as room allows; lock held. */
static void
take_overflow(IngestShared *s)
{
	while (overflow != NIL && s->nrequests < INGEST_MAX_DB_REQUESTS)
	{
		Oid			db = linitial_oid(overflow);
		bool		listed = false;

		overflow = list_delete_first(overflow);
		for (int k = 0; k < s->nrequests; k++)
			listed |= (s->requests[k] == db);
		if (!listed)
			s->requests[s->nrequests++] = db;
	}
}

/*
 * Serve one database's request, the lock held: wake its idle worker, or
 * start one if the cap and a bgworker slot allow. false: not yet.
 */
static bool
serve_database(IngestShared *s, Oid db)
{
	int			active = 0;
	int			free_slot = -1;
	bool		has_idle = false;

	for (int k = 0; k < s->nslots; k++)
	{
		IngestWorkerSlot *slot = &s->slots[k];

		if (slot->state == SLOT_FREE)
		{
			if (free_slot < 0 && handles[k] == NULL)
				free_slot = k;
			continue;
		}
		active++;
		if (slot->dboid == db && (slot->state == SLOT_IDLE || slot->state == SLOT_STARTING))
		{
			has_idle = true;
			if (slot->state == SLOT_IDLE && slot->latch)
				SetLatch(slot->latch);
		}
	}
	if (has_idle)
		return true;

	if (active >= ingest_max_workers || free_slot < 0)
	{
		/* idle workers of other databases make room when they see this */
		for (int k = 0; k < s->nslots; k++)
			if (s->slots[k].state == SLOT_IDLE && s->slots[k].dboid != db &&
				s->slots[k].latch)
				SetLatch(s->slots[k].latch);
		return false;
	}
	s->slots[free_slot].state = SLOT_STARTING;
	s->slots[free_slot].dboid = db;
	s->slots[free_slot].pid = 0;
	if (start_worker(free_slot, db))
		return true;

	s->slots[free_slot].state = SLOT_FREE;
	if (warned_no_slot_at == 0 ||
		TimestampDifferenceExceeds(warned_no_slot_at, GetCurrentTimestamp(), NO_SLOT_WARN_MS))
	{
		ereport(LOG,
				(errmsg("ingest launcher: no free background worker slot; queued jobs wait"),
				 errhint("Raise max_worker_processes; ingest needs one slot per running worker.")));
		warned_no_slot_at = GetCurrentTimestamp();
	}
	return false;
}

/*
 * Serve what the request list asks for; returns true if some request
 * could not be served yet (no room under the cap, or no free bgworker slot).
 */
static bool
serve_requests(void)
{
	IngestShared *s = ingest_shared;
	bool		waiting = false;
	int			i = 0;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	if (s->rescan_all)
	{
		s->rescan_all = false;
		LWLockRelease(s->lock);
		list_all_databases();
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
	}
	take_overflow(s);

	while (i < s->nrequests)
	{
		if (!serve_database(s, s->requests[i]))
		{
			waiting = true;
			i++;
			continue;
		}
		/* served: drop it from the list, keeping the others in arrival order */
		memmove(&s->requests[i], &s->requests[i + 1],
				sizeof(Oid) * (s->nrequests - i - 1));
		s->nrequests--;
	}
	LWLockRelease(s->lock);
	return waiting || overflow != NIL;
}

void
ingest_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("ingest launcher");

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(BackgroundWorkerHandle *) * ingest_shared->nslots);

	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	ingest_shared->launcher_pid = MyProcPid;
	ingest_shared->launcher_latch = MyLatch;
	LWLockRelease(ingest_shared->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);

	/* a launcher that died left no handles behind: settle its slots now */
	shmem_reset_stale_slots();
	list_all_databases();

	for (;;)
	{
		bool		waiting;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		reap_workers();
		waiting = serve_requests();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 waiting ? 1000L : 60000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
