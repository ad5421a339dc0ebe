/*
 * insert.h
 *		The batch INSERT, planned and run as the job's owner.
 */
#ifndef INGEST_INSERT_H
#define INGEST_INSERT_H

#include "executor/spi.h"
#include "batch.h"
#include "target.h"

typedef struct IngestInsert
{
	SPIPlanPtr	plan;
	bool		rows_sent_together; /* a foreign partition may fail a batch of rows at once */
	/* what the last run reached */
	QueryDesc  *top_query;		/* our INSERT, once the executor started it */
	bool		after_rows;		/* its AFTER triggers run after every row */
} IngestInsert;

extern void insert_install_hooks(void);
extern void insert_prepare(IngestInsert *ins, const char *relname, const IngestColumns *cols,
						   const char *on_conflict);
extern uint64 insert_run(IngestInsert *ins, IngestBatch *b, int lo, int hi);
extern int	insert_failed_row(const IngestInsert *ins, const IngestBatch *b);
extern void insert_release(IngestInsert *ins);

#endif							/* INGEST_INSERT_H */
