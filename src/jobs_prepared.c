/*
 * jobs_prepared.c
 *		The prepared transactions of the parts of an all-or-nothing job (a
 *		job without commit_every loaded by several workers): their global
 *		identifiers in job_parts, the parts' states around them, and the
 *		ones left behind.
 *
 * A part's identifier is recorded, committed, before its transaction is
 * prepared, so that every prepared transaction of ingest has a row naming
 * it, whatever crash comes between. The part's own transaction touches
 * none of ingest's tables (a prepared transaction would hold them locked
 * until the decision; loadxact.c checks it before the prepare): its end,
 * and its rejected records, are written after the prepare, in a
 * transaction of its own ('prepared', with its counters).
 * The decision to commit is the transaction that turns every part of the
 * job 'done' at once; whoever finds a 'done' part still prepared commits
 * it, any other prepared part of a job that is not running is rolled back.
 * The commits and rollbacks themselves are worker_parts.c's: they cannot
 * share a transaction with anything.
 *
 * Part of the jobs service (jobs.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "jobs_internal.h"

/* The prepared transactions of ingest's parts in this database, with their parts. */
#define PREPARED_PARTS_SQL \
	"SELECT p.job_id, p.part, p.state, p.gid, x.gid IS NOT NULL " \
	"FROM ingest_private.job_parts p " \
	"LEFT JOIN pg_catalog.pg_prepared_xacts x " \
	"  ON x.gid = p.gid AND x.database = pg_catalog.current_database() " \
	"WHERE p.gid IS NOT NULL "

/* sql over the part ($1, $2) and a text ($3), as the tables' owner */
static void
exec_for_part(const char *sql, int64 job_id, int part, const char *text)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3];

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(part);
	values[2] = CStringGetTextDatum(text);
	SPI_connect();
	jobs_exec_as_owner(sql, 3, types, values, NULL, false);
	SPI_finish();
}

/* The part's prepared transaction will be known by gid. */
void
jobs_part_set_gid(int64 job_id, int part, const char *gid)
{
	exec_for_part("UPDATE ingest_private.job_parts SET gid = $3 WHERE job_id = $1 AND part = $2",
				  job_id, part, gid);
}

/*
 * The decision: every prepared part of the job is to be committed. Each
 * must still be prepared (nobody finishes those of a running job but its
 * worker): were one gone, its rows would be missing from a job that
 * succeeds. An ERROR then, and nothing is decided.
 */
void
jobs_parts_decide(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int64		gone;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner("WITH d AS (UPDATE ingest_private.job_parts SET state = 'done' "
					   "           WHERE job_id = $1 AND state = 'prepared' RETURNING gid) "
					   "SELECT count(*) FROM d WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_xacts x "
					   "  WHERE x.gid = d.gid AND x.database = pg_catalog.current_database())",
					   1, types, values, NULL, false);
	gone = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	if (gone > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("ingest job " INT64_FORMAT ": " INT64_FORMAT " of its parts is no longer prepared",
							   "ingest job " INT64_FORMAT ": " INT64_FORMAT " of its parts are no longer prepared",
							   gone, job_id, gone),
				 errdetail("Something other than ingest finished their prepared transactions; nothing of the job is committed.")));
}

static List *
read_prepared_parts(MemoryContext cxt)
{
	List	   *result = NIL;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		JobPreparedPart *pp = palloc0(sizeof(JobPreparedPart));
		bool		isnull;

		pp->job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		pp->part = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		MemoryContextSwitchTo(old);
		pp->state = jobs_copy_text(tup, desc, 3, cxt);
		pp->gid = jobs_copy_text(tup, desc, 4, cxt);
		pp->exists = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		old = MemoryContextSwitchTo(cxt);
		result = lappend(result, pp);
		MemoryContextSwitchTo(old);
	}
	return result;
}

/* The job's parts that have an identifier, and whether it is still prepared; in cxt. */
List *
jobs_parts_gids(int64 job_id, MemoryContext cxt)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	List	   *result;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner(PREPARED_PARTS_SQL "AND p.job_id = $1 ORDER BY p.part",
					   1, types, values, NULL, true);
	result = read_prepared_parts(cxt);
	SPI_finish();
	return result;
}

/*
 * The part's prepared transaction is rolled back (or gone): nothing of it
 * is committed, its counters go back to none, and it takes the state given.
 */
void
jobs_part_unprepare(int64 job_id, int part, const char *state)
{
	exec_for_part("UPDATE ingest_private.job_parts SET state = $3, gid = NULL, worker_pid = NULL, "
				  "  records_done = 0, rows_inserted = 0, rows_rejected = 0, rows_skipped = 0, "
				  "  bytes_done = 0, errors_stored = 0 "
				  "WHERE job_id = $1 AND part = $2",
				  job_id, part, state);
}

/* The job's committed parts keep no identifier. */
void
jobs_parts_forget_gids(int64 job_id)
{
	jobs_exec_for_job("UPDATE ingest_private.job_parts SET gid = NULL "
					  "WHERE job_id = $1 AND state = 'done' AND gid IS NOT NULL", job_id);
}

/*
 * The identifiers of ingest's prepared transactions here now
 * (JOBS_OUR_PREPARED_WHERE), as a text[] in cxt; 0 for none. jobs_prepared_orphans
 * looks for their parts in a later transaction.
 */
Datum
jobs_prepared_ours(MemoryContext cxt)
{
	Datum		result = (Datum) 0;
	bool		isnull;
	Datum		gids;

	SPI_connect();
	jobs_exec_as_owner("SELECT pg_catalog.array_agg(x.gid) FROM pg_catalog.pg_prepared_xacts x "
					   "WHERE " JOBS_OUR_PREPARED_WHERE,
					   0, NULL, NULL, NULL, true);
	gids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = datumCopy(gids, false, -1);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * Prepared transactions of parts whose job is neither queued nor running
 * (it was cancelled while queued after a crash, say): nobody else will
 * decide them. 'done' ones are to be committed, the others rolled back.
 * Those of a queued job are its next attempt's to resume. One of ours
 * (jobs_prepared_ours, looked at in an earlier transaction) that no part
 * names (its job was purged) is rolled back too: every identifier is
 * recorded, committed, before its transaction is prepared, so this
 * transaction's snapshot sees the part of every one of ours that has one.
 * (Looking at both in one statement would not do: a transaction prepared
 * after the statement's snapshot was taken would seem to have no part.)
 */
List *
jobs_prepared_orphans(Datum ours, MemoryContext cxt)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1] = {ours};
	char		nulls[1] = {ours == (Datum) 0 ? 'n' : ' '};
	List	   *result;

	SPI_connect();
	jobs_exec_as_owner(PREPARED_PARTS_SQL
					   "AND x.gid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ingest_private.upload_jobs j "
					   "  WHERE j.id = p.job_id AND j.state IN ('queued', 'running')) "
					   "UNION ALL "
					   "SELECT 0, -1, 'gone', g, true FROM pg_catalog.unnest($1::text[]) g "
					   "WHERE NOT EXISTS (SELECT 1 FROM ingest_private.job_parts p WHERE p.gid = g)",
					   1, types, values, nulls, true);
	result = read_prepared_parts(cxt);
	SPI_finish();
	return result;
}

/* Is the job queued or running (its worker's to decide)? */
bool
jobs_job_active(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		active;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	jobs_exec_as_owner("SELECT 1 FROM ingest_private.upload_jobs WHERE id = $1 AND state IN ('queued', 'running')",
					   1, types, values, NULL, true);
	active = SPI_processed > 0;
	SPI_finish();
	return active;
}

/*
 * The job is to be loaded by one worker after all: its parts go, with the
 * rejected records their failed attempts kept (the load reads them again),
 * and its counters start from none.
 */
void
jobs_parts_give_up(int64 job_id)
{
	jobs_exec_for_job("DELETE FROM ingest_private.job_parts WHERE job_id = $1", job_id);
	jobs_exec_for_job("DELETE FROM ingest_private.job_errors WHERE job_id = $1", job_id);
	jobs_exec_for_job("UPDATE ingest_private.upload_jobs SET records_done = 0, rows_inserted = 0, "
					  "  rows_rejected = 0, rows_skipped = 0, bytes_done = 0 WHERE id = $1", job_id);
}

/* The gid the part had, if it is still prepared (a crash came before its end was written); in cxt. */
char *
jobs_part_stale_gid(int64 job_id, int part, MemoryContext cxt)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	char	   *result = NULL;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(part);
	SPI_connect();
	jobs_exec_as_owner(PREPARED_PARTS_SQL "AND x.gid IS NOT NULL AND p.job_id = $1 AND p.part = $2",
					   2, types, values, NULL, true);
	if (SPI_processed == 1)
		result = jobs_copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, cxt);
	SPI_finish();
	return result;
}
