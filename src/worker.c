/*
 * worker.c
 *		The per-database background worker: claim a job, run it, record the
 *		outcome, repeat; leave when idle.
 *
 * The launcher starts a worker for one database and reserves its slot in
 * shared memory. The worker connects as the bootstrap superuser; the loader
 * switches to each job's owner for the load itself. An ERROR in a job fails
 * that job and the loop goes on; only FATAL (SIGTERM, postmaster death) ends
 * the worker mid-job, and the job is then taken back as an orphan by the
 * next worker of the database.
 *
 * A job with parts (one file loaded by several workers) is driven by
 * worker_parts.c; a worker that finds no job to start helps a running job of
 * its owner and tenant with a part (jobs_claim_part), as a job of its own.
 *
 * Idle workers leave after ingest.worker_idle_timeout so that DROP DATABASE
 * and CREATE DATABASE ... TEMPLATE are not kept waiting for long.
 *
 * The extension itself may change under a worker. A worker holds the job
 * table (a session lock) from a job's claim to its recorded outcome, so
 * DROP EXTENSION waits for the running jobs to end instead of pulling the
 * job tables from under them, and a worker never claims while a DROP
 * EXTENSION waits. (A job that fails loses the hold with its aborted
 * transaction: a waiting DROP then goes first, and the failure, with no
 * table left to go to, is only logged.) In a database whose extension is at
 * another version than this library's SQL is written for (created before
 * an upgrade of the library, not yet updated), a worker runs nothing and
 * waits, while jobs are queued there, for ALTER EXTENSION ingest UPDATE.
 *
 * The file reads in the order of a job's life: the loop, starting up,
 * claiming, running (success is recorded with the load's last rows; a
 * failed attempt's outcome is decided in outcome.c), resetting the session
 * for the next job, and what an idle worker does meanwhile.
 */
#include "postgres.h"

#include <malloc.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "compat.h"
#include "decode.h"
#include "settings.h"
#include "jobs.h"
#include "loader.h"
#include "outcome.h"
#include "reader.h"
#include "shmem.h"
#include "worker.h"
#include "worker_hold.h"
#include "worker_parts.h"
#include "worker_prepared.h"

/* How often an idle worker checks whether it should leave, and looks for work anyway. */
#define IDLE_CHECK_MS		250
#define CLAIM_RECHECK_MS	1000

/*
 * Uploads idle longer than ingest.upload_ttl are removed, and the stored
 * bytes of jobs failed or cancelled longer than ingest.keep_failed_data ago
 * dropped, at most once a minute when idle (the bytes as often as
 * ingest.keep_failed_data, if that is shorter, but not more than once a
 * second).
 */
#define EXPIRE_UPLOADS_MS	(60 * 1000)
#define SWEEP_MIN_MS		1000

#define BOOKKEEPING_ERROR_PAUSE_MS	5000

int			ingest_worker_idle_timeout = 30000;
int			ingest_max_running_per_role = -1;
int			ingest_max_worker_deaths = 3;
int			ingest_keep_failed_data = 7 * 24 * 3600;

/*
 * The owner and tenant whose jobs this worker runs. A job's code (triggers,
 * defaults, checks, policies) runs in the worker's session, as in the
 * owner's own, and may leave things there: temporary tables, which are
 * searched before any schema whatever a later function's search_path says,
 * prepared statements, cursors, advisory locks, settings, and state no
 * reset reaches (an extension's connections, a PL's globals, the random
 * seed). So a worker process runs the jobs of one owner and tenant only:
 * when the next job is another's, the worker leaves and a fresh process
 * runs it. Between jobs of its owner the session is reset (reset_session).
 *
 * PostgreSQL runs a table owner's code in VACUUM or CREATE INDEX under
 * SECURITY_RESTRICTED_OPERATION instead; a load cannot, because that
 * refuses what the owner's own INSERT allows (deferred constraint triggers,
 * a trigger's temporary table), and a load must behave as that INSERT.
 */
static Oid	served_owner = InvalidOid;
static char *served_tenant = NULL;	/* in TopMemoryContext */

/* The orphan epoch this worker last checked at. */
static uint64 orphans_checked = 0;

/* Jobs left running under an outdated extension are looked at after the update. */
static bool orphans_unchecked = false;

/* The loop's clock: when the worker last claimed, since when it has been idle. */
static TimestampTz last_claim = 0;
static TimestampTz idle_since = 0;
static bool claim_due = true;	/* claim at the next turn of the loop */

typedef struct ClaimArgs
{
	IngestJob  *job;
	MemoryContext cxt;			/* where the job's fields are copied */
	bool		more;
	bool		gone;
	bool		other_owner;	/* the next job is not served_owner's */
	bool		is_part;		/* not a job: a part of another worker's job to help with */
	JobPart		part;
} ClaimArgs;

static void start_worker(int slotno);
static bool start_up(void *arg);
static bool claim_and_run(void);
static bool claim(void *arg);
static void check_orphans(uint64 epoch);
static void run_job(IngestJob *job, MemoryContext job_cxt);
static void after_job(void);
static bool reset_session(void *arg);
static bool idle(TimestampTz now);
static void leave_if_surplus(void);
static void leave_for_now(void) pg_attribute_noreturn();
static bool queued_jobs(void *arg);
static bool catalog_current(void *arg);
static bool expire_uploads(void *arg);
static bool sweep_failed_data(void *arg);
static bool rehold_jobs_table(void *arg);
static bool in_transaction(bool (*fn) (void *), void *arg);

/* GUCs of the workers */
void
worker_init(void)
{
	DefineCustomIntVariable("ingest.worker_idle_timeout",
							"How long an idle ingest worker waits for a job before it exits.",
							"An idle worker leaves at once when another database needs a worker or a DROP DATABASE wants its database.",
							&ingest_worker_idle_timeout,
							30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/* read by the view ingest_private._queue, through ingest._role_setting */
	DefineCustomIntVariable("ingest.max_running_per_role",
							"Jobs of one role that may run at once in a database; -1 means half of ingest.max_workers, at least 1.",
							"ALTER ROLE ... SET ingest.max_running_per_role overrides it for one role.",
							&ingest_max_running_per_role,
							-1, -1, MAX_BACKENDS,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_worker_deaths",
							"Times a job's worker may die under it (a crash, the OOM killer, a restart) before the job fails.",
							"Counted apart from attempts, whatever the job's max_attempts; only an ingest_admin member's ingest.retry starts the count again.",
							&ingest_max_worker_deaths,
							3, 1, INGEST_MAX_ATTEMPTS_LIMIT,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.keep_failed_data",
							"How long the stored bytes of a failed or cancelled job are kept for ingest.retry.",
							"Idle workers drop them afterwards (the job's row stays, and ingest.retry refuses it); -1 keeps them until ingest.purge or ingest.discard.",
							&ingest_keep_failed_data,
							7 * 24 * 3600, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

void
ingest_worker_main(Datum main_arg)
{
	start_worker(DatumGetInt32(main_arg));
	for (;;)
	{
		TimestampTz now;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * A wake-up is consumed only here, right before a claim: whatever
		 * set the latch since the last claim is then either seen by this
		 * claim or keeps shmem_worker_exit_if_idle from letting us leave.
		 */
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			claim_due = true;
		}

		now = GetCurrentTimestamp();
		if (claim_due || TimestampDifferenceExceeds(last_claim, now, CLAIM_RECHECK_MS))
		{
			last_claim = now;
			claim_due = false;
			if (claim_and_run())
			{
				idle_since = GetCurrentTimestamp();
				claim_due = true;
				continue;
			}
		}

		if (idle(now))
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 IDLE_CHECK_MS, PG_WAIT_EXTENSION);
	}
}

/* ---------- starting up ---------- */

/* Attach to the slot the launcher reserved, connect, and look at the database. */
static void
start_worker(int slotno)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

#ifdef M_MMAP_THRESHOLD

	/*
	 * Every batch allocates and frees megabytes (values, the executor's
	 * tuplestore); left to glibc's defaults those blocks are mmap'd, unmapped
	 * and faulted in again batch after batch. Keeping them in the heap saves
	 * a measurable share of a load; the worker exits when idle, so what it
	 * keeps is not kept for long.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif

	shmem_worker_attach(slotno);
	BackgroundWorkerInitializeConnectionByOid(ingest_shared->slots[slotno].dboid, InvalidOid, 0);
	pgstat_report_appname("ingest worker");

	if (!in_transaction(start_up, NULL))
		proc_exit(0);			/* no ingest here */
	if (!orphans_unchecked)
		prepared_sweep();

	loader_install_hooks();
	idle_since = GetCurrentTimestamp();
}

/*
 * Take back the jobs vanished workers left running, remove abandoned
 * uploads, and drop the bytes of jobs failed longer ago than
 * ingest.keep_failed_data. false: no ingest here, the worker leaves.
 */
static bool
start_up(void *arg)
{
	uint64		epoch = shmem_orphan_epoch();

	switch (hold_extension_state())
	{
		case CATALOG_ABSENT:
			return false;
		case CATALOG_OUTDATED:
			orphans_unchecked = true;
			return true;
		case CATALOG_CURRENT:
			break;
	}
	if (!hold_lock_table(true))
		return false;
	check_orphans(epoch);
	(void) jobs_expire_uploads();
	(void) jobs_sweep_failed_data();
	return true;
}

/* ---------- claiming ---------- */

/*
 * Claim the next job and run it to its recorded outcome; false when there
 * was none to claim. Leaves instead when the extension is gone, or when the
 * next job, or a part waiting for a helper, is another owner's.
 */
static bool
claim_and_run(void)
{
	MemoryContext job_cxt;
	ClaimArgs	c = {0};

	leave_if_surplus();
	job_cxt = AllocSetContextCreate(TopMemoryContext, "ingest job",
									ALLOCSET_DEFAULT_SIZES);
	c.job = MemoryContextAllocZero(job_cxt, sizeof(IngestJob));
	c.cxt = job_cxt;
	if (!in_transaction(claim, &c))
	{
		MemoryContextDelete(job_cxt);
		if (c.gone)
		{
			prepared_sweep_gone();
			proc_exit(0);
		}
		if (c.other_owner)
		{
			/* another owner's job (or part) is next: a fresh process runs it */
			shmem_worker_leave(true);
			proc_exit(0);
		}
		return false;
	}

	if (c.more)
		shmem_request_db(MyDatabaseId); /* ask for a colleague */
	if (!OidIsValid(served_owner))
	{
		served_owner = c.job->owner;
		if (c.job->tenant)
			served_tenant = MemoryContextStrdup(TopMemoryContext, c.job->tenant);
	}
	if (c.is_part)
	{
		shmem_request_db(MyDatabaseId); /* more parts may wait */
		parts_help(c.job, &c.part, job_cxt);
	}
	else
		run_job(c.job, job_cxt);
	hold_release();
	MemoryContextDelete(job_cxt);
	after_job();
	return true;
}

/* true: a job was claimed, and the job table is held until its outcome is recorded */
static bool
claim(void *arg)
{
	ClaimArgs  *c = arg;
	MemoryContext old;
	bool		found;
	JobClaim	outcome;
	uint64		epoch = shmem_orphan_epoch();

	switch (hold_extension_state())
	{
		case CATALOG_ABSENT:
			c->gone = true;
			return false;
		case CATALOG_OUTDATED:
			return false;
		case CATALOG_CURRENT:
			break;
	}
	if (!hold_take())
		return false;			/* DROP EXTENSION waits: claim nothing */
	if (orphans_unchecked || epoch != orphans_checked)
		check_orphans(epoch);
	old = MemoryContextSwitchTo(c->cxt);
	outcome = jobs_claim(c->job, served_owner, served_tenant, &c->more);
	/* no job may start: help a running job of the same owner with its parts */
	if (outcome == JOB_CLAIM_NONE)
	{
		if (jobs_claim_part(c->job, &c->part, served_owner, served_tenant))
		{
			c->is_part = true;
			outcome = JOB_CLAIM_TAKEN;
		}
		else if (OidIsValid(served_owner) &&
				 jobs_other_part_waits(served_owner, served_tenant))
			outcome = JOB_CLAIM_OTHER_OWNER;
	}
	MemoryContextSwitchTo(old);
	found = (outcome == JOB_CLAIM_TAKEN);
	c->other_owner = (outcome == JOB_CLAIM_OTHER_OWNER);
	if (!found)
		hold_release();

	/*
	 * Publish the job before the claim commits: from the moment other
	 * workers can see it 'running', they must also see who runs it.
	 */
	if (found)
		shmem_worker_set_job(c->job->id, c->job->owner, c->job->tenant != NULL, c->job->target, c->job->bytes_total,
							 c->job->done.rows_inserted);
	return found;
}

/* The jobs live workers of this database run, for jobs_requeue_orphans. */
static int
live_jobs(int *pids, int64 *jobs, int max)
{
	return shmem_live_jobs(MyDatabaseId, pids, jobs, max);
}

/*
 * Take back the jobs of vanished workers. Orphans that a session has
 * locked are left for a later look, which the next claim makes.
 */
static void
check_orphans(uint64 epoch)
{
	bool		incomplete;

	(void) jobs_requeue_orphans(live_jobs, ingest_shared->nslots, &incomplete);
	orphans_checked = epoch;
	orphans_unchecked = incomplete;
}

/* ---------- running ---------- */

static size_t
read_source(void *reader, char *buf, size_t len)
{
	return reader_read((IngestReader *) reader, buf, len);
}

/*
 * Drive the pipeline: the source's bytes, decoded (decompressed, converted
 * to the database's encoding), through the loader, then the
 * outcome recorded in the load's last transaction, so that the rows and the
 * job's success commit together.
 */
static void
load(IngestJob *job, MemoryContext job_cxt)
{
	IngestLoad *ld = loader_start(job, job_cxt);
	IngestReader *reader = reader_open(job, job_cxt);
	IngestDecoder *decoder = decode_open(read_source, reader, reader_what(reader),
										 loader_options(ld), job_cxt);
	const char *buf;
	size_t		n;
	JobCounters done;

	loader_set_decoder(ld, decoder);
	while ((n = decode_read(decoder, &buf)) > 0)
		loader_feed(ld, buf, n);
	loader_finish(ld, &done);

	if (done.rows_rejected > 0 && done.rows_inserted == 0 && done.rows_skipped == 0)
	{
		/*
		 * Every record was rejected (max_errors allowed it): a job that
		 * loaded nothing is not a success. Nothing was written, so the
		 * checkpoint goes back to the start, and ingest.retry, once the
		 * cause is fixed, loads the file from its first record; the
		 * stored bytes and the source stay for it.
		 */
		char	   *message = psprintf("all " INT64_FORMAT " records were rejected; nothing was loaded",
									   done.rows_rejected);

		ereport(LOG, (errmsg("ingest job " INT64_FORMAT " failed: %s", job->id, message)));
		done.records_done = 0;
		jobs_finish(job, JOB_FAILED, &done, message);
		loader_commit(ld);
		return;
	}
	if (!loader_options(ld)->keep_data)
		jobs_drop_data(job->id);
	reader_succeeded(reader, loader_options(ld));
	jobs_finish(job, JOB_SUCCEEDED, &done, NULL);
	loader_commit(ld);
}

/* The load failed: the transaction is aborted, then the failure recorded. */
static void
failed(IngestJob *job, MemoryContext job_cxt)
{
	ErrorData  *edata;
	bool		holding;

	edata = outcome_abort(job_cxt);

	holding = in_transaction(rehold_jobs_table, NULL);

	/*
	 * A commit leaves CurrentMemoryContext at TopMemoryContext: what
	 * describing the failure allocates belongs to the job, and goes with it,
	 * or a long-lived worker would keep a little of every failed job.
	 */
	MemoryContextSwitchTo(job_cxt);
	if (holding)
		outcome_record_failure(job, edata);
	else
	{
		LoaderOutcome out;

		/* the job's row went with the extension: nothing to write, nothing wrong */
		loader_describe_failure(edata, &out);
		loader_forget();
		ereport(LOG,
				(errmsg("ingest job " INT64_FORMAT " failed, but the extension was dropped meanwhile: nothing is recorded",
						job->id),
				 errdetail_internal("%s", out.last_error)));
	}
}

static void
run_job(IngestJob *job, MemoryContext job_cxt)
{
	char		activity[64];

	snprintf(activity, sizeof(activity), "ingest job " INT64_FORMAT, job->id);
	pgstat_report_activity(STATE_RUNNING, activity);

	PG_TRY();
	{
		if (!parts_run_job(job, job_cxt))
			load(job, job_cxt);
	}
	PG_CATCH();
	{
		failed(job, job_cxt);
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_IDLE, NULL);
}

/* ---------- after a job ---------- */

/*
 * The session is reset for the next job of the same owner, unless this
 * worker should leave: the reset cannot undo what the job left, or another
 * database waits for a worker.
 */
static void
after_job(void)
{
	if (!in_transaction(reset_session, NULL))
	{
		/* something a reset cannot undo: a fresh process takes over */
		(void) shmem_worker_end_job();
		shmem_worker_leave(true);
		proc_exit(0);
	}
	if (shmem_worker_end_job())
		leave_for_now();		/* make way for another database */
}

/*
 * After a job, whatever its outcome: give the session back as a new one
 * would be, as DISCARD ALL does, for the next job of the same owner.
 * Settings the job changed were undone with each of its transactions
 * already. false: the session has a temporary schema (a trigger made a
 * temporary table or function), which only a new process is sure to be rid
 * of, so the worker leaves.
 */
static bool
reset_session(void *arg)
{
	Oid			temp_nsp;
	Oid			temp_toast_nsp;

	PortalHashTableDeleteAll();
	DropAllPreparedStatements();
	Async_UnlistenAll();
	LockReleaseAll(USER_LOCKMETHOD, true);
	ResetPlanCache();
	ResetSequenceCaches();
	ResetAllOptions();
	GetTempNamespaceState(&temp_nsp, &temp_toast_nsp);
	return !OidIsValid(temp_nsp);
}

/* ---------- idle ---------- */

/*
 * Idle. Stay warm for the next job (a fresh process pays for every shared
 * buffer page it touches), but leave at once when another database waits
 * for a worker, or when a DROP DATABASE, a CREATE DATABASE using this one
 * as template, or the like wants this database to itself. false: woken
 * meanwhile, the loop is to look again at once rather than sleep.
 */
static bool
idle(TimestampTz now)
{
	static TimestampTz uploads_expired_at = 0;
	static TimestampTz bytes_swept_at = 0;
	int64		sweep_ms = Max(Min((int64) ingest_keep_failed_data * 1000, EXPIRE_UPLOADS_MS),
							   SWEEP_MIN_MS);

	if (TimestampDifferenceExceeds(idle_since, now, ingest_worker_idle_timeout) &&
		in_transaction(queued_jobs, NULL))
	{
		/*
		 * Jobs wait here but none may start yet (a retry's backoff, a role
		 * at ingest.max_running_per_role): stay for them, as no commit will
		 * wake a worker when their time comes.
		 */
		idle_since = now;
	}
	if (hold_database_wanted())
	{
		if (shmem_worker_exit_if_idle())
			proc_exit(0);
		return false;
	}
	if (TimestampDifferenceExceeds(idle_since, now, ingest_worker_idle_timeout) ||
		shmem_worker_others_waiting())
	{
		bool		waiting = in_transaction(queued_jobs, NULL);

		if (shmem_worker_exit_if_idle())
		{
			/* jobs not yet due go with a request for a worker, as after a job */
			if (waiting)
				shmem_request_db(MyDatabaseId);
			proc_exit(0);
		}
		return false;
	}
	if (TimestampDifferenceExceeds(uploads_expired_at, now, EXPIRE_UPLOADS_MS))
	{
		uploads_expired_at = now;
		if (in_transaction(catalog_current, NULL))
		{
			(void) in_transaction(expire_uploads, NULL);
			prepared_sweep();
		}
	}
	if (ingest_keep_failed_data >= 0 &&
		TimestampDifferenceExceeds(bytes_swept_at, now, (int) sweep_ms))
	{
		bytes_swept_at = now;
		(void) in_transaction(sweep_failed_data, NULL);
	}
	return true;
}

/* ingest.max_workers was lowered: the surplus leaves rather than claims. */
static void
leave_if_surplus(void)
{
	if (shmem_worker_exit_if_surplus())
		leave_for_now();
}

/* The slot is given up: leave, queueing up again for the jobs that wait here. */
static void
leave_for_now(void)
{
	if (in_transaction(queued_jobs, NULL))
		shmem_request_db(MyDatabaseId);
	proc_exit(0);
}

/*
 * Are jobs waiting here (queued, if not yet due)? Asked when deciding
 * whether to stay or leave, so it never waits: with the job table wanted
 * by a DROP EXTENSION or an update (the extension's owner's), the answer is
 * no, and the commit of an update wakes workers again.
 */
static bool
queued_jobs(void *arg)
{
	return hold_extension_state() != CATALOG_ABSENT && hold_lock_table(false) &&
		jobs_queued_exist();
}

/* Is the extension here, at this library's version? */
static bool
catalog_current(void *arg)
{
	return hold_extension_state() == CATALOG_CURRENT;
}

/* Remove uploads that went quiet; never waits for the job table either. */
static bool
expire_uploads(void *arg)
{
	return hold_extension_state() == CATALOG_CURRENT && hold_lock_table(false) &&
		jobs_expire_uploads() > 0;
}

/* Drop the bytes of jobs failed long enough ago; never waits for the job table either. */
static bool
sweep_failed_data(void *arg)
{
	return hold_extension_state() == CATALOG_CURRENT && hold_lock_table(false) &&
		jobs_sweep_failed_data() > 0;
}

/* hold_retake, as a bookkeeping transaction runs it */
static bool
rehold_jobs_table(void *arg)
{
	return hold_retake();
}

/* ---------- bookkeeping transactions ---------- */

/*
 * Run one short bookkeeping transaction around fn; returns fn's result.
 *
 * An ERROR here is not a job's (the claim query failing, say, on a schema
 * someone altered by hand): the worker reports it and exits, but only after
 * a pause, so that the launcher, which starts a worker again while jobs wait,
 * does not turn a persistent error into a tight loop of failing workers.
 */
static bool
in_transaction(bool (*fn) (void *), void *arg)
{
	bool		result = false;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		result = fn(arg);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(LOG,
				(errmsg("ingest worker leaves in %d s after an error in its own bookkeeping",
						BOOKKEEPING_ERROR_PAUSE_MS / 1000)));
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 BOOKKEEPING_ERROR_PAUSE_MS, PG_WAIT_EXTENSION);
		/* jobs may wait here: a worker is to look again, once the cause may be gone */
		shmem_worker_leave(true);
		proc_exit(1);
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	return result;
}
