/*
 * parallel.h
 *		Whether one file may be loaded by several workers: the "parallel"
 *		option's checks.
 */
#ifndef INGEST_PARALLEL_H
#define INGEST_PARALLEL_H

#include "header.h"
#include "options.h"

extern void parallel_check_enqueue(const IngestOptions *opts, const SourceHead *head);

#endif							/* INGEST_PARALLEL_H */
