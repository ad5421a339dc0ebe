/*
 * jobs.h
 *		The jobs service: the only code that reads or writes ingest's tables
 *		(upload_jobs, job_errors, job_cancels, job_data, job_chunks, dir_files,
 *		job_parts).
 *
 * Six files, one header, as pgvector's hnsw*.c share hnsw.h:
 *	jobs.c			a job's life: create, claim, checkpoint, outcome, cancel,
 *					retry, purge; the only place a job's state changes
 *	jobs_queue.c	the scheduler's side: the next job to claim, jobs left by
 *					vanished workers, whether any wait
 *	jobs_access.c	who may see and act on a job; quotas
 *	jobs_data.c		a job's stored bytes: uploads in chunks, what the
 *					reader reads back, and discarding them
 *	jobs_dir.c		the files of directories enqueue_dir has enqueued
 *	jobs_parts.c	the parts of a job that several workers load
 *	jobs_prepared.c	their prepared transactions (jobs without commit_every)
 */
#ifndef INGEST_JOBS_H
#define INGEST_JOBS_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"

/* A job's state (upload_jobs.state); jobs_state_name gives the column's text. */
typedef enum JobState
{
	JOB_UPLOADING,				/* begin_upload: receiving chunks */
	JOB_QUEUED,
	JOB_RUNNING,
	JOB_SUCCEEDED,
	JOB_FAILED,
	JOB_CANCELLED
} JobState;

/* Where a job's bytes come from (upload_jobs.source_type). */
typedef enum JobSourceType
{
	JOB_SOURCE_FILE,			/* a file on the server */
	JOB_SOURCE_DATA,			/* ingest.job_data */
	JOB_SOURCE_CHUNKS,			/* ingest.job_chunks */
	JOB_SOURCE_LO,				/* a large object */
	JOB_SOURCE_UNKNOWN			/* a value this library does not know: the job fails */
} JobSourceType;

/* What a job has done, as its row counts it. */
typedef struct JobCounters
{
	int64		records_done;	/* data records inserted, rejected or skipped */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		rows_skipped;	/* went in without error but wrote no row (a conflict) */
	int64		bytes_done;
	int64		errors_stored;	/* rejected records kept in job_errors (not a column) */
} JobCounters;

/* A job to create. */
typedef struct JobSpec
{
	Oid			owner;
	const char *tenant;			/* NULL: none (ingest.tenant_key not set) */
	Oid			target;
	const char *source;
	JobSourceType source_type;
	JobState	state;			/* JOB_QUEUED, or JOB_UPLOADING for begin_upload */
	Jsonb	   *options;
	Jsonb	   *settings;
	int64		bytes_total;	/* -1: unknown */
	int			max_attempts;
	int64		timeout_ms;		/* 0: none */
	int			priority;
	bytea	   *data;			/* JOB_SOURCE_DATA: the bytes, else NULL */
} JobSpec;

/* A claimed job, as a worker runs it. */
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
	JobCounters done;			/* as earlier attempts' checkpoints left them */
	int64		bytes_total;
	bool		cancel_requested;
	int			max_attempts;
	int64		timeout_ms;		/* 0: no limit */
} IngestJob;

/* A part of a job that several workers load (job_parts), as its row has it. */
typedef struct JobPart
{
	int			part;			/* 0, 1, ... in file order */
	int64		start_offset;	/* its bytes in the source: [start, end) */
	int64		end_offset;
	int64		first_line;		/* physical line its first record starts on */
	int64		first_record;	/* data records of the parts before it */
	JobCounters done;			/* its own, as its last commit left them */
} JobPart;

typedef enum JobPartEnd
{
	JOB_PART_DONE,
	JOB_PART_FAILED,			/* with its error; without one: stopped, not at fault */
	JOB_PART_SERIAL				/* could not be prepared beside the other parts: the
								 * job is to be loaded by one worker */
} JobPartEnd;

/* A part's prepared transaction (all-or-nothing jobs loaded in parts). */
typedef struct JobPreparedPart
{
	int64		job_id;
	int			part;
	char	   *state;			/* the part's: 'done' means committed by decision */
	char	   *gid;
	bool		exists;			/* still prepared (in pg_prepared_xacts) */
} JobPreparedPart;

/* How a job's parts stand. */
typedef struct JobPartsStatus
{
	int			nparts;
	int			queued;
	int			running;
	int			prepared;
	int			done;
	int			failed;
	int			serial;
	JobCounters sum;			/* the parts' counters summed */
	char	   *failed_error;	/* the first error of a failed part (NULL: only stopped ones) */
	int			failed_sqlerrcode;
	char	   *serial_error;	/* why a part sent the job to one worker */
} JobPartsStatus;

typedef enum JobClaim
{
	JOB_CLAIM_NONE,				/* nothing may start now */
	JOB_CLAIM_TAKEN,			/* *job is ours, 'running' */
	JOB_CLAIM_OTHER_OWNER		/* the next job is another owner's */
} JobClaim;

/*
 * The jobs that live workers of this database run: fills pids[i] and
 * jobs[i], at most max of them, and returns how many. Shared memory is the
 * caller's to read (jobs_requeue_orphans).
 */
typedef int (*JobsLiveFn) (int *pids, int64 *jobs, int max);

/*
 * Every function runs in the caller's transaction, opening its own SPI
 * connection (nested if the caller has one), and copies what it returns
 * into the caller's memory context.
 */

/* jobs.c: a job's life */
extern const char *jobs_state_name(JobState state);
extern char *jobs_clip_message(const char *message);
extern int64 jobs_insert(const JobSpec *spec);
extern bool jobs_cancel(int64 job_id, Oid caller, bool *running);
extern bool jobs_retry(int64 job_id, Oid caller);
extern int64 jobs_purge(Interval *older_than, Oid caller);
extern bool jobs_queue_position(int64 job_id, Oid caller, int *position);
extern bool jobs_cancel_requested(int64 job_id);
extern void jobs_checkpoint(const IngestJob *job, const JobCounters *done);
extern void jobs_retry_later(const IngestJob *job, const JobCounters *done,
							 const char *last_error, int64 delay_ms);
extern void jobs_finish(const IngestJob *job, JobState state, const JobCounters *done,
						const char *last_error);
extern void jobs_record_error(int64 job_id, int64 line, int64 record_number,
							  const char *sqlstate, const char *message, const char *raw_line);

/* jobs_queue.c: claims and orphans (workers) */
extern JobClaim jobs_claim(IngestJob *job, Oid served_owner, const char *served_tenant,
						   bool *more_queued);
extern int	jobs_requeue_orphans(JobsLiveFn live_jobs, int max_live, bool *incomplete);
extern bool jobs_queued_exist(void);
extern bool jobs_claim_part(IngestJob *job, JobPart *part, Oid served_owner,
							const char *served_tenant);
extern bool jobs_other_part_waits(Oid served_owner, const char *served_tenant);

/* jobs_parts.c: the parts of a job that several workers load */
extern bool jobs_parts_exist(int64 job_id);
extern void jobs_parts_create(int64 job_id, int n, const int64 *start, int64 size,
							  const int64 *first_line, const int64 *first_record);
extern bool jobs_part_claim(int64 job_id, JobPart *part);
extern void jobs_part_drop_stale_errors(int64 job_id, JobPart *part);
extern void jobs_parts_requeue(int64 job_id, JobsLiveFn live_jobs, int max_live, bool failed_too);
extern void jobs_part_checkpoint(int64 job_id, int part, const JobCounters *c);
extern void jobs_part_end(int64 job_id, int part, const JobCounters *c, JobPartEnd end,
						  const char *last_error, const char *sqlstate);
extern void jobs_parts_status(int64 job_id, JobPartsStatus *st, MemoryContext cxt);
extern void jobs_parts_delete(int64 job_id);
extern void jobs_parts_stop(int64 job_id);

extern void jobs_part_prepared(int64 job_id, int part, const JobCounters *c);

/* jobs_prepared.c: the prepared transactions of all-or-nothing jobs' parts */
/*
 * The prepared transactions of ingest's parts in this database, as
 * pg_prepared_xacts x shows them: ingest's form of identifier, prepared
 * by the workers' role (the bootstrap superuser).
 */
#define JOBS_OUR_PREPARED_WHERE \
	"x.database = pg_catalog.current_database() AND x.gid ~ '^ingest:[0-9a-f]{32}$' " \
	"AND x.owner = (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10) "
extern void jobs_part_set_gid(int64 job_id, int part, const char *gid);
extern void jobs_parts_decide(int64 job_id);
extern List *jobs_parts_gids(int64 job_id, MemoryContext cxt);
extern void jobs_part_unprepare(int64 job_id, int part, const char *state);
extern void jobs_parts_forget_gids(int64 job_id);
extern Datum jobs_prepared_ours(MemoryContext cxt);
extern bool jobs_job_active(int64 job_id);
extern List *jobs_prepared_orphans(Datum ours, MemoryContext cxt);
extern void jobs_parts_give_up(int64 job_id);
extern char *jobs_part_stale_gid(int64 job_id, int part, MemoryContext cxt);

/* jobs_access.c: who may see a job */
extern bool jobs_job_visible(int64 job_id, Oid caller);

/* jobs_data.c: uploads in chunks, their expiry, and the stored bytes */
extern int64 jobs_upload_chunk(int64 job_id, int32 seq, bytea *data, Oid caller,
							   Oid *target, Jsonb **options);
extern int64 jobs_finish_upload(int64 job_id, int64 total_bytes, Oid caller);
extern int64 jobs_expire_uploads(void);
extern void jobs_drop_data(int64 job_id);
extern int64 jobs_discard(int64 job_id, Oid caller);
extern int64 jobs_sweep_failed_data(void);
extern struct varlena *jobs_stored_data(int64 job_id, MemoryContext cxt);
extern void jobs_stored_chunks(int64 job_id, int64 *count, int32 *last, int64 *size);
extern struct varlena *jobs_stored_chunk(int64 job_id, int32 seq, MemoryContext cxt);

/* jobs_dir.c: the files enqueue_dir has enqueued */
extern void jobs_dir_lock(const char *dir);
extern bool *jobs_dir_sync(const char *dir, int n, char **names, int64 *sizes, TimestampTz *mtimes);
extern bool jobs_dir_remember(const char *dir, const char *name, int64 size, TimestampTz mtime,
							  int64 job_id, Oid owner, const char *tenant);
extern bool jobs_dir_identity(int64 job_id, int64 *size, TimestampTz *mtime);

#endif							/* INGEST_JOBS_H */
