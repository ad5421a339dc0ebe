/*
 * joblog.c
 *		One LOG line per finished job, written when its outcome commits:
 *
 *	ingest job 42 succeeded: database app, owner acme, target public.invoices,
 *	  300000 rows inserted, 2 rejected, 0 skipped, 3.412 s, 87925 rows/s
 *
 * (job ids are per database, so the line names it).
 *
 * The jobs service (jobs.c, jobs_queue.c) hands the line over in the
 * transaction that records the outcome (a worker's, or the session's that
 * cancels a queued job); it is written from an XactCallback at commit, so
 * an outcome that does not commit (the load's last commit fails on a
 * deferred constraint and the job is then recorded failed instead, a
 * cancel rolled back or taken back by ROLLBACK TO SAVEPOINT) logs nothing.
 * ingest.log_jobs (superuser; per database with ALTER DATABASE) quiets it.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "joblog.h"

static bool ingest_log_jobs = true;

typedef struct PendingLine
{
	char	   *text;
	int			level;			/* the subtransaction level it was made at */
} PendingLine;

/* in TopMemoryContext, emptied at every commit and abort */
static List *pending = NIL;
static bool callback_registered = false;

static void
forget_lines(void)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingLine *pl = lfirst(lc);

		pfree(pl->text);
		pfree(pl);
	}
	list_free(pending);
	pending = NIL;
}

static void
xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
			foreach(lc, pending)
				ereport(LOG, (errmsg_internal("%s", ((PendingLine *) lfirst(lc))->text)));
			forget_lines();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_lines();
			break;
		default:
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingLine *pl = lfirst(lc);

		if (pl->level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending = foreach_delete_current(pending, lc);
			pfree(pl->text);
			pfree(pl);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			pl->level = level - 1;
	}
}

void
joblog_init(void)
{
	DefineCustomBoolVariable("ingest.log_jobs",
							 "Writes one LOG line per finished ingest job.",
							 "The line names the job, its owner, target and state, its rows inserted, rejected and skipped, the seconds its last attempt ran and the rows per second.",
							 &ingest_log_jobs,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
}

/*
 * A name as the line shows it: control characters (a newline in a table
 * name, say) as \xNN, so that a name cannot end the line and forge the next
 * one for a log reader that goes by lines.
 */
static char *
printable(const char *name)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) name; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			appendStringInfo(&buf, "\\x%02x", *p);
		else
			appendStringInfoChar(&buf, (char) *p);
	}
	return buf.data;
}

/* The job reached its final state in this transaction: log it if that commits. */
void
joblog_at_commit(const JobLogLine *line)
{
	MemoryContext old;
	PendingLine *pl;
	double		rate;
	char	   *database;
	char	   *owner;
	char	   *target;

	if (!ingest_log_jobs)
		return;
	rate = line->seconds > 0 ? (double) line->attempt_rows / line->seconds : 0;

	/* the names in the transaction's memory, the line in memory that outlives it */
	database = printable(get_database_name(MyDatabaseId));
	owner = printable(line->owner);
	target = printable(line->target);
	old = MemoryContextSwitchTo(TopMemoryContext);
	pl = palloc(sizeof(PendingLine));
	pl->level = GetCurrentTransactionNestLevel();
	pl->text = psprintf("ingest job " INT64_FORMAT " %s: database %s, owner %s, target %s, "
						INT64_FORMAT " rows inserted, " INT64_FORMAT " rejected, " INT64_FORMAT " skipped, %.3f s, %.0f rows/s",
						line->job_id, line->state, database, owner, target,
						line->rows_inserted, line->rows_rejected, line->rows_skipped,
						line->seconds, rate);
	pending = lappend(pending, pl);
	MemoryContextSwitchTo(old);

	if (!callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callback_registered = true;
	}
}
