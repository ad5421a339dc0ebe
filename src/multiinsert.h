/*
 * multiinsert.h
 *		The batch INSERT run with buffered heap inserts, every check kept.
 */
#ifndef INGEST_MULTIINSERT_H
#define INGEST_MULTIINSERT_H

#include "executor/spi.h"
#include "batch.h"

extern bool ingest_batched_insert;

extern void multiinsert_init(void);
extern void multiinsert_set_path(const char *path);
extern bool multiinsert_run(SPIPlanPtr plan, IngestBatch *b, uint64 *processed);

#endif							/* INGEST_MULTIINSERT_H */
