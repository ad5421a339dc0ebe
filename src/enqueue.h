/*
 * enqueue.h
 *		Creating a job, and making workers act when the transaction commits:
 *		what the SQL functions of api.c and upload.c share.
 */
#ifndef INGEST_ENQUEUE_H
#define INGEST_ENQUEUE_H

#include "fmgr.h"
#include "header.h"
#include "jobs.h"

extern void enqueue_init(void);
extern int64 enqueue_job(Oid target, const char *source, JobSourceType source_type,
						 Jsonb *options, int64 size, bytea *data, bool uploading,
						 const SourceHead *head);
extern void enqueue_wake_at_commit(void);
extern void enqueue_cancel_at_commit(int64 job_id);
extern Jsonb *enqueue_options_arg(FunctionCallInfo fcinfo, int argno);
extern void enqueue_not_null(FunctionCallInfo fcinfo, int argno, const char *name);
extern void enqueue_check_server_files(const char *function);
extern void enqueue_check_target(Oid target, Jsonb *options);

#endif							/* INGEST_ENQUEUE_H */
