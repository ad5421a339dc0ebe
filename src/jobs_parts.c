/*
 * jobs_parts.c
 *		The parts of a job that several workers load (ingest_private.job_parts):
 *		created from the cut points of the file, claimed one at a time, their
 *		counters committed with their rows, and summed into the job's row.
 *
 * The worker that claimed the job (its coordinator) creates the parts and
 * claims them one after another; idle workers of the same owner and tenant
 * claim them too (jobs_claim_part, in jobs_queue.c, as claims are
 * serialized there). A part's checkpoint and its end are written in the
 * part's own transactions, with its rows, so that a crash leaves each part
 * at its last commit and nothing is loaded twice. The job's own counters
 * are the parts' sums, written with every part's commit for the progress
 * users see.
 *
 * Part of the jobs service (jobs.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "identity.h"

#include "jobs_internal.h"

#define PART_COLUMNS JOB_PART_COLUMNS

/* The job's counters as the sums of its parts' (the running job's only). */
#define SUM_INTO_JOB_SQL \
	"UPDATE ingest_private.upload_jobs j SET records_done = s.records_done, " \
	"  rows_inserted = s.rows_inserted, rows_rejected = s.rows_rejected, " \
	"  rows_skipped = s.rows_skipped, bytes_done = s.bytes_done " \
	"FROM (SELECT sum(records_done)::int8 AS records_done, sum(rows_inserted)::int8 AS rows_inserted, " \
	"        sum(rows_rejected)::int8 AS rows_rejected, sum(rows_skipped)::int8 AS rows_skipped, " \
	"        sum(bytes_done)::int8 AS bytes_done " \
	"      FROM ingest_private.job_parts WHERE job_id = $1) s " \
	"WHERE j.id = $1 AND j.state = 'running'"

/* A row of PART_COLUMNS into *part. */
void
jobs_read_part(HeapTuple tup, TupleDesc desc, int first, JobPart *part)
{
	bool		isnull;

#define COL(i) SPI_getbinval(tup, desc, first + (i), &isnull)
	part->part = DatumGetInt32(COL(0));
	part->start_offset = DatumGetInt64(COL(1));
	part->end_offset = DatumGetInt64(COL(2));
	part->first_line = DatumGetInt64(COL(3));
	part->first_record = DatumGetInt64(COL(4));
	part->done.records_done = DatumGetInt64(COL(5));
	part->done.rows_inserted = DatumGetInt64(COL(6));
	part->done.rows_rejected = DatumGetInt64(COL(7));
	part->done.rows_skipped = DatumGetInt64(COL(8));
	part->done.bytes_done = DatumGetInt64(COL(9));
	part->done.errors_stored = DatumGetInt64(COL(10));
#undef COL
}

/* Has the job parts (created by an earlier attempt)? */
bool
jobs_parts_exist(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		result;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner("SELECT 1 FROM ingest_private.job_parts WHERE job_id = $1 LIMIT 1",
					   1, types, values, NULL, false);
	result = SPI_processed > 0;
	SPI_finish();
	return result;
}

/* The job's n parts: part i from start[i] to start[i + 1] (the last to size). */
void
jobs_parts_create(int64 job_id, int n, const int64 *start, int64 size,
				  const int64 *first_line, const int64 *first_record)
{
	Oid			types[6] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID};
	Datum		values[6];

	SPI_connect();
	for (int i = 0; i < n; i++)
	{
		values[0] = Int64GetDatum(job_id);
		values[1] = Int32GetDatum(i);
		values[2] = Int64GetDatum(start[i]);
		values[3] = Int64GetDatum(i + 1 < n ? start[i + 1] : size);
		values[4] = Int64GetDatum(first_line[i]);
		values[5] = Int64GetDatum(first_record[i]);
		jobs_exec_as_owner("INSERT INTO ingest_private.job_parts (job_id, part, start_offset, end_offset, "
						   "  first_line, first_record) VALUES ($1, $2, $3, $4, $5, $6)",
						   6, types, values, NULL, false);
	}
	SPI_finish();
}

/*
 * Rejected records of a part past its checkpoint were written by an attempt
 * of the part that did not commit its rows: the part reads them again, so
 * they go, and the part's rows_rejected and errors_stored count what its
 * checkpoint committed. Called with the part claimed; *part follows.
 */
void
jobs_part_drop_stale_errors(int64 job_id, JobPart *part)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	bool		isnull;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(part->part);
	SPI_connect();
	jobs_exec_as_owner("WITH p AS (SELECT first_record, first_record + records_done AS checkpoint, "
					   "    COALESCE((SELECT n.first_record FROM ingest_private.job_parts n "
					   "      WHERE n.job_id = $1 AND n.part = $2 + 1), 9223372036854775807) AS next "
					   "  FROM ingest_private.job_parts WHERE job_id = $1 AND part = $2), "
					   "stale AS (DELETE FROM ingest_private.job_errors e USING p WHERE e.job_id = $1 "
					   "  AND e.record_number > p.checkpoint AND e.record_number <= p.next RETURNING 1) "
					   "UPDATE ingest_private.job_parts j SET "
					   "  rows_rejected = GREATEST(0, j.records_done - j.rows_inserted - j.rows_skipped), "
					   "  errors_stored = (SELECT count(*) FROM ingest_private.job_errors e, p WHERE e.job_id = $1 "
					   "    AND e.record_number > p.first_record AND e.record_number <= p.checkpoint) "
					   "WHERE j.job_id = $1 AND j.part = $2 RETURNING j.rows_rejected, j.errors_stored",
					   2, types, values, NULL, false);
	if (SPI_processed == 1)
	{
		part->done.rows_rejected = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		part->done.errors_stored = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
}

/*
 * Claim the next queued part of the job for this worker; false when none
 * is queued. Parts a session may have locked are never waited for.
 */
bool
jobs_part_claim(int64 job_id, JobPart *part)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		found;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner("UPDATE ingest_private.job_parts p SET state = 'running', worker_pid = pg_catalog.pg_backend_pid(), "
					   "  last_error = NULL, sqlstate = NULL "
					   "WHERE (p.job_id, p.part) = (SELECT q.job_id, q.part FROM ingest_private.job_parts q "
					   "  WHERE q.job_id = $1 AND q.state = 'queued' AND NOT " PART_FAILED_SQL("q") \
					   "  ORDER BY q.part LIMIT 1 FOR UPDATE SKIP LOCKED) "
					   "RETURNING " PART_COLUMNS,
					   1, types, values, NULL, false);
	found = SPI_processed == 1;
	if (found)
		jobs_read_part(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, part);
	SPI_finish();
	if (found)
		jobs_part_drop_stale_errors(job_id, part);
	return found;
}

/*
 * Parts left running by workers that are gone, and failed parts (the job
 * is being tried again), go back to the queue; done parts stay done. The
 * job's worker calls it, loading no part meanwhile: a part running under
 * its own pid was left by an earlier attempt whose error rolled back the
 * part's end, and goes back too.
 *
 * As for the orphans of jobs (jobs_requeue_orphans): the snapshot first,
 * the live workers second. A helper publishes its job in shared memory
 * before its claim of a part commits, so every part this snapshot sees
 * running under a live helper is in the list; the other way round, a claim
 * committed in between would look abandoned and its part run twice.
 */
void
jobs_parts_requeue(int64 job_id, JobsLiveFn live_jobs, int max_live, bool failed_too)
{
	int		   *pids = palloc(sizeof(int) * Max(max_live, 1));
	int64	   *ids = palloc(sizeof(int64) * Max(max_live, 1));
	Datum	   *elems;
	int			n;
	int			k = 0;
	Oid			types[3] = {INT8OID, INT4ARRAYOID, BOOLOID};
	Datum		values[3];
	IdentitySave save;
	SPIPlanPtr	plan;
	Snapshot	snap;
	int			rc;

	SPI_connect();
	identity_enter_system(&save);
	plan = SPI_prepare("UPDATE ingest_private.job_parts SET state = 'queued', worker_pid = NULL "
					   "WHERE job_id = $1 AND ((state = 'running' AND (worker_pid IS NULL OR worker_pid <> ALL ($2))) "
					   "  OR (state = 'failed' AND $3))", 3, types);
	if (plan == NULL)
		elog(ERROR, "ingest: could not prepare the take-back of parts: %s",
			 SPI_result_code_string(SPI_result));
	snap = RegisterSnapshot(GetLatestSnapshot());
	n = live_jobs(pids, ids, max_live);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (ids[i] == job_id && pids[i] != MyProcPid)
			elems[k++] = Int32GetDatum(pids[i]);
	values[0] = Int64GetDatum(job_id);
	values[1] = PointerGetDatum(construct_array(elems, k, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	values[2] = BoolGetDatum(failed_too);
	rc = SPI_execute_snapshot(plan, values, NULL, snap, InvalidSnapshot, false, true, 0);
	if (rc < 0)
		elog(ERROR, "ingest: could not take back parts: %s", SPI_result_code_string(rc));
	UnregisterSnapshot(snap);
	identity_leave_system(&save);
	SPI_finish();
}

/*
 * The part's counters; with state, its new state too (it is no longer
 * running). In the caller's SPI connection.
 */
static void
write_part(int64 job_id, int part, const JobCounters *c, const char *state)
{
	Oid			types[9] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = "        n";

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(part);
	values[2] = Int64GetDatum(c->records_done);
	values[3] = Int64GetDatum(c->rows_inserted);
	values[4] = Int64GetDatum(c->rows_rejected);
	values[5] = Int64GetDatum(c->rows_skipped);
	values[6] = Int64GetDatum(c->bytes_done);
	values[7] = Int64GetDatum(c->errors_stored);
	if (state)
	{
		values[8] = CStringGetTextDatum(state);
		nulls[8] = ' ';
	}
	jobs_exec_as_owner("UPDATE ingest_private.job_parts SET records_done = $3, rows_inserted = $4, "
					   "  rows_rejected = $5, rows_skipped = $6, bytes_done = $7, errors_stored = $8, "
					   "  state = COALESCE($9, state), "
					   "  worker_pid = CASE WHEN $9 IS NULL THEN worker_pid END "
					   "WHERE job_id = $1 AND part = $2",
					   9, types, values, nulls, false);
}

/* A part's checkpoint, committed with its rows; the job's counters follow. */
void
jobs_part_checkpoint(int64 job_id, int part, const JobCounters *c)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(job_id);
	SPI_connect();

	/*
	 * The job's row before the part's: two parts ending at once (each
	 * writing its row, the job's, then stopping the queued parts) would
	 * otherwise each hold a row the other waits for.
	 */
	jobs_exec_as_owner("SELECT 1 FROM ingest_private.upload_jobs WHERE id = $1 FOR NO KEY UPDATE",
					   1, types, values, NULL, false);
	write_part(job_id, part, c, NULL);
	jobs_exec_as_owner(SUM_INTO_JOB_SQL, 1, types, values, NULL, false);
	SPI_finish();
}

/*
 * The part's transaction is prepared (all-or-nothing jobs), with these
 * counters. The job's own counters stay as they are: none of these rows is
 * committed yet.
 */
void
jobs_part_prepared(int64 job_id, int part, const JobCounters *c)
{
	SPI_connect();
	write_part(job_id, part, c, "prepared");
	SPI_finish();
}

/*
 * A part ends: done, with its last rows in the same transaction; or failed,
 * with the counters its commits left (last_error and sqlstate say why; NULL
 * for a part stopped because the job ends); or 'serial', saying why the job
 * is to be loaded by one worker.
 */
void
jobs_part_end(int64 job_id, int part, const JobCounters *c, JobPartEnd end,
			  const char *last_error, const char *sqlstate)
{
	Oid			types[5] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = "     ";

	jobs_part_checkpoint(job_id, part, c);
	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(part);
	values[2] = CStringGetTextDatum(end == JOB_PART_DONE ? "done" :
									end == JOB_PART_SERIAL ? "serial" : "failed");
	if (last_error)
		values[3] = CStringGetTextDatum(jobs_clip_message(last_error));
	else
		nulls[3] = 'n';
	if (sqlstate)
		values[4] = CStringGetTextDatum(sqlstate);
	else
		nulls[4] = 'n';
	SPI_connect();
	jobs_exec_as_owner("UPDATE ingest_private.job_parts SET state = $3, last_error = $4, sqlstate = $5, "
					   "  worker_pid = NULL WHERE job_id = $1 AND part = $2",
					   5, types, values, nulls, false);
	SPI_finish();
}

/* How the job's parts stand, their counters summed. */
void
jobs_parts_status(int64 job_id, JobPartsStatus *st, MemoryContext cxt)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	memset(st, 0, sizeof(*st));
	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner("SELECT state, " PART_COLUMNS ", last_error, sqlstate "
					   "FROM ingest_private.job_parts WHERE job_id = $1 ORDER BY part",
					   1, types, values, NULL, false);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *state = SPI_getvalue(tup, desc, 1);
		JobPart		p;

		jobs_read_part(tup, desc, 2, &p);
		st->nparts++;
		if (strcmp(state, "queued") == 0)
			st->queued++;
		else if (strcmp(state, "running") == 0)
			st->running++;
		else if (strcmp(state, "prepared") == 0)
			st->prepared++;
		else if (strcmp(state, "done") == 0)
			st->done++;
		else if (strcmp(state, "serial") == 0)
		{
			st->serial++;
			if (st->serial_error == NULL)
				st->serial_error = jobs_copy_text(tup, desc, 13, cxt);
		}
		else if (strcmp(state, "failed") == 0)
		{
			/* the first that failed of itself (a stopped part has no error) */
			st->failed++;
			(void) SPI_getbinval(tup, desc, 13, &isnull);
			if (st->failed_error == NULL && !isnull)
			{
				char	   *sqlstate = SPI_getvalue(tup, desc, 14);

				st->failed_error = jobs_copy_text(tup, desc, 13, cxt);
				st->failed_sqlerrcode = sqlstate ?
					MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]) : 0;
			}
		}
		st->sum.records_done += p.done.records_done;
		st->sum.rows_inserted += p.done.rows_inserted;
		st->sum.rows_rejected += p.done.rows_rejected;
		st->sum.rows_skipped += p.done.rows_skipped;
		st->sum.bytes_done += p.done.bytes_done;
		st->sum.errors_stored += p.done.errors_stored;
	}
	SPI_finish();
}

/* The job is to be split afresh by its next attempt (none of its rows stayed). */
void
jobs_parts_delete(int64 job_id)
{
	jobs_exec_for_job("DELETE FROM ingest_private.job_parts WHERE job_id = $1", job_id);
}

/*
 * The job ends (a part failed, a cancel, its timeout): no part left in the
 * queue may be claimed any more. They are marked failed without an error
 * of their own, as parts stopped midway are; the job's next attempt takes
 * them back with the failed ones.
 */
void
jobs_parts_stop(int64 job_id)
{
	jobs_exec_for_job("UPDATE ingest_private.job_parts SET state = 'failed', last_error = NULL, sqlstate = NULL, "
					  "  worker_pid = NULL WHERE job_id = $1 AND state = 'queued'", job_id);
}
