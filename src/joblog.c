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
 * cancels a queued job); it is written once that transaction has committed
 * (atcommit.c), so
 * an outcome that does not commit (the load's last commit fails on a
 * deferred constraint and the job is then recorded failed instead, a
 * cancel rolled back or taken back by ROLLBACK TO SAVEPOINT) logs nothing.
 * ingest.log_jobs (superuser; per database with ALTER DATABASE) quiets it.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "atcommit.h"
#include "joblog.h"

static bool ingest_log_jobs = true;

/* Written once the outcome has committed (atcommit.c). */
static void
write_line(void *arg)
{
	ereport(LOG, (errmsg_internal("%s", (char *) arg)));
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
	double		rate;
	char	   *text;

	if (!ingest_log_jobs)
		return;
	rate = line->seconds > 0 ? (double) line->attempt_rows / line->seconds : 0;
	text = psprintf("ingest job " INT64_FORMAT " %s: database %s, owner %s, target %s, "
					INT64_FORMAT " rows inserted, " INT64_FORMAT " rejected, " INT64_FORMAT " skipped, %.3f s, %.0f rows/s",
					line->job_id, line->state, printable(get_database_name(MyDatabaseId)),
					printable(line->owner), printable(line->target),
					line->rows_inserted, line->rows_rejected, line->rows_skipped,
					line->seconds, rate);
	at_commit(write_line, MemoryContextStrdup(TopMemoryContext, text), "finished an ingest job");
}
