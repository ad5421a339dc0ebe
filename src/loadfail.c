/*
 * loadfail.c
 *		After an error escaped a load (loader.c) and its transaction was
 *		aborted: what the attempt comes to, for the worker to record. Where
 *		the load was, which record to blame (the one being converted, the one
 *		the INSERT failed on, or the lines of an AFTER trigger's batch), and
 *		the rejected records of the aborted transaction.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "insert.h"
#include "isolate.h"
#include "loader.h"
#include "loader_internal.h"
#include "parallel.h"
#include "parser.h"

static Interval *
ms_interval(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return iv;
}

/*
 * The record to blame for an error with max_errors 0 (nothing caught it), or
 * -1; *message is the error as the record's. An AFTER trigger (a foreign
 * key, say) runs after every row of the batch: then *range says which lines.
 */
static int
blamed_row(IngestLoad *ld, ErrorData *edata, char **message, char **range)
{
	IngestBatch *b = &ld->batch;
	int			bad;

	*range = NULL;
	if (b->recs == NULL)
		return -1;
	if (ld->phase == PHASE_CONVERT && ld->pos_row >= 0)
	{
		*message = loadbatch_conversion_message(ld, edata);
		return ld->pos_row;
	}
	if (ld->phase != PHASE_INSERT)
		return -1;
	*message = isolate_error_message(edata);
	bad = insert_failed_row(&ld->ins, b);
	if (bad < 0)
		*range = psprintf("lines " INT64_FORMAT " to " INT64_FORMAT,
						  b->recs[b->lo]->line, b->recs[b->hi - 1]->line);
	return bad;
}

/*
 * After an error escaped the load and the transaction was aborted: what to
 * record. Call before loader_forget.
 */
void
loader_describe_failure(ErrorData *edata, LoaderOutcome *out)
{
	IngestLoad *ld = loader_active();
	int			bad;
	char	   *message = NULL;
	char	   *range;

	memset(out, 0, sizeof(*out));
	out->sqlerrcode = edata->sqlerrcode;
	if (ld == NULL)
	{
		out->last_error = isolate_error_message(edata);
		return;
	}

	out->cancelled = ld->cancelled || loader_watch_cancelled();
	out->not_prepared = ld->preparing;
	out->timed_out = loader_job_timed_out() && !ld->cancelled && edata->sqlerrcode == ERRCODE_QUERY_CANCELED;
	out->done = ld->committed;
	out->rejected_committed = ld->committed.rows_rejected;

	/*
	 * Every record rejected counts, those of the aborted transaction too
	 * (the one past max_errors, say); job_errors keeps them up to
	 * ingest.max_error_rows, as a successful job's would.
	 */
	out->done.rows_rejected = ld->rejects.count;
	out->pending_errors = ld->rejects.pending;

	if (loader_watch_lock_waited())
	{
		/* a part's lock wait, maybe for a sibling part: no record is to blame */
		out->sqlerrcode = ERRCODE_LOCK_NOT_AVAILABLE;
		out->last_error = psprintf("%s, near line " INT64_FORMAT ": waited longer than ingest.parallel_lock_timeout (%d ms) for a lock",
								   ld->where, csvp_line(ld->parser), ingest_parallel_lock_timeout);
	}
	else if (ld->rejects.fail_message)
		out->last_error = pstrdup(ld->rejects.fail_message);
	else if (out->cancelled)
		/* no record is to blame, not even the one the executor was on */
		out->last_error = isolate_error_message(edata);
	else if (out->timed_out)
		out->last_error = psprintf("%s, near line " INT64_FORMAT ": the job ran longer than its timeout of %s and was stopped",
								   ld->where, csvp_line(ld->parser),
								   DatumGetCString(DirectFunctionCall1(interval_out,
																	   IntervalPGetDatum(ms_interval(ld->job->timeout_ms)))));
	else if ((bad = blamed_row(ld, edata, &message, &range)) >= 0)
	{
		/*
		 * A bad value, a constraint or a trigger's complaint is the record's
		 * fault: it is listed as the one rejected record. An error that is
		 * not (a serialization failure, a lock timeout, out of memory) only
		 * says where the load was: the record is not bad, and an attempt
		 * that retries it may well load it.
		 */
		if (isolate_is_record_error(edata->sqlerrcode))
		{
			out->pending_errors = lappend(out->pending_errors,
										  isolate_describe(&ld->rejects, &ld->batch, bad,
														   edata->sqlerrcode, message));
			out->done.rows_rejected++;
		}
		out->last_error = psprintf("%s, line " INT64_FORMAT ": %s", ld->where,
								   ld->batch.recs[bad]->line, message);
	}
	else if (range != NULL)
		out->last_error = psprintf("%s, %s: %s", ld->where, range, message);
	else
		out->last_error = isolate_error_message(edata);
}
