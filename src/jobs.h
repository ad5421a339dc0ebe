/*
 * jobs.h
 *		Every read and state change of ingest.upload_jobs and ingest.job_errors.
 */
#ifndef INGEST_JOBS_H
#define INGEST_JOBS_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* Where a job's bytes come from (upload_jobs.source_type). */
typedef enum JobSourceType
{
	JOB_SOURCE_FILE,			/* a file on the server */
	JOB_SOURCE_DATA,			/* ingest.job_data */
	JOB_SOURCE_CHUNKS,			/* ingest.job_chunks */
	JOB_SOURCE_LO,				/* a large object */
	JOB_SOURCE_UNKNOWN			/* a value this library does not know: the job fails */
} JobSourceType;

extern const char *const job_source_names[];

/* A job to create. */
typedef struct JobSpec
{
	Oid			owner;
	const char *tenant;			/* NULL: none (ingest.tenant_key not set) */
	Oid			target;
	const char *source;
	JobSourceType source_type;
	bool		uploading;		/* state 'uploading' rather than 'queued' */
	Jsonb	   *options;
	Jsonb	   *settings;
	int64		bytes_total;	/* -1: unknown */
	int			max_attempts;
	int64		timeout_ms;		/* 0: none */
	int			priority;
	bytea	   *data;			/* JOB_SOURCE_DATA: the bytes, else NULL */
} JobSpec;

/* How far a load got: what a checkpoint or an outcome records. */
typedef struct JobCounters
{
	int64		records_done;	/* data records inserted or rejected */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		bytes_done;
	int64		errors_stored;	/* rejected records written to job_errors */
} JobCounters;

typedef struct IngestJob
{
	int64		id;
	Oid			owner;
	char	   *tenant;			/* NULL: none */
	Oid			target;
	char	   *source;
	JobSourceType source_type;
	Jsonb	   *options;
	Jsonb	   *settings;
	int			attempts;
	int64		records_done;	/* checkpoint of an earlier attempt */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		errors_stored;	/* rejected records in job_errors (committed) */
	int64		bytes_total;
	bool		cancel_requested;
	int			max_attempts;
	int64		timeout_ms;		/* 0: no limit */
} IngestJob;

extern char *jobs_clip_message(const char *message);

/* Backends, at enqueue. */
extern int64 jobs_insert(const JobSpec *spec);
extern bool jobs_cancel(int64 job_id, Oid caller, bool *running);
extern bool jobs_retry(int64 job_id, Oid caller);
extern int64 jobs_purge(Interval *older_than, Oid caller);
extern bool jobs_queue_position(int64 job_id, Oid caller, int *position);
extern Oid	jobs_check_visible(int64 job_id, Oid caller, char **state);
extern int	jobs_exec_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
							   const char *nulls, bool read_only);

/* Workers; each call runs inside the caller's transaction, with SPI connected. */
extern bool jobs_extension_ready(void);
extern char *jobs_extension_version(Oid *extoid);
extern int	jobs_requeue_orphans(bool *incomplete);

typedef enum JobClaim
{
	JOB_CLAIM_NONE,				/* nothing may start now */
	JOB_CLAIM_TAKEN,			/* *job is ours, 'running' */
	JOB_CLAIM_OTHER_OWNER		/* the next job is another owner's */
} JobClaim;

extern JobClaim jobs_claim(IngestJob *job, Oid served_owner, const char *served_tenant,
						   bool *more_queued);
extern bool jobs_job_visible(int64 job_id, Oid caller);
extern bool jobs_cancel_requested(int64 job_id);
extern bool jobs_queued_exist(void);
extern void jobs_checkpoint(const IngestJob *job, int64 records_done, int64 rows_inserted,
							int64 rows_rejected, int64 bytes_done);
extern void jobs_retry_later(const IngestJob *job, int64 records_done, int64 rows_inserted,
							 int64 rows_rejected, int64 bytes_done, const char *last_error,
							 int64 delay_ms);
extern void jobs_drop_data(int64 job_id);
extern void jobs_finish(const IngestJob *job, const char *state, int64 records_done,
						int64 rows_inserted, int64 rows_rejected, int64 bytes_done,
						const char *last_error);
extern void jobs_record_error(int64 job_id, int64 line, int64 record_number,
							  const char *sqlstate, const char *message, const char *raw_line);

/* Uploads in chunks (begin_upload, upload_chunk, finish_upload) and their expiry. */
extern int64 jobs_upload_chunk(int64 job_id, int32 seq, bytea *data, Oid caller);
extern int64 jobs_finish_upload(int64 job_id, int64 total_bytes, Oid caller);
extern int64 jobs_expire_uploads(void);

#endif							/* INGEST_JOBS_H */
