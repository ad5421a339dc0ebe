/*
 * batch.h
 *		The batch buffer: a batch's records, their converted values, and the
 *		range of rows the batch INSERT is reading.
 */
#ifndef INGEST_BATCH_H
#define INGEST_BATCH_H

#include "access/tupdesc.h"
#include "parser.h"

typedef struct IngestBatch
{
	MemoryContext cxt;			/* holds the arrays; the loader resets it per batch */
	CsvpParser *parser;			/* holds the records' text */
	int			ncols;
	const Oid  *typids;			/* the column types the values were built as */
	int			nrows;
	const CsvpRecord **recs;	/* nrows records */
	int64		first_record;	/* data-record ordinal of recs[0], 1-based */
	Datum	   *values;			/* nrows * ncols */
	bool	   *nulls;
	char	   *rejected;		/* per row: set aside, not to be inserted */

	/* the rows an INSERT is reading: [lo, hi), minus the rejected ones */
	int			lo;
	int			hi;
	int			mark_row;		/* the row the executor is on, -1 if none yet */
	int			scan_pos;		/* the next row for the scan */
	bool		served;			/* a scan of this INSERT began already */

	/* checks for a cancel; called between records and between rows */
	void		(*check_cancel) (void *arg);
	void	   *cancel_arg;
} IngestBatch;

extern void batch_fill(IngestBatch *b, int nrows);
extern bool batch_any_good(const IngestBatch *b, int lo, int hi);
extern int	batch_count_good(const IngestBatch *b, int lo, int hi);

/* The one batch whose rows an INSERT may read now (insert.c sets it). */
extern void batch_open_reading(IngestBatch *b, int lo, int hi);
extern void batch_close_reading(void);

/* For the batch scan (batchscan.c) and ingest._batch_rows(). */
extern void batch_scan_begin(TupleDesc desc);
extern bool batch_scan_next(Datum *values, bool *isnull);
extern void batch_scan_rewind(void);

#endif							/* INGEST_BATCH_H */
