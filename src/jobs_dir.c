/*
 * jobs_dir.c
 *		The files enqueue_dir has enqueued: ingest_private.dir_files.
 *
 * A file of a drop folder is known by its directory, name, size and
 * modification time; each identity enqueued once has one row here, in this
 * database, whoever enqueued it, so that a later call, a retried one or a
 * concurrent one never enqueues it again. The rows outlive their jobs
 * (ingest.purge keeps them: a purged job's file still lying in the folder is
 * not loaded again); a row goes when enqueue_dir, listing its directory,
 * finds no file of that identity there any more (removed, or changed and so
 * a new identity) and its job is no longer queued or running: until then the
 * row is what the job's reader checks the file against (a file that changed
 * after it was enqueued fails its job, and its new version is a new file).
 * The table therefore holds about one row per file lying in the directories
 * enqueue_dir scans.
 *
 * Calls on one directory run one at a time: each holds a lock on the
 * directory, taken before it lists it and kept to the end of its
 * transaction, so the second lists after the first has committed (and sees
 * its rows) or rolled back (and enqueues what it had). The primary key
 * stays as the last wall: an identity inserted twice anyway is skipped.
 *
 * Part of the jobs service (jobs.h): every read and write runs as the
 * table's owner.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "jobs_internal.h"

/*
 * The fourth field of a directory's lock tag: neither 1 nor 2, the values
 * of SQL's advisory locks, so that no session can take or hold it with
 * pg_advisory_lock. (lock_quota's tags, whose second field is a role's
 * oid, could share one only by a chance of 2^-80.)
 */
#define DIR_LOCK_KEY	0xD1F1

/*
 * Wait for, then hold to the end of the transaction, the lock of directory
 * dir (a resolved path) of this database.
 */
void
jobs_dir_lock(const char *dir)
{
	LOCKTAG		tag;
	size_t		len = strlen(dir);
	uint32		h1 = hash_bytes((const unsigned char *) dir, len);
	uint32		h2 = hash_bytes_extended((const unsigned char *) dir, len, 0xd1f1e5);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, h1, h2, DIR_LOCK_KEY);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Bring dir's rows up to date with the n regular files found in it now
 * (names[i], sizes[i], mtimes[i]): rows of identities no longer there are
 * deleted, but for those of jobs still queued or running, which
 * jobs_dir_identity answers for when the job opens its file. Returns, for
 * each file, whether its identity was enqueued before (palloc'd, n entries).
 */
bool *
jobs_dir_sync(const char *dir, int n, char **names, int64 *sizes, TimestampTz *mtimes)
{
	Oid			types[4] = {TEXTOID, TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Datum		values[4];
	Datum	   *d;
	bool	   *known = palloc0(sizeof(bool) * Max(n, 1));

	catalog_check_version();
	values[0] = CStringGetTextDatum(dir);
	d = palloc(sizeof(Datum) * Max(n, 1));
	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(names[i]);
	values[1] = PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(sizes[i]);
	values[2] = PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (int i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(mtimes[i]);
	values[3] = PointerGetDatum(construct_array(d, n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	SPI_connect();

	/*
	 * The final SELECT reads the rows as they were before the DELETE (one
	 * snapshot for the statement): the rows it returns are of files still
	 * there, which the DELETE leaves.
	 */
	jobs_exec_as_owner("WITH present AS ("
					   "  SELECT * FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) "
					   "    WITH ORDINALITY AS p(name, size, mtime, i)), "
					   "gone AS ("
					   "  DELETE FROM ingest_private.dir_files d WHERE d.dir = $1 AND NOT EXISTS ("
					   "    SELECT 1 FROM present p "
					   "    WHERE p.name = d.name AND p.size = d.size AND p.mtime = d.mtime) "
					   "  AND NOT EXISTS (SELECT 1 FROM ingest_private.upload_jobs j "
					   "    WHERE j.id = d.job_id AND j.state IN ('queued', 'running'))) "
					   "SELECT p.i FROM present p JOIN ingest_private.dir_files d "
					   "  ON d.dir = $1 AND d.name = p.name AND d.size = p.size AND d.mtime = p.mtime",
					   4, types, values, NULL, false);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		i = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

		if (!isnull && i >= 1 && i <= n)
			known[i - 1] = true;
	}
	SPI_finish();
	return known;
}

/*
 * Remember that job job_id loads file name of dir with this identity,
 * enqueued by owner for tenant (NULL: none). False if the identity was
 * remembered already: the caller then takes its job back.
 */
bool
jobs_dir_remember(const char *dir, const char *name, int64 size, TimestampTz mtime,
				  int64 job_id, Oid owner, const char *tenant)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT8OID, REGROLEOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	bool		inserted;

	values[0] = CStringGetTextDatum(dir);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int64GetDatum(size);
	values[3] = TimestampTzGetDatum(mtime);
	values[4] = Int64GetDatum(job_id);
	values[5] = ObjectIdGetDatum(owner);
	if (tenant)
		values[6] = CStringGetTextDatum(tenant);
	else
		nulls[6] = 'n';

	SPI_connect();
	jobs_exec_as_owner("INSERT INTO ingest_private.dir_files "
					   "(dir, name, size, mtime, job_id, owner, tenant) "
					   "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
					   7, types, values, nulls, false);
	inserted = SPI_processed == 1;
	SPI_finish();
	return inserted;
}

/*
 * The identity (size, modification time) of the file job job_id was
 * enqueued for by enqueue_dir; false if it is not such a job (or its row
 * went: the job ended and its file left the directory).
 */
bool
jobs_dir_identity(int64 job_id, int64 *size, TimestampTz *mtime)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	bool		found = false;

	SPI_connect();
	jobs_exec_as_owner("SELECT size, mtime FROM ingest_private.dir_files WHERE job_id = $1",
					   1, types, values, NULL, true);
	if (SPI_processed >= 1)
	{
		bool		isnull;

		*size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*mtime = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}
