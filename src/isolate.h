/*
 * isolate.h
 *		Bad records set aside: subtransactions, bisection, rejected rows.
 */
#ifndef INGEST_ISOLATE_H
#define INGEST_ISOLATE_H

#include "batch.h"
#include "insert.h"
#include "options.h"

/* A rejected record, as job_errors holds it. */
typedef struct RejectedRecord
{
	int64		line;
	int64		record_number;	/* data record ordinal, 1-based */
	char		sqlstate[6];
	char	   *message;
	char	   *raw_line;
} RejectedRecord;

/* Where a load's rejected records go. */
typedef struct IngestRejects
{
	const char *where;			/* 'file "/x.csv"' or 'uploaded data', for messages */
	const IngestOptions *opts;	/* max_errors, and how to write a raw line */
	MemoryContext keep_cxt;		/* the job's: pending and fail_message live there */
	int64		count;			/* rejected in the job so far */
	int64		stored;			/* of which written to job_errors */
	int64		stored_committed;	/* of which committed */
	List	   *batch;			/* rejected in this batch, not written yet */
	List	   *pending;		/* rejected in the open transaction, as many as
								 * job_errors may still keep */
	size_t		pending_bytes;	/* their size, bounded (INGEST_BATCH_BYTES) */
	char	   *fail_message;	/* set once more than max_errors were rejected */
} IngestRejects;

extern bool isolate_is_record_error(int sqlerrcode);
extern char *isolate_error_message(ErrorData *edata);
extern RejectedRecord *isolate_describe(IngestRejects *rj, const IngestBatch *b, int i,
										int sqlerrcode, const char *message);
extern void isolate_reject(IngestRejects *rj, IngestBatch *b, int i, int sqlerrcode,
						   const char *message);
extern ErrorData *isolate_run(IngestRejects *rj, void (*fn) (void *arg), void *arg);
extern uint64 isolate_insert(IngestRejects *rj, IngestInsert *ins, IngestBatch *b);
extern void isolate_write(IngestRejects *rj, int64 job_id);
extern void isolate_forget_pending(IngestRejects *rj);
extern void isolate_write_pending(IngestRejects *rj, int64 job_id);

#endif							/* INGEST_ISOLATE_H */
