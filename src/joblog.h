/*
 * joblog.h
 *		The LOG line of a finished job, written when its outcome commits.
 */
#ifndef INGEST_JOBLOG_H
#define INGEST_JOBLOG_H

/* What the line says of a job that reached succeeded, failed or cancelled. */
typedef struct JobLogLine
{
	int64		job_id;
	const char *state;
	const char *owner;			/* the role, as regrole prints it */
	const char *target;			/* the table, as regclass prints it */
	int64		rows_inserted;
	int64		rows_rejected;
	int64		rows_skipped;	/* on_conflict "nothing" (and rows a BEFORE trigger dropped) */
	double		seconds;		/* the last attempt's run time; 0 if no worker ran it to the end */
	int64		attempt_rows;	/* rows that attempt inserted, for rows/s */
} JobLogLine;

extern void joblog_init(void);
extern void joblog_at_commit(const JobLogLine *line);

#endif							/* INGEST_JOBLOG_H */
