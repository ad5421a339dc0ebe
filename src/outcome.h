/*
 * outcome.h
 *		What a failed attempt of a job comes to.
 */
#ifndef INGEST_OUTCOME_H
#define INGEST_OUTCOME_H

#include "jobs.h"
#include "loader.h"

extern ErrorData *outcome_abort(MemoryContext cxt);
extern void outcome_keep_rejects(int64 job_id, LoaderOutcome *out);
extern void outcome_record_failure(IngestJob *job, ErrorData *edata);
extern void outcome_record_parts_failure(IngestJob *job, int sqlerrcode, const char *last_error,
										 bool cancelled, const JobCounters *done);

#endif							/* INGEST_OUTCOME_H */
