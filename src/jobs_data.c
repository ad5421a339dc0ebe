/*
 * jobs_data.c
 *		A job's stored bytes: uploads in chunks as they arrive, their expiry,
 *		the bytes of finished jobs discarded (ingest.discard) or swept after
 *		ingest.keep_failed_data, and the bytes and chunks the reader reads
 *		back.
 *
 * enqueue_data stores its bytes in ingest.job_data, an upload its chunks in
 * ingest.job_chunks, both uncompressed (STORAGE EXTERNAL) so that the
 * reader fetches any slice without reading the rest. What the reader gets
 * here is the stored value still toasted, a pointer of a few bytes: it
 * detoasts one slice at a time, and never holds a whole source.
 *
 * Part of the jobs service (jobs.h): every read and write runs as the
 * tables' owner.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "identity.h"
#include "settings.h"
#include "jobs_internal.h"

/* ---------- uploads in chunks ---------- */

/*
 * An upload in chunks is a job in state 'uploading' whose bytes arrive as
 * rows of ingest.job_chunks; finish_upload queues it. Every call on an
 * upload first locks its job row, so the calls for one upload run one at
 * a time and bytes_total, the bytes received so far, stays exact however
 * many connections send chunks at once.
 */

/*
 * Why the caller may not send chunks to (or finish) upload job_id: an ERROR
 * that says so, read without locking. params: the job id and the caller's
 * scope, as lock_upload has them.
 */
static void
refuse_upload(int64 job_id, Oid caller, bool finishing, Oid *types, Datum *values, char *nulls)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Oid			owner;
	char	   *state;
	char	   *source_type;
	char	   *tenant;

	jobs_exec_as_owner("SELECT owner::oid, state, source_type, COALESCE(bytes_total, 0), tenant "
					   "FROM ingest_private.upload_jobs WHERE id = $1 AND " CALLER_SQL(2, 3, 4, 5),
					   5, types, values, nulls, false);
	if (SPI_processed != 1)
		jobs_not_found(job_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	owner = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	state = SPI_getvalue(tup, desc, 2);
	source_type = SPI_getvalue(tup, desc, 3);
	tenant = SPI_getvalue(tup, desc, 5);
	if (strcmp(source_type, "chunks") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("ingest job " INT64_FORMAT " is not an upload in chunks", job_id),
				 errhint("ingest.begin_upload starts an upload.")));
	/*
	 * ingest_admin sees every job, but only the role (and tenant) that began
	 * an upload sends its bytes: they are loaded with that session's settings.
	 */
	if (owner != caller || !identity_tenant_matches(tenant))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 tenant
				 ? errmsg("only role \"%s\" with tenant \"%s\", which began upload job " INT64_FORMAT ", may %s",
						  GetUserNameFromId(owner, false), tenant, job_id,
						  finishing ? "finish it" : "send its chunks")
				 : errmsg("only role \"%s\", which began upload job " INT64_FORMAT ", may %s",
						  GetUserNameFromId(owner, false), job_id,
						  finishing ? "finish it" : "send its chunks")));
	if (strcmp(state, "uploading") != 0)
	{
		bool		cancelled = (strcmp(state, "cancelled") == 0);

		if (finishing)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("upload job " INT64_FORMAT " cannot be finished: it is in state \"%s\"", job_id, state),
					 cancelled ? errdetail("It was cancelled before it was finished.")
					 : errdetail("ingest.finish_upload has already queued it."),
					 cancelled ? errhint("Begin a new upload with ingest.begin_upload.")
					 : errhint("Follow it with ingest.wait(" INT64_FORMAT ") or in ingest.upload_jobs.", job_id)));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("upload job " INT64_FORMAT " no longer accepts chunks: it is in state \"%s\"", job_id, state),
				 cancelled ? errdetail("It was cancelled.")
				 : errdetail("ingest.finish_upload has already queued it.")));
	}
}

/*
 * Lock upload job_id for a call by its owner (finishing: finish_upload,
 * else upload_chunk) and return the bytes received so far; an ERROR
 * unless the caller began the upload and it is still uploading. The
 * caller has SPI connected.
 */
static int64
lock_upload(int64 job_id, Oid caller, bool finishing, Oid *target, Jsonb **options)
{
	Oid			types[5];
	Datum		values[5];
	char		nulls[5] = "     ";
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	types[0] = INT8OID;
	values[0] = Int64GetDatum(job_id);
	jobs_caller_params(caller, types, values, nulls, 1);

	/*
	 * Lock only an upload the caller itself began and that still receives
	 * chunks: a row lock held by a transaction its client leaves open (even
	 * one aborted by an error here) must never be one a worker waits for.
	 * Not read-only: after waiting for the lock, see the row as it is now.
	 */
	jobs_exec_as_owner("SELECT owner::oid, state, source_type, COALESCE(bytes_total, 0), tenant, "
					   "  target::oid, options "
					   "FROM ingest_private.upload_jobs WHERE id = $1 AND state = 'uploading' "
					   "  AND owner = $2::regrole AND (NOT $3 OR tenant = $4) "
					   "FOR UPDATE",
					   4, types, values, nulls, false);
	if (SPI_processed == 1)
	{
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		if (target)
			*target = DatumGetObjectId(SPI_getbinval(tup, desc, 6, &isnull));
		if (options)
		{
			Datum		d = SPI_getbinval(tup, desc, 7, &isnull);

			/* in the caller's memory: SPI's goes at SPI_finish */
			*options = isnull ? NULL :
				(Jsonb *) SPI_datumTransfer(PointerGetDatum(PG_DETOAST_DATUM(d)), false, -1);
		}
		return DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	}

	/* why not, without locking */
	refuse_upload(job_id, caller, finishing, types, values, nulls);
	elog(ERROR, "ingest: upload job " INT64_FORMAT " could not be locked", job_id);
	return 0;					/* keep compiler quiet */
}

/*
 * Store chunk seq of an upload; returns the bytes received so far. The
 * same chunk sent again (a client that did not see the first reply) is a
 * no-op; other bytes under the same number are an ERROR, never a silent
 * replacement.
 */
int64
jobs_upload_chunk(int64 job_id, int32 seq, bytea *data, Oid caller, Oid *target,
				  Jsonb **options)
{
	Oid			types[3] = {INT8OID, INT4OID, BYTEAOID};
	Datum		values[3];
	Oid			utypes[2] = {INT8OID, INT8OID};
	Datum		uvalues[2];
	int64		total;
	bool		isnull;

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(seq);
	values[2] = PointerGetDatum(data);

	SPI_connect();
	total = lock_upload(job_id, caller, false, target, options);

	/* not read-only: a chunk committed while we waited for the lock must be seen */
	jobs_exec_as_owner("SELECT data = $3, pg_catalog.octet_length(data) FROM ingest_private.job_chunks "
					   "WHERE job_id = $1 AND seq = $2",
					   3, types, values, NULL, false);
	if (SPI_processed == 1)
	{
		bool		same = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		int32		stored = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("chunk %d of upload job " INT64_FORMAT " was already received with other bytes",
							seq, job_id),
					 errdetail("The chunk received has %d bytes, this one has %d.",
							   stored, (int) VARSIZE_ANY_EXHDR(data)),
					 errhint("Send the same bytes again, or cancel the upload and begin a new one.")));
	}
	else
	{
		jobs_exec_as_owner("INSERT INTO ingest_private.job_chunks (job_id, seq, data) VALUES ($1, $2, $3)",
						   3, types, values, NULL, false);
		total += VARSIZE_ANY_EXHDR(data);

		/*
		 * Only a new chunk is written down and keeps the upload alive: a
		 * chunk sent again changes nothing, so resending one chunk forever
		 * neither grows the tables nor outlives ingest.upload_ttl.
		 */
		uvalues[0] = Int64GetDatum(job_id);
		uvalues[1] = Int64GetDatum(total);
		jobs_exec_as_owner("UPDATE ingest_private.upload_jobs SET bytes_total = $2, "
						   "  upload_activity_at = pg_catalog.clock_timestamp() WHERE id = $1",
						   2, utypes, uvalues, NULL, false);
	}
	SPI_finish();
	return total;
}

/*
 * Queue an upload whose chunks 0..n-1 all arrived (and add up to
 * total_bytes, unless that is -1); returns its size.
 */
int64
jobs_finish_upload(int64 job_id, int64 total_bytes, Oid caller)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	int64		nchunks;
	int32		first = 0;
	int32		last = -1;
	int64		size;

	values[0] = Int64GetDatum(job_id);
	SPI_connect();
	(void) lock_upload(job_id, caller, true, NULL, NULL);

	jobs_exec_as_owner("SELECT count(*), min(seq), max(seq), "
					   "  COALESCE(sum(pg_catalog.octet_length(data)), 0)::int8 "
					   "FROM ingest_private.job_chunks WHERE job_id = $1",
					   1, types, values, NULL, false);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	nchunks = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	if (nchunks > 0)
	{
		first = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		last = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	}
	size = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));

	/* seq numbers are distinct and >= 0: n chunks are 0..n-1 exactly when the last is n-1 */
	if (nchunks > 0 && last != nchunks - 1)
	{
		int32		missing;

		jobs_exec_as_owner("SELECT COALESCE(prev, -1) + 1 FROM ("
						   "  SELECT seq, lag(seq) OVER (ORDER BY seq) AS prev "
						   "  FROM ingest_private.job_chunks WHERE job_id = $1) s "
						   "WHERE seq <> COALESCE(prev, -1) + 1 ORDER BY seq LIMIT 1",
						   1, types, values, NULL, false);
		missing = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chunk %d of upload job " INT64_FORMAT " is missing (chunks %d to %d received)",
						missing, job_id, first, last),
				 errdetail_plural("%d chunk was received.", "%d chunks were received.",
								  (unsigned long) nchunks, (int) nchunks),
				 errhint("Send it with ingest.upload_chunk; the view ingest.upload_chunks lists the chunks received.")));
	}
	if (total_bytes >= 0 && total_bytes != size)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("upload job " INT64_FORMAT " received " INT64_FORMAT " bytes, not the " INT64_FORMAT " given as total_bytes",
						job_id, size, total_bytes),
				 errdetail_plural("%d chunk was received.", "%d chunks were received.",
								  (unsigned long) nchunks, (int) nchunks),
				 errhint("The view ingest.upload_chunks lists each chunk received with its size.")));

	values[1] = Int64GetDatum(size);
	jobs_exec_as_owner("UPDATE ingest_private.upload_jobs SET state = 'queued', bytes_total = $2 WHERE id = $1",
					   2, types, values, NULL, false);
	SPI_finish();
	return size;
}

/*
 * Uploads that received nothing for longer than ingest.upload_ttl are
 * removed, their chunks with them (ON DELETE CASCADE). Bounded per call,
 * and an upload whose row is locked (a chunk arriving right now) is left
 * alone. Returns how many were removed.
 */
int64
jobs_expire_uploads(void)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(ingest_upload_ttl)};
	int64		n;

	SPI_connect();
	jobs_exec_as_owner("DELETE FROM ingest_private.upload_jobs WHERE id IN ("
					   "  SELECT id FROM ingest_private.upload_jobs "
					   "  WHERE state = 'uploading' "
					   "    AND upload_activity_at < pg_catalog.clock_timestamp() - $1 * interval '1 s' "
					   "  ORDER BY upload_activity_at LIMIT 1000 "
					   "  FOR UPDATE SKIP LOCKED)",
					   1, types, values, NULL, false);
	n = (int64) SPI_processed;
	SPI_finish();
	if (n > 0)
		ereport(LOG,
				(errmsg("ingest: removed " INT64_FORMAT " upload(s) that received no chunk for longer than ingest.upload_ttl (%d s)",
						n, ingest_upload_ttl)));
	return n;
}

/* ---------- stored bytes of finished jobs: discarded by hand or swept ---------- */

/* Bytes dropped by the statement below, for job $1 (data and chunks alike). */
#define DROP_STORED_SQL(victims) \
	"d AS (DELETE FROM ingest_private.job_data WHERE job_id IN (" victims ") " \
	"      RETURNING pg_catalog.octet_length(data)::int8 AS n), " \
	"c AS (DELETE FROM ingest_private.job_chunks WHERE job_id IN (" victims ") " \
	"      RETURNING pg_catalog.octet_length(data)::int8 AS n) "

/* The jobs' rows updated to what they are: see jobs_discard. */
#define TOUCH_JOBS_SQL(victims) \
	"t AS (UPDATE ingest_private.upload_jobs SET state = state WHERE id IN (" victims ")) "

/*
 * ingest.discard: the stored bytes (ingest.job_data, ingest.job_chunks) of
 * a finished job the caller may act on go, and ingest.retry refuses the job
 * from then on; its row, counters and rejected records stay. Returns the
 * bytes dropped: 0 when none were stored (a server file or a large object,
 * which are not ingest's to remove, or bytes already gone). A job that may
 * still run (uploading, queued, running) is refused: cancel it first.
 *
 * The job's row is locked first, so a concurrent ingest.retry either queues
 * the job before (and this call is refused) or finds the bytes gone; and it
 * is updated (to what it is), so that a retry in a transaction whose
 * snapshot is older than this one fails to serialize instead of seeing the
 * bytes there.
 */
int64
jobs_discard(int64 job_id, Oid caller)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	JobState	state;
	int64		bytes;
	bool		isnull;

	(void) jobs_check_visible(job_id, caller, &state);
	SPI_connect();
	if (state == JOB_SUCCEEDED || state == JOB_FAILED || state == JOB_CANCELLED)
	{
		/* not read-only: after waiting for the lock, see the row as it is now */
		jobs_exec_as_owner("SELECT state FROM ingest_private.upload_jobs "
						   "WHERE id = $1 AND state IN ('succeeded', 'failed', 'cancelled') FOR UPDATE",
						   1, types, values, NULL, false);
		if (SPI_processed != 1)
			state = JOB_QUEUED; /* ingest.retry queued it meanwhile */
	}
	if (state != JOB_SUCCEEDED && state != JOB_FAILED && state != JOB_CANCELLED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ingest job " INT64_FORMAT " is %s: only the bytes of a finished job can be discarded",
						job_id, jobs_state_name(state)),
				 errhint("Cancel it first with ingest.cancel(" INT64_FORMAT ").", job_id)));

	jobs_exec_as_owner("WITH " DROP_STORED_SQL("$1") ", "
					   TOUCH_JOBS_SQL("$1")
					   "SELECT COALESCE((SELECT sum(n) FROM d), 0)::int8 + COALESCE((SELECT sum(n) FROM c), 0)::int8",
					   1, types, values, NULL, false);
	bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return bytes;
}

/*
 * Were the bytes a job loads from discarded (ingest.discard, or swept after
 * ingest.keep_failed_data)? Only jobs whose bytes ingest stores can have
 * lost them; an upload finished with no chunk at all had none to lose.
 */
bool
jobs_data_discarded(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		isnull;
	bool		gone = false;

	SPI_connect();
	jobs_exec_as_owner("SELECT (j.source_type = 'data' AND NOT EXISTS "
					   "         (SELECT 1 FROM ingest_private.job_data d WHERE d.job_id = j.id)) "
					   "    OR (j.source_type = 'chunks' AND COALESCE(j.bytes_total, 0) > 0 AND NOT EXISTS "
					   "         (SELECT 1 FROM ingest_private.job_chunks c WHERE c.job_id = j.id)) "
					   "FROM ingest_private.upload_jobs j WHERE j.id = $1",
					   1, types, values, NULL, false);
	if (SPI_processed == 1)
		gone = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return gone;
}

/*
 * The workers' sweep: the stored bytes of jobs that failed or were
 * cancelled longer than ingest.keep_failed_data ago go, as ingest.discard
 * drops them. The jobs are found from the bytes tables (one row per job in
 * job_data, and the distinct jobs of job_chunks read off its primary key
 * one job at a time), so the cost follows what is stored, not the length
 * of the job history. At most SWEEP_JOBS jobs per call, a job whose row a
 * session holds locked is left for the next sweep. Returns how many jobs'
 * bytes went.
 */
#define SWEEP_JOBS	50

int64
jobs_sweep_failed_data(void)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(ingest_keep_failed_data), Int32GetDatum(SWEEP_JOBS)};
	int64		jobs;
	int64		bytes;
	bool		isnull;

	if (ingest_keep_failed_data < 0)
		return 0;				/* kept until ingest.purge or ingest.discard */

	SPI_connect();
	jobs_exec_as_owner("WITH RECURSIVE chunk_jobs AS ("
					   "  SELECT (SELECT min(job_id) FROM ingest_private.job_chunks) AS id "
					   "  UNION ALL "
					   "  SELECT (SELECT min(k.job_id) FROM ingest_private.job_chunks k WHERE k.job_id > cj.id) "
					   "  FROM chunk_jobs cj WHERE cj.id IS NOT NULL), "
					   "stored AS (SELECT job_id AS id FROM ingest_private.job_data "
					   "           UNION SELECT id FROM chunk_jobs WHERE id IS NOT NULL), "
					   "victims AS (SELECT j.id FROM ingest_private.upload_jobs j JOIN stored s ON s.id = j.id "
					   "            WHERE j.state IN ('failed', 'cancelled') "
					   "              AND j.finished_at < pg_catalog.clock_timestamp() - $1 * interval '1 s' "
					   "            ORDER BY j.finished_at LIMIT $2 "
					   "            FOR UPDATE OF j SKIP LOCKED), "
					   DROP_STORED_SQL("SELECT id FROM victims") ", "
					   TOUCH_JOBS_SQL("SELECT id FROM victims")
					   "SELECT (SELECT count(*) FROM victims), "
					   "  COALESCE((SELECT sum(n) FROM d), 0)::int8 + COALESCE((SELECT sum(n) FROM c), 0)::int8",
					   2, types, values, NULL, false);
	jobs = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	bytes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	if (jobs > 0)
		ereport(LOG,
				(errmsg("ingest: discarded the stored bytes (" INT64_FORMAT " bytes) of " INT64_FORMAT " failed or cancelled job(s) that finished longer ago than ingest.keep_failed_data (%d s)",
						bytes, jobs, ingest_keep_failed_data)));
	return jobs;
}

/* ---------- stored bytes, for the reader ---------- */

/* A successful job's stored bytes are no longer needed (unless keep_data). */
void
jobs_drop_data(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};

	SPI_connect();
	jobs_exec_as_owner("DELETE FROM ingest_private.job_data WHERE job_id = $1", 1, types, values, NULL, false);
	jobs_exec_as_owner("DELETE FROM ingest_private.job_chunks WHERE job_id = $1", 1, types, values, NULL, false);
	SPI_finish();
}

/*
 * The first column of the one row sql finds for (job_id[, seq]), copied
 * into cxt still toasted: a TOAST pointer of a few bytes, or a small value
 * stored inline. NULL when there is no such row.
 */
static struct varlena *
fetch_stored_value(const char *sql, int64 job_id, int32 seq, MemoryContext cxt)
{
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(seq)};
	struct varlena *ptr = NULL;
	bool		isnull;

	SPI_connect();
	jobs_exec_as_owner(sql, seq >= 0 ? 2 : 1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		struct varlena *v = (struct varlena *) DatumGetPointer(d);
		Size		sz = VARATT_IS_EXTERNAL(v) ? VARSIZE_EXTERNAL(v) : VARSIZE_ANY(v);

		/* keep the TOAST pointer (or the small inline value), not the bytes */
		ptr = MemoryContextAlloc(cxt, sz);
		memcpy(ptr, v, sz);
	}
	SPI_finish();
	return ptr;
}

/* The bytes enqueue_data stored for a job, still toasted, in cxt; NULL if none. */
struct varlena *
jobs_stored_data(int64 job_id, MemoryContext cxt)
{
	return fetch_stored_value("SELECT data FROM ingest_private.job_data WHERE job_id = $1",
							  job_id, -1, cxt);
}

/* Chunk seq of an upload, still toasted, in cxt; NULL if there is none. */
struct varlena *
jobs_stored_chunk(int64 job_id, int32 seq, MemoryContext cxt)
{
	Assert(seq >= 0);
	return fetch_stored_value("SELECT data FROM ingest_private.job_chunks WHERE job_id = $1 AND seq = $2",
							  job_id, seq, cxt);
}

/*
 * An upload's chunks: how many there are, the highest number (-1: none)
 * and their total size.
 */
void
jobs_stored_chunks(int64 job_id, int64 *count, int32 *last, int64 *size)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	SPI_connect();
	jobs_exec_as_owner("SELECT count(*), COALESCE(max(seq), -1), "
					   "  COALESCE(sum(pg_catalog.octet_length(data)), 0)::int8 "
					   "FROM ingest_private.job_chunks WHERE job_id = $1",
					   1, types, values, NULL, true);
	if (SPI_processed != 1)
		elog(ERROR, "ingest: could not count the chunks of job " INT64_FORMAT, job_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	*count = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	*last = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	*size = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	SPI_finish();
}
