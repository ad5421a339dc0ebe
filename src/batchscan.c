/*
 * batchscan.c
 *		A custom scan that feeds the worker's converted batch to its INSERT.
 *
 * The batch INSERT (insert.c) reads its rows from ingest._batch_rows().
 * Planned as a plain function scan, every row would be copied into a
 * tuplestore and back out, and a per-row call of ingest._batch_mark would
 * tell the batch which row the executor is on. In workers (only there is this hook installed) the
 * function scan is replaced by this custom scan: it hands the executor each
 * row's Datums in a virtual slot, straight from the batch's arrays, and
 * records the row itself, so the mark qual is dropped. Rows reach the
 * executor with no copy; everything above the scan (RLS checks, triggers,
 * constraints, indexes) is the executor's own INSERT, untouched.
 *
 * Only ingest's own INSERT is planned with this scan; any other query naming
 * ingest._batch_rows() calls the function, which needs EXECUTE privilege
 * that only the extension's owner has. And the batch decides what may be
 * read (batch_scan_begin checks that this is the one scan of the batch being
 * inserted, with the batch's column types), so even a superuser's trigger
 * naming ingest._batch_rows() gets an error, not rows.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "optimizer/pathnode.h"
#include "optimizer/planner.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"

#include "batchscan.h"
#include "batch.h"

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;
static planner_hook_type prev_planner = NULL;

/*
 * The scan replaces ingest._batch_rows() in ingest's own INSERT only. Any
 * other query naming it (a trigger's, or one a function in the target's
 * defaults runs while the planner folds constants) is planned as a plain
 * function call, where EXECUTE privilege, which no role but the extension's
 * owner holds, is checked. insert.c says when the next top-level planning is
 * its INSERT's (batchscan_expect_own); the planner hook notes that query, and
 * planner calls nested in it are not it.
 */
static bool own_expected = false;
static Query *own_query = NULL;
static int	plan_depth = 0;

/* The functions' OIDs in this database, looked up again for each job. */
static Oid	batch_rows_oid = InvalidOid;
static Oid	batch_mark_oid = InvalidOid;

static Plan *plan_batch_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
							 List *tlist, List *clauses, List *custom_plans);
static Node *create_batch_state(CustomScan *cscan);
static void begin_batch_scan(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *exec_batch_scan(CustomScanState *node);
static void end_batch_scan(CustomScanState *node);
static void rescan_batch_scan(CustomScanState *node);

static const CustomPathMethods batch_path_methods = {
	.CustomName = "IngestBatch",
	.PlanCustomPath = plan_batch_path,
};

static const CustomScanMethods batch_scan_methods = {
	.CustomName = "IngestBatch",
	.CreateCustomScanState = create_batch_state,
};

static const CustomExecMethods batch_exec_methods = {
	.CustomName = "IngestBatch",
	.BeginCustomScan = begin_batch_scan,
	.ExecCustomScan = exec_batch_scan,
	.EndCustomScan = end_batch_scan,
	.ReScanCustomScan = rescan_batch_scan,
};

static Oid
lookup(const char *name, int nargs, Oid *argtypes)
{
	return LookupFuncName(list_make2(makeString("ingest"), makeString(pstrdup(name))),
						  nargs, argtypes, true);
}

/* Called in a transaction before the batch INSERT is prepared. */
void
batchscan_refresh(void)
{
	Oid			int4arg[1] = {INT4OID};

	batch_rows_oid = lookup("_batch_rows", 0, NULL);
	batch_mark_oid = lookup("_batch_mark", 1, int4arg);
}

static bool
is_call_of(Node *node, Oid funcid)
{
	return OidIsValid(funcid) && node != NULL && IsA(node, FuncExpr) &&
		((FuncExpr *) node)->funcid == funcid;
}

void
batchscan_expect_own(bool expected)
{
	own_expected = expected;
}

static PlannedStmt *
batch_planner(Query *parse, const char *query_string, int cursorOptions,
			  ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool		own = plan_depth == 0 && own_expected;

	if (own)
	{
		own_query = parse;
		own_expected = false;
	}
	plan_depth++;
	PG_TRY();
	{
		if (prev_planner)
			result = prev_planner(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		plan_depth--;
		if (own)
			own_query = NULL;
	}
	PG_END_TRY();
	return result;
}

/* Is root (a subquery's, perhaps) part of planning ingest's own INSERT? */
static bool
planning_own_insert(PlannerInfo *root)
{
	while (root->parent_root)
		root = root->parent_root;
	return own_query != NULL && root->parse == own_query;
}

static void
set_batch_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	CustomPath *cpath;

	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);

	if (!planning_own_insert(root))
		return;
	if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1 ||
		rte->funcordinality || rel->reloptkind != RELOPT_BASEREL ||
		!is_call_of(((RangeTblFunction *) linitial(rte->functions))->funcexpr, batch_rows_oid))
		return;

	cpath = makeNode(CustomPath);
	cpath->path.pathtype = T_CustomScan;
	cpath->path.parent = rel;
	cpath->path.pathtarget = rel->reltarget;
	cpath->path.rows = rel->rows;
	cpath->path.startup_cost = 0;
	cpath->path.total_cost = rel->rows * cpu_tuple_cost;
	cpath->methods = &batch_path_methods;
	/* ExecScan projects: the INSERT's defaults need no Result node above */
	cpath->flags = CUSTOMPATH_SUPPORT_PROJECTION;

	/* the only way to read the batch */
	rel->pathlist = NIL;
	rel->partial_pathlist = NIL;
	add_path(rel, &cpath->path);
}

static Plan *
plan_batch_path(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
				List *tlist, List *clauses, List *custom_plans)
{
	CustomScan *cscan = makeNode(CustomScan);
	RangeTblEntry *rte = planner_rt_fetch(rel->relid, root);
	RangeTblFunction *rtfunc = linitial(rte->functions);
	List	   *scan_tlist = NIL;
	List	   *quals = NIL;
	ListCell   *lc;

	/* the scan tuple: the function's columns, as the column definition list gives them */
	for (int k = 0; k < rtfunc->funccolcount; k++)
	{
		Var		   *var = makeVar(rel->relid, k + 1,
								  list_nth_oid(rtfunc->funccoltypes, k),
								  list_nth_int(rtfunc->funccoltypmods, k),
								  list_nth_oid(rtfunc->funccolcollations, k), 0);

		scan_tlist = lappend(scan_tlist, makeTargetEntry((Expr *) var, k + 1, NULL, false));
	}

	/* the scan marks each row itself: the mark qual has nothing left to do */
	foreach(lc, extract_actual_clauses(clauses, false))
		if (!is_call_of(lfirst(lc), batch_mark_oid))
			quals = lappend(quals, lfirst(lc));

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = quals;
	cscan->scan.scanrelid = 0;
	cscan->custom_scan_tlist = scan_tlist;
	cscan->custom_relids = bms_copy(rel->relids);
	cscan->methods = &batch_scan_methods;
	return &cscan->scan.plan;
}

static Node *
create_batch_state(CustomScan *cscan)
{
	CustomScanState *css = palloc0(sizeof(CustomScanState));

	NodeSetTag(css, T_CustomScanState);
	css->methods = &batch_exec_methods;
	return (Node *) css;
}

static void
begin_batch_scan(CustomScanState *node, EState *estate, int eflags)
{
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		batch_scan_begin(node->ss.ss_ScanTupleSlot->tts_tupleDescriptor);
}

static TupleTableSlot *
next_row(ScanState *ss)
{
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	ExecClearTuple(slot);
	if (batch_scan_next(slot->tts_values, slot->tts_isnull))
		ExecStoreVirtualTuple(slot);
	return slot;
}

static bool
recheck_row(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
exec_batch_scan(CustomScanState *node)
{
	return ExecScan(&node->ss, next_row, recheck_row);
}

static void
end_batch_scan(CustomScanState *node)
{
}

static void
rescan_batch_scan(CustomScanState *node)
{
	batch_scan_rewind();
}

/* Is plan the batch scan of ingest's own INSERT? */
bool
batchscan_is_own_plan(Plan *plan)
{
	return IsA(plan, CustomScan) && ((CustomScan *) plan)->methods == &batch_scan_methods;
}

void
batchscan_install(void)
{
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = set_batch_pathlist;
	prev_planner = planner_hook;
	planner_hook = batch_planner;
}
