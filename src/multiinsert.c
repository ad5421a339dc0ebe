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
 * A partitioned target is loaded as COPY loads one: each row is routed
 * (ExecFindPartition, which sets up each partition's ResultRelInfo as the
 * executor's own INSERT does: the parent's RLS WITH CHECK expressions in the
 * partition's columns, its indexes, its conversion map), converted to the
 * partition's columns when they differ, checked in ExecInsert's order with
 * the partition's ResultRelInfo (no partition constraint: routing chose
 * it), and buffered with that partition's rows; one BulkInsertState per
 * partition, as a buffer page is one relation's. A flush writes each
 * partition's rows with table_multi_insert, then indexes the rows and queues
 * their AFTER ROW triggers in file order across partitions, as the per-row
 * INSERT would. The executor lives for one batch only, so unlike COPY no
 * partition's buffer is ever dropped early: their slots are bounded by the
 * batch's rows.
 *
 * Not every INSERT can take this path; multiinsert_unbatchable says when the
 * per-row path is kept, for the whole batch: where COPY too inserts row by
 * row (BEFORE or INSTEAD OF row triggers, foreign tables, volatile
 * defaults), and for a partitioned target when any of its partitions has
 * such triggers or is foreign, or the target has transition tables (COPY
 * keeps these per partition or row by row; here it is all or nothing, so a
 * batch's rows are never inserted by two paths); where the result could
 * differ from the per-row INSERT's (volatile WITH CHECK or CHECK
 * expressions, the target's or any partition's, or ones calling a function
 * that is neither built in nor immutable, could see the rows before them in
 * the heap), ON CONFLICT, and any plan the rules rewrote. To judge its
 * partitions the check locks them all (RowExclusiveLock, as the INSERT
 * would lock each partition it routes a row to), so no trigger can be added
 * to them until the load's transaction ends; a partition attached since is
 * judged when a row is first routed to it (as is every partition), and one
 * that would need the per-row path fails the batch with a serialization
 * failure, which the job retries (it then takes the per-row path).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/execPartition.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
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

/* The buffered rows of one relation: the target, or one of its partitions */
typedef struct RelBuffer
{
	ResultRelInfo *rri;			/* hash key (partitions) */
	Relation	rel;
	Oid			relid;
	TupleConversionMap *map;	/* a routed row to this partition's columns */
	TupleTableSlot *convslot;	/* virtual, the row in this partition's form */
	BulkInsertState bistate;
	bool		generated;
	bool		partition_check;
	TupleTableSlot **slots;		/* MULTI_MAX_ROWS, made as needed */
	int			nslots_made;
	int			n;
} RelBuffer;

typedef struct MultiInsert
{
	EState	   *estate;
	ModifyTableState *mts;
	PartitionTupleRouting *proute;	/* a partitioned target's */
	TransitionCaptureState *tcs;
	CommandId	cid;
	IngestBatch *b;
	RelBuffer  *target;			/* a table's own buffer */
	HTAB	   *parts;			/* a partitioned target's: by ResultRelInfo */
	RelBuffer  *last;			/* the partition the last row went to */
	List	   *all;			/* every RelBuffer */
	RelBuffer  *used[MULTI_MAX_ROWS];	/* those holding rows, in order of use */
	int			nused;
	/* the buffered rows in file order: buffer, slot, row of the batch */
	RelBuffer  *row_buf[MULTI_MAX_ROWS];
	int			row_slot[MULTI_MAX_ROWS];
	int			rows[MULTI_MAX_ROWS];
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
 * Why rows routed to this partition would need the per-row path, or NULL.
 * It is locked.
 */
static const char *
partition_unbatchable(Relation part)
{
	TriggerDesc *trig = part->trigdesc;

	if (part->rd_rel->relkind == RELKIND_FOREIGN_TABLE)
		return "a foreign partition";
	/* a partitioned partition's rows are its leaves', each judged */
	if (part->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		return NULL;
	if (trig && (trig->trig_insert_before_row || trig->trig_insert_instead_row))
		return "a partition with BEFORE or INSTEAD OF row triggers";
	if (volatile_checks(part))
		return "a volatile CHECK constraint on a partition";
	return NULL;
}

/*
 * Why a partitioned target's rows must go row by row, or NULL. Every
 * partition is locked as the INSERT locks those it routes rows to, so none
 * changes while the batch runs.
 */
static const char *
partitioned_unbatchable(Relation rel)
{
	TriggerDesc *trig = rel->trigdesc;
	Oid			relid = RelationGetRelid(rel);
	List	   *children;
	const char *why = NULL;
	ListCell   *lc;

	/* as COPY: transition tables are filled through the parent, row by row */
	if (trig && trig->trig_insert_new_table)
		return "transition tables on a partitioned target";
	if (volatile_checks(rel))
		return "a volatile CHECK constraint";
	children = find_all_inheritors(relid, RowExclusiveLock, NULL);
	foreach(lc, children)
	{
		Relation	part;

		if (lfirst_oid(lc) == relid)
			continue;
		part = relation_open(lfirst_oid(lc), NoLock);
		why = partition_unbatchable(part);
		relation_close(part, NoLock);
		if (why != NULL)
			break;
	}
	list_free(children);
	return why;
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
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		why = "the target is not a table";
	else if (rel->rd_rel->relhasrules)
		why = "rules on the target";
	else if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		why = partitioned_unbatchable(rel);
	else if (trig && (trig->trig_insert_before_row || trig->trig_insert_instead_row))
		why = "BEFORE or INSTEAD OF row triggers";
	else if (volatile_checks(rel))
		why = "a volatile CHECK constraint";
	RelationClose(rel);
	return why;
}

/*
 * A buffer for the rows of rri's relation (ExecInitPartitionInfo has set rri
 * up if it is a partition), in the executor's memory, gone with it.
 */
static RelBuffer *
relbuffer_make(MultiInsert *mi, RelBuffer *rb, ResultRelInfo *rri)
{
	Relation	rel = rri->ri_RelationDesc;
	MemoryContext old = MemoryContextSwitchTo(mi->estate->es_query_cxt);

	rb->rri = rri;
	rb->rel = rel;
	rb->relid = RelationGetRelid(rel);
	rb->generated = rel->rd_att->constr && rel->rd_att->constr->has_generated_stored;
	rb->bistate = GetBulkInsertState();
	rb->slots = palloc0(sizeof(TupleTableSlot *) * MULTI_MAX_ROWS);
	rb->nslots_made = 0;
	rb->n = 0;
	if (rri->ri_RootResultRelInfo != NULL)
	{
		/* routed here: no partition check (routing chose it), as in ExecInsert */
		rb->partition_check = false;
		rb->map = compat_root_to_child_map(rri, mi->estate);
		if (rb->map != NULL)
			rb->convslot = ExecInitExtraTupleSlot(mi->estate, RelationGetDescr(rel),
												  &TTSOpsVirtual);
	}
	else
	{
		/* a partition loaded directly has its constraint checked, as ExecInsert does */
		rb->partition_check = rel->rd_rel->relispartition;
		rb->map = NULL;
		rb->convslot = NULL;
	}
	mi->all = lappend(mi->all, rb);
	MemoryContextSwitchTo(old);
	return rb;
}

/* The buffer of the partition ExecFindPartition chose for a row. */
static RelBuffer *
partition_buffer(MultiInsert *mi, ResultRelInfo *rri)
{
	RelBuffer  *rb;
	bool		found;
	const char *why;

	if (mi->last != NULL && mi->last->rri == rri)
		return mi->last;
	rb = hash_search(mi->parts, &rri, HASH_ENTER, &found);
	if (!found)
	{
		/*
		 * Every partition was judged, and locked, before the batch began; one
		 * attached since was not, nor one the batch's own statement triggers
		 * changed. The rows before it are in: the batch cannot go on row by
		 * row, so it fails, and the job's next attempt takes the per-row
		 * path.
		 */
		why = partition_unbatchable(rri->ri_RelationDesc);
		if (why != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("partition \"%s\" changed while rows were loaded into \"%s\" in batches",
							RelationGetRelationName(rri->ri_RelationDesc),
							RelationGetRelationName(mi->mts->resultRelInfo->ri_RelationDesc)),
					 errdetail("Its rows must be inserted one at a time: %s.", why),
					 errhint("The job is tried again.")));
		relbuffer_make(mi, rb, rri);
	}
	mi->last = rb;
	return rb;
}

/*
 * Write the buffered rows, each relation's together, then index each row and
 * queue its AFTER ROW triggers in file order.
 */
static void
flush(MultiInsert *mi)
{
	EState	   *estate = mi->estate;
	IngestBatch *b = mi->b;

	if (mi->n == 0)
		return;
	/* an error writing them is no one row's */
	b->mark_row = -1;
	for (int i = 0; i < mi->nused; i++)
	{
		RelBuffer  *rb = mi->used[i];

		table_multi_insert(rb->rel, rb->slots, rb->n, mi->cid, 0, rb->bistate);
	}

	for (int i = 0; i < mi->n; i++)
	{
		RelBuffer  *rb = mi->row_buf[i];
		TupleTableSlot *slot = rb->slots[mi->row_slot[i]];
		List	   *recheck = NIL;

		CHECK_FOR_INTERRUPTS();
		b->mark_row = mi->rows[i];
		if (rb->rri->ri_NumIndices > 0)
			recheck = compat_insert_index_tuples(rb->rri, slot, estate);
		ExecARInsertTriggers(estate, rb->rri, slot, recheck, mi->tcs);
		list_free(recheck);
		mi->processed++;
		ResetPerTupleExprContext(estate);
	}
	for (int i = 0; i < mi->nused; i++)
	{
		RelBuffer  *rb = mi->used[i];

		for (int j = 0; j < rb->n; j++)
			ExecClearTuple(rb->slots[j]);
		rb->n = 0;
	}
	mi->nused = 0;
	mi->n = 0;
	mi->bytes = 0;
}

/* The rows of the executor's ModifyTable, through the buffers. */
static void
run_loop(MultiInsert *mi, QueryDesc *qd)
{
	ModifyTableState *mts = (ModifyTableState *) qd->planstate;
	PlanState  *sub = outerPlanState(mts);
	EState	   *estate = qd->estate;
	ResultRelInfo *rri = mts->resultRelInfo;
	ListCell   *lc;

	mi->estate = estate;
	mi->mts = mts;
	mi->tcs = mts->mt_transition_capture;
	mi->cid = estate->es_output_cid;
	mi->proute = mts->mt_partition_tuple_routing;
	if (mi->proute != NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(ResultRelInfo *);
		ctl.entrysize = sizeof(RelBuffer);
		ctl.hcxt = estate->es_query_cxt;
		mi->parts = hash_create("ingest partition buffers", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	else
	{
		if (rri->ri_RelationDesc->rd_rel->relhasindex && rri->ri_IndexRelationDescs == NULL)
			ExecOpenIndices(rri, false);
		mi->target = relbuffer_make(mi, MemoryContextAllocZero(estate->es_query_cxt,
															  sizeof(RelBuffer)), rri);
	}

	ExecBSInsertTriggers(estate, mts->rootResultRelInfo);
	for (;;)
	{
		TupleTableSlot *planslot;
		TupleTableSlot *slot;
		TupleTableSlot *bufslot;
		RelBuffer  *rb;

		ResetPerTupleExprContext(estate);
		planslot = ExecProcNode(sub);
		if (TupIsNull(planslot))
			break;

		/*
		 * ExecInsert's checks, in its order, on a virtual slot whose values
		 * need no deforming (as COPY checks its slot before the heap tuple is
		 * formed): the scan's, or for a partition whose columns differ, the
		 * row converted to them
		 */
		if (mi->proute != NULL)
			rb = partition_buffer(mi, ExecFindPartition(mts, rri, mi->proute, planslot, estate));
		else
			rb = mi->target;
		slot = planslot;
		if (rb->map != NULL)
			slot = execute_attr_map_slot(rb->map->attrMap, planslot, rb->convslot);
		slot->tts_tableOid = rb->relid;
		if (rb->generated)
			ExecComputeStoredGenerated(rb->rri, estate, slot, CMD_INSERT);
		if (rb->rri->ri_WithCheckOptions != NIL)
			ExecWithCheckOptions(WCO_RLS_INSERT_CHECK, rb->rri, slot, estate);
		if (rb->rel->rd_att->constr)
			ExecConstraints(rb->rri, slot, estate);
		if (rb->partition_check)
			ExecPartitionCheck(rb->rri, slot, estate, true);

		if (rb->n == rb->nslots_made)
			rb->slots[rb->nslots_made++] = table_slot_create(rb->rel, &estate->es_tupleTable);
		if (rb->n == 0)
			mi->used[mi->nused++] = rb;
		bufslot = rb->slots[rb->n];
		ExecCopySlot(bufslot, slot);
		bufslot->tts_tableOid = rb->relid;
		mi->row_buf[mi->n] = rb;
		mi->row_slot[mi->n] = rb->n;
		mi->rows[mi->n] = mi->b->mark_row;
		mi->bytes += ExecFetchSlotHeapTuple(bufslot, true, NULL)->t_len;
		rb->n++;
		mi->n++;
		if (mi->n == MULTI_MAX_ROWS || mi->bytes >= MULTI_MAX_BYTES)
			flush(mi);
	}
	flush(mi);
	ExecASInsertTriggers(estate, mts->rootResultRelInfo, mi->tcs);
	foreach(lc, mi->all)
		FreeBulkInsertState(((RelBuffer *) lfirst(lc))->bistate);
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
