/*
 * jobs_internal.h
 *		What the files of the jobs service share among themselves, and no
 *		other file may use: running SQL as the tables' owner, copying SPI
 *		results out, and the caller's scope over jobs.
 */
#ifndef INGEST_JOBS_INTERNAL_H
#define INGEST_JOBS_INTERNAL_H

#include "access/htup.h"
#include "access/tupdesc.h"

#include "jobs.h"

/*
 * Is a cancel of job alias.id pending? A cancel of a running job is a row of
 * ingest.job_cancels, not an update of the job's row: an update would lock
 * that row until the cancelling transaction ends, and a session that left
 * it open would hold the worker's every write to its job, the outcome
 * included. cancel_requested is the form 1.1 wrote.
 */
#define CANCEL_PENDING_SQL(alias) \
	"(" alias ".cancel_requested OR EXISTS (SELECT 1 FROM ingest_private.job_cancels c " \
	"  WHERE c.job_id = " alias ".id))"

/*
 * Has a part of the job of part alias failed (or found that the job must be
 * loaded by one worker)? Then no other part of it is claimed: the job is
 * failing, as a load by one worker stops at its error.
 */
#define PART_FAILED_SQL(alias) \
	"EXISTS (SELECT 1 FROM ingest_private.job_parts f " \
	"  WHERE f.job_id = " alias ".job_id AND f.state IN ('failed', 'serial'))"

/*
 * The condition that scopes a query to the caller's jobs, as the policy
 * own_jobs scopes reads, over four parameters that caller_params fills.
 */
#define CALLER_SQL(n, n1, n2, n3) \
	"((owner = $" #n "::regrole AND (NOT $" #n1 " OR tenant = $" #n2 ")) OR $" #n3 ")"

/* jobs.c */
extern int	jobs_exec_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
							   const char *nulls, bool read_only);
extern void jobs_exec_for_job(const char *sql, int64 job_id);
extern JobState jobs_state_from_name(const char *name);
extern JobSourceType jobs_source_from_name(const char *name);
extern char *jobs_copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt);
extern void jobs_log_ended(int64 job_id, JobState state, HeapTuple tup, TupleDesc desc);

/* jobs_access.c */
extern bool jobs_is_admin(Oid role);
extern void jobs_not_found(int64 job_id) pg_attribute_noreturn();
extern void jobs_caller_params(Oid caller, Oid *types, Datum *values, char *nulls, int first);
extern Oid	jobs_check_visible(int64 job_id, Oid caller, JobState *state);
extern void jobs_check_queue_quota(Oid owner, const char *tenant);

/* jobs_parts.c */
#define JOB_PART_COLUMNS \
	"part, start_offset, end_offset, first_line, first_record, records_done, " \
	"rows_inserted, rows_rejected, rows_skipped, bytes_done, errors_stored"
extern void jobs_read_part(HeapTuple tup, TupleDesc desc, int first, JobPart *part);

/* jobs_data.c */
extern bool jobs_data_discarded(int64 job_id);

#endif							/* INGEST_JOBS_INTERNAL_H */
