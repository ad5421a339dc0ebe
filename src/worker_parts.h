/*
 * worker_parts.h
 *		A job loaded by several workers: its own worker's side and a helper's.
 */
#ifndef INGEST_WORKER_PARTS_H
#define INGEST_WORKER_PARTS_H

#include "jobs.h"

extern void parts_begin_bookkeeping(void);
extern void parts_end_bookkeeping(void);
extern bool parts_run_job(IngestJob *job, MemoryContext job_cxt);
extern void parts_help(IngestJob *job, JobPart *part, MemoryContext job_cxt);

#endif							/* INGEST_WORKER_PARTS_H */
