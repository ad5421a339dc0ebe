/*
 * loadxact.c
 *		The transactions of a load (loader.c): each opened as the job's owner
 *		with the settings captured at enqueue, and committed with whatever
 *		commit runs as the owner too; the transaction of a part of an
 *		all-or-nothing job is prepared instead (two-phase commit), as the
 *		worker, for the job's worker to commit with the other parts
 *		(worker_prepared.c).
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/guc.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#include "identity.h"
#include "isolate.h"
#include "loader_internal.h"
#include "worker_hold.h"

/*
 * A part's transaction about to be prepared must hold no lock on ingest's
 * own relations: the prepared transaction would keep it until the job's
 * decision, and a DROP or ALTER EXTENSION waiting for it would stall the
 * very workers that are to decide (a lock queue the deadlock detector does
 * not see through a prepared transaction). The load itself takes none; a
 * trigger that read ingest's views did: the job then goes to one worker.
 */
static void
check_no_ingest_locks(IngestLoad *ld)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.string_agg(DISTINCT c.oid::regclass::text, ', ') "
					"FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_class c ON c.oid = l.relation "
					"WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' "
					"  AND c.relnamespace IN ('ingest'::regnamespace, 'ingest_private'::regnamespace)",
					true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ingest: could not list the locks of part %d", ld->part.part);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot prepare part %d of ingest job " INT64_FORMAT ": its transaction locked ingest's own %s",
						ld->part.part, ld->job->id,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errdetail("A trigger or a default that reads ingest's views or tables keeps a part from being prepared.")));
}

/* Open a transaction of the load, as the owner with the job's settings. */
void
loadxact_begin(IngestLoad *ld)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	identity_check_owner(ld->job->owner, ld->job->id);

	/*
	 * Everything the load sets, our captured settings and whatever a trigger
	 * sets even at session level, is undone before commit (loadxact_commit), so
	 * nothing leaks into the next transaction or the next owner's job.
	 * Settings are applied as the owner: what the owner may not set in its
	 * own session is skipped.
	 */
	ld->guc_level = NewGUCNestLevel();
	identity_enter(ld->job->owner, &ld->owner_save);
	identity_apply_settings(ld->job->settings);

	/*
	 * With max_errors, a deferred constraint would fail at commit, where no
	 * record can be blamed and set aside: check constraints per batch.
	 */
	if (ld->opts.max_errors > 0 &&
		SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "ingest: could not make constraints immediate");
}

/*
 * Commit it (prepare it, for a part of an all-or-nothing job); ld->committed
 * then holds the counters committed.
 */
void
loadxact_commit(IngestLoad *ld)
{
	bool		held = false;

	/*
	 * Commit runs user code too: deferred triggers and constraints, and WITH
	 * HOLD cursors a trigger declared. Run it now, still as the owner and
	 * with the job's settings, exactly as CommitTransaction would (which then
	 * finds nothing left): after identity_leave it would run as the worker's
	 * superuser.
	 */
	for (;;)
	{
		AfterTriggerFireDeferred();
		if (!PreCommit_Portals(false))
			break;
	}
	identity_leave(&ld->owner_save);
	AtEOXact_GUC(false, ld->guc_level);
	if (ld->gid != NULL)
	{
		ld->preparing = true;	/* an error now sends the job to one worker */
		/* the worker's own hold on the job table first: it would be listed too */
		held = hold_suspend();
		check_no_ingest_locks(ld);
	}
	SPI_finish();
	PopActiveSnapshot();
	if (ld->gid != NULL)
	{
		/*
		 * PREPARE TRANSACTION, as the worker (the prepared transaction's
		 * owner, who alone may finish it): the block a PREPARE ends is
		 * opened first, which leaves the transaction open.
		 */
		BeginTransactionBlock();
		CommitTransactionCommand();
		StartTransactionCommand();
		if (!PrepareTransactionBlock(ld->gid))
			elog(ERROR, "ingest: could not prepare the transaction of part %d", ld->part.part);
		CommitTransactionCommand();
		ld->preparing = false;
		if (held && !hold_resume(false))
		{
			/* the extension's tables are wanted: give the part up, then wait */
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			FinishPreparedTransaction(ld->gid, false);
			CommitTransactionCommand();
			(void) hold_resume(true);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("ingest job " INT64_FORMAT ", part %d: the extension's tables are wanted by another session (DROP or ALTER EXTENSION)",
							ld->job->id, ld->part.part)));
		}
	}
	else
		CommitTransactionCommand();

	/*
	 * Committed: from here on a failure must report (and a retry resume
	 * from) these counters, which the checkpoint just committed holds too,
	 * so nothing that could fail comes between the commit and them.
	 */
	ld->committed = ld->done;
	ld->rejects.stored_committed = ld->rejects.stored;
	if (ld->gid == NULL)
		isolate_forget_pending(&ld->rejects);
	pgstat_report_stat(false);
}
