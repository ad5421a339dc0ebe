/*
 * shmem.h
 *		Shared state of ingest: worker slots, database wake requests, latches.
 */
#ifndef INGEST_SHMEM_H
#define INGEST_SHMEM_H

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

typedef enum IngestSlotState
{
	SLOT_FREE = 0,
	SLOT_STARTING,				/* reserved by the launcher, process not yet attached */
	SLOT_IDLE,					/* attached, waiting for a job */
	SLOT_BUSY					/* running a job */
} IngestSlotState;

typedef struct IngestWorkerSlot
{
	IngestSlotState state;
	pid_t		pid;
	Oid			dboid;
	Latch	   *latch;			/* the worker's PGPROC latch, in shared memory */
	int64		job_id;			/* 0 when not running a job */
	Oid			job_owner;
	bool		job_has_tenant; /* the job belongs to a tenant of its owner */
	Oid			job_target;
	int64		bytes_total;	/* the source's size; -1: unknown */
	int64		rows_at_start;	/* rows earlier attempts committed (rows counts them too) */
	TimestampTz started_at;
	bool		cancel_requested;
	/* progress, written by the worker after every batch, read without the lock */
	pg_atomic_uint64 rows;
	pg_atomic_uint64 bytes;
} IngestWorkerSlot;

#define INGEST_MAX_DB_REQUESTS 64

typedef struct IngestShared
{
	LWLock	   *lock;			/* protects everything below but the atomics */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan_all;		/* request list overflowed: try every database */
	pg_atomic_uint64 orphan_epoch;	/* bumped when a worker leaves in the middle of a job */
	int			nrequests;
	Oid			requests[INGEST_MAX_DB_REQUESTS];	/* databases that may have queued jobs */
	int			nslots;
	IngestWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} IngestShared;

extern IngestShared *ingest_shared;

extern void shmem_install_hooks(void);
extern bool shmem_available(void);

/* Ask for a worker in a database (or wake an idle one there). */
extern void shmem_request_db(Oid dboid);

/* Worker side. */
extern void shmem_worker_attach(int slotno);
extern void shmem_worker_leave(bool request_again);
extern void shmem_worker_set_job(int64 job_id, Oid owner, bool has_tenant, Oid target, int64 bytes_total,
								 int64 rows_at_start);
extern TimestampTz shmem_worker_job_started(void);
extern bool shmem_worker_exit_if_idle(void);
extern bool shmem_worker_exit_if_surplus(void);
extern bool shmem_worker_end_job(void);
extern bool shmem_worker_others_waiting(void);
extern bool shmem_worker_cancel_requested(void);
extern void shmem_worker_clear_cancel(void);
extern void shmem_worker_progress(uint64 rows, uint64 bytes);
extern int	shmem_live_jobs(Oid dboid, int *pids, int64 *jobs, int max);
extern void shmem_reset_stale_slots(void);
extern void shmem_release_dead_slot(int slotno);
extern uint64 shmem_orphan_epoch(void);

/* Backends. */
extern bool shmem_cancel_job(int64 job_id);

#endif							/* INGEST_SHMEM_H */
