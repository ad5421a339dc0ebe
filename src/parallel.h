/*
 * parallel.h
 *		One file loaded by several workers: whether a job is, and the
 *		"parallel" option's checks at enqueue.
 */
#ifndef INGEST_PARALLEL_H
#define INGEST_PARALLEL_H

#include "header.h"
#include "jobs.h"
#include "options.h"

/* Parts of one job at most: more would only add bookkeeping. */
#define INGEST_MAX_PARTS	64

extern int	ingest_parallel_min_bytes;
extern int	ingest_parallel_lock_timeout;

extern void parallel_init(void);
extern void parallel_check_enqueue(const IngestOptions *opts, JobSourceType source_type,
								   const SourceHead *head);
extern bool parallel_wanted(const IngestOptions *opts, const IngestJob *job);
extern const char *parallel_unsplittable_head(const IngestOptions *opts, const char *bytes, size_t len);
extern bool parallel_two_phase(const IngestOptions *opts);
extern int	parallel_max_parts(const IngestOptions *opts);
extern int64 parallel_part_bytes(int64 size, int max_parts);

#endif							/* INGEST_PARALLEL_H */
