/*
 * conflict.c
 *		The on_conflict option: which unique index or constraint decides that
 *		a record is already in the table (the arbiter), whether the job's
 *		owner may read and update what the INSERT's ON CONFLICT clause reads
 *		and updates, and that clause.
 *
 * The enqueue resolves the arbiter and checks the privileges it can (the
 * loaded columns may wait for the header); the worker does both again when
 * the job starts, since indexes and grants may have changed while it was
 * queued. Only arbiters PostgreSQL accepts are resolved: a unique index or
 * constraint that is immediate (not deferrable), valid, on plain columns and
 * without a predicate, so that a wrong conflict_target is an error at
 * enqueue, not a job whose every record fails.
 *
 * The clause runs in the owner's INSERT (insert.c), so UPDATE privileges,
 * RLS UPDATE policies and UPDATE triggers apply as to the owner's own
 * INSERT ... ON CONFLICT.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "conflict.h"

static const char *
action_name(IngestOnConflict action)
{
	return action == INGEST_CONFLICT_UPDATE ? "update" : "nothing";
}

/*
 * The index's key columns into c, if PostgreSQL takes it as an arbiter;
 * false (and *why) if not.
 */
static bool
index_keys(Oid indexoid, IngestConflict *c, const char **why, MemoryContext cxt)
{
	HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	Form_pg_index idx;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "ingest: cache lookup failed for index %u", indexoid);
	idx = (Form_pg_index) GETSTRUCT(tup);
	*why = NULL;
	if (!idx->indisunique)
		*why = "it is not unique";
	else if (!idx->indimmediate)
		*why = "it is deferrable";
	else if (!idx->indisvalid)
		*why = "it is not valid";
	else if (!heap_attisnull(tup, Anum_pg_index_indexprs, NULL))
		*why = "it indexes expressions";
	else if (!heap_attisnull(tup, Anum_pg_index_indpred, NULL))
		*why = "it is partial";
	if (*why == NULL)
	{
		c->nkeys = idx->indnkeyatts;
		c->keys = MemoryContextAlloc(cxt, sizeof(AttrNumber) * Max(c->nkeys, 1));
		for (int i = 0; i < c->nkeys; i++)
			c->keys[i] = idx->indkey.values[i];
	}
	ReleaseSysCache(tup);
	return *why == NULL;
}

/* The arbiter named as a constraint. */
static void
resolve_constraint(Relation rel, const char *name, IngestConflict *c, MemoryContext cxt)
{
	Oid			conoid = get_relation_constraint_oid(RelationGetRelid(rel), name, true);
	HeapTuple	tup;
	char		contype;
	const char *why;

	if (!OidIsValid(conoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("ingest option \"conflict_target\": table %s has no constraint \"%s\"",
						target_name(rel), name),
				 errhint("Name a primary key or unique constraint of the table, or list the columns of a unique index: \"conflict_target\": [\"a\", \"b\"].")));
	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "ingest: cache lookup failed for constraint %u", conoid);
	contype = ((Form_pg_constraint) GETSTRUCT(tup))->contype;
	ReleaseSysCache(tup);
	if (contype != CONSTRAINT_PRIMARY && contype != CONSTRAINT_UNIQUE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("ingest option \"conflict_target\": constraint \"%s\" of table %s is not a primary key or unique constraint",
						name, target_name(rel))));
	if (!index_keys(get_constraint_index(conoid), c, &why, cxt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest option \"conflict_target\": constraint \"%s\" of table %s cannot decide conflicts: %s",
						name, target_name(rel), why)));
	c->constraint = MemoryContextStrdup(cxt, name);
}

/* The arbiter named by its columns: a unique index on exactly those, in any order. */
static void
resolve_columns(Relation rel, List *names, IngestConflict *c, MemoryContext cxt)
{
	int			n = list_length(names);
	AttrNumber *want = palloc(sizeof(AttrNumber) * n);
	List	   *indexes;
	ListCell   *lc;
	StringInfoData listed;
	const char *last_why = NULL;

	initStringInfo(&listed);
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		AttrNumber	att = get_attnum(RelationGetRelid(rel), name);
		int			i = foreach_current_index(lc);

		if (att == InvalidAttrNumber || att < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("ingest option \"conflict_target\": column \"%s\" does not exist in table %s",
							name, target_name(rel))));
		for (int j = 0; j < i; j++)
			if (want[j] == att)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("ingest option \"conflict_target\": column \"%s\" is listed more than once",
								name)));
		want[i] = att;
		appendStringInfo(&listed, "%s%s", i ? ", " : "", quote_identifier(name));
	}

	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		IngestConflict found = {0};
		const char *why;
		bool		same;

		if (!index_keys(lfirst_oid(lc), &found, &why, cxt))
		{
			last_why = why;
			continue;
		}
		same = (found.nkeys == n);
		for (int i = 0; i < n && same; i++)
		{
			bool		in = false;

			for (int j = 0; j < found.nkeys; j++)
				in |= (found.keys[j] == want[i]);
			same = in;
		}
		if (same)
		{
			c->nkeys = n;
			c->keys = found.keys;
			list_free(indexes);
			return;
		}
	}
	list_free(indexes);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
			 errmsg("ingest option \"conflict_target\": no unique index or constraint of table %s is on exactly (%s)",
					target_name(rel), listed.data),
			 last_why ? errdetail("A unique index of the table was passed over: %s.", last_why) : 0,
			 errhint("List the columns of a primary key or of a unique index that is not partial, deferrable or on expressions, or name a constraint.")));
}

/*
 * The job's arbiter (nothing to resolve with "on_conflict": "error"):
 * conflict_target's constraint or columns, else the primary key. Call with
 * rel open; c's names live in cxt.
 */
void
conflict_resolve(Relation rel, const IngestOptions *opts, IngestConflict *c, MemoryContext cxt)
{
	memset(c, 0, sizeof(*c));
	c->action = opts->on_conflict;
	if (c->action == INGEST_CONFLICT_ERROR)
		return;

	/*
	 * postgres_fdw takes no ON CONFLICT with a conflict target, nor DO
	 * UPDATE: every batch routed to a foreign partition would fail.
	 */
	if (target_has_foreign_partitions(RelationGetRelid(rel)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ingest option \"on_conflict\": \"%s\" cannot load into %s: it has foreign partitions",
						action_name(c->action), target_name(rel)),
				 errhint("Foreign tables (postgres_fdw) take no ON CONFLICT with a conflict target. Load into the local partitions, or use \"on_conflict\": \"error\".")));
	if (opts->conflict_constraint != NULL)
		resolve_constraint(rel, opts->conflict_constraint, c, cxt);
	else if (opts->conflict_columns != NIL)
		resolve_columns(rel, opts->conflict_columns, c, cxt);
	else
	{
		const char *why;
		Oid			pk;

		list_free(RelationGetIndexList(rel));	/* sets rd_pkindex */
		pk = rel->rd_pkindex;
		if (!OidIsValid(pk))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ingest option \"on_conflict\": \"%s\" needs a conflict target, and table %s has no primary key",
							action_name(c->action), target_name(rel)),
					 errhint("Name the unique index's columns or the unique constraint with \"conflict_target\".")));
		if (!index_keys(pk, c, &why, cxt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ingest option \"on_conflict\": the primary key of table %s cannot decide conflicts: %s",
							target_name(rel), why)));
	}
	c->key_names = MemoryContextAlloc(cxt, sizeof(char *) * Max(c->nkeys, 1));
	for (int i = 0; i < c->nkeys; i++)
		c->key_names[i] = MemoryContextStrdup(cxt, get_attname(RelationGetRelid(rel), c->keys[i], false));
}

static bool
is_key(const IngestConflict *c, AttrNumber att)
{
	for (int i = 0; i < c->nkeys; i++)
		if (c->keys[i] == att)
			return true;
	return false;
}

/* role may do privilege (ACL_SELECT, ACL_UPDATE) on the column, or on the whole table */
static bool
may(Oid relid, AttrNumber att, Oid role, AclMode privilege)
{
	return pg_class_aclcheck(relid, role, privilege) == ACLCHECK_OK ||
		pg_attribute_aclcheck(relid, att, role, privilege) == ACLCHECK_OK;
}

static void
denied(Relation rel, const char *column, Oid role, IngestOnConflict action, const char *privilege)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 column ? errmsg("permission denied for column \"%s\" of table %s", column, target_name(rel))
			 : errmsg("permission denied for table %s", target_name(rel)),
			 errdetail("Role \"%s\" loads the file with \"on_conflict\": \"%s\" and has no %s privilege on %s.",
					   GetUserNameFromId(role, false), action_name(action), privilege,
					   column ? "the column" : "the table or any of its columns"),
			 errhint("INSERT ... ON CONFLICT reads the conflict target's columns (SELECT); \"update\" also reads and updates the columns the file loads but those (SELECT, UPDATE).")));
}

/*
 * What INSERT ... ON CONFLICT needs of role beyond INSERT: SELECT on the
 * arbiter's columns and, with "update", SELECT and UPDATE on every loaded
 * column that is not one of them (cols NULL: the header decides which, so
 * UPDATE on at least one column). The executor checks too, but per
 * statement, where every record of the job would be rejected for it.
 */
void
conflict_check_privileges(Relation rel, const IngestConflict *c, const IngestColumns *cols, Oid role)
{
	Oid			relid = RelationGetRelid(rel);

	if (c->action == INGEST_CONFLICT_ERROR)
		return;
	for (int i = 0; i < c->nkeys; i++)
		if (!may(relid, c->keys[i], role, ACL_SELECT))
			denied(rel, c->key_names[i], role, c->action, "SELECT");
	if (c->action != INGEST_CONFLICT_UPDATE)
		return;
	if (cols == NULL)
	{
		if (pg_class_aclcheck(relid, role, ACL_UPDATE) != ACLCHECK_OK &&
			pg_attribute_aclcheck_all(relid, role, ACL_UPDATE, ACLMASK_ANY) != ACLCHECK_OK)
			denied(rel, NULL, role, c->action, "UPDATE");
		return;
	}
	for (int i = 0; i < cols->ncols; i++)
	{
		if (is_key(c, cols->attnums[i]))
			continue;
		if (!may(relid, cols->attnums[i], role, ACL_UPDATE))
			denied(rel, cols->names[i], role, c->action, "UPDATE");
		if (!may(relid, cols->attnums[i], role, ACL_SELECT))
			denied(rel, cols->names[i], role, c->action, "SELECT");
	}
}

/*
 * The INSERT's ON CONFLICT clause ("" for "error"). "update" sets every
 * loaded column that is not a key to the record's value; when the file
 * loads only keys there is nothing to set, and a conflict does nothing.
 */
char *
conflict_clause(const IngestConflict *c, const IngestColumns *cols)
{
	StringInfoData sql;
	bool		any = false;

	if (c->action == INGEST_CONFLICT_ERROR)
		return "";
	initStringInfo(&sql);
	if (c->constraint)
		appendStringInfo(&sql, " ON CONFLICT ON CONSTRAINT %s", quote_identifier(c->constraint));
	else
	{
		appendStringInfoString(&sql, " ON CONFLICT (");
		for (int i = 0; i < c->nkeys; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(c->key_names[i]));
		appendStringInfoChar(&sql, ')');
	}
	if (c->action == INGEST_CONFLICT_UPDATE)
	{
		for (int i = 0; i < cols->ncols; i++)
		{
			const char *name;

			if (is_key(c, cols->attnums[i]))
				continue;
			name = quote_identifier(cols->names[i]);
			appendStringInfo(&sql, "%s%s = EXCLUDED.%s", any ? ", " : " DO UPDATE SET ", name, name);
			any = true;
		}
	}
	if (!any)
		appendStringInfoString(&sql, " DO NOTHING");
	return sql.data;
}
