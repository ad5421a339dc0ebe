/*
 * multiinsert.c
 *		The batch INSERT run with buffered heap inserts, every check kept.
 *
 * insert.c prepares, as the owner, INSERT INTO target (cols) SELECT ... FROM
 * ingest._batch_rows(). Run by the executor, each row goes through ExecInsert
 * and heap_insert alone: finding a buffer, WAL and locking per row cost most
 * of the gap to COPY. Here the same plan is started as the owner
 * (ExecutorStart: permissions, and ExecInitModifyTable's RLS WITH CHECK
 * expressions, indexes, transition capture), then the loop of ExecInsert is
 * run here, in ExecInsert's order for each row the batch scan gives: its
 * stored generated columns, RLS WITH CHECK, NOT NULL and CHECK constraints
 * (domains were checked when the values were made), the partition
 * constraint of a partition loaded directly. A row that passes is copied
 * into one of up to MULTI_MAX_ROWS slots, which go to table_multi_insert
 * with a BulkInsertState when there are MULTI_MAX_ROWS of them or
 * MULTI_MAX_BYTES, as COPY does; then, row by row in file order, its index
 * entries (unique and exclusion checks) and its AFTER ROW trigger events.
 * Statement triggers and ExecutorFinish (AFTER triggers, foreign keys) run
 * as the executor runs them. COPY's own code is no use: it never evaluates
 * WITH CHECK options.
 *
 * The batch's mark says which row each check or index entry is for (-1
 * while the heap is written), so an error is blamed on its row and
 * isolate.c sets records aside exactly as on the per-row path. One
 * difference: a row's index entries are made after the rows buffered with
 * it were checked, so when one flush holds both a duplicate key and, on a
 * later line, a failed check, the check fails first. With max_errors the
 * same records are rejected in the same order (isolate.c retries the rows
 * before the one to blame first); with max_errors 0 the job's error may
 * name the later line, as it already may for a value that does not convert.
 * And the defaults of rows buffered after a duplicate key were computed
 * before it failed: sequences can show bigger gaps.
 *
 * Not every INSERT can take this path; multiinsert_unbatchable says when the
 * per-row path is kept: where COPY too inserts row by row (BEFORE or
 * INSTEAD OF row triggers, foreign tables, volatile defaults), partitioned
 * targets (COPY buffers per partition; not done here, to stay simple),
 * where the result could differ from the per-row INSERT's (volatile WITH
 * CHECK or CHECK expressions, or ones calling a function that is neither
 * built in nor immutable, could see the rows before them in the heap),
 * ON CONFLICT, and any plan the rules rewrote.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "batchscan.h"
#include "compat.h"
#include "multiinsert.h"

/* as COPY's copyfrom.c: flush at 1000 rows or 64 kB of tuples */
#define MULTI_MAX_ROWS 1000
#define MULTI_MAX_BYTES 65535

bool		ingest_batched_insert = true;

/* what ingest.insert_path shows: the path of the INSERT running now */
static const char *current_path = "";
static char *insert_path_dummy = NULL;

typedef struct MultiInsert
{
	EState	   *estate;
	ResultRelInfo *rri;
	Relation	rel;
	TransitionCaptureState *tcs;
	BulkInsertState bistate;
	CommandId	cid;
	bool		partition_check;
	IngestBatch *b;
	TupleTableSlot *slots[MULTI_MAX_ROWS];
	int			rows[MULTI_MAX_ROWS];	/* each slot's row of the batch */
	int			nslots_made;
	int			n;
	Size		bytes;
	uint64		processed;
} MultiInsert;

static const char *
show_insert_path(void)
{
	return current_path;
}

void
multiinsert_init(void)
{
	DefineCustomBoolVariable("ingest.batched_insert",
							 "Lets workers insert a batch's rows with buffered heap inserts.",
							 "Off: every row goes through the executor's per-row INSERT. Captured at enqueue like ingest.batch_rows; meant for comparing the two paths.",
							 &ingest_batched_insert,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("ingest.insert_path",
							   "The path of the batch INSERT a worker is running: batched, per-row, or empty.",
							   "Readable by the target's triggers and checks while a worker inserts; empty elsewhere.",
							   &insert_path_dummy,
							   "",
							   PGC_INTERNAL, GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, show_insert_path);
}

void
multiinsert_set_path(const char *path)
{
	current_path = path;
}

/*
 * A function whose declared volatility is only its author's word: not
 * built in, and not immutable. A STABLE function may call a volatile one (a
 * quota counting the table's rows, say): row by row, that call sees the rows
 * inserted before it; here, they are still in the buffer. So a check that
 * calls one keeps the per-row path.
 */
static bool
untrusted_function(Oid funcid, void *context)
{
	return funcid >= FirstNormalObjectId && func_volatile(funcid) != PROVOLATILE_IMMUTABLE;
}

static bool
untrusted_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, untrusted_function, context))
		return true;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, untrusted_walker, context, 0);
	return expression_tree_walker(node, untrusted_walker, context);
}

/*
 * Could this check see the rows before its own? A volatile function could,
 * and so could one whose volatility is untrusted. SQL functions simple enough
 * to be inlined (auth.uid() and the like) are judged by their bodies, as the
 * planner inlines them (and refuses to when a body is more volatile than its
 * function says).
 */
static bool
check_may_see_rows(Node *expr)
{
	if (contain_volatile_functions(expr))
		return true;
	return untrusted_walker(eval_const_expressions(NULL, copyObject(expr)), NULL);
}

/* Any CHECK constraint that could see the rows before its own? */
static bool
volatile_checks(Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;

	if (constr == NULL)
		return false;
	for (int i = 0; i < constr->num_check; i++)
		if (check_may_see_rows(stringToNode(constr->check[i].ccbin)))
			return true;
	return false;
}

/*
 * Why the plan of this batch INSERT must run row by row, or NULL when it can
 * be batched. query is the rewritten statement, stmt its plan.
 */
static const char *
multiinsert_unbatchable(CachedPlanSource *src, CachedPlan *cplan, Oid *relid)
{
	Query	   *query;
	PlannedStmt *stmt;
	ModifyTable *mt;
	Plan	   *sub;
	Relation	rel;
	TriggerDesc *trig;
	const char *why = NULL;
	ListCell   *lc;

	if (list_length(src->query_list) != 1 || list_length(cplan->stmt_list) != 1)
		return "rules rewrote the INSERT";
	query = linitial_node(Query, src->query_list);
	stmt = linitial_node(PlannedStmt, cplan->stmt_list);
	if (query->commandType != CMD_INSERT || stmt->commandType != CMD_INSERT ||
		query->querySource != QSRC_ORIGINAL || !query->canSetTag ||
		query->hasModifyingCTE || stmt->hasModifyingCTE || !IsA(stmt->planTree, ModifyTable))
		return "rules rewrote the INSERT";
	mt = (ModifyTable *) stmt->planTree;
	if (list_length(mt->resultRelations) != 1 || mt->returningLists != NIL)
		return "rules rewrote the INSERT";
	if (mt->onConflictAction != ONCONFLICT_NONE)
		return "on_conflict";
	sub = outerPlan(mt);
	if (sub == NULL || !batchscan_is_own_plan(sub))
		return "the plan is not the batch scan's INSERT";
	foreach(lc, sub->targetlist)
		if (((TargetEntry *) lfirst(lc))->resjunk)
			return "the plan is not the batch scan's INSERT";

	/* volatile defaults could see the rows before them (nextval is fine) */
	if (contain_volatile_functions_not_nextval((Node *) query->targetList))
		return "a volatile default";
	/* the policies' own quals, subqueries included (the planned ones hide them) */
	if (check_may_see_rows((Node *) query->withCheckOptions))
		return "a volatile WITH CHECK expression";

	*relid = rt_fetch(linitial_int(mt->resultRelations), stmt->rtable)->relid;
	/* locked by GetCachedPlan */
	rel = RelationIdGetRelation(*relid);
	if (!RelationIsValid(rel))
		return "the target is gone";
	trig = rel->trigdesc;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		why = "a partitioned target";
	else if (rel->rd_rel->relkind != RELKIND_RELATION)
		why = "the target is not a table";
	else if (rel->rd_rel->relhasrules)
		why = "rules on the target";
	else if (trig && (trig->trig_insert_before_row || trig->trig_insert_instead_row))
		why = "BEFORE or INSTEAD OF row triggers";
	else if (volatile_checks(rel))
		why = "a volatile CHECK constraint";
	RelationClose(rel);
	return why;
}

/* Write the buffered rows, then index each and queue its AFTER ROW triggers, in order. */
static void
flush(MultiInsert *mi)
{
	EState	   *estate = mi->estate;
	ResultRelInfo *rri = mi->rri;
	IngestBatch *b = mi->b;

	if (mi->n == 0)
		return;
	/* an error writing them is no one row's */
	b->mark_row = -1;
	table_multi_insert(mi->rel, mi->slots, mi->n, mi->cid, 0, mi->bistate);

	for (int i = 0; i < mi->n; i++)
	{
		TupleTableSlot *slot = mi->slots[i];
		List	   *recheck = NIL;

		CHECK_FOR_INTERRUPTS();
		b->mark_row = mi->rows[i];
		if (rri->ri_NumIndices > 0)
			recheck = compat_insert_index_tuples(rri, slot, estate);
		ExecARInsertTriggers(estate, rri, slot, recheck, mi->tcs);
		list_free(recheck);
		mi->processed++;
		ResetPerTupleExprContext(estate);
	}
	for (int i = 0; i < mi->n; i++)
		ExecClearTuple(mi->slots[i]);
	mi->n = 0;
	mi->bytes = 0;
}

/* The rows of the executor's ModifyTable, through the buffer. */
static void
run_loop(MultiInsert *mi, QueryDesc *qd)
{
	ModifyTableState *mts = (ModifyTableState *) qd->planstate;
	PlanState  *sub = outerPlanState(mts);
	EState	   *estate = qd->estate;
	bool		generated;

	mi->estate = estate;
	mi->rri = mts->resultRelInfo;
	mi->rel = mi->rri->ri_RelationDesc;
	mi->tcs = mts->mt_transition_capture;
	mi->cid = estate->es_output_cid;
	/* a partition loaded directly has its constraint checked, as ExecInsert does */
	mi->partition_check = mi->rel->rd_rel->relispartition;
	generated = mi->rel->rd_att->constr && mi->rel->rd_att->constr->has_generated_stored;
	if (mi->rel->rd_rel->relhasindex && mi->rri->ri_IndexRelationDescs == NULL)
		ExecOpenIndices(mi->rri, false);
	mi->bistate = GetBulkInsertState();

	ExecBSInsertTriggers(estate, mts->rootResultRelInfo);
	for (;;)
	{
		TupleTableSlot *planslot;
		TupleTableSlot *slot;

		ResetPerTupleExprContext(estate);
		planslot = ExecProcNode(sub);
		if (TupIsNull(planslot))
			break;
		/*
		 * ExecInsert's checks, in its order, on the scan's virtual slot,
		 * whose values need no deforming (as COPY checks its slot before the
		 * heap tuple is formed)
		 */
		planslot->tts_tableOid = RelationGetRelid(mi->rel);
		if (generated)
			ExecComputeStoredGenerated(mi->rri, estate, planslot, CMD_INSERT);
		if (mi->rri->ri_WithCheckOptions != NIL)
			ExecWithCheckOptions(WCO_RLS_INSERT_CHECK, mi->rri, planslot, estate);
		if (mi->rel->rd_att->constr)
			ExecConstraints(mi->rri, planslot, estate);
		if (mi->partition_check)
			ExecPartitionCheck(mi->rri, planslot, estate, true);

		if (mi->n == mi->nslots_made)
			mi->slots[mi->nslots_made++] = table_slot_create(mi->rel, &estate->es_tupleTable);
		slot = mi->slots[mi->n];
		ExecCopySlot(slot, planslot);
		slot->tts_tableOid = RelationGetRelid(mi->rel);
		mi->rows[mi->n] = mi->b->mark_row;
		mi->bytes += ExecFetchSlotHeapTuple(slot, true, NULL)->t_len;
		mi->n++;
		if (mi->n == MULTI_MAX_ROWS || mi->bytes >= MULTI_MAX_BYTES)
			flush(mi);
	}
	flush(mi);
	ExecASInsertTriggers(estate, mts->rootResultRelInfo, mi->tcs);
	FreeBulkInsertState(mi->bistate);
	estate->es_processed = mi->processed;
}

/*
 * Run the prepared batch INSERT with buffered inserts, if its plan allows:
 * returns false, having done nothing, when it must run row by row. The
 * batch is open for reading (insert_run) and the planner expects our
 * INSERT, should the cached plan need planning again.
 */
bool
multiinsert_run(SPIPlanPtr plan, IngestBatch *b, uint64 *processed)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *src;
	CachedPlan *cplan;
	PlannedStmt *stmt;
	QueryDesc  *qd;
	const char *why;
	Oid			relid = InvalidOid;
	MultiInsert *mi;

	if (list_length(sources) != 1)
		return false;
	src = linitial(sources);
	cplan = GetCachedPlan(src, NULL, CurrentResourceOwner, NULL);
	why = multiinsert_unbatchable(src, cplan, &relid);
	if (why != NULL)
	{
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
		elog(DEBUG1, "ingest: rows inserted one at a time: %s", why);
		return false;
	}
	elog(DEBUG1, "ingest: rows inserted in buffered batches into relation %u", relid);
	stmt = linitial_node(PlannedStmt, cplan->stmt_list);

	/* as SPI runs a statement that writes: a fresh snapshot, a new command */
	PushActiveSnapshot(GetTransactionSnapshot());
	CommandCounterIncrement();
	UpdateActiveSnapshotCommandId();

	mi = palloc0(sizeof(MultiInsert));
	mi->b = b;
	qd = CreateQueryDesc(stmt, src->query_string, GetActiveSnapshot(), InvalidSnapshot,
						 None_Receiver, NULL, NULL, 0);
	ExecutorStart(qd, 0);
	run_loop(mi, qd);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	PopActiveSnapshot();
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
	*processed = mi->processed;
	pfree(mi);
	return true;
}
