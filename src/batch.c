/*
 * batch.c
 *		The batch buffer, and the only way to read it: ingest._batch_rows().
 *
 * The loader gathers a batch of records, convert.c fills its values, and the
 * batch INSERT (insert.c) reads the rows that were not set aside:
 *
 *   INSERT INTO target (a, b) SELECT c1, c2
 *     FROM ingest._batch_rows() AS b(rn int4, c1 type_a, c2 type_b)
 *    WHERE ingest._batch_mark(b.rn)
 *
 * In a worker the planner replaces the function scan with the batch scan
 * (batchscan.c), which reads the same rows with no copy; the SQL functions
 * here are what runs when it does not. Either way a read must be the one
 * INSERT of the batch, with exactly the column types the values were built
 * as: a trigger naming ingest._batch_rows() with another column list would
 * otherwise have Datums handed out as the wrong type. Hence one reading
 * batch at a time, open only while insert.c runs its INSERT.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"

#include "batch.h"

PG_FUNCTION_INFO_V1(ingest_batch_rows_srf);
PG_FUNCTION_INFO_V1(ingest_batch_mark_fn);

static IngestBatch *reading = NULL;

/* Room for nrows rows of values, in the batch's context; no row set aside. */
void
batch_fill(IngestBatch *b, int nrows)
{
	b->nrows = nrows;
	b->values = MemoryContextAlloc(b->cxt, sizeof(Datum) * nrows * b->ncols);
	b->nulls = MemoryContextAlloc(b->cxt, sizeof(bool) * nrows * b->ncols);
	b->rejected = MemoryContextAllocZero(b->cxt, nrows);
}

bool
batch_any_good(const IngestBatch *b, int lo, int hi)
{
	for (int i = lo; i < hi; i++)
		if (!b->rejected[i])
			return true;
	return false;
}

/* How many rows of [lo, hi) are not set aside. */
int
batch_count_good(const IngestBatch *b, int lo, int hi)
{
	int			n = 0;

	for (int i = lo; i < hi; i++)
		n += !b->rejected[i];
	return n;
}

void
batch_open_reading(IngestBatch *b, int lo, int hi)
{
	b->lo = lo;
	b->hi = hi;
	b->mark_row = -1;
	b->served = false;
	reading = b;
}

/* Also after an error: the batch's rows and mark stay for the failure's description. */
void
batch_close_reading(void)
{
	reading = NULL;
}

static IngestBatch *
reading_batch(void)
{
	if (reading == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("this function can only be called by an ingest worker")));
	return reading;
}

void
batch_scan_begin(TupleDesc desc)
{
	IngestBatch *b = reading_batch();
	bool		ok;

	if (b->served)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ingest._batch_rows() can only be called by an ingest worker's own INSERT")));
	b->served = true;

	ok = desc->natts == b->ncols + 1 && TupleDescAttr(desc, 0)->atttypid == INT4OID;
	for (int j = 0; ok && j < b->ncols; j++)
		ok = TupleDescAttr(desc, j + 1)->atttypid == b->typids[j];
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("ingest._batch_rows() called with a wrong column definition list")));
	b->scan_pos = b->lo;
}

/* The next good row of the range, which becomes the marked row. */
bool
batch_scan_next(Datum *values, bool *isnull)
{
	IngestBatch *b = reading_batch();
	int			i;

	b->check_cancel(b->cancel_arg);
	while (b->scan_pos < b->hi && b->rejected[b->scan_pos])
		b->scan_pos++;
	if (b->scan_pos >= b->hi)
		return false;
	i = b->scan_pos++;
	b->mark_row = i;
	values[0] = Int32GetDatum(i);
	isnull[0] = false;
	memcpy(values + 1, b->values + (size_t) i * b->ncols, sizeof(Datum) * b->ncols);
	memcpy(isnull + 1, b->nulls + (size_t) i * b->ncols, sizeof(bool) * b->ncols);
	return true;
}

void
batch_scan_rewind(void)
{
	if (reading)
		reading->scan_pos = reading->lo;
}

/* ingest._batch_rows(): the rows of the range, through a tuplestore. */
Datum
ingest_batch_rows_srf(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;

	reading_batch();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	desc = rsinfo->setDesc;
	batch_scan_begin(desc);

	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	while (batch_scan_next(values, nulls))
		tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
	/* the rows are read ahead: the mark qual names the row being inserted */
	reading->mark_row = -1;
	return (Datum) 0;
}

/* ingest._batch_mark(row): the executor is on this row now. */
Datum
ingest_batch_mark_fn(PG_FUNCTION_ARGS)
{
	IngestBatch *b = reading_batch();
	int32		row = PG_GETARG_INT32(0);

	if (row >= b->lo && row < b->hi)
		b->mark_row = row;
	PG_RETURN_BOOL(true);
}
