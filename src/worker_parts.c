/*
 * worker_parts.c
 *		A job loaded by several workers (the option "parallel"): the worker
 *		that claimed it cuts its file into parts and loads them, with the
 *		idle workers of the database that come to help; a helper loads one
 *		part at a time.
 *
 * The job's worker (its coordinator) scans the file once for cut points
 * (split.c) and records the parts (job_parts), then claims them one after
 * another, as helpers do: every worker that runs no job of its own claims a
 * queued part of a running job of the owner and tenant it serves (jobs
 * first: jobs_claim_part is asked only when no job may start), up to
 * ingest.max_running_per_role workers for the owner and tenant, the
 * coordinator included. Each part is a load of its own (loader_start_part),
 * as the owner with the job's captured settings, its checkpoints committed
 * with its rows; its end ('done' with its last rows, or 'failed' with what
 * went wrong) is written by whoever ran it.
 *
 * When no part is left to claim, the coordinator waits for the helpers'
 * parts, takes back the parts of helpers that died, and records the job's
 * outcome with the parts' counters summed: succeeded when every part is
 * done; failed (or retried, for a transient failure) when one failed;
 * cancelled on ingest.cancel. Before a failure, a cancel or a timeout is
 * recorded, the helpers are stopped (the cancel flag of every worker
 * running the job) and waited for, so the counters recorded are what was
 * committed. An attempt after a crash, a retry or ingest.retry finds the
 * parts and loads only those not done, each from its own checkpoint.
 *
 * A job without commit_every is all-or-nothing: each part is one
 * transaction, prepared rather than committed, and the coordinator commits
 * them all once every part is prepared, or rolls them back with the job's
 * failure, cancel or timeout (worker_prepared.c). A part that cannot be
 * prepared beside the others, one whose lock wait outlasted
 * ingest.parallel_lock_timeout (it may wait for a sibling), and a job whose
 * parts rejected more records together than max_errors allows, send the
 * job to one worker: everything is rolled back and the coordinator loads
 * the file alone, which gives exactly the outcome of a load by one worker.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "header.h"
#include "isolate.h"
#include "jobs.h"
#include "loader.h"
#include "options.h"
#include "outcome.h"
#include "parallel.h"
#include "parser.h"
#include "reader.h"
#include "settings.h"
#include "shmem.h"
#include "split.h"
#include "worker_hold.h"
#include "worker_parts.h"
#include "worker_prepared.h"

/* How often the coordinator looks at its helpers' parts while it waits for them. */
#define PARTS_WAIT_MS	100

typedef enum PartResult
{
	PART_DONE,					/* done, or prepared */
	PART_FAILED,				/* failed, or sent the job to one worker */
	PART_STOPPED				/* cancelled, or stopped by the coordinator */
} PartResult;

/*
 * The job's worker has decided to commit the parts of its all-or-nothing
 * job: from then on the job's rows are committed, whatever fails.
 */
static bool decided = false;

/* How the coordinator's part of a job ended. */
typedef enum PartsOutcome
{
	PARTS_RECORDED,				/* the job's outcome is recorded */
	PARTS_SERIAL				/* nothing is loaded: one worker is to load the job */
} PartsOutcome;

static int
live_jobs(int *pids, int64 *jobs, int max)
{
	return shmem_live_jobs(MyDatabaseId, pids, jobs, max);
}

/* A short transaction around the parts' bookkeeping. */
void
parts_begin_bookkeeping(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
parts_end_bookkeeping(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * The file's header, read as a load reads it: one that cannot be read fails
 * the job now, before any part exists, as it fails a load by one worker
 * before any row. (Parts after the first do not read it when the columns
 * option names the columns, and would load their records.) NULL once it is
 * checked.
 */
static HeaderReader *
check_header(HeaderReader *hr, const char *buf, size_t len, bool ended, const char *where)
{
	const CsvpRecord *header;

	if (hr == NULL)
		return NULL;
	header = ended ? header_reader_finish(hr) : header_reader_feed(hr, buf, len);
	if (header == NULL)
		return hr;
	header_check_readable(header, where);
	return NULL;
}

/*
 * Scan the job's source for cut points and record its parts, in the
 * caller's transaction; the number of parts, or 0 when the file is not to
 * be split after all (its first bytes say compressed or UTF-16, or it has
 * no cut point: one part).
 */
static int
split_job(IngestJob *job, const IngestOptions *opts, MemoryContext cxt)
{
	IngestReader *reader = reader_open(job, cxt);
	char	   *buf = MemoryContextAlloc(cxt, INGEST_READ_CHUNK);
	CsvpOptions popts;
	CsvsSplitter *s;
	HeaderReader *hr = NULL;
	const CsvsPoint *points;
	int			npoints;
	int64		size = 0;
	size_t		n;
	int			nparts = 0;
	int			max_parts = parallel_max_parts(opts);

	options_csv(opts, ingest_max_record_size, &popts);
	s = csvs_create(&popts, opts->skip_lines,
					(uint64) parallel_part_bytes(job->bytes_total, max_parts), max_parts);
	if (s == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (opts->header)
		hr = header_reader_create(opts, cxt);
	PG_TRY();
	{
		while ((n = reader_read(reader, buf, INGEST_READ_CHUNK)) > 0)
		{
			CHECK_FOR_INTERRUPTS();
			if (size == 0 && parallel_unsplittable_head(opts, buf, n) != NULL)
				break;
			hr = check_header(hr, buf, n, false, reader_what(reader));
			if (!csvs_feed(s, buf, n))
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			size += n;
		}
		if (n == 0)
			hr = check_header(hr, NULL, 0, true, reader_what(reader));
		if (n == 0 && csvs_finish(s, &points, &npoints) && npoints > 0)
		{
			int64	   *start = palloc(sizeof(int64) * (npoints + 1));
			int64	   *line = palloc(sizeof(int64) * (npoints + 1));
			int64	   *record = palloc(sizeof(int64) * (npoints + 1));

			start[0] = 0;
			line[0] = 1 + opts->skip_lines;
			record[0] = 0;
			for (int i = 0; i < npoints; i++)
			{
				start[i + 1] = (int64) points[i].offset;
				line[i + 1] = points[i].line;
				/* data records: the header is the first record, when there is one */
				record[i + 1] = points[i].record - (opts->header ? 1 : 0);
			}
			nparts = npoints + 1;
			jobs_parts_create(job->id, nparts, start, size, line, record);
		}
	}
	PG_FINALLY();
	{
		csvs_destroy(s);
	}
	PG_END_TRY();
	return nparts;
}

/*
 * One part's load: the header first if its columns need it, then its bytes.
 * gid: the part is prepared under it, not committed.
 */
static void
load_part(IngestJob *pj, const JobPart *part, MemoryContext cxt, int64 max_errors,
		  const char *gid)
{
	IngestLoad *ld = loader_start_part(pj, cxt, part, max_errors, gid);
	IngestReader *reader = reader_open_part(pj, cxt);
	char	   *buf = MemoryContextAlloc(cxt, INGEST_READ_CHUNK);
	size_t		n;
	JobCounters done;

	if (loader_needs_header(ld))
	{
		bool		taken = false;

		while (!taken)
		{
			n = reader_read(reader, buf, INGEST_READ_CHUNK);
			if (n == 0)
				ereport(ERROR,
						(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
						 errmsg("%s ended before its header record", reader_what(reader))));
			taken = loader_take_header(ld, buf, n);
		}
	}
	/* the file's end as enqueued is the last part's end, unless it grew before the cut */
	reader_set_range(reader, part->start_offset, part->end_offset,
					 part->end_offset == pj->bytes_total);
	while ((n = reader_read(reader, buf, INGEST_READ_CHUNK)) > 0)
		loader_feed(ld, buf, n);
	loader_finish(ld, &done);
	if (gid == NULL)
	{
		/* the part is done with its last rows */
		jobs_part_end(pj->id, part->part, &done, JOB_PART_DONE, NULL, NULL);
		loader_commit(ld);
		return;
	}
	loader_commit(ld);
	parts_begin_bookkeeping();
	loader_write_prepared_rejects(ld, &done);
	jobs_part_prepared(pj->id, part->part, &done);
	parts_end_bookkeeping();
}

/*
 * A part of an all-or-nothing job failed: is the job to be loaded by one
 * worker instead? Yes when the part could not be prepared, or waited too
 * long for a lock (maybe a sibling part's, held until the decision), or
 * met a deadlock (maybe with a sibling): no fault of the records. Yes
 * also when a record failed the job (max_errors): parts run side by side,
 * so the one that failed need not be the first bad record of the file,
 * nor the one past max_errors counted from the file's start, which one
 * worker names; and as nothing of the job stays, one worker loses nothing
 * by reading it again.
 */
static bool
sends_to_one_worker(const LoaderOutcome *out)
{
	return out->not_prepared ||
		out->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		out->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		isolate_is_record_error(out->sqlerrcode);
}

/*
 * A part's load raised an error: its transaction is aborted, then the part
 * recorded failed (with the rejected records of the aborted transaction,
 * as a job's failure writes them), or back in the queue when it was
 * stopped. *message in msg_cxt.
 */
static PartResult
part_failed(IngestJob *pj, const JobPart *part, bool two_phase, MemoryContext msg_cxt,
			int *sqlerrcode, char **message)
{
	ErrorData  *edata;
	LoaderOutcome out;

	edata = outcome_abort(msg_cxt);
	loader_describe_failure(edata, &out);
	loader_forget();
	*sqlerrcode = out.sqlerrcode;
	*message = out.last_error;

	parts_begin_bookkeeping();
	/* the abort let go of the job table's hold too */
	(void) hold_retake();
	if (out.cancelled)
	{
		/*
		 * Stopped: the job is ending (cancelled, or another part failed).
		 * Failed without an error of its own, so that no helper claims it
		 * again meanwhile; the job's next attempt takes it back.
		 */
		out.done.rows_rejected = out.rejected_committed;
		jobs_part_end(pj->id, part->part, &out.done, JOB_PART_FAILED, NULL, NULL);
	}
	else if (two_phase && sends_to_one_worker(&out))
	{
		/* no record is at fault: one worker reads them all again */
		JobCounters none = {0};

		jobs_part_end(pj->id, part->part, &none, JOB_PART_SERIAL, out.last_error,
					  unpack_sql_state(out.sqlerrcode));
		jobs_parts_stop(pj->id);
	}
	else
	{
		outcome_keep_rejects(pj->id, &out);
		jobs_part_end(pj->id, part->part, &out.done, JOB_PART_FAILED, out.last_error,
					  unpack_sql_state(out.sqlerrcode));
		/* the job fails: no part of it is to start, and those running stop */
		jobs_parts_stop(pj->id);
	}

	/*
	 * The job stops: the other workers running it are told before this
	 * part's end commits, so that the job's worker, which goes on once no
	 * part runs (loading the file alone, it may be), is never told after.
	 */
	if (!out.cancelled)
		(void) shmem_cancel_job(pj->id);
	parts_end_bookkeeping();
	MemoryContextSwitchTo(msg_cxt);
	return out.cancelled ? PART_STOPPED : PART_FAILED;
}

/*
 * Load one claimed part to its recorded end. max_errors: what is left of
 * the job's once the other parts' committed rejections are taken off.
 */
static PartResult
run_part(IngestJob *job, const IngestOptions *opts, JobPart *part, MemoryContext job_cxt,
		 int *sqlerrcode, char **message)
{
	MemoryContext cxt = AllocSetContextCreate(job_cxt, "ingest part", ALLOCSET_DEFAULT_SIZES);
	IngestJob  *pj = MemoryContextAlloc(cxt, sizeof(IngestJob));
	volatile PartResult result = PART_DONE;
	int64		max_errors = -1;
	bool		two_phase = parallel_two_phase(opts);
	char		gid[PREPARED_GID_LEN];
	char		activity[96];

	snprintf(activity, sizeof(activity), "ingest job " INT64_FORMAT ", part %d", job->id, part->part);
	pgstat_report_activity(STATE_RUNNING, activity);
	*pj = *job;
	pj->done = part->done;
	if (opts->max_errors > 0)
	{
		JobPartsStatus st;

		parts_begin_bookkeeping();
		jobs_parts_status(job->id, &st, cxt);
		parts_end_bookkeeping();
		max_errors = Max(0, opts->max_errors - (st.sum.rows_rejected - part->done.rows_rejected));
	}
	if (two_phase)
	{
		prepared_retire_stale(job->id, part->part);
		prepared_new_gid(gid);
		parts_begin_bookkeeping();
		jobs_part_set_gid(job->id, part->part, gid);
		parts_end_bookkeeping();
	}

	PG_TRY();
	{
		load_part(pj, part, cxt, max_errors, two_phase ? gid : NULL);
	}
	PG_CATCH();
	{
		result = part_failed(pj, part, two_phase, job_cxt, sqlerrcode, message);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(job_cxt);
	MemoryContextDelete(cxt);
	pgstat_report_stat(false);
	return result;
}

/* Every part done: the job succeeds with their sums (or fails if all was rejected). */
static void
succeed(IngestJob *job, const IngestOptions *opts, MemoryContext job_cxt)
{
	JobPartsStatus st;

	parts_begin_bookkeeping();
	jobs_parts_status(job->id, &st, job_cxt);
	if (st.sum.rows_rejected > 0 && st.sum.rows_inserted == 0 && st.sum.rows_skipped == 0)
	{
		/* as for one worker: nothing was written, so a retry starts afresh */
		char	   *message = psprintf("all " INT64_FORMAT " records were rejected; nothing was loaded",
									   st.sum.rows_rejected);

		ereport(LOG, (errmsg("ingest job " INT64_FORMAT " failed: %s", job->id, message)));
		st.sum.records_done = 0;
		jobs_parts_delete(job->id);
		jobs_finish(job, JOB_FAILED, &st.sum, message);
	}
	else
	{
		if (!opts->keep_data)
			jobs_drop_data(job->id);
		if (job->source_type == JOB_SOURCE_LO)
			reader_succeeded(reader_open(job, job_cxt), opts);
		jobs_finish(job, JOB_SUCCEEDED, &st.sum, NULL);
	}
	parts_end_bookkeeping();
}

/*
 * The job ends: no queued part may be claimed any more, then the helpers
 * loading one stop (the cancel flag of every worker running the job; a
 * helper whose claim committed before the parts were stopped has published
 * the job already).
 */
static void
stop_parts(IngestJob *job)
{
	parts_begin_bookkeeping();
	jobs_parts_stop(job->id);
	parts_end_bookkeeping();
	(void) shmem_cancel_job(job->id);
}

/*
 * Claim and load parts until none is left, wait for the helpers', and
 * record the job's outcome. The job stops when a part fails (that part
 * stopped the others: part_failed), when it is cancelled, or at its
 * timeout; once no part runs, its outcome is the failed part's error, the
 * timeout, or the cancel, in that order. An all-or-nothing job commits its
 * prepared parts once all are, rolls them back when it stops, and may find
 * that one worker is to load it (PARTS_SERIAL, nothing recorded).
 */
static PartsOutcome
coordinate(IngestJob *job, const IngestOptions *opts, MemoryContext job_cxt)
{
	bool		two_phase = parallel_two_phase(opts);
	bool		stop = false;
	bool		cancel_seen = false;
	bool		timed_out = false;
	bool		too_many_rejected = false;
	TimestampTz deadline = job->timeout_ms > 0 ?
		TimestampTzPlusMilliseconds(shmem_worker_job_started(), job->timeout_ms) : 0;

	for (;;)
	{
		JobPartsStatus st;
		JobPart		part;
		bool		claimed = false;

		CHECK_FOR_INTERRUPTS();
		parts_begin_bookkeeping();
		if (jobs_cancel_requested(job->id))
			cancel_seen = true;
		if (!stop && !cancel_seen && !shmem_worker_cancel_requested())
			claimed = jobs_part_claim(job->id, &part);
		if (!claimed)
		{
			jobs_parts_requeue(job->id, live_jobs, ingest_shared->nslots, false);
			jobs_parts_status(job->id, &st, job_cxt);
		}
		parts_end_bookkeeping();

		/*
		 * A DROP or ALTER EXTENSION waits for our hold while we wait for
		 * parts, and a helper that prepared a part may wait behind it (it
		 * lets its hold go for the PREPARE): a wait through a latch, which
		 * no deadlock check sees. The hold goes; what follows meets the
		 * extension's fate as any query does.
		 */
		if (!claimed && hold_wanted())
		{
			ereport(LOG,
					(errmsg("ingest job " INT64_FORMAT ": a session waits for the extension's tables; the job's worker lets them go",
							job->id)));
			hold_release();
		}

		if (claimed)
		{
			int			code = 0;
			char	   *msg = NULL;

			/* stopped (a cancel, another part failed), or failed */
			if (run_part(job, opts, &part, job_cxt, &code, &msg) != PART_DONE)
			{
				stop = true;
				stop_parts(job);
			}
			continue;
		}

		if (!stop)
		{
			if (st.failed > 0 || st.serial > 0 || cancel_seen || shmem_worker_cancel_requested())
				stop = true;
			else if (st.done == st.nparts)
			{
				succeed(job, opts, job_cxt);
				return PARTS_RECORDED;
			}
			else if (two_phase && st.prepared + st.done == st.nparts)
			{
				/*
				 * Parts running side by side each had what the others had
				 * not yet rejected: together they may have rejected more
				 * than max_errors, where one worker stops at the record
				 * past it.
				 */
				if (opts->max_errors > 0 && st.sum.rows_rejected > opts->max_errors)
					stop = too_many_rejected = true;
				else
				{
					prepared_decide(job->id);
					decided = true;
					prepared_commit_job(job->id, job_cxt);
					succeed(job, opts, job_cxt);
					return PARTS_RECORDED;
				}
			}
			else if (deadline != 0 && GetCurrentTimestamp() >= deadline)
				stop = timed_out = true;
			if (stop)
				stop_parts(job);
		}
		if (stop && st.running == 0)
		{
			if (two_phase)
			{
				prepared_rollback_job(job->id, job_cxt);
				if (st.serial > 0 || too_many_rejected)
				{
					ereport(LOG,
							(errmsg("ingest job " INT64_FORMAT " is loaded by one worker: %s", job->id,
									too_many_rejected ?
									psprintf("its parts rejected " INT64_FORMAT " records together, more than max_errors = " INT64_FORMAT,
											 st.sum.rows_rejected, opts->max_errors) :
									st.serial_error ? st.serial_error : "a part could not be prepared")));
					return PARTS_SERIAL;
				}
				/* what is recorded is what stays: the failed part's rejections */
				parts_begin_bookkeeping();
				jobs_parts_status(job->id, &st, job_cxt);
				parts_end_bookkeeping();
			}
			if (st.failed_error != NULL)
				outcome_record_parts_failure(job, st.failed_sqlerrcode, st.failed_error, false, &st.sum);
			else if (timed_out)
				outcome_record_parts_failure(job, ERRCODE_QUERY_CANCELED,
											 psprintf("the job ran longer than its timeout of " INT64_FORMAT " ms and was stopped",
													  job->timeout_ms),
											 false, &st.sum);
			else
				outcome_record_parts_failure(job, 0, "failed", true, &st.sum);
			return PARTS_RECORDED;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 PARTS_WAIT_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Run the claimed job in parts, if it is to be: false when it is not (one
 * worker loads it, as any job), true once its outcome is recorded.
 */
bool
parts_run_job(IngestJob *job, MemoryContext job_cxt)
{
	IngestOptions *opts = MemoryContextAllocZero(job_cxt, sizeof(IngestOptions));
	MemoryContext old = MemoryContextSwitchTo(job_cxt);
	int			nparts;
	volatile PartsOutcome outcome = PARTS_RECORDED;

	options_parse(job->options, opts);
	MemoryContextSwitchTo(old);
	if (!parallel_wanted(opts, job))
		return false;

	if (parallel_two_phase(opts))
		prepared_resume(job->id, job_cxt);
	parts_begin_bookkeeping();
	if (jobs_parts_exist(job->id))
	{
		/* a later attempt: what was not done is to do */
		jobs_parts_requeue(job->id, live_jobs, ingest_shared->nslots, true);
		nparts = 1;
	}
	else if (job->done.records_done > 0)
		nparts = 0;				/* begun by one worker: it goes on so */
	else
		nparts = split_job(job, opts, job_cxt);
	parts_end_bookkeeping();
	if (nparts == 0)
		return false;

	shmem_request_db(MyDatabaseId); /* helpers */
	decided = false;
	PG_TRY();
	{
		outcome = coordinate(job, opts, job_cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		JobPartsStatus st;

		edata = outcome_abort(job_cxt);
		if (decided)
			ereport(FATAL,
					(errmsg("ingest job " INT64_FORMAT ": its parts are committed, but its success could not be recorded: %s",
							job->id, edata->message),
					 errdetail("The job's next attempt records it.")));
		stop_parts(job);
		if (parallel_two_phase(opts))
			prepared_rollback_job(job->id, job_cxt);
		parts_begin_bookkeeping();
		jobs_parts_status(job->id, &st, job_cxt);
		parts_end_bookkeeping();
		outcome_record_parts_failure(job, edata->sqlerrcode, edata->message, false, &st.sum);
	}
	PG_END_TRY();
	if (outcome == PARTS_RECORDED)
		return true;

	/* everything is rolled back: the job starts afresh, by this worker alone */
	parts_begin_bookkeeping();
	jobs_parts_give_up(job->id);
	parts_end_bookkeeping();
	memset(&job->done, 0, sizeof(job->done));
	shmem_worker_clear_cancel();
	return false;
}

/* A helper loads the part it claimed (the job is another worker's). */
void
parts_help(IngestJob *job, JobPart *part, MemoryContext job_cxt)
{
	IngestOptions *opts = MemoryContextAllocZero(job_cxt, sizeof(IngestOptions));
	MemoryContext old = MemoryContextSwitchTo(job_cxt);
	int			sqlerrcode;
	char	   *message;

	options_parse(job->options, opts);
	MemoryContextSwitchTo(old);
	(void) run_part(job, opts, part, job_cxt, &sqlerrcode, &message);
	pgstat_report_activity(STATE_IDLE, NULL);
}
