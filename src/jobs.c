/*
 * jobs.c
 *		A job's life in ingest's tables: created, claimed (jobs_queue.c),
 *		checkpointed, retried later or finished; cancelled, retried or purged
 *		by its owner.
 *
 * The state machine has one home, the jobs service: uploading -> queued
 * (jobs_data.c) -> running (jobs_queue.c) -> succeeded | failed | cancelled
 * (here), running -> queued after a transient failure or when a worker
 * vanished, and failed | cancelled -> queued by ingest.retry. Callers name
 * states by JobState; the text the table keeps is written here only.
 *
 * Users may only read these tables, so every change runs as the extension's
 * owner (identity_enter_system), whoever the caller is; what the calling
 * role may do is checked first (jobs_access.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "identity.h"
#include "joblog.h"
#include "settings.h"
#include "jobs_internal.h"

/* upload_jobs.source_type, by JobSourceType */
static const char *const job_source_names[] = {
	[JOB_SOURCE_FILE] = "file",
	[JOB_SOURCE_DATA] = "data",
	[JOB_SOURCE_CHUNKS] = "chunks",
	[JOB_SOURCE_LO] = "lo"
};

/* upload_jobs.state, by JobState */
static const char *const job_state_names[] = {
	[JOB_UPLOADING] = "uploading",
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded",
	[JOB_FAILED] = "failed",
	[JOB_CANCELLED] = "cancelled"
};

/* last_error of an upload cancelled before finish_upload (ingest.retry refuses it) */
#define UPLOAD_CANCELLED "upload cancelled by ingest.cancel() before it was finished"

/* The text upload_jobs.state keeps for state. */
const char *
jobs_state_name(JobState state)
{
	Assert(state >= 0 && state < lengthof(job_state_names));
	return job_state_names[state];
}

/*
 * A source type read from upload_jobs.source_type: JOB_SOURCE_UNKNOWN for
 * one this library does not know, which fails the job that has it.
 */
JobSourceType
jobs_source_from_name(const char *name)
{
	for (int i = 0; i < lengthof(job_source_names); i++)
		if (strcmp(name, job_source_names[i]) == 0)
			return (JobSourceType) i;
	return JOB_SOURCE_UNKNOWN;
}

/* A state read from upload_jobs.state; an ERROR for one this library does not know. */
JobState
jobs_state_from_name(const char *name)
{
	for (int i = 0; i < lengthof(job_state_names); i++)
		if (strcmp(name, job_state_names[i]) == 0)
			return (JobState) i;
	elog(ERROR, "ingest: unknown job state \"%s\"", name);
	return JOB_FAILED;			/* keep compiler quiet */
}

/*
 * Run one statement as the extension owner; returns SPI's result code. The
 * caller has SPI connected.
 */
int
jobs_exec_as_owner(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, bool read_only)
{
	IdentitySave save;
	int			rc;

	identity_enter_system(&save);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	identity_leave_system(&save);
	if (rc < 0)
		elog(ERROR, "ingest: SPI_execute_with_args failed (%d) for: %s", rc, sql);
	return rc;
}

/*
 * A message as ingest's tables keep it: at most INGEST_MESSAGE_MAX bytes,
 * cut between characters. Messages come from user code (a trigger may raise
 * megabytes); what a job stores must stay small whatever they say.
 */
char *
jobs_clip_message(const char *message)
{
	int			len = strlen(message);
	int			keep;

	if (len <= INGEST_MESSAGE_MAX)
		return (char *) message;
	keep = pg_mbcliplen(message, len, INGEST_MESSAGE_MAX - 4);
	return psprintf("%.*s ...", keep, message);
}

/* Run sql, whose one parameter $1 is the job's id, as the tables' owner (in its own SPI call). */
void
jobs_exec_for_job(const char *sql, int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner(sql, 1, types, values, NULL, false);
	SPI_finish();
}

/* A text column of an SPI result as a C string in cxt; NULL for NULL. */
char *
jobs_copy_text(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Create a job: its row, and its bytes when the caller sent them. Counted
 * against the owner's ingest.max_queued_per_role first.
 */
int64
jobs_insert(const JobSpec *spec)
{
	Oid			types[12] = {REGROLEOID, REGCLASSOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
	INT8OID, TEXTOID, INT4OID, INT8OID, INT4OID, TEXTOID};
	Datum		values[12];
	char		nulls[12] = "            ";
	int64		id;
	bool		isnull;

	values[0] = ObjectIdGetDatum(spec->owner);
	values[1] = ObjectIdGetDatum(spec->target);
	values[2] = CStringGetTextDatum(spec->source);
	values[3] = CStringGetTextDatum(job_source_names[spec->source_type]);
	values[4] = JsonbPGetDatum(spec->options);
	values[5] = JsonbPGetDatum(spec->settings);
	values[6] = Int64GetDatum(spec->bytes_total);
	if (spec->bytes_total < 0)
		nulls[6] = 'n';
	Assert(spec->state == JOB_QUEUED || spec->state == JOB_UPLOADING);
	values[7] = CStringGetTextDatum(jobs_state_name(spec->state));
	values[8] = Int32GetDatum(spec->max_attempts);
	values[9] = Int64GetDatum(spec->timeout_ms);
	values[10] = Int32GetDatum(spec->priority);
	if (spec->tenant)
		values[11] = CStringGetTextDatum(spec->tenant);
	else
		nulls[11] = 'n';

	catalog_check_version();
	SPI_connect();
	jobs_check_queue_quota(spec->owner, spec->tenant);
	jobs_exec_as_owner("INSERT INTO ingest_private.upload_jobs "
					   "(owner, target, source, source_type, options, settings, bytes_total, state, "
					   " max_attempts, timeout, priority, upload_activity_at, tenant) "
					   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
					   "  CASE WHEN $10 > 0 THEN $10 * interval '1 ms' END, $11, "
					   "  CASE WHEN $8 = 'uploading' THEN pg_catalog.clock_timestamp() END, $12) "
					   "RETURNING id",
					   12, types, values, nulls, false);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (spec->data != NULL)
	{
		Oid			dtypes[2] = {INT8OID, BYTEAOID};
		Datum		dvalues[2] = {Int64GetDatum(id), PointerGetDatum(spec->data)};

		jobs_exec_as_owner("INSERT INTO ingest_private.job_data (job_id, data) VALUES ($1, $2)",
						   2, dtypes, dvalues, NULL, false);
	}
	SPI_finish();
	return id;
}

/*
 * The LOG line of a job that ended with no worker running it to its end
 * (cancelled while queued, or its worker gone): the owner, target and row
 * counts in columns 2 to 5 of an SPI result row.
 */
void
jobs_log_ended(int64 job_id, JobState state, HeapTuple tup, TupleDesc desc)
{
	JobLogLine	line;
	bool		isnull;

	line.job_id = job_id;
	line.state = jobs_state_name(state);
	line.owner = SPI_getvalue(tup, desc, 2);
	line.target = SPI_getvalue(tup, desc, 3);
	line.rows_inserted = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	line.rows_rejected = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	line.rows_skipped = DatumGetInt64(SPI_getbinval(tup, desc, SPI_fnumber(desc, "rows_skipped"), &isnull));
	line.seconds = 0;
	line.attempt_rows = 0;
	joblog_at_commit(&line);
}

/*
 * Cancel a job the caller can see. A queued (or uploading) job ends at once;
 * a running one is flagged in the table (*running is then set, and the
 * caller flags it in shared memory for its worker, which checks between
 * records, once this transaction commits: a cancel rolled back cancels
 * nothing).
 */
bool
jobs_cancel(int64 job_id, Oid caller, bool *running)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	JobState	state;
	bool		result = false;

	(void) jobs_check_visible(job_id, caller, &state);

	SPI_connect();
	if (state == JOB_QUEUED || state == JOB_UPLOADING)
	{
		jobs_exec_as_owner("WITH done AS ("
						   "  UPDATE ingest_private.upload_jobs SET state = 'cancelled', finished_at = pg_catalog.clock_timestamp(), "
						   "    last_error = CASE WHEN state = 'uploading' THEN '" UPLOAD_CANCELLED "' "
						   "                      ELSE 'cancelled by ingest.cancel()' END "
						   "  WHERE id = $1 AND state IN ('queued', 'uploading') "
						   "  RETURNING id, owner, target, rows_inserted, rows_rejected, rows_skipped)"
						   "SELECT pg_catalog.pg_notify('ingest', pg_catalog.json_build_object("
						   "  'job_id', id, 'state', 'cancelled')::text), owner::text, target::text, "
						   "  rows_inserted, rows_rejected, rows_skipped FROM done",
						   1, types, values, NULL, false);
		result = (SPI_processed == 1);
		if (result)
			jobs_log_ended(job_id, JOB_CANCELLED, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	}
	if (!result && (state == JOB_RUNNING || state == JOB_QUEUED))
	{
		bool		isnull;

		jobs_exec_as_owner("WITH r AS (SELECT id FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'running'), "
						   "ins AS (INSERT INTO ingest_private.job_cancels (job_id) SELECT id FROM r "
						   "        ON CONFLICT DO NOTHING) "
						   "SELECT count(*) FROM r",
						   1, types, values, NULL, false);
		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) == 1;
		*running = result;
	}
	SPI_finish();
	return result;
}

/*
 * ingest.retry: a failed or cancelled job goes back to the queue with a
 * fresh count of attempts. It resumes from its checkpoint, so rows that
 * earlier attempts committed are not loaded twice. An upload cancelled
 * before finish_upload never had all its bytes, and a job whose stored
 * bytes were discarded has none left: neither can be queued.
 */
bool
jobs_retry(int64 job_id, Oid caller)
{
	Oid			types[2] = {INT8OID, BOOLOID};
	Datum		values[2] = {Int64GetDatum(job_id)};
	Oid			owner = jobs_check_visible(job_id, caller, NULL);
	bool		result;
	bool		isnull;

	bool		admin = jobs_is_admin(caller);
	int			deaths = 0;
	char	   *tenant = NULL;

	SPI_connect();
	jobs_exec_as_owner("SELECT state = 'cancelled' AND last_error = '" UPLOAD_CANCELLED "', worker_deaths, tenant "
					   "FROM ingest_private.upload_jobs WHERE id = $1",
					   1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		tenant = jobs_copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, CurrentMemoryContext);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("ingest job " INT64_FORMAT " is an upload cancelled before it was finished and cannot be retried", job_id),
					 errhint("Begin a new upload with ingest.begin_upload.")));
		deaths = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}

	/*
	 * A job under which workers died that often may take the server down
	 * again with it: its owner cannot start it over, an administrator can.
	 */
	if (deaths >= ingest_max_worker_deaths && !admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("ingest job " INT64_FORMAT " cannot be retried: the worker running it died %d times",
						job_id, deaths),
				 errdetail("A job whose worker died ingest.max_worker_deaths (%d) times may crash the server again.",
						   ingest_max_worker_deaths),
				 errhint("A member of ingest_admin can retry it after finding the cause in the server log.")));

	/*
	 * The bytes it would load again must still be there. The row is locked
	 * first (a failed or cancelled job's only: a running job's writes never
	 * wait for a user), so that an ingest.discard or the workers' sweep
	 * either runs before and is seen, or after and finds the job queued.
	 */
	jobs_exec_as_owner("SELECT 1 FROM ingest_private.upload_jobs "
					   "WHERE id = $1 AND state IN ('failed', 'cancelled') FOR UPDATE",
					   1, types, values, NULL, false);
	if (SPI_processed == 1 && jobs_data_discarded(job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ingest job " INT64_FORMAT " cannot be retried: its stored bytes were discarded", job_id),
				 errdetail("ingest.discard, or the workers once the job had been finished for longer than ingest.keep_failed_data, removed the bytes it would load."),
				 errhint("Send the file again as a new job.")));

	jobs_check_queue_quota(owner, tenant);
	values[1] = BoolGetDatum(admin);
	jobs_exec_as_owner("DELETE FROM ingest_private.job_cancels WHERE job_id = $1", 1, types, values, NULL, false);
	jobs_exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', attempts = 0, run_after = NULL, "
					   "  finished_at = NULL, cancel_requested = false, worker_pid = NULL, "
					   "  worker_deaths = CASE WHEN $2 THEN 0 ELSE worker_deaths END "
					   "WHERE id = $1 AND state IN ('failed', 'cancelled')",
					   2, types, values, NULL, false);
	result = (SPI_processed == 1);
	SPI_finish();
	return result;
}

/* ingest.purge: finished jobs older than older_than, the caller's or (admin) all. */
int64
jobs_purge(Interval *older_than, Oid caller)
{
	Oid			types[5];
	Datum		values[5];
	char		nulls[5] = "     ";
	int64		n;
	bool		isnull;

	types[0] = INTERVALOID;
	values[0] = IntervalPGetDatum(older_than);
	jobs_caller_params(caller, types, values, nulls, 1);
	SPI_connect();
	jobs_exec_as_owner("WITH gone AS ("
					   "  DELETE FROM ingest_private.upload_jobs "
					   "  WHERE state IN ('succeeded', 'failed', 'cancelled') "
					   "    AND finished_at < pg_catalog.now() - $1 AND " CALLER_SQL(2, 3, 4, 5)
					   "  RETURNING id), "
					   "stale AS (DELETE FROM ingest_private.job_cancels WHERE job_id IN (SELECT id FROM gone)) "
					   "SELECT count(*) FROM gone",
					   5, types, values, nulls, false);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * ingest.queue_position: place in the scheduler's order (ingest._queue),
 * 0 for the next job or a running one; false when the job is not waiting.
 */
bool
jobs_queue_position(int64 job_id, Oid caller, int *position)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	JobState	state;
	bool		isnull;
	bool		found = false;

	(void) jobs_check_visible(job_id, caller, &state);
	if (state == JOB_RUNNING)
	{
		*position = 0;
		return true;
	}
	if (state != JOB_QUEUED)
		return false;

	SPI_connect();
	jobs_exec_as_owner("SELECT place - 1 FROM ingest_private._queue WHERE id = $1", 1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		*position = (int) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/* Is a cancel of the job pending (the worker running it asks between batches)? */
bool
jobs_cancel_requested(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	bool		result = false;

	SPI_connect();
	jobs_exec_as_owner("SELECT " CANCEL_PENDING_SQL("j") " FROM ingest_private.upload_jobs j WHERE id = $1",
					   1, types, values, NULL, true);
	if (SPI_processed == 1)
		result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return result;
}

/*
 * Fill parameters first .. first + 3 with the counters the job's row keeps
 * (errors_stored is counted from job_errors, not kept).
 */
static void
counter_params(const JobCounters *done, Oid *types, Datum *values, int first)
{
	for (int i = 0; i < 4; i++)
		types[first + i] = INT8OID;
	values[first] = Int64GetDatum(done->records_done);
	values[first + 1] = Int64GetDatum(done->rows_inserted);
	values[first + 2] = Int64GetDatum(done->rows_rejected);
	values[first + 3] = Int64GetDatum(done->bytes_done);
}

/* What a running job has committed so far, committed with it. */
void
jobs_checkpoint(const IngestJob *job, const JobCounters *done)
{
	Oid			types[6] = {INT8OID, [5] = INT8OID};
	Datum		values[6];

	values[0] = Int64GetDatum(job->id);
	counter_params(done, types, values, 1);
	values[5] = Int64GetDatum(done->rows_skipped);
	SPI_connect();
	jobs_exec_as_owner("UPDATE ingest_private.upload_jobs SET records_done = $2, rows_inserted = $3, "
					   "rows_rejected = $4, bytes_done = $5, rows_skipped = $6 WHERE id = $1",
					   6, types, values, NULL, false);
	SPI_finish();
}

/*
 * After a transient failure: back to the queue, to be claimed again once
 * delay_ms have passed. Counters are those of committed work.
 */
void
jobs_retry_later(const IngestJob *job, const JobCounters *done, const char *last_error,
				 int64 delay_ms)
{
	Oid			types[8] = {INT8OID, [5] = TEXTOID, [6] = INT8OID, [7] = INT8OID};
	Datum		values[8];

	values[0] = Int64GetDatum(job->id);
	counter_params(done, types, values, 1);
	values[5] = CStringGetTextDatum(jobs_clip_message(last_error));
	values[6] = Int64GetDatum(delay_ms);
	values[7] = Int64GetDatum(done->rows_skipped);
	SPI_connect();
	jobs_exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', records_done = $2, "
					   "  rows_inserted = $3, rows_rejected = $4, bytes_done = $5, last_error = $6, "
					   "  run_after = pg_catalog.clock_timestamp() + $7 * interval '1 ms', worker_pid = NULL, "
					   "  rows_skipped = $8 "
					   "WHERE id = $1",
					   8, types, values, NULL, false);
	SPI_finish();
}

/*
 * A job's outcome: its final state (succeeded, failed or cancelled), its
 * counters, and a NOTIFY ingest, in the caller's transaction.
 */
void
jobs_finish(const IngestJob *job, JobState state, const JobCounters *done,
			const char *last_error)
{
	Oid			types[8] = {INT8OID, [5] = TEXTOID, [6] = TEXTOID, [7] = INT8OID};
	Datum		values[8];
	char		nulls[8] = "        ";

	Assert(state == JOB_SUCCEEDED || state == JOB_FAILED || state == JOB_CANCELLED);
	values[0] = Int64GetDatum(job->id);
	counter_params(done, types, values, 1);
	values[5] = CStringGetTextDatum(jobs_state_name(state));
	if (last_error)
		values[6] = CStringGetTextDatum(jobs_clip_message(last_error));
	else
		nulls[6] = 'n';
	values[7] = Int64GetDatum(done->rows_skipped);

	SPI_connect();
	jobs_exec_as_owner("DELETE FROM ingest_private.job_cancels WHERE job_id = $1", 1, types, values, NULL, false);
	jobs_exec_as_owner("WITH done AS ("
					   "  UPDATE ingest_private.upload_jobs SET state = $6, records_done = $2, "
					   "    rows_inserted = $3, rows_rejected = $4, bytes_done = $5, rows_skipped = $8, "
					   "    last_error = $7, finished_at = pg_catalog.clock_timestamp(), cancel_requested = false "
					   "  WHERE id = $1 RETURNING id, state, owner, target, started_at, finished_at) "
					   "SELECT pg_catalog.pg_notify('ingest', pg_catalog.json_build_object("
					   "  'job_id', id, 'state', state)::text), owner::text, target::text, "
					   "  COALESCE(EXTRACT(epoch FROM finished_at - started_at), 0)::float8 FROM done",
					   8, types, values, nulls, false);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		JobLogLine	line;

		line.job_id = job->id;
		line.state = jobs_state_name(state);
		line.owner = SPI_getvalue(tup, desc, 2);
		line.target = SPI_getvalue(tup, desc, 3);
		line.rows_inserted = done->rows_inserted;
		line.rows_rejected = done->rows_rejected;
		line.rows_skipped = done->rows_skipped;
		line.seconds = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		/* job->done is what earlier attempts had committed when this one began */
		line.attempt_rows = done->rows_inserted - job->done.rows_inserted;
		joblog_at_commit(&line);
	}
	SPI_finish();
}

/*
 * A rejected record, kept in ingest.job_errors (the caller keeps at most
 * ingest.max_error_rows of a job's).
 */
void
jobs_record_error(int64 job_id, int64 line, int64 record_number,
				  const char *sqlstate, const char *message, const char *raw_line)
{
	Oid			types[6] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(job_id);
	if (line > 0)
		values[1] = Int64GetDatum(line);
	else
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(sqlstate);
	values[3] = CStringGetTextDatum(jobs_clip_message(message));
	if (raw_line)
		values[4] = CStringGetTextDatum(raw_line);
	else
		nulls[4] = 'n';

	SPI_connect();
	values[5] = Int64GetDatum(record_number);
	jobs_exec_as_owner("INSERT INTO ingest_private.job_errors (job_id, line_number, sqlstate, message, raw_line, record_number) "
					   "VALUES ($1, $2, $3, $4, $5, $6)",
					   6, types, values, nulls, false);
	SPI_finish();
}

