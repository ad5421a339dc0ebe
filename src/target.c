/*
 * target.c
 *		A load's target table, checked the same way at enqueue and in the worker.
 *
 * The enqueue checks what it can before a job exists (the table, the listed
 * columns, the submitter's privileges); the worker checks again when the job
 * starts, since grants, columns and partitions may have changed while it was
 * queued, and resolves the header's names, which only it reads. One resolver
 * serves both, so a name that loads in one place loads in the other and a
 * refusal reads the same wherever it comes from.
 *
 * Foreign partitions: PostgreSQL applies no row-level security WITH CHECK to
 * rows routed to a foreign partition (a postgres_fdw shard), so through a
 * partitioned table with RLS a tenant's INSERT can put rows onto a shard
 * that its policies would refuse. ingest must not be the way such rows get
 * in: a target whose rows could reach a foreign partition is refused while
 * RLS applies to the job's owner. Without RLS (or for a role RLS does not
 * apply to) such a target loads; errors then may arrive for a whole batch of
 * rows sent to the remote server at once, so the loader cannot trust the
 * executor's current row to be the bad one.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "compat.h"
#include "identity.h"
#include "target.h"

/* Open the target of a load; only tables (plain or partitioned) are loaded. */
Relation
target_open(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = relation_open(relid, lockmode);

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot load into \"%s\": ingest loads only tables",
						RelationGetRelationName(rel))));
	return rel;
}

/* The table's name as messages and the worker's INSERT write it: schema-qualified, quoted. */
char *
target_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

/*
 * The column called name, or -1. A header written by hand often differs from
 * the table only in case, so for a header a unique match ignoring case will
 * do; the columns option is taken as written, as SQL takes quoted names.
 */
static int
find_column(TupleDesc desc, const char *name, bool any_case)
{
	int			found = -1;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	if (!any_case)
		return -1;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && pg_strcasecmp(NameStr(att->attname), name) == 0)
		{
			if (found >= 0)
				return -1;
			found = i;
		}
	}
	return found;
}

static const char *
names_source(TargetNames from)
{
	return from == TARGET_NAMES_OPTION ? "the columns option" : "the header";
}

/* Check that role may load att, and that att can be loaded at all. */
static void
check_column(Relation rel, Form_pg_attribute att, Oid role)
{
	if (att->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("column \"%s\" is a generated column", NameStr(att->attname)),
				 errdetail("Generated columns cannot be loaded.")));
	if (!identity_can_insert(RelationGetRelid(rel), att->attnum, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for column \"%s\" of table %s",
						NameStr(att->attname), target_name(rel)),
				 errdetail("Role \"%s\" loads the file and has no INSERT privilege on the column.",
						   GetUserNameFromId(role, false)),
				 errhint("List the columns the role may insert with \"columns\", or grant it INSERT on them.")));
}

/*
 * Resolve the columns to load, named by names (from the columns option or
 * the header) or, with TARGET_NAMES_TABLE, every column that can be loaded;
 * check each (it exists, once, is not generated, role may insert into it).
 * Fills cols' names, attnums, types and typmods, allocated in cxt.
 */
void
target_resolve(Relation rel, List *names, TargetNames from, Oid role,
			   IngestColumns *cols, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *atts = NIL;
	ListCell   *lc;
	int			n = 0;

	if (from == TARGET_NAMES_TABLE)
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && !att->attgenerated)
				atts = lappend(atts, att);
		}
	}
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		int			idx = find_column(desc, name, from == TARGET_NAMES_HEADER);
		Form_pg_attribute att;
		ListCell   *prev;

		if (idx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" %s does not exist in table %s",
							name,
							from == TARGET_NAMES_OPTION ? "listed in the columns option" : "named in the header",
							target_name(rel)),
					 from == TARGET_NAMES_HEADER ?
					 errhint("Rename the header or the column, or list the target columns with \"columns\" (the header is then skipped).") : 0));
		att = TupleDescAttr(desc, idx);
		foreach(prev, atts)
			if (((Form_pg_attribute) lfirst(prev))->attnum == att->attnum)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" appears more than once in %s",
								NameStr(att->attname), names_source(from))));
		atts = lappend(atts, att);
	}

	cols->ncols = list_length(atts);
	cols->attnums = MemoryContextAlloc(cxt, sizeof(AttrNumber) * Max(cols->ncols, 1));
	cols->names = MemoryContextAlloc(cxt, sizeof(char *) * Max(cols->ncols, 1));
	cols->typids = MemoryContextAlloc(cxt, sizeof(Oid) * Max(cols->ncols, 1));
	cols->typmods = MemoryContextAlloc(cxt, sizeof(int32) * Max(cols->ncols, 1));
	foreach(lc, atts)
	{
		Form_pg_attribute att = lfirst(lc);

		check_column(rel, att, role);
		cols->attnums[n] = att->attnum;
		cols->names[n] = MemoryContextStrdup(cxt, NameStr(att->attname));
		cols->typids[n] = att->atttypid;
		cols->typmods[n] = att->atttypmod;
		n++;
	}
	list_free(atts);
}

/*
 * At enqueue: role must be able to insert what the job will insert: the
 * listed columns, every column when the file has neither header nor column
 * list, or at least one column when the header decides (the worker resolves
 * the header's names once it has read them).
 */
void
target_check_enqueue(Oid relid, const IngestOptions *opts, Oid role)
{
	Relation	rel = target_open(relid, AccessShareLock);
	IngestColumns cols;

	target_check_foreign_rls(relid, role);

	/* the worker names the table, which needs USAGE on its schema */
	if (!compat_schema_usable(RelationGetNamespace(rel), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s",
						get_namespace_name(RelationGetNamespace(rel)))));

	if (opts->columns != NIL)
		target_resolve(rel, opts->columns, TARGET_NAMES_OPTION, role, &cols, CurrentMemoryContext);
	else if (!opts->header)
		target_resolve(rel, NIL, TARGET_NAMES_TABLE, role, &cols, CurrentMemoryContext);
	else if (!identity_can_insert(relid, 0, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", target_name(rel)),
				 errdetail("Role \"%s\" loads the file and has no INSERT privilege on the table or any of its columns.",
						   GetUserNameFromId(role, false))));
	relation_close(rel, AccessShareLock);
}

/* The first foreign table among the partitions of relid (at any depth), or InvalidOid. */
static Oid
first_foreign_partition(Oid relid)
{
	List	   *parts;
	ListCell   *lc;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return InvalidOid;
	parts = find_all_inheritors(relid, NoLock, NULL);
	foreach(lc, parts)
	{
		Oid			part = lfirst_oid(lc);

		if (get_rel_relkind(part) == RELKIND_FOREIGN_TABLE)
			return part;
	}
	return InvalidOid;
}

bool
target_has_foreign_partitions(Oid relid)
{
	return OidIsValid(first_foreign_partition(relid));
}

void
target_check_foreign_rls(Oid relid, Oid owner)
{
	Oid			part = first_foreign_partition(relid);

	if (OidIsValid(part) && check_enable_rls(relid, owner, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot load into \"%s\": its partition \"%s\" is a foreign table, and row-level security does not check rows routed to a foreign partition",
						get_rel_name(relid), get_rel_name(part)),
				 errhint("Load into the table's local partitions, or have a role that row-level security does not apply to load it.")));
}
