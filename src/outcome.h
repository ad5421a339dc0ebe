/*
 * outcome.h
 *		What a failed attempt of a job comes to.
 */
#ifndef INGEST_OUTCOME_H
#define INGEST_OUTCOME_H

#include "jobs.h"

extern void outcome_record_failure(IngestJob *job, ErrorData *edata);

#endif							/* INGEST_OUTCOME_H */
