/*
 * outcome.c
 *		What a failed attempt of a job comes to, recorded through jobs.c.
 *
 * The worker calls this after a load raised an error and its transaction
 * was aborted. The loader describes how far the load got and which record
 * to blame; the attempt then ends the job as cancelled or failed, or, for a
 * failure that another attempt may not meet (a lost race, a lock timeout,
 * a server short of resources, a remote partition out of reach), sends it
 * back to the queue with a backoff. The rejected records of the aborted
 * transaction are written with it. (A successful load records its outcome
 * in its own last transaction, in worker.c.)
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/snapmgr.h"

#include "settings.h"
#include "jobs.h"
#include "loader.h"
#include "outcome.h"

#define RETRY_BASE_MS		1000
#define RETRY_MAX_MS		(300 * 1000)

/*
 * Failures worth another attempt: the transaction lost a race (serialization
 * failure, deadlock), waited too long for a lock, the server ran short of
 * memory, disk or connections, or a remote server (a postgres_fdw
 * partition) could not be reached or dropped the connection. Anything else
 * (a bad record, a missing file, a dropped table) would fail the same way
 * again.
 */
static bool
is_transient(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES ||
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/* Exponential backoff: 1 s, 2 s, 4 s ... at most 5 min, before attempt n + 1. */
static int64
retry_delay_ms(int attempts)
{
	return Min((int64) RETRY_BASE_MS << Min(attempts - 1, 20), (int64) RETRY_MAX_MS);
}

/*
 * A load raised an error: the error copied into cxt, the transaction
 * aborted, and the job's timer stopped before anything waits (the outcome's
 * bookkeeping must not time out). Returns in cxt.
 */
ErrorData *
outcome_abort(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	loader_stop_timer();
	MemoryContextSwitchTo(cxt);
	return edata;
}

/*
 * The rejected records of the aborted transaction, written into job_errors
 * up to ingest.max_error_rows (every one is counted all the same).
 */
void
outcome_keep_rejects(int64 job_id, LoaderOutcome *out)
{
	ListCell   *lc;

	foreach(lc, out->pending_errors)
	{
		RejectedRecord *rr = lfirst(lc);

		if (out->done.errors_stored >= ingest_max_error_rows)
			break;
		jobs_record_error(job_id, rr->line, rr->record_number, rr->sqlstate,
						  rr->message, rr->raw_line);
		out->done.errors_stored++;
	}
}

/* The server log's line of a failed attempt: retried later, or the job's end. */
static void
log_outcome(const IngestJob *job, bool retry, JobState state, const char *message)
{
	if (retry)
		ereport(LOG,
				(errmsg("ingest job " INT64_FORMAT " will be retried in " INT64_FORMAT " ms: %s",
						job->id, retry_delay_ms(job->attempts), message)));
	else
		ereport(LOG, (errmsg("ingest job " INT64_FORMAT " %s: %s", job->id,
							 jobs_state_name(state), message)));
}

static void
record_failure(IngestJob *job, ErrorData *edata)
{
	LoaderOutcome out;
	bool		retry;
	JobState	state;
	char	   *message;
	int64		stored_before;

	loader_describe_failure(edata, &out);
	loader_forget();
	retry = !out.cancelled && !out.timed_out && is_transient(out.sqlerrcode) &&
		job->attempts < job->max_attempts;

	if (out.cancelled)
	{
		state = JOB_CANCELLED;
		message = "cancelled by ingest.cancel()";
	}
	else
	{
		state = JOB_FAILED;
		message = out.last_error;
		if (is_transient(out.sqlerrcode))
			message = psprintf("%s (attempt %d of %d)", message, job->attempts, job->max_attempts);
	}
	log_outcome(job, retry, state, message);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	stored_before = out.done.errors_stored;
	outcome_keep_rejects(job->id, &out);

	/*
	 * The records the next attempt reads again count as rejected only as
	 * far as they are kept: the claim of that attempt forgets them and
	 * takes their number back off rows_rejected (jobs_claim).
	 */
	if (retry)
	{
		out.done.rows_rejected = out.rejected_committed +
			(out.done.errors_stored - stored_before);
		jobs_retry_later(job, &out.done, message, retry_delay_ms(job->attempts));
	}
	else
		jobs_finish(job, state, &out.done, message);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Record a failed attempt. If even that fails, leave: the job, still
 * 'running', is then an orphan that the next worker of this database takes
 * back, and a job that keeps failing that way ends failed after its
 * max_attempts.
 */
void
outcome_record_failure(IngestJob *job, ErrorData *edata)
{
	PG_TRY();
	{
		record_failure(job, edata);
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(FATAL,
				(errmsg("ingest worker could not record the outcome of job " INT64_FORMAT,
						job->id)));
	}
	PG_END_TRY();
}

/*
 * A job loaded in parts did not succeed: one of its parts failed, it was
 * cancelled or ran past its timeout, or its coordinator met an error of its
 * own. The parts committed their rows, counters and rejected records
 * themselves; *done is their sum. As for one worker, a transient failure
 * goes back to the queue (the parts done stay done), anything else ends the
 * job.
 */
void
outcome_record_parts_failure(IngestJob *job, int sqlerrcode, const char *last_error,
							 bool cancelled, const JobCounters *done)
{
	bool		retry = !cancelled && is_transient(sqlerrcode) && job->attempts < job->max_attempts;
	JobState	state = cancelled ? JOB_CANCELLED : JOB_FAILED;
	const char *message = cancelled ? "cancelled by ingest.cancel()" : last_error;

	if (!cancelled && is_transient(sqlerrcode))
		message = psprintf("%s (attempt %d of %d)", message, job->attempts, job->max_attempts);
	log_outcome(job, retry, state, message);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (retry)
		jobs_retry_later(job, done, message, retry_delay_ms(job->attempts));
	else
		jobs_finish(job, state, done, message);
	PopActiveSnapshot();
	CommitTransactionCommand();
}
