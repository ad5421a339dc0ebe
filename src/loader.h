/*
 * loader.h
 *		One load: a job's records, parsed, converted and inserted in batches,
 *		in transactions of the job's owner.
 */
#ifndef INGEST_LOADER_H
#define INGEST_LOADER_H

#include "isolate.h"
#include "jobs.h"
#include "options.h"

typedef struct IngestLoad IngestLoad;
struct IngestDecoder;

/* What a failed attempt leaves to record. */
typedef struct LoaderOutcome
{
	bool		cancelled;		/* stopped by ingest.cancel, not failed */
	bool		timed_out;		/* stopped by the job's timeout */
	int			sqlerrcode;		/* of the error that ended the attempt */
	JobCounters done;			/* as committed by the attempt's transactions, but
								 * rows_rejected: every record rejected */
	int64		rejected_committed; /* rows_rejected as committed */
	char	   *last_error;
	List	   *pending_errors; /* RejectedRecords of the aborted transaction */
	bool		not_prepared;	/* a part's transaction could not be prepared */
} LoaderOutcome;

extern void loader_init(void);
extern void loader_install_hooks(void);

extern IngestLoad *loader_start(IngestJob *job, MemoryContext job_cxt);
extern IngestLoad *loader_start_part(IngestJob *job, MemoryContext job_cxt, const JobPart *part,
									 int64 max_errors, const char *gid);
extern bool loader_needs_header(const IngestLoad *ld);
extern bool loader_take_header(IngestLoad *ld, const char *buf, size_t len);
extern void loader_set_decoder(IngestLoad *ld, struct IngestDecoder *decoder);
extern void loader_feed(IngestLoad *ld, const char *buf, size_t len);
extern void loader_finish(IngestLoad *ld, JobCounters *done);
extern const IngestOptions *loader_options(const IngestLoad *ld);
extern void loader_commit(IngestLoad *ld);
extern void loader_write_prepared_rejects(IngestLoad *ld, JobCounters *done);

extern void loader_describe_failure(ErrorData *edata, LoaderOutcome *out);
extern void loader_forget(void);
extern void loader_stop_timer(void);

#endif							/* INGEST_LOADER_H */
