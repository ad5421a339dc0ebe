/*
 * loader.c
 *		Records to typed values to batched INSERTs as the job's owner.
 *
 * The worker hands us a claimed job; we stream its bytes through the parser
 * and insert the records in batches of ingest.batch_rows. Each value is built
 * once, with its column's input function and typmod, into a Datum array. One
 * plan, prepared once per job as the owner, inserts a batch:
 *
 *   INSERT INTO target (a, b) SELECT c1, c2
 *     FROM ingest._batch_rows() AS b(rn int4, c1 type_a, c2 type_b)
 *    WHERE ingest._batch_mark(b.rn)
 *
 * _batch_rows returns the batch's converted rows; going through the executor
 * (not heap_insert, as COPY does) is what makes RLS WITH CHECK policies,
 * column privileges, triggers, defaults, constraints and partition routing
 * apply exactly as for the owner's own INSERT. _batch_mark records which row
 * the executor is on, so an error raised while inserting a row names its
 * line; an ExecutorFinish hook tells errors of AFTER triggers (foreign keys,
 * deferred checks), which come after every row, from per-row ones.
 *
 * Bad records: with max_errors 0 the first one fails the job (nothing is
 * caught; the transaction aborts). With max_errors > 0 conversion runs in a
 * subtransaction per batch (no XID is assigned: it writes nothing), and an
 * insert that fails is retried without the row that failed: when the row is
 * known, the rows before it again, then the rest; when it is not, by halves.
 * Either way each bad record costs O(batch) work, not O(batch^2).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "storage/latch.h"
#include "access/relation.h"
#include "access/table.h"

#include "batchscan.h"
#include "identity.h"
#include "ingest.h"
#include "loader.h"
#include "options.h"
#include "parser.h"
#include "reader.h"
#include "shmem.h"
#include "target.h"

PG_FUNCTION_INFO_V1(ingest_batch_rows_srf);
PG_FUNCTION_INFO_V1(ingest_batch_mark_fn);

typedef enum LoadPhase
{
	PHASE_OTHER,
	PHASE_CONVERT,
	PHASE_INSERT
} LoadPhase;

typedef struct LoadState
{
	IngestJob  *job;
	IngestOptions opts;
	char	   *where;			/* 'file "/x.csv"' or 'uploaded data', for messages */
	MemoryContext job_cxt;
	MemoryContext batch_cxt;
	IngestReader *reader;
	CsvpParser *parser;
	MemoryContextCallback parser_cb;
	char	   *buf;
	size_t		buf_len;
	size_t		buf_off;
	bool		eof;
	int			batch_size;
	int			max_record_size;	/* ingest.max_record_size for this job */

	/* target columns, in file order */
	bool		columns_ready;
	bool		header_pending;
	int			ncols;
	AttrNumber *attnums;
	char	  **colnames;
	FmgrInfo   *infuncs;
	Oid		   *ioparams;
	Oid		   *typids;
	int32	   *typmods;
	SPIPlanPtr	plan;

	/* the current batch */
	int			nrows;
	const CsvpRecord **recs;
	Datum	   *values;			/* nrows * ncols */
	bool	   *nulls;
	char	   *rejected;		/* per row */

	/* counters */
	int64		records_seen;	/* data records read so far in this attempt */
	int64		records_done;	/* data records inserted or rejected */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		committed_records;
	int64		committed_inserted;
	int64		committed_rejected;
	int64		committed_bytes;
	int64		errors_stored;	/* rejected records written to job_errors */
	int64		committed_errors_stored;
	int64		since_commit;
	List	   *pending_errors; /* rejected in the open transaction (first few) */
	List	   *batch_errors;	/* rejected in this batch, not yet written */
	char	   *fail_message;	/* set when max_errors was exceeded */

	/* where we are, for errors that escape */
	LoadPhase	phase;
	int			pos_row;
	int			pos_col;
	int			ins_lo;
	int			ins_hi;
	int			mark_row;
	bool		after_rows;
	bool		rows_sent_together; /* a foreign partition may fail a batch of rows at once */
	bool		rows_served;	/* _batch_rows answered this INSERT already */
	int			scan_pos;		/* next row for the batch scan */
	QueryDesc  *top_query;

	IdentitySave owner_save;
	int			guc_level;		/* GUC nest level of the open transaction */
	bool		cancelled;		/* stopped by ingest.cancel */
} LoadState;

static LoadState *active = NULL;

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

static LoadState *batch_owner(void);
static void check_cancel(LoadState *st);

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;

/*
 * Executor hooks, installed in workers only: note our own INSERT (the first
 * query started in an insert phase), and when it reaches its AFTER triggers.
 */
static void
loader_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (active && active->phase == PHASE_INSERT && active->top_query == NULL)
		active->top_query = queryDesc;
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
loader_executor_finish(QueryDesc *queryDesc)
{
	if (active && active->phase == PHASE_INSERT && active->top_query == queryDesc)
		active->after_rows = true;
	if (prev_executor_finish)
		prev_executor_finish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
}

void
loader_install_hooks(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = loader_executor_start;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = loader_executor_finish;
	batchscan_install();
	job_timeout_id = RegisterTimeout(USER_TIMEOUT, job_timeout_handler);
}

/* ---------- transactions ---------- */

static void
begin_xact(LoadState *st)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	identity_check_owner(st->job->owner, st->job->id);

	/*
	 * Everything the load sets, our captured settings and whatever a trigger
	 * sets even at session level, is undone before commit (commit_xact), so
	 * nothing leaks into the next transaction or the next owner's job.
	 * Settings are applied as the owner: what the owner may not set in its
	 * own session is skipped.
	 */
	st->guc_level = NewGUCNestLevel();
	identity_enter(st->job->owner, &st->owner_save);
	identity_apply_settings(st->job->settings);

	/*
	 * With max_errors, a deferred constraint would fail at commit, where no
	 * record can be blamed and set aside: check constraints per batch.
	 */
	if (st->opts.max_errors > 0 &&
		SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "ingest: could not make constraints immediate");
}

static void
commit_xact(LoadState *st)
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
	identity_leave(&st->owner_save);
	AtEOXact_GUC(false, st->guc_level);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/*
	 * Committed: from here on a failure must report (and a retry resume
	 * from) these counters, which the checkpoint just committed holds too,
	 * so nothing that could fail comes between the commit and them.
	 */
	st->committed_records = st->records_done;
	st->committed_inserted = st->rows_inserted;
	st->committed_rejected = st->rows_rejected;
	st->committed_bytes = (int64) csvp_bytes(st->parser);
	st->committed_errors_stored = st->errors_stored;
	list_free_deep(st->pending_errors);
	st->pending_errors = NIL;
	pgstat_report_stat(false);
}

/* ---------- rejected records ---------- */

/*
 * Text safe to store in the server encoding, at most INGEST_RAW_LINE_MAX
 * bytes, cut between characters: invalid bytes (and NUL) become \xNN.
 */
static char *
sanitize(const char *s, size_t len)
{
	StringInfoData out;
	int			enc = GetDatabaseEncoding();
	size_t		i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		int			l = pg_encoding_verifymbchar(enc, s + i, (int) (len - i));

		if (l <= 0 || s[i] == '\0')
		{
			if (out.len + 4 > INGEST_RAW_LINE_MAX)
				break;
			appendStringInfo(&out, "\\x%02X", (unsigned char) s[i]);
			i++;
		}
		else
		{
			if (out.len + l > INGEST_RAW_LINE_MAX)
				break;
			appendBinaryStringInfo(&out, s + i, l);
			i += l;
		}
	}
	return out.data;
}

/*
 * NULL if s is valid text in the server encoding, else what is wrong with it,
 * as PostgreSQL's own message says it: 'invalid byte sequence for encoding
 * "UTF8": 0xe2 0x82' (a NUL byte, which no text value can hold, is 0x00).
 */
static char *
invalid_text(const char *s, size_t len)
{
	int			enc = GetDatabaseEncoding();
	int			valid = pg_encoding_verifymbstr(enc, s, (int) len);
	const char *bad = s + valid;
	int			n;
	StringInfoData bytes;

	if ((size_t) valid >= len)
		return NULL;
	/* the character that starts there, as far as the field holds it (at most 8 bytes) */
	n = (*bad == '\0') ? 1 : pg_encoding_mblen(enc, bad);
	n = Min(Min(n, (int) (len - valid)), 8);
	initStringInfo(&bytes);
	for (int k = 0; k < n; k++)
		appendStringInfo(&bytes, "%s0x%02x", k ? " " : "", (unsigned char) bad[k]);
	return psprintf("invalid byte sequence for encoding \"%s\": %s",
					GetDatabaseEncodingName(), bytes.data);
}

/* The record's fields joined again as CSV, cut to INGEST_RAW_LINE_MAX bytes. */
static char *
raw_line(LoadState *st, const CsvpRecord *rec)
{
	StringInfoData out;
	char		delim = st->opts.delimiter;
	char		quote = st->opts.quote;

	/* build a little more than the limit, so sanitize cuts between characters */
	initStringInfo(&out);
	for (int i = 0; i < rec->nfields && out.len <= INGEST_RAW_LINE_MAX; i++)
	{
		size_t		len;
		bool		isnull;
		const char *f = csvp_field(st->parser, rec, i, &len, &isnull);
		bool		needs_quotes = (!isnull && len == 0);

		if (i > 0)
			appendStringInfoChar(&out, delim);
		if (isnull && st->opts.null_string == NULL)
			continue;
		for (size_t k = 0; k < len && !needs_quotes; k++)
			if (f[k] == delim || f[k] == quote || f[k] == '\n' || f[k] == '\r')
				needs_quotes = true;
		if (needs_quotes)
			appendStringInfoChar(&out, quote);
		for (size_t k = 0; k < len && out.len <= INGEST_RAW_LINE_MAX; k++)
		{
			if (f[k] == quote)
				appendStringInfoChar(&out, quote);
			appendStringInfoChar(&out, f[k]);
		}
		if (needs_quotes)
			appendStringInfoChar(&out, quote);
	}
	return sanitize(out.data, out.len);
}

/* An error's message and detail, cut as job_errors keeps them (held per rejected record). */
static char *
row_message(ErrorData *edata)
{
	const char *message = edata->message ? edata->message : "";

	if (edata->detail)
		return jobs_clip_message(psprintf("%s: %s", jobs_clip_message(message),
										  jobs_clip_message(edata->detail)));
	return pstrdup(jobs_clip_message(message));
}

/* A rejected record as job_errors will hold it, in the current memory context. */
static LoaderPendingError *
make_error(LoadState *st, int i, int sqlerrcode, const char *message)
{
	const CsvpRecord *rec = st->recs[i];
	LoaderPendingError *pe = palloc0(sizeof(LoaderPendingError));

	pe->line = rec->line;
	/* records before this batch are counted in records_done */
	pe->record_number = st->records_done + i + 1;
	memcpy(pe->sqlstate, unpack_sql_state(sqlerrcode), 6);
	pe->message = pstrdup(message);
	pe->raw_line = raw_line(st, rec);
	return pe;
}

/*
 * Reject row i of the batch: record it, or fail the job once more than
 * max_errors records were rejected.
 */
static void
reject_row(LoadState *st, int i, int sqlerrcode, const char *message)
{
	const CsvpRecord *rec = st->recs[i];
	MemoryContext old = MemoryContextSwitchTo(st->batch_cxt);
	LoaderPendingError *pe = make_error(st, i, sqlerrcode, message);

	/*
	 * Written to job_errors when the batch is done, outside any
	 * subtransaction that a later record could still roll back.
	 */
	st->batch_errors = lappend(st->batch_errors, pe);
	st->rejected[i] = 1;
	st->rows_rejected++;

	if (list_length(st->pending_errors) < INGEST_RETAINED_ERRORS)
	{
		LoaderPendingError *copy;

		MemoryContextSwitchTo(st->job_cxt);
		copy = palloc(sizeof(LoaderPendingError));
		*copy = *pe;
		copy->message = pstrdup(pe->message);
		copy->raw_line = pstrdup(pe->raw_line);
		st->pending_errors = lappend(st->pending_errors, copy);
	}

	if (st->rows_rejected > st->opts.max_errors)
	{
		MemoryContextSwitchTo(st->job_cxt);
		if (st->opts.max_errors == 0)
			st->fail_message = psprintf("%s, line " INT64_FORMAT ": %s",
										st->where, rec->line, message);
		else
			st->fail_message = psprintf("%s, line " INT64_FORMAT ": %s (" INT64_FORMAT " records rejected, more than max_errors = " INT64_FORMAT ")",
										st->where, rec->line, message,
										st->rows_rejected, st->opts.max_errors);
		MemoryContextSwitchTo(old);
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("%s", st->fail_message)));
	}
	MemoryContextSwitchTo(old);
}

/* Write the batch's rejected records, as the extension owner. */
static void
write_batch_errors(LoadState *st)
{
	ListCell   *lc;

	if (st->batch_errors == NIL)
		return;
	identity_leave(&st->owner_save);
	foreach(lc, st->batch_errors)
	{
		LoaderPendingError *pe = lfirst(lc);

		/* past ingest.max_error_rows a rejected record is counted, not kept */
		if (st->errors_stored >= ingest_max_error_rows)
			break;
		jobs_record_error(st->job->id, pe->line, pe->record_number, pe->sqlstate,
						  pe->message, pe->raw_line);
		st->errors_stored++;
	}
	identity_enter(st->job->owner, &st->owner_save);
	st->batch_errors = NIL;
}

/*
 * Errors that say something about one record (bad value, constraint,
 * policy, trigger) are the record's fault; the others (cancel, out of
 * memory, serialization, I/O) are the job's and must not be swallowed.
 */
static bool
is_record_error(int sqlerrcode)
{
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_CONNECTION_EXCEPTION:
		case ERRCODE_TRANSACTION_ROLLBACK:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
		case ERRCODE_OPERATOR_INTERVENTION:
		case ERRCODE_SYSTEM_ERROR:
		case ERRCODE_CONFIG_FILE_ERROR:
		case ERRCODE_INTERNAL_ERROR:
			return false;
		default:
			return true;
	}
}

/* ---------- columns ---------- */

static int
find_column(TupleDesc desc, const char *name)
{
	int			found = -1;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	/* a header written by hand often differs only in case: accept a unique match */
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && pg_strcasecmp(NameStr(att->attname), name) == 0)
		{
			if (found >= 0)
				return -1;
			found = i;
		}
	}
	return found;
}

/*
 * Fix the target columns (from the columns option, the header record, or
 * the table's own order), check the owner may insert into each, and prepare
 * the INSERT.
 */
static void
setup_columns(LoadState *st, const CsvpRecord *header)
{
	Relation	rel;
	TupleDesc	desc;
	List	   *names = NIL;
	StringInfoData sql;
	StringInfoData collist;
	StringInfoData sel;
	StringInfoData deflist;
	MemoryContext old;
	char	   *relname;
	int			n = 0;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(st->job->target)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target table of ingest job " INT64_FORMAT " (OID %u) no longer exists",
						st->job->id, st->job->target)));
	rel = relation_open(st->job->target, RowExclusiveLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot load into \"%s\": ingest loads only tables",
						RelationGetRelationName(rel))));
	desc = RelationGetDescr(rel);
	relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										 RelationGetRelationName(rel));

	if (st->opts.columns != NIL)
		names = st->opts.columns;
	else if (header != NULL)
	{
		for (int i = 0; i < header->nfields; i++)
		{
			size_t		len;
			bool		isnull;
			const char *f = csvp_field(st->parser, header, i, &len, &isnull);
			char	   *bad_text;

			if (isnull || len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
						 errmsg("%s, line " INT64_FORMAT ": header field %d is empty",
								st->where, header->line, i + 1),
						 errhint("Name every column in the header, or set \"header\": false and list the columns with \"columns\".")));
			bad_text = invalid_text(f, len);
			if (bad_text != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
						 errmsg("%s, line " INT64_FORMAT ": header field %d: %s",
								st->where, header->line, i + 1, bad_text)));
			names = lappend(names, pstrdup(f));
		}
	}
	else
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && !att->attgenerated)
				names = lappend(names, pstrdup(NameStr(att->attname)));
		}
	}

	old = MemoryContextSwitchTo(st->job_cxt);
	st->ncols = list_length(names);
	st->attnums = palloc0(sizeof(AttrNumber) * st->ncols);
	st->colnames = palloc0(sizeof(char *) * st->ncols);
	st->infuncs = palloc0(sizeof(FmgrInfo) * st->ncols);
	st->ioparams = palloc0(sizeof(Oid) * st->ncols);
	st->typmods = palloc0(sizeof(int32) * st->ncols);
	st->typids = palloc0(sizeof(Oid) * st->ncols);
	MemoryContextSwitchTo(old);

	initStringInfo(&collist);
	initStringInfo(&sel);
	initStringInfo(&deflist);
	{
		ListCell   *lc;

		foreach(lc, names)
		{
			const char *name = lfirst(lc);
			int			idx = find_column(desc, name);
			Form_pg_attribute att;
			Oid			infunc;

			if (idx < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" %s does not exist in table %s",
								name,
								st->opts.columns != NIL ? "listed in the columns option" : "named in the header",
								relname),
						 header != NULL && st->opts.columns == NIL ?
						 errhint("Rename the header or the column, or list the target columns with \"columns\" (the header is then skipped).") : 0));
			att = TupleDescAttr(desc, idx);
			for (int k = 0; k < n; k++)
				if (st->attnums[k] == att->attnum)
					ereport(ERROR,
							(errcode(ERRCODE_DUPLICATE_COLUMN),
							 errmsg("column \"%s\" appears more than once in %s",
									NameStr(att->attname),
									st->opts.columns != NIL ? "the columns option" : "the header")));
			if (att->attgenerated)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
						 errmsg("column \"%s\" is a generated column", NameStr(att->attname)),
						 errdetail("Generated columns cannot be loaded.")));
			if (!identity_can_insert(RelationGetRelid(rel), att->attnum, st->job->owner))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied for column \"%s\" of table %s",
								NameStr(att->attname), relname),
						 errdetail("Role \"%s\" owns the job and has no INSERT privilege on the column.",
								   GetUserNameFromId(st->job->owner, false))));

			st->attnums[n] = att->attnum;
			st->colnames[n] = MemoryContextStrdup(st->job_cxt, NameStr(att->attname));
			getTypeInputInfo(att->atttypid, &infunc, &st->ioparams[n]);
			fmgr_info_cxt(infunc, &st->infuncs[n], st->job_cxt);
			st->typmods[n] = att->atttypmod;
			st->typids[n] = att->atttypid;

			appendStringInfo(&collist, "%s%s", n ? ", " : "", quote_identifier(NameStr(att->attname)));
			appendStringInfo(&sel, "%sb.c%d", n ? ", " : "", n + 1);
			appendStringInfo(&deflist, ", c%d %s", n + 1,
							 format_type_extended(att->atttypid, att->atttypmod,
												  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
			n++;
		}
	}
	relation_close(rel, NoLock);

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s (%s) SELECT %s FROM ingest._batch_rows() AS b(rn pg_catalog.int4%s) "
					 "WHERE ingest._batch_mark(b.rn)",
					 relname, collist.data, sel.data, deflist.data);

	/* prepared as the owner: RLS policies are planned for the owner */
	batchscan_refresh();
	st->plan = SPI_prepare(sql.data, 0, NULL);
	if (st->plan == NULL)
		elog(ERROR, "ingest: could not prepare \"%s\": %s", sql.data,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(st->plan);
	st->columns_ready = true;
}

/* ---------- one batch ---------- */

/* Convert one record into the batch's Datums; bad structure rejects it. */
static void
convert_row(LoadState *st, int i)
{
	const CsvpRecord *rec = st->recs[i];
	Datum	   *values = st->values + (size_t) i * st->ncols;
	bool	   *nulls = st->nulls + (size_t) i * st->ncols;

	if (rec->error != CSVP_OK)
	{
		char	   *message = pstrdup(csvp_error_message(rec->error));

		/* the one limit a user meets without a hint of it in the file: name it */
		if (rec->error == CSVP_FIELD_TOO_LARGE || rec->error == CSVP_RECORD_TOO_LARGE)
			message = psprintf("%s: more than ingest.max_record_size (%d bytes)",
							   message, st->max_record_size);
		if (rec->error_line != rec->line)
			message = psprintf("%s (at line " INT64_FORMAT ")", message, rec->error_line);
		reject_row(st, i, ERRCODE_BAD_COPY_FILE_FORMAT, message);
		return;
	}
	if (rec->nfields > st->ncols)
	{
		reject_row(st, i, ERRCODE_BAD_COPY_FILE_FORMAT,
				   psprintf("extra data after last expected column (%d fields, %d expected)",
							rec->nfields, st->ncols));
		return;
	}
	if (rec->nfields < st->ncols)
	{
		reject_row(st, i, ERRCODE_BAD_COPY_FILE_FORMAT,
				   psprintf("missing data for column \"%s\" (%d fields, %d expected)",
							st->colnames[rec->nfields], rec->nfields, st->ncols));
		return;
	}

	for (int j = 0; j < st->ncols; j++)
	{
		size_t		len;
		bool		isnull;
		const char *f = csvp_field(st->parser, rec, j, &len, &isnull);
		char	   *bad_text = isnull ? NULL : invalid_text(f, len);

		if (bad_text != NULL)
		{
			reject_row(st, i, ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
					   psprintf("column \"%s\": %s", st->colnames[j], bad_text));
			return;
		}
		st->pos_row = i;
		st->pos_col = j;
		values[j] = InputFunctionCall(&st->infuncs[j], isnull ? NULL : (char *) f,
									  st->ioparams[j], st->typmods[j]);
		nulls[j] = isnull;
	}
	st->pos_col = -1;
}

/*
 * Run fn in a subtransaction. Returns NULL when it succeeded; when it raised
 * an error that a record can be blamed for, rolls the subtransaction back and
 * returns the error. Other errors (cancel, out of memory, serialization,
 * max_errors exceeded) are the job's, and go on up.
 */
static ErrorData *
run_isolated(LoadState *st, void (*fn) (LoadState *st, void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(st, arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;

	if (edata != NULL && (st->fail_message != NULL || !is_record_error(edata->sqlerrcode)))
		ReThrowError(edata);
	return edata;
}

/* Convert rows *next onwards; *next is left at the row that failed, if one did. */
static void
convert_from(LoadState *st, void *arg)
{
	int		   *next = arg;

	for (; *next < st->nrows; (*next)++)
	{
		check_cancel(st);
		convert_row(st, *next);
	}
}

static void
convert_batch(LoadState *st)
{
	int			next = 0;

	st->phase = PHASE_CONVERT;
	if (st->opts.max_errors == 0)
		convert_from(st, &next);
	else
	{
		while (next < st->nrows)
		{
			ErrorData  *edata = run_isolated(st, convert_from, &next);

			if (edata == NULL)
				break;
			if (st->pos_col >= 0)
				reject_row(st, next, edata->sqlerrcode,
						   psprintf("column \"%s\": %s", st->colnames[st->pos_col],
									row_message(edata)));
			else
				reject_row(st, next, edata->sqlerrcode, row_message(edata));
			st->pos_col = -1;
			next++;
		}
	}
	st->pos_row = -1;
	st->phase = PHASE_OTHER;
}

/* Insert the good rows of [lo, hi) with the prepared plan. */
static void
exec_insert(LoadState *st, int lo, int hi)
{
	int			rc;

	st->ins_lo = lo;
	st->ins_hi = hi;
	st->mark_row = -1;
	st->after_rows = false;
	st->top_query = NULL;
	st->rows_served = false;
	st->phase = PHASE_INSERT;
	rc = SPI_execute_plan(st->plan, NULL, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "ingest: batch INSERT failed: %s", SPI_result_code_string(rc));
	st->rows_inserted += SPI_processed;
	st->phase = PHASE_OTHER;
}

/* The row being inserted when an insert failed, or -1 if unknown. */
static int
failed_row(LoadState *st)
{
	if (st->rows_sent_together || st->after_rows ||
		st->mark_row < st->ins_lo || st->mark_row >= st->ins_hi)
		return -1;
	return st->mark_row;
}

typedef struct InsertRange
{
	int			lo;
	int			hi;
} InsertRange;

static void
insert_range(LoadState *st, void *arg)
{
	InsertRange *r = arg;

	exec_insert(st, r->lo, r->hi);
}

/* One attempt in a subtransaction; on failure returns the error and the row that failed. */
static ErrorData *
try_insert(LoadState *st, int lo, int hi, int *bad)
{
	InsertRange r = {lo, hi};
	ErrorData  *edata = run_isolated(st, insert_range, &r);

	st->phase = PHASE_OTHER;
	if (edata != NULL)
		*bad = failed_row(st);
	return edata;
}

static bool
any_good(LoadState *st, int lo, int hi)
{
	for (int i = lo; i < hi; i++)
		if (!st->rejected[i])
			return true;
	return false;
}

/* Insert [lo, hi), setting aside the rows that fail (max_errors > 0). */
static void
insert_isolating(LoadState *st, int lo, int hi)
{
	while (lo < hi && any_good(st, lo, hi))
	{
		int			bad = -1;
		ErrorData  *edata = try_insert(st, lo, hi, &bad);

		if (edata == NULL)
			return;
		if (bad >= 0)
		{
			/* the rows before it went in fine the first time */
			if (bad > lo)
				insert_isolating(st, lo, bad);
			reject_row(st, bad, edata->sqlerrcode, row_message(edata));
			lo = bad + 1;
		}
		else
		{
			int			first = lo;
			int			mid;

			while (first < hi && st->rejected[first])
				first++;
			if (hi - first == 1 || !any_good(st, first + 1, hi))
			{
				reject_row(st, first, edata->sqlerrcode, row_message(edata));
				lo = first + 1;
				continue;
			}
			mid = first + (hi - first) / 2;
			insert_isolating(st, first, mid);
			insert_isolating(st, mid, hi);
			return;
		}
	}
}

static void
insert_batch(LoadState *st)
{
	if (!any_good(st, 0, st->nrows))
		return;
	if (st->opts.max_errors == 0)
		exec_insert(st, 0, st->nrows);
	else
		insert_isolating(st, 0, st->nrows);
}

static void
cancel_job(LoadState *st)
{
	st->cancelled = true;
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("ingest job " INT64_FORMAT " was cancelled", st->job->id)));
}

static void
check_cancel(LoadState *st)
{
	CHECK_FOR_INTERRUPTS();
	if (shmem_worker_cancel_requested())
		cancel_job(st);
}

/* Load the complete records the parser holds, then forget them. */
static void
process_records(LoadState *st)
{
	int			n = csvp_nrecords(st->parser);
	MemoryContext old;

	check_cancel(st);
	old = MemoryContextSwitchTo(st->batch_cxt);
	st->recs = palloc(sizeof(CsvpRecord *) * Max(n, 1));
	st->nrows = 0;
	for (int i = 0; i < n; i++)
	{
		const CsvpRecord *rec = csvp_record(st->parser, i);

		if (st->header_pending)
		{
			st->header_pending = false;
			if (rec->error != CSVP_OK)
				ereport(ERROR,
						(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
						 errmsg("%s, line " INT64_FORMAT ": could not read the header: %s",
								st->where, rec->line, csvp_error_message(rec->error))));
			if (!st->columns_ready)
				setup_columns(st, rec);
			continue;
		}
		st->records_seen++;
		if (st->records_seen <= st->job->records_done)
			continue;			/* committed by an earlier attempt */
		st->recs[st->nrows++] = rec;
	}

	if (st->nrows > 0)
	{
		st->values = palloc(sizeof(Datum) * st->nrows * st->ncols);
		st->nulls = palloc(sizeof(bool) * st->nrows * st->ncols);
		st->rejected = palloc0(st->nrows);
		convert_batch(st);
		insert_batch(st);
		write_batch_errors(st);
		st->records_done += st->nrows;
		st->since_commit += st->nrows;
	}
	MemoryContextSwitchTo(old);

	shmem_worker_progress((uint64) st->rows_inserted, csvp_bytes(st->parser));
	csvp_clear(st->parser);
	MemoryContextReset(st->batch_cxt);
	st->batch_errors = NIL;
	st->recs = NULL;
	st->nrows = 0;

	if (st->opts.commit_every > 0 && st->since_commit >= st->opts.commit_every)
	{
		JobCounters done = {.records_done = st->records_done,
			.rows_inserted = st->rows_inserted, .rows_rejected = st->rows_rejected,
		.bytes_done = (int64) csvp_bytes(st->parser), .errors_stored = st->errors_stored};

		/* the checkpoint commits with the rows it counts */
		identity_leave(&st->owner_save);
		jobs_checkpoint(st->job, &done);
		identity_enter(st->job->owner, &st->owner_save);
		commit_xact(st);
		st->since_commit = 0;
		begin_xact(st);
		if (jobs_cancel_requested(st->job->id))
			cancel_job(st);
	}
}

/*
 * How many records to gather before loading them: a batch, cut short so a
 * transaction commits after exactly commit_every data records (the header
 * record, when one is expected, comes on top).
 */
static int
records_wanted(LoadState *st)
{
	int64		want = st->batch_size;

	if (st->opts.commit_every > 0)
		want = Min(want, st->opts.commit_every - st->since_commit);
	if (st->header_pending)
		want++;
	return (int) Max(want, 1);
}

/* Enough gathered for one batch by size, whatever the count (see INGEST_BATCH_BYTES). */
static bool
batch_full(LoadState *st)
{
	return csvp_held_bytes(st->parser) >= INGEST_BATCH_BYTES ||
		(int64) csvp_nrecords(st->parser) * Max(st->ncols, 1) >= INGEST_BATCH_VALUES;
}

static void
free_parser(void *arg)
{
	LoadState  *st = arg;

	csvp_destroy(st->parser);
	st->parser = NULL;
}

void
loader_run(IngestJob *job, MemoryContext job_cxt)
{
	LoadState  *st = MemoryContextAllocZero(job_cxt, sizeof(LoadState));
	CsvpOptions popts;
	MemoryContext old = MemoryContextSwitchTo(job_cxt);

	st->job = job;
	st->job_cxt = job_cxt;
	/*
	 * A batch allocates megabytes of values and frees them all at once; a
	 * large kept block spares the page faults of giving that memory back to
	 * the kernel and faulting it in again for every batch.
	 */
	st->batch_cxt = AllocSetContextCreate(job_cxt, "ingest batch",
										  8 * 1024 * 1024, 8 * 1024 * 1024, 8 * 1024 * 1024);
	if (job->source_type == JOB_SOURCE_FILE)
		st->where = psprintf("file \"%s\"", job->source);
	else if (job->source_type == JOB_SOURCE_LO)
		st->where = pstrdup(job->source);	/* large object 12345 */
	else
		st->where = pstrdup("uploaded data");
	st->pos_row = -1;
	st->pos_col = -1;
	st->mark_row = -1;
	st->records_done = job->records_done;
	st->committed_records = job->records_done;
	st->rows_inserted = job->rows_inserted;
	st->committed_inserted = job->rows_inserted;
	st->rows_rejected = job->rows_rejected;
	st->committed_rejected = job->rows_rejected;
	st->errors_stored = job->errors_stored;
	st->committed_errors_stored = job->errors_stored;
	st->buf = palloc(INGEST_READ_CHUNK);
	active = st;
	options_parse(job->options, &st->opts);
	MemoryContextSwitchTo(old);

	begin_xact(st);
	if (job->cancel_requested || jobs_cancel_requested(job->id))
		cancel_job(st);
	/* partitions may have been attached since the enqueue */
	target_check_foreign_rls(job->target, job->owner);
	st->rows_sent_together = target_has_foreign_partitions(job->target);
	/*
	 * At a point in time, not after a delay: enable_timeout_after takes an
	 * int of milliseconds, which would cut a timeout longer than 24.8 days.
	 */
	if (job->timeout_ms > 0)
		enable_timeout_at(job_timeout_id,
						  TimestampTzPlusMilliseconds(GetCurrentTimestamp(), job->timeout_ms));

	/* what outlives this transaction lives in the job's context */
	old = MemoryContextSwitchTo(job_cxt);

	/* read after the owner's settings are applied: batch_rows may be the session's */
	st->batch_size = ingest_batch_rows;
	if (st->opts.commit_every > 0 && st->opts.commit_every < st->batch_size)
		st->batch_size = (int) st->opts.commit_every;

	popts.delimiter = st->opts.delimiter;
	popts.quote = st->opts.quote;
	popts.null_string = st->opts.null_string;
	/* the value in force when the job started, as messages will name it */
	st->max_record_size = ingest_max_record_size;
	popts.max_field_size = (size_t) st->max_record_size;
	popts.max_record_size = (size_t) st->max_record_size;
	/* no table has more columns; one more tells "extra data" from a fit */
	popts.max_fields = MaxHeapAttributeNumber + 1;
	st->parser = csvp_create(&popts);
	if (st->parser == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	st->parser_cb.func = free_parser;
	st->parser_cb.arg = st;
	MemoryContextRegisterResetCallback(job_cxt, &st->parser_cb);

	st->header_pending = st->opts.header;
	if (!st->opts.header || st->opts.columns != NIL)
		setup_columns(st, NULL);

	st->reader = reader_open(job, job_cxt);
	MemoryContextSwitchTo(old);

	while (!st->eof || csvp_nrecords(st->parser) > 0)
	{
		if (st->buf_off == st->buf_len && !st->eof)
		{
			st->buf_len = reader_read(st->reader, st->buf, INGEST_READ_CHUNK);
			st->buf_off = 0;
			if (st->buf_len == 0)
			{
				st->eof = true;
				if (!csvp_finish(st->parser))
					ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			}
		}
		if (st->buf_off < st->buf_len)
		{
			size_t		n = csvp_feed(st->parser, st->buf + st->buf_off,
									  st->buf_len - st->buf_off, records_wanted(st));

			if (n == (size_t) -1)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory while parsing %s near line " INT64_FORMAT,
								st->where, csvp_line(st->parser))));
			st->buf_off += n;
		}
		if (csvp_nrecords(st->parser) >= records_wanted(st) ||
			(csvp_nrecords(st->parser) > 0 && (st->eof || batch_full(st))))
			process_records(st);
	}

	loader_stop_timer();
	job_timed_out = false;
	identity_leave(&st->owner_save);
	if (!st->opts.keep_data)
		jobs_drop_data(job->id);
	reader_succeeded(st->reader, &st->opts);
	jobs_finish(job, JOB_SUCCEEDED,
				&(JobCounters) {.records_done = st->records_done,
					.rows_inserted = st->rows_inserted, .rows_rejected = st->rows_rejected,
				.bytes_done = (int64) csvp_bytes(st->parser), .errors_stored = st->errors_stored},
				NULL);
	identity_enter(job->owner, &st->owner_save);
	commit_xact(st);

	if (st->plan)
		SPI_freeplan(st->plan);
	st->plan = NULL;
	active = NULL;
}

static Interval *
ms_interval(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return iv;
}

/*
 * After an error escaped loader_run and the transaction was aborted: what to
 * record. Call before loader_forget.
 */
void
loader_describe_failure(ErrorData *edata, LoaderOutcome *out)
{
	LoadState  *st = active;
	int			bad = -1;
	char	   *message = NULL;

	memset(out, 0, sizeof(*out));
	out->sqlerrcode = edata->sqlerrcode;
	if (st == NULL)
	{
		out->last_error = row_message(edata);
		return;
	}

	out->cancelled = st->cancelled;
	out->timed_out = job_timed_out && !st->cancelled && edata->sqlerrcode == ERRCODE_QUERY_CANCELED;
	out->records_done = st->committed_records;
	out->rows_inserted = st->committed_inserted;
	/* rejected records of the aborted transaction count only as far as they are recorded */
	out->rows_rejected = st->committed_rejected + list_length(st->pending_errors);
	out->bytes_done = st->committed_bytes;
	out->errors_stored = st->committed_errors_stored;
	out->pending_errors = st->pending_errors;

	if (st->fail_message)
	{
		out->last_error = pstrdup(st->fail_message);
		return;
	}
	if (out->cancelled)
	{
		/* no record is to blame, not even the one the executor was on */
		out->last_error = row_message(edata);
		return;
	}
	if (out->timed_out)
	{
		out->last_error = psprintf("%s, near line " INT64_FORMAT ": the job ran longer than its timeout of %s and was stopped",
								   st->where, csvp_line(st->parser),
								   DatumGetCString(DirectFunctionCall1(interval_out,
																	   IntervalPGetDatum(ms_interval(st->job->timeout_ms)))));
		return;
	}

	/* with max_errors 0 nothing caught the error: say which record caused it */
	if (st->phase == PHASE_CONVERT && st->pos_row >= 0 && st->recs)
	{
		bad = st->pos_row;
		message = st->pos_col >= 0
			? psprintf("column \"%s\": %s", st->colnames[st->pos_col], row_message(edata))
			: row_message(edata);
	}
	else if (st->phase == PHASE_INSERT && st->recs)
	{
		bad = failed_row(st);
		message = row_message(edata);
		if (bad < 0)
		{
			/* an AFTER trigger (a foreign key, say) ran after every row of the batch */
			out->last_error = psprintf("%s, lines " INT64_FORMAT " to " INT64_FORMAT ": %s",
									   st->where, st->recs[st->ins_lo]->line,
									   st->recs[st->ins_hi - 1]->line, message);
			return;
		}
	}

	if (bad >= 0)
	{
		/*
		 * A bad value, a constraint or a trigger's complaint is the record's
		 * fault: it is listed as the one rejected record. An error that is
		 * not (a serialization failure, a lock timeout, out of memory) only
		 * says where the load was: the record is not bad, and an attempt
		 * that retries it may well load it.
		 */
		if (is_record_error(edata->sqlerrcode))
		{
			LoaderPendingError *pe = make_error(st, bad, edata->sqlerrcode, message);

			out->pending_errors = lappend(out->pending_errors, pe);
			out->rows_rejected++;
		}
		out->last_error = psprintf("%s, line " INT64_FORMAT ": %s", st->where,
								   st->recs[bad]->line, message);
	}
	else
		out->last_error = row_message(edata);
}

/* Drop the job's state after a failure (the plan is not transaction-bound). */
void
loader_forget(void)
{
	loader_stop_timer();
	job_timed_out = false;
	if (active && active->plan)
		SPI_freeplan(active->plan);
	active = NULL;
}

/* ---------- what the batch INSERT reads ---------- */

/*
 * Only our own INSERT may read the batch, once per execution, with exactly
 * the types we built: a trigger asking for it with another column list
 * would have us hand out Datums as the wrong type.
 */
void
loader_batch_begin(TupleDesc desc)
{
	LoadState  *st = batch_owner();
	bool		ok;

	if (st->rows_served)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ingest._batch_rows() can only be called by an ingest worker's own INSERT")));
	st->rows_served = true;

	ok = desc->natts == st->ncols + 1 && TupleDescAttr(desc, 0)->atttypid == INT4OID;
	for (int j = 0; ok && j < st->ncols; j++)
		ok = TupleDescAttr(desc, j + 1)->atttypid == st->typids[j];
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("ingest._batch_rows() called with a wrong column definition list")));
	st->scan_pos = st->ins_lo;
}

/* The next good row of the range being inserted, which becomes the marked row. */
bool
loader_batch_next(Datum *values, bool *isnull)
{
	LoadState  *st = active;
	int			i;

	/* a cancel is seen between rows, not only between batches */
	if (shmem_worker_cancel_requested())
		check_cancel(st);
	while (st->scan_pos < st->ins_hi && st->rejected[st->scan_pos])
		st->scan_pos++;
	if (st->scan_pos >= st->ins_hi)
		return false;
	i = st->scan_pos++;
	st->mark_row = i;
	values[0] = Int32GetDatum(i);
	isnull[0] = false;
	memcpy(values + 1, st->values + (size_t) i * st->ncols, sizeof(Datum) * st->ncols);
	memcpy(isnull + 1, st->nulls + (size_t) i * st->ncols, sizeof(bool) * st->ncols);
	return true;
}

void
loader_batch_rewind(void)
{
	if (active)
		active->scan_pos = active->ins_lo;
}

/* ---------- SQL-callable pieces of the batch INSERT ---------- */

static LoadState *
batch_owner(void)
{
	if (active == NULL || active->phase != PHASE_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this function can only be called by an ingest worker")));
	return active;
}

Datum
ingest_batch_rows_srf(PG_FUNCTION_ARGS)
{
	LoadState  *st = batch_owner();
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	desc = rsinfo->setDesc;
	loader_batch_begin(desc);

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	for (int i = st->ins_lo; i < st->ins_hi; i++)
	{
		if (st->rejected[i])
			continue;
		values[0] = Int32GetDatum(i);
		nulls[0] = false;
		memcpy(values + 1, st->values + (size_t) i * st->ncols, sizeof(Datum) * st->ncols);
		memcpy(nulls + 1, st->nulls + (size_t) i * st->ncols, sizeof(bool) * st->ncols);
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	}
	return (Datum) 0;
}

Datum
ingest_batch_mark_fn(PG_FUNCTION_ARGS)
{
	LoadState  *st = batch_owner();
	int32		row = PG_GETARG_INT32(0);

	if (row >= st->ins_lo && row < st->ins_hi)
		st->mark_row = row;
	PG_RETURN_BOOL(true);
}
