/*
 * shmem.c
 *		Shared state of ingest: worker slots, database wake requests, latches.
 *
 * One struct in shared memory, sized at start-up for max_worker_processes
 * slots (the most workers that could ever run, whatever ingest.max_workers
 * says after a reload). It holds plain data and atomics only: latches are
 * PGPROC latches, themselves in shared memory.
 *
 * Backends add a database to the request list when a transaction that queued
 * a job commits; the launcher drains that list, waking an idle worker of the
 * database or starting one. Workers publish their job and progress here for
 * the ingest.workers view and read their cancel flag.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "settings.h"
#include "shmem.h"

IngestShared *ingest_shared = NULL;

static int	my_slot = -1;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(IngestShared, slots),
					mul_size(max_worker_processes, sizeof(IngestWorkerSlot)));
}

static void
request_shmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("ingest", 1);
}

static void
startup_shmem(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ingest_shared = ShmemInitStruct("ingest", shared_size(), &found);
	if (!found)
	{
		memset(ingest_shared, 0, shared_size());
		ingest_shared->lock = &(GetNamedLWLockTranche("ingest"))->lock;
		ingest_shared->nslots = max_worker_processes;
		pg_atomic_init_u64(&ingest_shared->orphan_epoch, 0);
		for (int i = 0; i < ingest_shared->nslots; i++)
		{
			pg_atomic_init_u64(&ingest_shared->slots[i].rows, 0);
			pg_atomic_init_u64(&ingest_shared->slots[i].bytes, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
shmem_install_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_shmem;
}

bool
shmem_available(void)
{
	return ingest_shared != NULL;
}

/* Add a database to the request list; the caller holds the lock. */
static void
add_request_locked(IngestShared *s, Oid dboid)
{
	for (int i = 0; i < s->nrequests; i++)
		if (s->requests[i] == dboid)
			return;
	if (s->nrequests < INGEST_MAX_DB_REQUESTS)
		s->requests[s->nrequests++] = dboid;
	else
		s->rescan_all = true;
}

/*
 * Give a slot back; the caller holds the lock. A job the slot still held is
 * an orphan now: ask for a worker of its database, and bump the epoch that
 * tells idle workers there to look for orphans.
 */
static void
release_slot_locked(IngestShared *s, IngestWorkerSlot *slot)
{
	if (slot->job_id != 0)
	{
		add_request_locked(s, slot->dboid);
		pg_atomic_fetch_add_u64(&s->orphan_epoch, 1);
	}
	memset(slot, 0, offsetof(IngestWorkerSlot, rows));
	slot->state = SLOT_FREE;
	if (s->launcher_latch)
		SetLatch(s->launcher_latch);
}

/* Is the slot's process gone (or never attached)? */
static bool
slot_is_dead(const IngestWorkerSlot *slot)
{
	return slot->state == SLOT_STARTING || slot->pid == 0 || kill(slot->pid, 0) != 0;
}

/* Does a database other than ours wait for a worker? The caller holds the lock. */
static bool
others_waiting_locked(IngestShared *s)
{
	if (s->rescan_all)
		return true;
	for (int i = 0; i < s->nrequests; i++)
		if (s->requests[i] != MyDatabaseId)
			return true;
	return false;
}

/*
 * Wake idle workers of a database, and ask the launcher for one if there is
 * none. Called at commit, so it must not fail: no allocation, no ERROR.
 */
void
shmem_request_db(Oid dboid)
{
	IngestShared *s = ingest_shared;

	if (s == NULL)
		return;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	for (int i = 0; i < s->nslots; i++)
	{
		IngestWorkerSlot *slot = &s->slots[i];

		if (slot->state == SLOT_IDLE && slot->dboid == dboid && slot->latch)
			SetLatch(slot->latch);
	}
	add_request_locked(s, dboid);
	if (s->launcher_latch)
		SetLatch(s->launcher_latch);
	LWLockRelease(s->lock);
}

static void
worker_detach(int code, Datum arg)
{
	IngestShared *s = ingest_shared;

	if (s == NULL || my_slot < 0)
		return;
	/*
	 * Leaving in the middle of a job (FATAL: terminated, or an error outside
	 * any job) leaves the job 'running' until a worker of this database takes
	 * it back: release_slot_locked asks for one.
	 */
	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	release_slot_locked(s, &s->slots[my_slot]);
	LWLockRelease(s->lock);
	my_slot = -1;
}

/*
 * Give the slot back now, before exiting, and with request_again ask for a
 * new worker of this database: a request made while our slot is still taken
 * would be seen as served by us.
 */
void
shmem_worker_leave(bool request_again)
{
	IngestShared *s = ingest_shared;

	if (s == NULL || my_slot < 0)
		return;
	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	release_slot_locked(s, &s->slots[my_slot]);
	if (request_again)
		add_request_locked(s, MyDatabaseId);
	LWLockRelease(s->lock);
	my_slot = -1;
}

/* Take the slot the launcher reserved for this process. */
void
shmem_worker_attach(int slotno)
{
	IngestShared *s = ingest_shared;
	IngestWorkerSlot *slot;

	if (s == NULL || slotno < 0 || slotno >= s->nslots)
		elog(FATAL, "ingest worker started with invalid slot %d", slotno);

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	slot = &s->slots[slotno];
	if (slot->state != SLOT_STARTING)
	{
		LWLockRelease(s->lock);
		elog(FATAL, "ingest worker slot %d is not reserved", slotno);
	}
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->state = SLOT_IDLE;
	slot->job_id = 0;
	slot->cancel_requested = false;
	pg_atomic_write_u64(&slot->rows, 0);
	pg_atomic_write_u64(&slot->bytes, 0);
	my_slot = slotno;
	LWLockRelease(s->lock);

	before_shmem_exit(worker_detach, (Datum) 0);
}

/*
 * Publish the job this worker runs (shmem_worker_end_job clears it): what
 * ingest.workers shows of it besides the progress, which the worker updates
 * after every batch (shmem_worker_progress).
 */
void
shmem_worker_set_job(int64 job_id, Oid owner, bool has_tenant, Oid target, int64 bytes_total,
					 int64 rows_at_start)
{
	IngestWorkerSlot *slot = &ingest_shared->slots[my_slot];

	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	slot->job_id = job_id;
	slot->job_owner = owner;
	slot->job_has_tenant = has_tenant;
	slot->job_target = target;
	slot->bytes_total = bytes_total;
	slot->rows_at_start = rows_at_start;
	slot->state = SLOT_BUSY;
	slot->started_at = GetCurrentTimestamp();
	slot->cancel_requested = false;
	pg_atomic_write_u64(&slot->rows, (uint64) Max(rows_at_start, 0));
	pg_atomic_write_u64(&slot->bytes, 0);
	LWLockRelease(ingest_shared->lock);
}

/* When this worker took its current job (ingest.workers' started_at). */
TimestampTz
shmem_worker_job_started(void)
{
	return ingest_shared->slots[my_slot].started_at;
}

/*
 * An idle worker whose wait timed out leaves, unless it was woken meanwhile:
 * whoever wakes an idle worker does so under the lock, so checking the latch
 * under the lock closes the window in which a wake-up would be lost.
 */
bool
shmem_worker_exit_if_idle(void)
{
	bool		leave;

	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	leave = !MyLatch->is_set;
	if (leave)
	{
		release_slot_locked(ingest_shared, &ingest_shared->slots[my_slot]);
		my_slot = -1;
	}
	LWLockRelease(ingest_shared->lock);
	return leave;
}

/*
 * Before a claim: are more workers running than ingest.max_workers allows
 * (it was lowered with a reload)? Then this one gives its slot back. The
 * launcher starts no worker past the cap, but running workers go from job
 * to job without asking it, so they must see the new cap themselves.
 * Counting and leaving under one lock hold, of several workers deciding at
 * once only the surplus leaves.
 */
bool
shmem_worker_exit_if_surplus(void)
{
	IngestShared *s = ingest_shared;
	int			active = 0;
	bool		leave;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state != SLOT_FREE)
			active++;
	leave = active > ingest_max_workers;
	if (leave)
	{
		release_slot_locked(s, &s->slots[my_slot]);
		my_slot = -1;
	}
	LWLockRelease(s->lock);
	return leave;
}

/*
 * After a job: go idle, or leave when other databases wait for a worker,
 * so one database's long queue cannot starve another. Decided under the
 * lock: a worker that is about to leave must never look idle to the
 * launcher, which would count on it for this database's next job.
 */
bool
shmem_worker_end_job(void)
{
	IngestWorkerSlot *slot = &ingest_shared->slots[my_slot];
	bool		leave;

	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	leave = others_waiting_locked(ingest_shared);
	slot->job_id = 0;
	slot->job_owner = InvalidOid;
	slot->job_target = InvalidOid;
	slot->bytes_total = 0;
	slot->rows_at_start = 0;
	slot->started_at = 0;
	slot->cancel_requested = false;
	if (!leave)
		slot->state = SLOT_IDLE;
	LWLockRelease(ingest_shared->lock);
	return leave;
}

/* Does another database wait for a worker? An idle worker then makes room. */
bool
shmem_worker_others_waiting(void)
{
	bool		others;

	LWLockAcquire(ingest_shared->lock, LW_SHARED);
	others = others_waiting_locked(ingest_shared);
	LWLockRelease(ingest_shared->lock);
	return others;
}

bool
shmem_worker_cancel_requested(void)
{
	/* a plain read: the flag only goes back to false between a job's stages */
	return ingest_shared->slots[my_slot].cancel_requested;
}

/*
 * The job goes on after its parts were stopped (its worker loads it alone
 * now): the flag that stopped them no longer applies. A cancel by
 * ingest.cancel is in the job's row as well, where the load looks.
 */
void
shmem_worker_clear_cancel(void)
{
	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	ingest_shared->slots[my_slot].cancel_requested = false;
	LWLockRelease(ingest_shared->lock);
}

void
shmem_worker_progress(uint64 rows, uint64 bytes)
{
	pg_atomic_write_u64(&ingest_shared->slots[my_slot].rows, rows);
	pg_atomic_write_u64(&ingest_shared->slots[my_slot].bytes, bytes);
}

/*
 * The jobs workers of a database are running, as (pid, job id) pairs: a
 * 'running' job not in this list is an orphan. Pairs, not pids alone, so a
 * pid reused after a restart cannot pass for the job's old worker.
 */
int
shmem_live_jobs(Oid dboid, int *pids, int64 *jobs, int max)
{
	int			n = 0;

	LWLockAcquire(ingest_shared->lock, LW_SHARED);
	for (int i = 0; i < ingest_shared->nslots && n < max; i++)
	{
		IngestWorkerSlot *slot = &ingest_shared->slots[i];

		if (slot->state != SLOT_FREE && slot->dboid == dboid && slot->job_id != 0)
		{
			pids[n] = slot->pid;
			jobs[n] = slot->job_id;
			n++;
		}
	}
	LWLockRelease(ingest_shared->lock);
	return n;
}

/*
 * Free a slot whose process is gone: it never attached (the launcher that
 * reserved it died, or the worker failed at start), or it died without
 * detaching. A job it held is then an orphan (release_slot_locked).
 */
void
shmem_release_dead_slot(int slotno)
{
	IngestShared *s = ingest_shared;
	IngestWorkerSlot *slot = &s->slots[slotno];

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	if (slot->state != SLOT_FREE && slot_is_dead(slot))
		release_slot_locked(s, slot);
	LWLockRelease(s->lock);
}

/* At launcher start: a new launcher has no handles of the old one's workers. */
void
shmem_reset_stale_slots(void)
{
	for (int i = 0; i < ingest_shared->nslots; i++)
		shmem_release_dead_slot(i);
}

/*
 * Changes whenever a worker left in the middle of a job: workers that see it
 * change look for orphans in their database, even when they are idle ones
 * that the launcher woke instead of starting a new worker.
 */
uint64
shmem_orphan_epoch(void)
{
	return pg_atomic_read_u64(&ingest_shared->orphan_epoch);
}

/* Flag a running job for cancellation; true if a worker runs it. */
bool
shmem_cancel_job(int64 job_id)
{
	bool		found = false;

	if (ingest_shared == NULL)
		return false;
	LWLockAcquire(ingest_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ingest_shared->nslots; i++)
	{
		IngestWorkerSlot *slot = &ingest_shared->slots[i];

		if (slot->state == SLOT_BUSY && slot->job_id == job_id && slot->dboid == MyDatabaseId)
		{
			slot->cancel_requested = true;
			if (slot->latch)
				SetLatch(slot->latch);
			found = true;
		}
	}
	LWLockRelease(ingest_shared->lock);
	return found;
}
