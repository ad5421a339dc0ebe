/*
 * loadbatch.c
 *		One batch of a load: the parser's complete records gathered, converted
 *		to values, inserted as the owner, and the bad ones set aside.
 *
 * loader.c decides when a batch is due and what happens around it
 * (transactions, checkpoints); this file runs it. A batch's values and all
 * that converting and inserting them allocates live in the batch's memory
 * context, reset when the batch is done. The target columns are resolved
 * here too, once per job: from the options, from the header record when it
 * is the first record of the first batch, or from the table.
 */
#include "postgres.h"

#include "access/relation.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "convert.h"
#include "header.h"
#include "loader_internal.h"
#include "shmem.h"

/*
 * The force_null option's columns among the target columns, as a flag per
 * column. Like COPY's FORCE_NULL, a column that is not loaded is an error.
 */
static void
resolve_force_null(IngestLoad *ld)
{
	ListCell   *lc;

	ld->force_null = NULL;
	if (ld->opts.force_null == NIL)
		return;
	ld->force_null = MemoryContextAllocZero(ld->job_cxt, sizeof(bool) * Max(ld->cols.ncols, 1));
	foreach(lc, ld->opts.force_null)
	{
		const char *name = lfirst(lc);
		int			j;

		for (j = 0; j < ld->cols.ncols; j++)
			if (strcmp(ld->cols.names[j], name) == 0)
				break;
		if (j == ld->cols.ncols)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("ingest option \"force_null\": column \"%s\" is not loaded by job " INT64_FORMAT,
							name, ld->job->id)));
		ld->force_null[j] = true;
	}
}

/*
 * Fix the target columns (from the columns option, the header record, or
 * the table's own order), check the owner may insert into each, and prepare
 * the INSERT, as the owner.
 */
void
loadbatch_setup_columns(IngestLoad *ld, const CsvpRecord *header)
{
	Relation	rel;

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(ld->job->target)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the target table of ingest job " INT64_FORMAT " (OID %u) no longer exists",
						ld->job->id, ld->job->target)));
	rel = target_open(ld->job->target, RowExclusiveLock);
	if (ld->opts.columns != NIL)
		target_resolve(rel, ld->opts.columns, TARGET_NAMES_OPTION, &ld->opts, ld->job->owner,
					   &ld->cols, ld->job_cxt);
	else if (header != NULL)
		target_resolve(rel, header_names(ld->parser, header, ld->where), TARGET_NAMES_HEADER, &ld->opts,
					   ld->job->owner, &ld->cols, ld->job_cxt);
	else
		target_resolve(rel, NIL, TARGET_NAMES_TABLE, &ld->opts, ld->job->owner, &ld->cols,
					   ld->job_cxt);
	convert_prepare(&ld->cols, ld->opts.decimal_comma, ld->job_cxt);
	resolve_force_null(ld);
	/* indexes and grants may have changed since the enqueue checked them */
	conflict_resolve(rel, &ld->opts, &ld->conflict, ld->job_cxt);
	conflict_check_privileges(rel, &ld->conflict, &ld->cols, ld->job->owner);
	insert_prepare(&ld->ins, target_name(rel), &ld->cols, conflict_clause(&ld->conflict, &ld->cols));
	relation_close(rel, NoLock);

	ld->batch.ncols = ld->cols.ncols;
	ld->batch.typids = ld->cols.typids;
	ld->columns_ready = true;
}

/* Convert the batch's rows from ld->pos_row on; a bad shape sets the row aside. */
static void
convert_rows(void *arg)
{
	IngestLoad *ld = arg;
	IngestBatch *b = &ld->batch;

	for (; ld->pos_row < b->nrows; ld->pos_row++)
	{
		int			i = ld->pos_row;
		ConvertFailure failure;

		b->check_cancel(b->cancel_arg);
		if (!convert_record(&ld->cols, ld->parser, b->recs[i], ld->max_record_size,
							ld->force_null, ld->opts.null_string, ld->check_text_batches > 0,
							b->values + (size_t) i * b->ncols, b->nulls + (size_t) i * b->ncols,
							&ld->at_col, &failure))
			isolate_reject(&ld->rejects, b, i, failure.sqlerrcode,
						   failure.edata ? loadbatch_conversion_message(ld, failure.edata)
						   : failure.message);
	}
}

/* An input function's error, naming the column it was converting. */
char *
loadbatch_conversion_message(IngestLoad *ld, ErrorData *edata)
{
	if (ld->at_col >= 0)
		return psprintf("column \"%s\": %s", ld->cols.names[ld->at_col],
						isolate_error_message(edata));
	return isolate_error_message(edata);
}

static void
convert_batch(IngestLoad *ld)
{
	IngestBatch *b = &ld->batch;

	ld->phase = PHASE_CONVERT;
	ld->pos_row = 0;
	if (ld->opts.max_errors == 0)
		convert_rows(ld);
	else
	{
		while (ld->pos_row < b->nrows)
		{
			ErrorData  *edata = isolate_run(&ld->rejects, convert_rows, ld);

			if (edata == NULL)
				break;
			isolate_reject(&ld->rejects, b, ld->pos_row, edata->sqlerrcode,
						   loadbatch_conversion_message(ld, edata));
			ld->pos_row++;
		}
	}
	ld->pos_row = -1;
	ld->at_col = -1;
	ld->phase = PHASE_OTHER;
}

/*
 * Insert the batch's good rows. A row that went in without error but wrote
 * nothing (a conflict with "on_conflict": "nothing", a BEFORE trigger that
 * returned NULL) is counted skipped, so that inserted, rejected and skipped
 * add up to the records read. With "update" the rows are isolated even with
 * max_errors 0: a key met twice in one INSERT is split, not rejected
 * (isolate.c).
 */
static void
insert_batch(IngestLoad *ld)
{
	IngestBatch *b = &ld->batch;
	uint64		inserted;

	if (!batch_any_good(b, 0, b->nrows))
		return;
	ld->phase = PHASE_INSERT;
	if (ld->opts.max_errors == 0 && ld->opts.on_conflict != INGEST_CONFLICT_UPDATE)
		inserted = insert_run(&ld->ins, b, 0, b->nrows);
	else
		inserted = isolate_insert(&ld->rejects, &ld->ins, b);
	ld->done.rows_inserted += inserted;
	ld->done.rows_skipped += batch_count_good(b, 0, b->nrows) - (int64) inserted;
	ld->phase = PHASE_OTHER;
}

/* The parser's complete records, in the batch, skipping the header and what is done. */
static void
gather_records(IngestLoad *ld)
{
	IngestBatch *b = &ld->batch;
	int			n = csvp_nrecords(ld->parser);
	int			nrows = 0;

	b->recs = MemoryContextAlloc(b->cxt, sizeof(CsvpRecord *) * Max(n, 1));
	b->first_record = ld->record_base + ld->done.records_done + 1;
	for (int i = 0; i < n; i++)
	{
		const CsvpRecord *rec = csvp_record(ld->parser, i);

		if (ld->header_pending)
		{
			ld->header_pending = false;
			/* read even when the columns option makes it skipped */
			header_check_readable(rec, ld->where);
			if (!ld->columns_ready)
				loadbatch_setup_columns(ld, rec);
			continue;
		}
		ld->records_seen++;
		if (ld->records_seen <= ld->job->done.records_done)
			continue;			/* committed by an earlier attempt */
		b->recs[nrows++] = rec;
	}
	b->nrows = nrows;
}

/* Load the complete records the parser holds, then forget them. */
void
loadbatch_process(IngestLoad *ld)
{
	IngestBatch *b = &ld->batch;
	MemoryContext old;

	b->check_cancel(b->cancel_arg);
	/* the batch's values, and whatever converting and inserting them allocates */
	old = MemoryContextSwitchTo(b->cxt);
	gather_records(ld);
	if (b->nrows > 0)
	{
		batch_fill(b, b->nrows);
		convert_batch(ld);
		insert_batch(ld);
		if (ld->rejects.batch != NIL && ld->gid != NULL)
		{
			/*
			 * A part to be prepared writes no ingest table: a prepared
			 * transaction's locks on them would hold DROP EXTENSION, and the
			 * worker behind it. Its rejected records are kept (pending) and
			 * written after the prepare (loader_write_prepared_rejects).
			 */
			ld->rejects.batch = NIL;
		}
		else if (ld->rejects.batch != NIL)
		{
			identity_leave(&ld->owner_save);
			isolate_write(&ld->rejects, ld->job->id);
			identity_enter(ld->job->owner, &ld->owner_save);
		}
		ld->done.records_done += b->nrows;
		ld->since_commit += b->nrows;
	}
	MemoryContextSwitchTo(old);

	shmem_worker_progress((uint64) ld->done.rows_inserted, (uint64) loader_bytes_done(ld));
	csvp_clear(ld->parser);
	MemoryContextReset(b->cxt);
	ld->rejects.batch = NIL;
	b->recs = NULL;
	b->nrows = 0;

}
