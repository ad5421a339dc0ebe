/*
 * loader.c
 *		One load: a job's records, in batches, in transactions of its owner.
 *
 * The worker opens a load (loader_start), feeds it the source's bytes
 * (loader_feed) and ends it (loader_finish, then loader_commit once the
 * outcome is recorded in the same transaction). In between, the parser cuts
 * the bytes into records, a batch of them is converted (convert.c) and
 * inserted (insert.c) as the owner, and bad records are set aside
 * (isolate.c) up to max_errors. This file owns what spans batches: the
 * transactions, the owner's identity and settings in them, checkpoints every
 * commit_every records, the job's timeout and cancel, and, when an error
 * escapes, a description of where the load was and which record to blame.
 *
 * A batch ends at ingest.batch_rows records, at a commit_every boundary, or
 * when the text the parser holds or the values to convert would pass
 * INGEST_BATCH_BYTES / INGEST_BATCH_VALUES, so a worker's memory stays
 * bounded whatever the records' sizes, the column count and batch_rows.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "convert.h"
#include "decode.h"
#include "header.h"
#include "identity.h"
#include "settings.h"
#include "insert.h"
#include "isolate.h"
#include "loader.h"
#include "loader_internal.h"
#include "multiinsert.h"
#include "parallel.h"
#include "parser.h"
#include "shmem.h"
#include "target.h"
#include "worker_hold.h"

int			ingest_batch_rows = 10000;
int			ingest_max_record_size = 256 * 1024 * 1024;
int			ingest_max_error_rows = 10000;

static IngestLoad *active = NULL;

static IngestLoad *start_load(IngestJob *job, MemoryContext job_cxt, const JobPart *part,
							  int64 max_errors,
							  const char *gid);

/*
 * The job's timeout fires as statement_timeout does: a query cancel that the
 * next CHECK_FOR_INTERRUPTS (ours between records, the executor's, a
 * sleeping trigger's) turns into an ERROR; the flag tells that error apart.
 */
static TimeoutId job_timeout_id;
static volatile sig_atomic_t job_timed_out = false;

static void
job_timeout_handler(void)
{
	job_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/*
 * Stop the timer; a cancel it raised that no check has seen yet is void.
 * The flag stays until loader_forget, for loader_describe_failure.
 */
void
loader_stop_timer(void)
{
	disable_timeout(job_timeout_id, false);
	if (job_timed_out)
		QueryCancelPending = false;
}

/*
 * The settings of a load, read here and by the worker that records a failed
 * load's rejected records.
 */
void
loader_init(void)
{
	DefineCustomIntVariable("ingest.batch_rows",
							"Records inserted per batch (one executor call).",
							"A session's value is captured at enqueue and used for its jobs.",
							&ingest_batch_rows,
							10000, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_record_size",
							"Largest CSV record (all its fields) a worker accepts.",
							"A larger record is rejected; a worker never buffers more than this for one record.",
							&ingest_max_record_size,
							256 * 1024 * 1024, 1024, INGEST_MAX_RECORD_SIZE_LIMIT,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_error_rows",
							"Rejected records kept in ingest.job_errors per job.",
							"Past it rejected records are counted in rows_rejected but not kept, so a job's rejections take bounded room whatever max_errors allows.",
							&ingest_max_error_rows,
							10000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	multiinsert_init();
}


/* In workers, once: the INSERT's executor hooks and the job's timeout. */
void
loader_install_hooks(void)
{
	insert_install_hooks();
	job_timeout_id = RegisterTimeout(USER_TIMEOUT, job_timeout_handler);
}

/* ---------- cancel ---------- */

static void
cancel_job(IngestLoad *ld)
{
	ld->cancelled = true;
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("ingest job " INT64_FORMAT " was cancelled", ld->job->id)));
}

static void
check_cancel(IngestLoad *ld)
{
	CHECK_FOR_INTERRUPTS();
	if (shmem_worker_cancel_requested())
		cancel_job(ld);
}

/*
 * The batch's check, between records and between the rows an INSERT reads:
 * a cancel is seen within a batch, not only between batches.
 */
static void
check_cancel_in_batch(void *arg)
{
	check_cancel((IngestLoad *) arg);
}

/* ---------- transactions ---------- */

static void
begin_xact(IngestLoad *ld)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	identity_check_owner(ld->job->owner, ld->job->id);

	/*
	 * Everything the load sets, our captured settings and whatever a trigger
	 * sets even at session level, is undone before commit (commit_xact), so
	 * nothing leaks into the next transaction or the next owner's job.
	 * Settings are applied as the owner: what the owner may not set in its
	 * own session is skipped.
	 */
	ld->guc_level = NewGUCNestLevel();
	identity_enter(ld->job->owner, &ld->owner_save);
	identity_apply_settings(ld->job->settings);

	/*
	 * A part of an all-or-nothing job that waits for a lock may wait for
	 * another part of the same job, which holds it until the job's decision,
	 * which waits for this part: the wait is bounded, and its end sends the
	 * job to one worker (worker_parts.c).
	 */
	if (ld->gid != NULL && ingest_parallel_lock_timeout > 0 &&
		(LockTimeout == 0 || LockTimeout > ingest_parallel_lock_timeout))
	{
		char		ms[16];

		snprintf(ms, sizeof(ms), "%d", ingest_parallel_lock_timeout);
		(void) set_config_option("lock_timeout", ms, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, ERROR, false);
	}

	/*
	 * With max_errors, a deferred constraint would fail at commit, where no
	 * record can be blamed and set aside: check constraints per batch.
	 */
	if (ld->opts.max_errors > 0 &&
		SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "ingest: could not make constraints immediate");
}

static void
commit_xact(IngestLoad *ld)
{
	/*
	 * Commit runs user code too: deferred triggers and constraints, and WITH
	 * HOLD cursors a trigger declared. Run it now, still as the owner and
	 * with the job's settings, exactly as CommitTransaction would (which then
	 * finds nothing left): after identity_leave it would run as the worker's
	 * superuser.
	 */
	for (;;)
	{
		AfterTriggerFireDeferred();
		if (!PreCommit_Portals(false))
			break;
	}
	identity_leave(&ld->owner_save);
	AtEOXact_GUC(false, ld->guc_level);
	SPI_finish();
	PopActiveSnapshot();
	if (ld->gid != NULL)
	{
		/*
		 * PREPARE TRANSACTION, as the worker (the prepared transaction's
		 * owner, who alone may finish it): the block a PREPARE ends is
		 * opened first, which leaves the transaction open.
		 */
		bool		held;

		ld->preparing = true;
		BeginTransactionBlock();
		CommitTransactionCommand();
		StartTransactionCommand();
		if (!PrepareTransactionBlock(ld->gid))
			elog(ERROR, "ingest: could not prepare the transaction of part %d", ld->part.part);
		held = hold_suspend();
		CommitTransactionCommand();
		ld->preparing = false;
		if (held && !hold_resume(false))
		{
			/* the extension's tables are wanted: give the part up, then wait */
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			FinishPreparedTransaction(ld->gid, false);
			CommitTransactionCommand();
			(void) hold_resume(true);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("ingest job " INT64_FORMAT ", part %d: the extension's tables are wanted by another session (DROP or ALTER EXTENSION)",
							ld->job->id, ld->part.part)));
		}
	}
	else
		CommitTransactionCommand();

	/*
	 * Committed: from here on a failure must report (and a retry resume
	 * from) these counters, which the checkpoint just committed holds too,
	 * so nothing that could fail comes between the commit and them.
	 */
	ld->committed = ld->done;
	ld->rejects.stored_committed = ld->rejects.stored;
	isolate_forget_pending(&ld->rejects);
	pgstat_report_stat(false);
}

/* The counters as they stand, for a checkpoint or the outcome. */
static void
current_counters(IngestLoad *ld, JobCounters *c)
{
	ld->done.rows_rejected = ld->rejects.count;
	ld->done.errors_stored = ld->rejects.stored;
	ld->done.bytes_done = loader_bytes_done(ld);
	*c = ld->done;
}

/* Commit what is loaded so far with a checkpoint, and go on in a new transaction. */
static void
checkpoint(IngestLoad *ld)
{
	JobCounters c;

	current_counters(ld, &c);
	/* the checkpoint commits with the rows it counts */
	identity_leave(&ld->owner_save);
	if (ld->has_part)
		jobs_part_checkpoint(ld->job->id, ld->part.part, &c);
	else
		jobs_checkpoint(ld->job, &c);
	identity_enter(ld->job->owner, &ld->owner_save);
	commit_xact(ld);
	ld->since_commit = 0;
	begin_xact(ld);
	if (jobs_cancel_requested(ld->job->id))
		cancel_job(ld);
}

/* Load the records the parser holds; commit when commit_every records are in. */
static void
process_records(IngestLoad *ld)
{
	loadbatch_process(ld);
	if (ld->check_text_batches > 0)
		ld->check_text_batches--;
	if (ld->opts.commit_every > 0 && ld->since_commit >= ld->opts.commit_every)
		checkpoint(ld);
}

/*
 * How many records to gather before loading them: a batch, cut short so a
 * transaction commits after exactly commit_every data records (the header
 * record, when one is expected, comes on top).
 */
static int
records_wanted(IngestLoad *ld)
{
	int64		want = ld->batch_size;

	if (ld->opts.commit_every > 0)
		want = Min(want, ld->opts.commit_every - ld->since_commit);
	if (ld->header_pending)
		want++;
	return (int) Max(want, 1);
}

/* Enough gathered for one batch by size, whatever the count (see INGEST_BATCH_BYTES). */
static bool
batch_full(IngestLoad *ld)
{
	return csvp_held_bytes(ld->parser) >= INGEST_BATCH_BYTES ||
		(int64) csvp_nrecords(ld->parser) * Max(ld->cols.ncols, 1) >= INGEST_BATCH_VALUES;
}

/* ---------- a load ---------- */

static void
free_parser(void *arg)
{
	IngestLoad *ld = arg;

	csvp_destroy(ld->parser);
	ld->parser = NULL;
}

/* The load's state, in the job's context, before its first transaction. */
static IngestLoad *
new_load(IngestJob *job, MemoryContext job_cxt)
{
	IngestLoad *ld = MemoryContextAllocZero(job_cxt, sizeof(IngestLoad));
	MemoryContext old = MemoryContextSwitchTo(job_cxt);

	ld->job = job;
	ld->job_cxt = job_cxt;
	if (job->source_type == JOB_SOURCE_FILE)
		ld->where = psprintf("file \"%s\"", job->source);
	else if (job->source_type == JOB_SOURCE_LO)
		ld->where = pstrdup(job->source);	/* large object 12345 */
	else
		ld->where = pstrdup("uploaded data");
	ld->pos_row = -1;
	ld->at_col = -1;
	/* this attempt reads the source from its start again: bytes count from there */
	ld->done = job->done;
	ld->done.bytes_done = 0;
	ld->committed = ld->done;
	options_parse(job->options, &ld->opts);

	/*
	 * A batch allocates megabytes of values and frees them all at once; a
	 * large kept block spares the page faults of giving that memory back to
	 * the kernel and faulting it in again for every batch.
	 */
	ld->batch.cxt = AllocSetContextCreate(job_cxt, "ingest batch",
										  8 * 1024 * 1024, 8 * 1024 * 1024, 8 * 1024 * 1024);
	ld->batch.check_cancel = check_cancel_in_batch;
	ld->batch.cancel_arg = ld;
	ld->rejects.where = ld->where;
	ld->rejects.opts = &ld->opts;
	ld->rejects.keep_cxt = job_cxt;
	ld->rejects.count = job->done.rows_rejected;
	ld->rejects.stored = job->done.errors_stored;
	ld->rejects.stored_committed = job->done.errors_stored;
	MemoryContextSwitchTo(old);
	return ld;
}

/* The parser, with the limits in force when the job started. */
static void
create_parser(IngestLoad *ld)
{
	CsvpOptions popts;

	ld->max_record_size = ingest_max_record_size;
	options_csv(&ld->opts, ld->max_record_size, &popts);
	/* a part after the first starts on its own line */
	if (ld->has_part && ld->part.part > 0)
		popts.first_line = ld->part.first_line;
	ld->skip_left = ld->opts.skip_lines;
	ld->parser = csvp_create(&popts);
	if (ld->parser == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ld->parser_cb.func = free_parser;
	ld->parser_cb.arg = ld;
	MemoryContextRegisterResetCallback(ld->job_cxt, &ld->parser_cb);
	ld->batch.parser = ld->parser;
}

/*
 * Open the load of a claimed job: its first transaction, as the owner, with
 * the owner's settings; the job's timeout running. What outlives the
 * transaction lives in job_cxt.
 */
IngestLoad *
loader_start(IngestJob *job, MemoryContext job_cxt)
{
	return start_load(job, job_cxt, NULL, -1, NULL);
}

/*
 * Open the load of one part of a job loaded by several workers: job->done
 * holds the part's own counters (its checkpoint), the records it reads are
 * numbered after the parts before it, its lines from its first line, and it
 * checkpoints into the part's row. max_errors: what the part may still
 * reject, the other parts' committed rejections taken off the job's
 * max_errors (-1: the job's). A part after the first that takes its columns
 * from the file's header needs it first (loader_needs_header). gid: the
 * part of an all-or-nothing job is one transaction, which loader_commit
 * prepares under this identifier instead of committing it.
 */
IngestLoad *
loader_start_part(IngestJob *job, MemoryContext job_cxt, const JobPart *part, int64 max_errors,
				  const char *gid)
{
	return start_load(job, job_cxt, part, max_errors, gid);
}

static IngestLoad *
start_load(IngestJob *job, MemoryContext job_cxt, const JobPart *part, int64 max_errors,
		   const char *gid)
{
	IngestLoad *ld = new_load(job, job_cxt);
	MemoryContext old;

	if (part != NULL)
	{
		ld->has_part = true;
		ld->part = *part;
		ld->record_base = part->first_record;
		if (max_errors >= 0)
			ld->opts.max_errors = max_errors;
		if (gid != NULL)
			ld->gid = MemoryContextStrdup(job_cxt, gid);
	}

	active = ld;
	begin_xact(ld);
	if (job->cancel_requested || jobs_cancel_requested(job->id))
		cancel_job(ld);
	/* partitions may have been attached since the enqueue */
	target_check_foreign_rls(job->target, job->owner);
	ld->ins.rows_sent_together = target_has_foreign_partitions(job->target);

	/*
	 * At a point in time, not after a delay: enable_timeout_after takes an
	 * int of milliseconds, which would cut a timeout longer than 24.8 days.
	 */
	if (job->timeout_ms > 0)
		enable_timeout_at(job_timeout_id,
						  TimestampTzPlusMilliseconds(GetCurrentTimestamp(), job->timeout_ms));

	old = MemoryContextSwitchTo(job_cxt);
	/* read after the owner's settings are applied: batch_rows may be the session's */
	ld->batch_size = ingest_batch_rows;
	if (ld->opts.commit_every > 0 && ld->opts.commit_every < ld->batch_size)
		ld->batch_size = (int) ld->opts.commit_every;
	create_parser(ld);
	ld->header_pending = ld->opts.header;
	if (ld->has_part && ld->part.part > 0)
	{
		/* the header, and the lines before it, are the first part's */
		ld->skip_left = 0;
		ld->header_pending = false;
		ld->header_wanted = ld->opts.header && ld->opts.columns == NIL;
	}
	if (!ld->opts.header || ld->opts.columns != NIL)
		loadbatch_setup_columns(ld, NULL);
	MemoryContextSwitchTo(old);
	return ld;
}

/* Does this part need the file's header (loader_take_header) before its bytes? */
bool
loader_needs_header(const IngestLoad *ld)
{
	return ld->header_wanted;
}

/*
 * The file's first bytes, in order, until the header record is read (true):
 * the lines "skip_lines" passes over and the header, parsed as the first
 * part's parser reads them, give this part its columns.
 */
bool
loader_take_header(IngestLoad *ld, const char *buf, size_t len)
{
	const CsvpRecord *rec;
	CsvpParser *own;
	MemoryContext old;

	Assert(ld->header_wanted);
	if (ld->header_reader == NULL)
		ld->header_reader = header_reader_create(&ld->opts, ld->job_cxt);
	rec = header_reader_feed(ld->header_reader, buf, len);
	if (rec == NULL)
		return false;

	header_check_readable(rec, ld->where);
	/* the columns are named by the header parser's fields */
	own = ld->parser;
	ld->parser = ld->header_reader->parser;
	old = MemoryContextSwitchTo(ld->job_cxt);
	PG_TRY();
	{
		loadbatch_setup_columns(ld, rec);
	}
	PG_FINALLY();
	{
		ld->parser = own;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	ld->header_wanted = false;
	return true;
}

/* Pass over the lines "skip_lines" asks to skip; the offset where parsing starts. */
static size_t
skip_lines(IngestLoad *ld, const char *buf, size_t len)
{
	size_t		off = csvp_skip_lines(buf, len, &ld->skip_left, &ld->skip_after_cr);

	ld->skipped_bytes += off;
	return off;
}

/*
 * The decoder the source's bytes come through: bytes_done counts the
 * source's side (compressed, in the file's encoding), as bytes_total does.
 */
void
loader_set_decoder(IngestLoad *ld, struct IngestDecoder *decoder)
{
	ld->decoder = decoder;
}

/* bytes_done: the source's bytes behind the bytes parsed */
int64
loader_bytes_done(IngestLoad *ld)
{
	return decode_source_bytes(ld->decoder, (uint64) ld->skipped_bytes + csvp_bytes(ld->parser));
}

/* Parse buf, loading each batch as it completes. */
void
loader_feed(IngestLoad *ld, const char *buf, size_t len)
{
	bool		invalid_text = !convert_chunk_valid(&ld->chunk_check, buf, len);
	/* a CR that ended the preamble at a buffer's end may have its LF in this one */
	size_t		off = (ld->skip_left > 0 || ld->skip_after_cr) ? skip_lines(ld, buf, len) : 0;

	if (invalid_text)
		ld->check_text_batches = 2;
	while (off < len)
	{
		size_t		n = csvp_feed(ld->parser, buf + off, len - off, records_wanted(ld));

		if (n == (size_t) -1)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while parsing %s near line " INT64_FORMAT,
							ld->where, csvp_line(ld->parser))));
		off += n;
		if (csvp_nrecords(ld->parser) >= records_wanted(ld) ||
			(csvp_nrecords(ld->parser) > 0 && batch_full(ld)))
		{
			process_records(ld);
			/* the rest of this chunk goes into the next batch */
			if (invalid_text)
				ld->check_text_batches = 2;
		}
	}
}

/*
 * The source is read to its end: load the last records. The last transaction
 * stays open, out of the owner's identity, for the outcome to be recorded in
 * it (loader_commit then commits both); *done is what it will record.
 */
void
loader_finish(IngestLoad *ld, JobCounters *done)
{
	if (ld->skip_left > 0)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("%s has " INT64_FORMAT " lines, fewer than the " INT64_FORMAT " that \"skip_lines\" passes over",
						ld->where, ld->opts.skip_lines - ld->skip_left, ld->opts.skip_lines)));
	if (!csvp_finish(ld->parser))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/* the input ended inside a character */
	if (ld->chunk_check.tail_len > 0)
		ld->check_text_batches = 2;
	while (csvp_nrecords(ld->parser) > 0)
		process_records(ld);
	loader_stop_timer();
	job_timed_out = false;
	current_counters(ld, done);
	identity_leave(&ld->owner_save);
}

const IngestOptions *
loader_options(const IngestLoad *ld)
{
	return &ld->opts;
}

/* Commit the load's last transaction (its deferred triggers run as the owner). */
void
loader_commit(IngestLoad *ld)
{
	identity_enter(ld->job->owner, &ld->owner_save);
	commit_xact(ld);
	insert_release(&ld->ins);
	active = NULL;
}

/* ---------- after a failure ---------- */

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
	IngestLoad *ld = active;
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

	out->cancelled = ld->cancelled;
	out->not_prepared = ld->preparing;
	out->timed_out = job_timed_out && !ld->cancelled && edata->sqlerrcode == ERRCODE_QUERY_CANCELED;
	out->done = ld->committed;
	out->rejected_committed = ld->committed.rows_rejected;

	/*
	 * Every record rejected counts, those of the aborted transaction too
	 * (the one past max_errors, say); job_errors keeps them up to
	 * ingest.max_error_rows, as a successful job's would.
	 */
	out->done.rows_rejected = ld->rejects.count;
	out->pending_errors = ld->rejects.pending;

	if (ld->rejects.fail_message)
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

/* Drop the job's state after a failure (the plan is not transaction-bound). */
void
loader_forget(void)
{
	loader_stop_timer();
	job_timed_out = false;
	if (active)
		insert_release(&active->ins);
	active = NULL;
}
