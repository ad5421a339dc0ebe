/*
 * worker_prepared.h
 *		The prepared transactions of an all-or-nothing job loaded in parts.
 */
#ifndef INGEST_WORKER_PREPARED_H
#define INGEST_WORKER_PREPARED_H

/* "ingest:" and 32 hex digits */
#define PREPARED_GID_LEN	40

extern void prepared_new_gid(char *gid);
extern void prepared_retire_stale(int64 job_id, int part);
extern void prepared_decide(int64 job_id);
extern void prepared_commit_job(int64 job_id, MemoryContext cxt);
extern void prepared_rollback_job(int64 job_id, MemoryContext cxt);
extern void prepared_resume(int64 job_id, MemoryContext cxt);
extern void prepared_sweep(void);
extern void prepared_sweep_gone(void);

#endif							/* INGEST_WORKER_PREPARED_H */
