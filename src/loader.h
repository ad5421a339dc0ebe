/*
 * loader.h
 *		Records to typed values to batched INSERTs as the job's owner.
 */
#ifndef INGEST_LOADER_H
#define INGEST_LOADER_H

#include "access/tupdesc.h"
#include "jobs.h"

typedef struct LoaderOutcome
{
	bool		cancelled;		/* stopped by ingest.cancel, not failed */
	bool		timed_out;		/* stopped by the job's timeout */
	int			sqlerrcode;		/* of the error that ended the attempt */
	int64		records_done;	/* committed by earlier transactions of this attempt */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		bytes_done;
	int64		errors_stored;	/* rejected records in job_errors, committed */
	char	   *last_error;
	List	   *pending_errors; /* rejected records of the aborted transaction */
} LoaderOutcome;

typedef struct LoaderPendingError
{
	int64		line;
	int64		record_number;	/* data record ordinal, 1-based */
	char		sqlstate[6];
	char	   *message;
	char	   *raw_line;
} LoaderPendingError;

extern void loader_install_hooks(void);
extern void loader_run(IngestJob *job, MemoryContext job_cxt);
extern void loader_describe_failure(ErrorData *edata, LoaderOutcome *out);
extern void loader_forget(void);
extern void loader_stop_timer(void);

/* For the batch scan (batchscan.c). */
extern void loader_batch_begin(TupleDesc desc);
extern bool loader_batch_next(Datum *values, bool *isnull);
extern void loader_batch_rewind(void);

#endif							/* INGEST_LOADER_H */
