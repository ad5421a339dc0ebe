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
 * transactions (loadxact.c: the owner's identity and settings in them),
 * checkpoints every commit_every records, the job's timeout and cancel,
 * and, when an error escapes, a description of where the load was and
 * which record to blame (loadfail.c).
 *
 * A batch ends at ingest.batch_rows records, at a commit_every boundary, or
 * when the text the parser holds or the values to convert would pass
 * INGEST_BATCH_BYTES / INGEST_BATCH_VALUES, so a worker's memory stays
 * bounded whatever the records' sizes, the column count and batch_rows.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "convert.h"
#include "decode.h"
#include "header.h"
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
 * While a load runs, a watch every WATCH_MS. A cancel (ingest.cancel, or
 * the job's worker stopping its parts) then interrupts even a lock wait,
 * which our checks between records never reach. And a part to be prepared
 * that has waited for a lock longer than ingest.parallel_lock_timeout is
 * interrupted whatever lock_timeout the owner's code set: it may wait for a
 * sibling part, which holds its locks until the job's decision, which waits
 * for this part, a wait no deadlock check sees.
 */
#define WATCH_MS	200

static TimeoutId watch_id;
static volatile sig_atomic_t watch_cancelled = false;
static volatile sig_atomic_t watch_lock_waited = false;
static volatile int watch_lock_limit_ms = 0;
static volatile int watch_waited_ms = 0;
static volatile int watch_cancel_ticks = 0;

/* Ticks a cancel may go unheeded (the owner's code catching it) before the worker ends. */
#define WATCH_CANCEL_TICKS	25

static void
watch_handler(void)
{
	/*
	 * Said again at every tick while it holds (not only once): the owner's
	 * code may catch a query cancel and go on, or wait again.
	 */
	if (shmem_worker_cancel_requested())
	{
		watch_cancelled = true;

		/*
		 * Code that catches every query cancel would keep the job, and its
		 * prepared parts, forever: after 5 s the worker ends (FATAL, which
		 * no exception handler catches), and its job is taken back as a
		 * dead worker's, its cancel then recorded.
		 */
		if (++watch_cancel_ticks >= WATCH_CANCEL_TICKS)
			ProcDiePending = true;
	}
	else if (watch_lock_limit_ms > 0 && MyProc->waitLock != NULL)
	{
		watch_waited_ms += WATCH_MS;
		if (watch_waited_ms < watch_lock_limit_ms)
			return;
		watch_lock_waited = true;
	}
	else
	{
		watch_waited_ms = 0;
		return;
	}
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

static void
start_watch(int lock_limit_ms)
{
	watch_cancelled = false;
	watch_lock_waited = false;
	watch_waited_ms = 0;
	watch_cancel_ticks = 0;
	watch_lock_limit_ms = lock_limit_ms;
	enable_timeout_every(watch_id,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WATCH_MS), WATCH_MS);
}

/* Did the watch stop the load: a cancel, or a part's lock wait? For loadfail.c. */
bool
loader_watch_cancelled(void)
{
	return watch_cancelled;
}

bool
loader_watch_lock_waited(void)
{
	return watch_lock_waited;
}

/* The load under way (NULL: none), and whether its job's timeout fired: for loadfail.c. */
IngestLoad *
loader_active(void)
{
	return active;
}

bool
loader_job_timed_out(void)
{
	return job_timed_out;
}

/*
 * Stop the timer; a cancel it raised that no check has seen yet is void.
 * The flag stays until loader_forget, for loader_describe_failure.
 */
void
loader_stop_timer(void)
{
	disable_timeout(job_timeout_id, false);
	disable_timeout(watch_id, false);
	if (job_timed_out || watch_cancelled || watch_lock_waited)
		QueryCancelPending = false;
}

/* The load is over: the timers stop, and what they said is forgotten. */
static void
stop_timers_for_good(void)
{
	loader_stop_timer();
	job_timed_out = false;
	watch_cancelled = false;
	watch_lock_waited = false;
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
	watch_id = RegisterTimeout(USER_TIMEOUT, watch_handler);
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
	loadxact_commit(ld);
	ld->since_commit = 0;
	loadxact_begin(ld);
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
	loadxact_begin(ld);
	/* a part to be prepared reads no ingest table: its job's worker watches the cancel */
	if (job->cancel_requested || (ld->gid == NULL && jobs_cancel_requested(job->id)))
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
	start_watch(ld->gid != NULL ? ingest_parallel_lock_timeout : 0);

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
	stop_timers_for_good();
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
	loadxact_commit(ld);
	insert_release(&ld->ins);
	active = NULL;
}

/*
 * After a part's transaction was prepared: its rejected records, kept in
 * memory, written in the caller's transaction; *done's errors_stored
 * follows.
 */
void
loader_write_prepared_rejects(IngestLoad *ld, JobCounters *done)
{
	isolate_write_pending(&ld->rejects, ld->job->id);
	done->errors_stored = ld->rejects.stored;
}

/* Drop the job's state after a failure (the plan is not transaction-bound). */
void
loader_forget(void)
{
	stop_timers_for_good();
	if (active)
		insert_release(&active->ins);
	active = NULL;
}
