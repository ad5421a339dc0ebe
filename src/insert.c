/*
 * insert.c
 *		The batch INSERT, planned once per job and run as the job's owner.
 *
 *   INSERT INTO target (a, b) SELECT c1, c2
 *     FROM ingest._batch_rows() AS b(rn int4, c1 type_a, c2 type_b)
 *    WHERE ingest._batch_mark(b.rn)
 *   [ON CONFLICT (k) DO NOTHING | DO UPDATE SET b = EXCLUDED.b]
 *
 * Going through the executor (not heap_insert, as COPY does) is what makes
 * RLS WITH CHECK policies, column privileges, triggers, defaults, constraints
 * and partition routing apply exactly as for the owner's own INSERT. The
 * batch (batch.c) records which row the executor is on, so an error raised
 * while inserting a row names its line; an ExecutorFinish hook tells errors
 * of AFTER triggers (foreign keys, deferred checks), which come after every
 * row, from per-row ones.
 */
#include "postgres.h"

#include "executor/executor.h"
#include "utils/builtins.h"

#include "batchscan.h"
#include "insert.h"
#include "multiinsert.h"

static IngestInsert *running = NULL;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;

/* Note our own INSERT: the first query the executor starts while one runs. */
static void
insert_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (running && running->top_query == NULL)
	{
		/* planned (or its cached plan taken) by now: later planning is not ours */
		running->top_query = queryDesc;
		batchscan_expect_own(false);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
insert_executor_finish(QueryDesc *queryDesc)
{
	if (running && running->top_query == queryDesc)
		running->after_rows = true;
	if (prev_executor_finish)
		prev_executor_finish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
}

/* In workers only: the hooks cost a backend nothing it does not use. */
void
insert_install_hooks(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = insert_executor_start;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = insert_executor_finish;
	batchscan_install();
}

/*
 * Prepare the INSERT of cols into relname, with its ON CONFLICT clause
 * (conflict.c; "" for none). Call as the owner: RLS policies are planned
 * for the role that prepares.
 */
void
insert_prepare(IngestInsert *ins, const char *relname, const IngestColumns *cols,
			   const char *on_conflict)
{
	StringInfoData sql;
	StringInfoData collist;
	StringInfoData sel;
	StringInfoData deflist;

	initStringInfo(&collist);
	initStringInfo(&sel);
	initStringInfo(&deflist);
	for (int n = 0; n < cols->ncols; n++)
	{
		appendStringInfo(&collist, "%s%s", n ? ", " : "", quote_identifier(cols->names[n]));
		appendStringInfo(&sel, "%sb.c%d", n ? ", " : "", n + 1);
		appendStringInfo(&deflist, ", c%d %s", n + 1,
						 format_type_extended(cols->typids[n], cols->typmods[n],
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
	}
	initStringInfo(&sql);
	/* a table with no columns: no column list (the statement stays valid) */
	appendStringInfo(&sql,
					 "INSERT INTO %s %s%s%s SELECT %s FROM ingest._batch_rows() AS b(rn pg_catalog.int4%s) "
					 "WHERE ingest._batch_mark(b.rn)%s",
					 relname, cols->ncols ? "(" : "", collist.data, cols->ncols ? ")" : "",
					 sel.data, deflist.data, on_conflict);

	batchscan_refresh();
	ins->plan = SPI_prepare(sql.data, 0, NULL);
	if (ins->plan == NULL)
		elog(ERROR, "ingest: could not prepare \"%s\": %s", sql.data,
			 SPI_result_code_string(SPI_result));
	SPI_keepplan(ins->plan);
}

/*
 * Insert the rows of [lo, hi) that are not set aside; returns how many went
 * in (with ON CONFLICT DO UPDATE: were inserted or updated). After an error the batch still says which row the executor was on.
 */
uint64
insert_run(IngestInsert *ins, IngestBatch *b, int lo, int hi)
{
	int			rc = SPI_OK_INSERT;
	uint64		processed = 0;

	ins->top_query = NULL;
	ins->after_rows = false;
	batch_open_reading(b, lo, hi);
	running = ins;
	batchscan_expect_own(true);
	PG_TRY();
	{
		/* buffered heap inserts when the plan allows (multiinsert.c), else the executor's */
		multiinsert_set_path("batched");
		if (!ingest_batched_insert || !multiinsert_run(ins->plan, b, &processed))
		{
			multiinsert_set_path("per-row");
			batchscan_expect_own(true);
			rc = SPI_execute_plan(ins->plan, NULL, NULL, false, 0);
			processed = SPI_processed;
		}
	}
	PG_FINALLY();
	{
		multiinsert_set_path("");
		running = NULL;
		batchscan_expect_own(false);
		batch_close_reading();
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "ingest: batch INSERT failed: %s", SPI_result_code_string(rc));
	return processed;
}

/* The row being inserted when the last run failed, or -1 if no one row is to blame. */
int
insert_failed_row(const IngestInsert *ins, const IngestBatch *b)
{
	if (ins->rows_sent_together || ins->after_rows ||
		b->mark_row < b->lo || b->mark_row >= b->hi)
		return -1;
	return b->mark_row;
}

/* The plan outlives transactions: free it when the job ends, however it ends. */
void
insert_release(IngestInsert *ins)
{
	if (ins->plan)
		SPI_freeplan(ins->plan);
	ins->plan = NULL;
}
