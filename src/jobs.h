/*
 * jobs.h
 *		Every read and state change of ingest.upload_jobs and ingest.job_errors.
 */
#ifndef INGEST_JOBS_H
#define INGEST_JOBS_H

#include "utils/jsonb.h"

typedef struct IngestJob
{
	int64		id;
	Oid			owner;
	Oid			target;
	char	   *source;
	bool		is_file;		/* source_type 'file', else 'data' */
	Jsonb	   *options;
	Jsonb	   *settings;
	int			attempts;
	int64		records_done;	/* checkpoint of an earlier attempt */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		bytes_total;
	bool		cancel_requested;
} IngestJob;

/* Backends, at enqueue. */
extern int64 jobs_insert(Oid owner, Oid target, const char *source, bool is_file,
						 Jsonb *options, Jsonb *settings, int64 bytes_total, bytea *data);
extern bool jobs_cancel(int64 job_id, Oid caller);

/* Workers; each call runs inside the caller's transaction, with SPI connected. */
extern bool jobs_extension_ready(void);
extern int	jobs_requeue_orphans(void);
extern bool jobs_claim(IngestJob *job, bool *more_queued);
extern bool jobs_cancel_requested(int64 job_id);
extern bool jobs_queued_exist(void);
extern void jobs_checkpoint(const IngestJob *job, int64 records_done, int64 rows_inserted,
							int64 rows_rejected, int64 bytes_done);
extern void jobs_finish(const IngestJob *job, const char *state, int64 records_done,
						int64 rows_inserted, int64 rows_rejected, int64 bytes_done,
						const char *last_error);
extern void jobs_record_error(int64 job_id, int64 line, const char *sqlstate,
							  const char *message, const char *raw_line);

#endif							/* INGEST_JOBS_H */
