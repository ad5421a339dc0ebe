/*
 * api.h
 *		What the SQL-callable functions share: creating a job, waking workers.
 */
#ifndef INGEST_API_H
#define INGEST_API_H

#include "fmgr.h"
#include "jobs.h"

extern int64 api_enqueue(Oid target, const char *source, JobSourceType source_type,
						 Jsonb *options, int64 size, bytea *data, bool uploading);
extern void api_wake_at_commit(void);
extern Jsonb *api_options_arg(FunctionCallInfo fcinfo, int argno);
extern void api_not_null(FunctionCallInfo fcinfo, int argno, const char *name);

#endif							/* INGEST_API_H */
