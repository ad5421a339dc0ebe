/*
 * worker_hold.c
 *		A worker's hold on the job table: the extension may be dropped or
 *		updated under a worker, but never in the middle of a job.
 *
 * The worker asks whether the extension is here (hold_extension_state, a
 * question only), and then locks the job table as its next step needs:
 * for the rest of a transaction, waiting or not (hold_lock_table), or from
 * a job's claim to its recorded outcome (hold_take ... hold_release).
 * Questions asked from the idle loop never wait, so that a DROP EXTENSION
 * waiting for a running job does not also stall idle workers, which must
 * stay free to leave for another database.
 */
#include "postgres.h"

#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/inval.h"

#include "catalog.h"
#include "compat.h"
#include "settings.h"
#include "worker_hold.h"

/*
 * The job table, locked (AccessShare, a session lock kept across the job's
 * transactions) for the whole of a job. DROP EXTENSION must lock it
 * exclusively to drop it, so it waits for running jobs; without this it
 * could run between two commit_every batches, and a job whose tables were
 * dropped and created again under it would write its progress into another
 * job's row of the same id. The lock is on the table, not on the extension
 * object: anybody can queue a lock request on the extension (DROP EXTENSION
 * checks ownership only after it has locked), which would stall every
 * claim, while only the table's owner can ask for a conflicting lock on it.
 */
static LOCKTAG jobs_table_tag;
static bool jobs_table_held = false;

/* Said once per worker: the extension here waits for ALTER EXTENSION UPDATE. */
static bool warned_outdated = false;

/*
 * The extension's state here (catalog_extension_state), said once in the
 * log while it waits for ALTER EXTENSION UPDATE. A question only: the
 * callers that go on to use the job table lock it, each as it needs.
 */
CatalogState
hold_extension_state(void)
{
	char	   *version;
	CatalogState state = catalog_extension_state(&version);

	if (state == CATALOG_OUTDATED)
	{
		if (!warned_outdated)
			ereport(LOG,
					(errmsg("extension \"ingest\" in database \"%s\" is at version %s, but this library needs version %s: its jobs wait",
							get_database_name(MyDatabaseId), version, INGEST_SCHEMA_VERSION),
					 errhint("Run ALTER EXTENSION ingest UPDATE in that database.")));
		warned_outdated = true;
	}
	else if (state == CATALOG_CURRENT)
		warned_outdated = false;
	return state;
}

/*
 * Keep the job table for the rest of this transaction, so that a DROP
 * EXTENSION committing meanwhile cannot pull it from under the queries that
 * follow. With wait, a DROP that is waiting goes first, and the table is
 * then seen gone; without, a DROP (or anything else) that wants the table
 * makes this false at once. false: the table is not ours to use now.
 */
bool
hold_lock_table(bool wait)
{
	Oid			relid = catalog_jobs_table();

	if (!OidIsValid(relid))
		return false;
	if (wait)
		LockRelationOid(relid, AccessShareLock);
	else if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	AcceptInvalidationMessages();
	return catalog_jobs_table() == relid;
}

/*
 * Take the lock without waiting: if a DROP EXTENSION (or anything else that
 * wants the table to itself) is waiting, no new job starts.
 */
bool
hold_take(void)
{
	Oid			relid = catalog_jobs_table();

	if (!OidIsValid(relid))
		return false;
	SET_LOCKTAG_RELATION(jobs_table_tag, MyDatabaseId, relid);
	if (LockAcquire(&jobs_table_tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	jobs_table_held = true;

	/* a DROP EXTENSION that committed before we locked: see it now */
	AcceptInvalidationMessages();
	if (catalog_jobs_table() != relid)
	{
		LockRelease(&jobs_table_tag, AccessShareLock, true);
		jobs_table_held = false;
		return false;
	}
	return true;
}

/* After a job's outcome is recorded: DROP EXTENSION may go ahead. */
void
hold_release(void)
{
	if (jobs_table_held)
		LockRelease(&jobs_table_tag, AccessShareLock, true);
	jobs_table_held = false;
}

/*
 * After a job's transaction aborted: an abort releases session locks too,
 * so the hold is gone, and a waiting DROP EXTENSION has just been granted
 * the table. Take it again, waiting (behind that DROP, if any), before the
 * outcome is written; false if the table is gone by then.
 */
bool
hold_retake(void)
{
	jobs_table_held = compat_lock_held_by_me(&jobs_table_tag, AccessShareLock);
	if (!jobs_table_held)
	{
		(void) LockAcquire(&jobs_table_tag, AccessShareLock, true, false);
		jobs_table_held = true;
	}
	AcceptInvalidationMessages();
	if (catalog_jobs_table() != jobs_table_tag.locktag_field2)
	{
		hold_release();
		return false;
	}
	return true;
}

/*
 * A transaction is about to be prepared: PREPARE refuses a transaction that
 * holds a lock at session level and at transaction level on the same
 * object, in any modes. The hold is let go for the PREPARE (and before the
 * check that the transaction itself locked none of ingest's tables, which
 * would list it); the prepared transaction keeps its own locks. true: it
 * was held.
 */
bool
hold_suspend(void)
{
	bool		was_held = jobs_table_held;

	hold_release();
	return was_held;
}

/*
 * Take the hold again after the PREPARE. Without waiting: a DROP or an
 * update of the extension that asked for the table meanwhile may be
 * waiting for the prepared transaction itself, which waits for this
 * worker; false then, and the caller gives its transaction up first.
 */
bool
hold_resume(bool wait)
{
	if (LockAcquire(&jobs_table_tag, AccessShareLock, true, !wait) == LOCKACQUIRE_NOT_AVAIL)
		return false;
	jobs_table_held = true;
	return true;
}

/*
 * Is a session waiting for the job table (a DROP or an update of the
 * extension) behind our hold?
 */
bool
hold_wanted(void)
{
	return jobs_table_held && LockWaiterCount(&jobs_table_tag) > 0;
}

/*
 * Does a session want this database to itself? DROP DATABASE, CREATE
 * DATABASE ... TEMPLATE and ALTER DATABASE ... RENAME lock the database
 * object in a mode that conflicts with RowExclusiveLock (as a connecting
 * backend takes it) and then wait for the other sessions to leave.
 */
bool
hold_database_wanted(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, true);
	return false;
}
