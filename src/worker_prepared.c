/*
 * worker_prepared.c
 *		The prepared transactions of an all-or-nothing job loaded in parts
 *		(a job without commit_every): committing them all once the job's
 *		worker decides, rolling them back when the job fails, and finishing
 *		those that a crash or a dead worker left behind.
 *
 * Each part of such a job is one transaction, prepared under a random
 * global identifier recorded in its row beforehand (jobs_prepared.c). The
 * job's worker commits them only once every part is prepared: first the
 * decision, one transaction turning every part 'done', then one COMMIT
 * PREPARED each, then the job's success. A crash anywhere in between is
 * met by the job's next attempt, which finishes the decided parts
 * (prepared_resume), or, for a job cancelled meanwhile, by any worker of
 * the database (prepared_sweep). Until the decision, any failure, cancel
 * or timeout rolls every prepared part back, so a failed job has loaded
 * nothing, as with one worker.
 *
 * COMMIT PREPARED and ROLLBACK PREPARED each run in a transaction of their
 * own, as the worker, the prepared transactions' owner (a load prepares
 * after leaving the job's owner's identity): no user may finish them.
 */
#include "postgres.h"

#include "access/twophase.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "jobs.h"
#include "worker_parts.h"
#include "worker_prepared.h"

/*
 * COMMIT or ROLLBACK PREPARED gid. One that is gone (finished by another
 * worker meanwhile), or being finished by another, is left to that one:
 * false then. Any other error goes on up.
 */
static bool
finish_prepared(const char *gid, bool commit)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool finished = true;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		FinishPreparedTransaction(gid, commit);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_UNDEFINED_OBJECT &&
			edata->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		finished = false;
	}
	PG_END_TRY();
	return finished;
}

/* A new identifier for a part's prepared transaction, random (every role sees them). */
void
prepared_new_gid(char *gid)
{
	uint8		r[16];

	if (!pg_strong_random(r, sizeof(r)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random identifier for a prepared transaction")));
	strcpy(gid, "ingest:");
	for (int i = 0; i < (int) sizeof(r); i++)
		sprintf(gid + 7 + 2 * i, "%02x", r[i]);
}

/*
 * Before the claimed part gets a new identifier: a transaction its last
 * attempt prepared and never recorded (the worker died in between) is
 * rolled back, or its rows would stay locked and, once forgotten, never
 * be committed nor rolled back.
 */
void
prepared_retire_stale(int64 job_id, int part)
{
	char	   *gid;

	parts_begin_bookkeeping();
	gid = jobs_part_stale_gid(job_id, part, CurrentMemoryContext);
	parts_end_bookkeeping();
	if (gid != NULL)
		(void) finish_prepared(gid, false);
}

/* The job's parts with an identifier, in a bookkeeping transaction of their own. */
static List *
parts_with_gids(int64 job_id, MemoryContext cxt)
{
	List	   *parts;

	parts_begin_bookkeeping();
	parts = jobs_parts_gids(job_id, cxt);
	parts_end_bookkeeping();
	return parts;
}

/* Commit the decided parts of the list still prepared. */
static void
commit_decided(List *parts)
{
	ListCell   *lc;

	foreach(lc, parts)
	{
		JobPreparedPart *pp = lfirst(lc);

		if (pp->exists && strcmp(pp->state, "done") == 0)
			(void) finish_prepared(pp->gid, true);
	}
}

/*
 * Every part is prepared: the decision. An ERROR when a part is no longer
 * prepared, and nothing is decided (jobs_parts_decide).
 */
void
prepared_decide(int64 job_id)
{
	parts_begin_bookkeeping();
	jobs_parts_decide(job_id);
	parts_end_bookkeeping();
}

/*
 * The decided job's commits. From the decision on, the job's rows are
 * committed whatever happens: an error here ends the worker, and the job's
 * next attempt commits what is left.
 */
void
prepared_commit_job(int64 job_id, MemoryContext cxt)
{
	PG_TRY();
	{
		commit_decided(parts_with_gids(job_id, cxt));
		parts_begin_bookkeeping();
		jobs_parts_forget_gids(job_id);
		parts_end_bookkeeping();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		ereport(FATAL,
				(errmsg("ingest job " INT64_FORMAT ": could not commit the prepared transactions of its parts",
						job_id),
				 errdetail("Every part was prepared and the job decided to commit them; its next attempt commits those left.")));
	}
	PG_END_TRY();
}

/*
 * The job ends without its rows: every prepared part that is not decided
 * is rolled back. A part that had recorded itself prepared becomes
 * 'failed' with nothing counted (the job's next attempt loads it again);
 * one that never got so far keeps its state.
 */
void
prepared_rollback_job(int64 job_id, MemoryContext cxt)
{
	ListCell   *lc;

	foreach(lc, parts_with_gids(job_id, cxt))
	{
		JobPreparedPart *pp = lfirst(lc);
		bool		was_prepared = strcmp(pp->state, "prepared") == 0;

		if (strcmp(pp->state, "done") == 0 || (!pp->exists && !was_prepared))
			continue;
		if (pp->exists)
			(void) finish_prepared(pp->gid, false);
		parts_begin_bookkeeping();
		jobs_part_unprepare(job_id, pp->part, was_prepared ? "failed" : pp->state);
		parts_end_bookkeeping();
	}
}

/*
 * A later attempt of the job (after a crash, a retry): parts decided by
 * the last one are committed; a part recorded prepared whose transaction
 * is gone (a superuser rolled it back) is loaded again; prepared parts
 * stay prepared, for this attempt's decision.
 */
void
prepared_resume(int64 job_id, MemoryContext cxt)
{
	List	   *parts = parts_with_gids(job_id, cxt);
	ListCell   *lc;

	if (parts == NIL)
		return;					/* a new job, or none of its parts prepared */
	commit_decided(parts);
	parts_begin_bookkeeping();
	jobs_parts_forget_gids(job_id);
	foreach(lc, parts)
	{
		JobPreparedPart *pp = lfirst(lc);

		if (!pp->exists && strcmp(pp->state, "prepared") == 0)
			jobs_part_unprepare(job_id, pp->part, "queued");
	}
	parts_end_bookkeeping();
}

/* An error of the sweep's own: in the log, and the sweep goes on. */
static void
report_and_go_on(MemoryContext caller)
{
	MemoryContextSwitchTo(caller);
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
}

/* Finish one prepared transaction the sweep found (jobs_prepared_orphans). */
static void
sweep_one(JobPreparedPart *pp)
{
	bool		commit = strcmp(pp->state, "done") == 0;

	/*
	 * The list may be old by now: a job retried meanwhile is its worker's
	 * again, to resume and decide.
	 */
	if (pp->part >= 0)
	{
		bool		active;

		parts_begin_bookkeeping();
		active = jobs_job_active(pp->job_id);
		parts_end_bookkeeping();
		if (active)
			return;
	}
	if (!finish_prepared(pp->gid, commit))
		return;					/* another worker finished it */
	if (pp->part < 0)
		ereport(LOG,
				(errmsg("ingest: prepared transaction \"%s\" of a job that no longer exists rolled back",
						pp->gid)));
	else
		ereport(LOG,
				(errmsg("ingest job " INT64_FORMAT ": prepared transaction of part %d %s, as the job is no longer running",
						pp->job_id, pp->part, commit ? "committed" : "rolled back")));
	parts_begin_bookkeeping();
	if (commit)
		jobs_parts_forget_gids(pp->job_id);
	else
		jobs_part_unprepare(pp->job_id, pp->part,
							strcmp(pp->state, "prepared") == 0 ? "failed" : pp->state);
	parts_end_bookkeeping();
}

/*
 * Prepared parts of jobs that are neither queued nor running (cancelled
 * while queued after a crash, say): decided ones are committed, the others
 * rolled back. Errors are the worker's own bookkeeping's: reported, and
 * the sweep goes on with the next, or at its next round.
 */
void
prepared_sweep(void)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt;
	List	   *volatile orphans = NIL;
	ListCell   *lc;

	if (max_prepared_xacts == 0)
		return;
	cxt = AllocSetContextCreate(caller, "ingest prepared sweep", ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		Datum		ours;

		parts_begin_bookkeeping();
		ours = jobs_prepared_ours(cxt);
		parts_end_bookkeeping();
		/* a new snapshot, taken after that look (jobs_prepared_orphans says why) */
		parts_begin_bookkeeping();
		orphans = jobs_prepared_orphans(ours, cxt);
		parts_end_bookkeeping();
	}
	PG_CATCH();
	{
		report_and_go_on(caller);
	}
	PG_END_TRY();
	foreach(lc, orphans)
	{
		PG_TRY();
		{
			sweep_one(lfirst(lc));
		}
		PG_CATCH();
		{
			report_and_go_on(caller);
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(cxt);
}

/*
 * The extension is gone from this database (DROP EXTENSION while a job was
 * loaded in parts): no job of it can be decided any more, so every
 * prepared transaction of ingest's form here, prepared as the workers
 * prepare (by the bootstrap superuser), is rolled back. Reads no table of
 * ingest's.
 */
void
prepared_sweep_gone(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *gids = NIL;
	ListCell   *lc;

	if (max_prepared_xacts == 0)
		return;
	parts_begin_bookkeeping();
	if (SPI_connect() != SPI_OK_CONNECT ||
		SPI_execute("SELECT x.gid FROM pg_catalog.pg_prepared_xacts x WHERE " JOBS_OUR_PREPARED_WHERE,
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ingest: could not list prepared transactions");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		/* the list outlives SPI_finish, which frees SPI's own context */
		MemoryContext spi = MemoryContextSwitchTo(caller);

		gids = lappend(gids, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	parts_end_bookkeeping();
	foreach(lc, gids)
	{
		if (finish_prepared(lfirst(lc), false))
			ereport(LOG,
					(errmsg("ingest: prepared transaction \"%s\" rolled back, as the extension was dropped",
							(char *) lfirst(lc))));
		pfree(lfirst(lc));
	}
	list_free(gids);
}
