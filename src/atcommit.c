/*
 * atcommit.c
 *		Actions a transaction asks for that must happen only if it commits,
 *		and after it has: a running job's worker told of its cancel
 *		(enqueue.c), a finished job's LOG line (joblog.c).
 *
 * Each action remembers the subtransaction level it was asked at, so that
 * ROLLBACK TO SAVEPOINT (or a PL/pgSQL exception block) takes it back
 * together with the changes it goes with; an abort forgets them all. A
 * transaction that has actions cannot be prepared: COMMIT PREPARED runs in
 * another session, which knows nothing of them.
 */
#include "postgres.h"

#include "access/xact.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "atcommit.h"

typedef struct PendingAction
{
	AtCommitAction action;
	void	   *arg;
	const char *what;
	int			level;			/* the subtransaction level it was asked at */
} PendingAction;

/* in TopMemoryContext, emptied at every commit and abort */
static List *pending = NIL;
static bool callbacks_registered = false;

static void
forget(PendingAction *pa)
{
	if (pa->arg)
		pfree(pa->arg);
	pfree(pa);
}

static void
forget_all(void)
{
	ListCell   *lc;

	foreach(lc, pending)
		forget(lfirst(lc));
	list_free(pending);
	pending = NIL;
}

static void
xact_callback(XactEvent event, void *arg)
{
	List	   *run;
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (pending != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has %s",
								((PendingAction *) linitial(pending))->what)));
			break;
		case XACT_EVENT_COMMIT:
			/* an action that fails must not run the others twice */
			run = pending;
			pending = NIL;
			foreach(lc, run)
			{
				PendingAction *pa = lfirst(lc);

				pa->action(pa->arg);
				forget(pa);
			}
			list_free(run);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_all();
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
		PendingAction *pa = lfirst(lc);

		if (pa->level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending = foreach_delete_current(pending, lc);
			forget(pa);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			pa->level = level - 1;
	}
}

void
at_commit(AtCommitAction action, void *arg, const char *what)
{
	MemoryContext old;
	PendingAction *pa;

	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	pa = palloc(sizeof(PendingAction));
	pa->action = action;
	pa->arg = arg;
	pa->what = what;
	pa->level = GetCurrentTransactionNestLevel();
	pending = lappend(pending, pa);
	MemoryContextSwitchTo(old);
}
