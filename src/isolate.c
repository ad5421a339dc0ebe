/*
 * isolate.c
 *		Bad records set aside, so that the good ones load (max_errors > 0).
 *
 * With max_errors 0 nothing here runs (but the insert with "on_conflict":
 * "update", see key_met_again): the first bad record fails the job,
 * nothing is caught and the transaction aborts. With max_errors > 0 the
 * loader converts a batch in a subtransaction (no XID is assigned: it writes
 * nothing), and an insert that fails is retried without the row that failed:
 * when the row is known, the rows before it again, then the rest; when it is
 * not (an AFTER trigger, a foreign partition), by halves. Either way each bad
 * record costs O(batch) work, not O(batch^2).
 *
 * Only errors a record can be blamed for (a bad value, a constraint, a
 * policy, a trigger's complaint) are caught; the job's own (cancel, out of
 * memory, serialization, I/O) go on up, as does the error that takes the
 * count of rejected records past max_errors.
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "utils/resowner.h"

#include "settings.h"
#include "encoding.h"
#include "isolate.h"
#include "jobs.h"

/*
 * Errors that say something about one record (bad value, constraint,
 * policy, trigger) are the record's fault; the others (cancel, out of
 * memory, serialization, I/O) are the job's and must not be swallowed.
 */
bool
isolate_is_record_error(int sqlerrcode)
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

/* An error's message and detail, cut as job_errors keeps them. */
char *
isolate_error_message(ErrorData *edata)
{
	const char *message = edata->message ? edata->message : "";

	if (edata->detail)
		return jobs_clip_message(psprintf("%s: %s", jobs_clip_message(message),
										  jobs_clip_message(edata->detail)));
	return pstrdup(jobs_clip_message(message));
}

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
		size_t		ml = encoding_marker_len(s + i, len - i);

		if (ml > 0)
		{
			/* bytes the decoder could not convert: shown as they were in the file */
			int			k = s[i + 2] - '0';

			if (out.len + 4 * k > INGEST_RAW_LINE_MAX)
				break;
			for (int j = 0; j < k; j++)
				appendStringInfo(&out, "\\x%c%c", pg_ascii_toupper((unsigned char) s[i + 3 + 2 * j]),
								 pg_ascii_toupper((unsigned char) s[i + 4 + 2 * j]));
			i += ml;
		}
		else if (l <= 0 || s[i] == '\0')
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

/* The record's fields joined again as CSV, cut to INGEST_RAW_LINE_MAX bytes. */
static char *
raw_line(const IngestOptions *opts, CsvpParser *parser, const CsvpRecord *rec)
{
	StringInfoData out;
	char		delim = opts->delimiter;
	char		quote = opts->quote;

	/* build a little more than the limit, so sanitize cuts between characters */
	initStringInfo(&out);
	for (int i = 0; i < rec->nfields && out.len <= INGEST_RAW_LINE_MAX; i++)
	{
		size_t		len;
		bool		isnull;
		const char *f = csvp_field(parser, rec, i, &len, &isnull);
		bool		needs_quotes = (!isnull && len == 0);

		/* a quoted null string is text: keep the quotes that say so */
		if (!isnull && opts->null_string != NULL && opts->null_string[0] != '\0' &&
			strlen(opts->null_string) == len && memcmp(f, opts->null_string, len) == 0)
			needs_quotes = true;

		if (i > 0)
			appendStringInfoChar(&out, delim);
		if (isnull && opts->null_string == NULL)
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

/* Row i of the batch as job_errors will hold it, in the current memory context. */
RejectedRecord *
isolate_describe(IngestRejects *rj, const IngestBatch *b, int i, int sqlerrcode,
				 const char *message)
{
	const CsvpRecord *rec = b->recs[i];
	RejectedRecord *rr = palloc0(sizeof(RejectedRecord));

	rr->line = rec->line;
	rr->record_number = b->first_record + i;
	memcpy(rr->sqlstate, unpack_sql_state(sqlerrcode), 6);
	rr->message = pstrdup(message);
	rr->raw_line = raw_line(rj->opts, b->parser, rec);
	return rr;
}

/*
 * Set row i of the batch aside: record it, or fail the job once more than
 * max_errors records were rejected.
 */
void
isolate_reject(IngestRejects *rj, IngestBatch *b, int i, int sqlerrcode, const char *message)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	RejectedRecord *rr = isolate_describe(rj, b, i, sqlerrcode, message);

	/*
	 * Written to job_errors when the batch is done, outside any
	 * subtransaction that a later record could still roll back.
	 */
	rj->batch = lappend(rj->batch, rr);
	b->rejected[i] = 1;
	rj->count++;

	/*
	 * Kept for the failure's record should the transaction abort: as many
	 * as job_errors may still take (ingest.max_error_rows), so a failed
	 * job's job_errors holds what a successful one's would, within the
	 * memory a batch may take.
	 */
	if (rj->stored_committed + list_length(rj->pending) < ingest_max_error_rows &&
		rj->pending_bytes < INGEST_BATCH_BYTES)
	{
		RejectedRecord *copy;

		MemoryContextSwitchTo(rj->keep_cxt);
		copy = palloc(sizeof(RejectedRecord));
		*copy = *rr;
		copy->message = pstrdup(rr->message);
		copy->raw_line = pstrdup(rr->raw_line);
		rj->pending = lappend(rj->pending, copy);
		rj->pending_bytes += sizeof(RejectedRecord) + strlen(copy->message) + strlen(copy->raw_line) + 2;
	}

	if (rj->count > rj->opts->max_errors)
	{
		MemoryContextSwitchTo(rj->keep_cxt);
		if (rj->opts->max_errors == 0)
			rj->fail_message = psprintf("%s, line " INT64_FORMAT ": %s",
										rj->where, rr->line, message);
		else
			rj->fail_message = psprintf("%s, line " INT64_FORMAT ": %s (" INT64_FORMAT " records rejected, more than max_errors = " INT64_FORMAT ")",
										rj->where, rr->line, message,
										rj->count, rj->opts->max_errors);
		MemoryContextSwitchTo(old);
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("%s", rj->fail_message)));
	}
	MemoryContextSwitchTo(old);
}

/*
 * Run fn in a subtransaction. Returns NULL when it succeeded; when it raised
 * an error that a record can be blamed for, rolls the subtransaction back and
 * returns the error. Other errors, and the one past max_errors, go on up.
 */
ErrorData *
isolate_run(IngestRejects *rj, void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
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

	if (edata != NULL && (rj->fail_message != NULL || !isolate_is_record_error(edata->sqlerrcode)))
		ReThrowError(edata);
	return edata;
}

typedef struct InsertTry
{
	IngestInsert *ins;
	IngestBatch *b;
	int			lo;
	int			hi;
	uint64		inserted;
} InsertTry;

static void
insert_range(void *arg)
{
	InsertTry  *t = arg;

	t->inserted = insert_run(t->ins, t->b, t->lo, t->hi);
}

/*
 * Did row bad fail with "ON CONFLICT DO UPDATE command cannot affect row a
 * second time" because an earlier row of the same INSERT had its key? Not
 * when it is the INSERT's first row: then the error is its own (21000 is
 * also a subquery's "more than one row returned"), and it is rejected.
 */
static bool
key_met_again(IngestRejects *rj, IngestBatch *b, ErrorData *edata, int lo, int bad)
{
	if (edata->sqlerrcode != ERRCODE_CARDINALITY_VIOLATION ||
		rj->opts->on_conflict != INGEST_CONFLICT_UPDATE)
		return false;
	return batch_any_good(b, lo, bad);
}

/* Insert [lo, hi), setting aside the rows that fail; adds what went in to *inserted. */
static void
insert_isolating(IngestRejects *rj, InsertTry *t, int lo, int hi, uint64 *inserted)
{
	IngestBatch *b = t->b;

	while (lo < hi && batch_any_good(b, lo, hi))
	{
		ErrorData  *edata;
		int			bad;

		t->lo = lo;
		t->hi = hi;
		edata = isolate_run(rj, insert_range, t);
		if (edata == NULL)
		{
			*inserted += t->inserted;
			return;
		}
		bad = insert_failed_row(t->ins, b);
		if (bad >= 0 && key_met_again(rj, b, edata, lo, bad))
		{
			/*
			 * The row's key came earlier in this INSERT, which DO UPDATE
			 * cannot change twice: load the rows before it, then it and the
			 * rest in an INSERT of their own, where it updates the earlier
			 * row. The file's last record of a key wins, as in one INSERT
			 * per record and whatever the batches.
			 */
			insert_isolating(rj, t, lo, bad, inserted);
			lo = bad;
			continue;
		}
		if (bad >= 0)
		{
			/* the rows before it went in fine the first time */
			if (bad > lo)
				insert_isolating(rj, t, lo, bad, inserted);
			isolate_reject(rj, b, bad, edata->sqlerrcode, isolate_error_message(edata));
			lo = bad + 1;
		}
		else
		{
			int			first = lo;
			int			mid;

			while (first < hi && b->rejected[first])
				first++;
			if (hi - first == 1 || !batch_any_good(b, first + 1, hi))
			{
				isolate_reject(rj, b, first, edata->sqlerrcode, isolate_error_message(edata));
				lo = first + 1;
				continue;
			}
			mid = first + (hi - first) / 2;
			insert_isolating(rj, t, first, mid, inserted);
			insert_isolating(rj, t, mid, hi, inserted);
			return;
		}
	}
}

/* Insert the batch's good rows, setting aside those that fail; returns how many went in. */
uint64
isolate_insert(IngestRejects *rj, IngestInsert *ins, IngestBatch *b)
{
	InsertTry	t = {ins, b, 0, 0, 0};
	uint64		inserted = 0;

	insert_isolating(rj, &t, 0, b->nrows, &inserted);
	return inserted;
}

/* Rejected records to job_errors, counted in rj->stored; past ingest.max_error_rows counted, not kept. */
static void
write_records(IngestRejects *rj, List *records, int64 job_id)
{
	ListCell   *lc;

	foreach(lc, records)
	{
		RejectedRecord *rr = lfirst(lc);

		if (rj->stored >= ingest_max_error_rows)
			break;
		jobs_record_error(job_id, rr->line, rr->record_number, rr->sqlstate,
						  rr->message, rr->raw_line);
		rj->stored++;
	}
}

/* Write the batch's rejected records to job_errors; call as the extension, not the owner. */
void
isolate_write(IngestRejects *rj, int64 job_id)
{
	write_records(rj, rj->batch, job_id);
	rj->batch = NIL;
}

/*
 * The transaction of a part was prepared without writing its rejected
 * records (a prepared transaction keeps no lock on ingest's tables): write
 * those kept, up to ingest.max_error_rows, in the caller's transaction.
 */
void
isolate_write_pending(IngestRejects *rj, int64 job_id)
{
	write_records(rj, rj->pending, job_id);
	isolate_forget_pending(rj);
}

/*
 * The open transaction committed: its rejected records are in job_errors,
 * those kept in case it aborted are freed (a long job with commit_every
 * would otherwise keep every one it rejected).
 */
void
isolate_forget_pending(IngestRejects *rj)
{
	ListCell   *lc;

	foreach(lc, rj->pending)
	{
		RejectedRecord *rr = lfirst(lc);

		pfree(rr->message);
		pfree(rr->raw_line);
		pfree(rr);
	}
	list_free(rj->pending);
	rj->pending = NIL;
	rj->pending_bytes = 0;
}
