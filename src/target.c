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
 * Does header field h name n? Exactly, or with "header_match": "insensitive"
 * ignoring case and the spaces around h (what a hand-written or exported
 * header often differs by).
 */
static bool
names_match(const char *h, const char *n, bool insensitive)
{
	size_t		len;

	if (!insensitive)
		return strcmp(h, n) == 0;
	while (*h == ' ' || *h == '\t')
		h++;
	len = strlen(h);
	while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
		len--;
	return strlen(n) == len && pg_strncasecmp(h, n, len) == 0;
}

/* The column called name: its index, -1 if none, -2 if more than one match. */
static int
find_column(TupleDesc desc, const char *name, bool insensitive)
{
	int			found = -1;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	if (!insensitive)
		return -1;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && names_match(name, NameStr(att->attname), true))
		{
			if (found >= 0)
				return -2;
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
 * The index in opts->map_from of the key header field h matches, or -1: the
 * key written exactly as h, else the one key h matches loosely; two keys it
 * matches loosely ("a" and "A") are an error, never a guess.
 */
static int
mapped_from(const IngestOptions *opts, const char *h)
{
	ListCell   *lc;
	int			found = -1;

	foreach(lc, opts->map_from)
		if (strcmp(h, lfirst(lc)) == 0)
			return foreach_current_index(lc);
	if (!opts->header_insensitive)
		return -1;
	foreach(lc, opts->map_from)
	{
		if (!names_match(h, lfirst(lc), true))
			continue;
		if (found >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_AMBIGUOUS_COLUMN),
					 errmsg("header field \"%s\" matches both \"%s\" and \"%s\" of the columns option",
							h, (char *) list_nth(opts->map_from, found), (char *) lfirst(lc)),
					 errhint("With \"header_match\": \"insensitive\" the keys of \"columns\" must differ by more than case and spaces.")));
		found = foreach_current_index(lc);
	}
	return found;
}

/*
 * The column header field h loads into: the one "columns" maps it to, else
 * the one it names; NULL for a field "extra_columns": "ignore" skips.
 */
static Form_pg_attribute
header_column(Relation rel, const char *h, const IngestOptions *opts)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			k = mapped_from(opts, h);
	int			idx;

	if (k >= 0)
	{
		const char *to = list_nth(opts->map_to, k);

		idx = find_column(desc, to, false);
		if (idx < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" listed in the columns option does not exist in table %s",
							to, target_name(rel)),
					 errdetail("The columns option maps header field \"%s\" to it.", h)));
		return TupleDescAttr(desc, idx);
	}
	idx = find_column(desc, h, opts->header_insensitive);
	if (idx == -2)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_COLUMN),
				 errmsg("column \"%s\" named in the header matches more than one column of table %s",
						h, target_name(rel)),
				 errhint("Map it with \"columns\": {\"%s\": \"column\"}.", h)));
	if (idx >= 0)
		return TupleDescAttr(desc, idx);
	if (opts->extra_ignore)
		return NULL;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" named in the header does not exist in table %s",
					h, target_name(rel)),
			 errhint("Rename the header or the column, map it with \"columns\": {\"%s\": \"column\"}, skip it with \"extra_columns\": \"ignore\"%s.",
					 h, opts->header_insensitive ? "" : ", or match case and spaces loosely with \"header_match\": \"insensitive\"")));
	return NULL;				/* not reached */
}

/* Every header field "columns" maps must be in the header. */
static void
check_mapped_fields(List *header, const IngestOptions *opts)
{
	ListCell   *lc;

	foreach(lc, opts->map_from)
	{
		const char *from = lfirst(lc);
		ListCell   *h;
		bool		found = false;

		foreach(h, header)
			found |= names_match(lfirst(h), from, opts->header_insensitive);
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("the columns option maps header field \"%s\", which the header does not have",
							from)));
	}
}

/* cols' columns: atts (Form_pg_attribute), each checked for role. */
static void
fill_columns(Relation rel, List *atts, Oid role, IngestColumns *cols, MemoryContext cxt)
{
	ListCell   *lc;
	int			n = 0;

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
}

/*
 * Resolve the columns to load, named by names (from the columns option or
 * the header) or, with TARGET_NAMES_TABLE, every column that can be loaded;
 * check each (it exists, is loaded once, is not generated, role may insert
 * into it). Fills cols, allocated in cxt, but its input functions.
 */
void
target_resolve(Relation rel, List *names, TargetNames from, const IngestOptions *opts,
			   Oid role, IngestColumns *cols, MemoryContext cxt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *atts = NIL;
	ListCell   *lc;

	cols->nfields = from == TARGET_NAMES_TABLE ? 0 : list_length(names);
	cols->field_col = MemoryContextAlloc(cxt, sizeof(int) * (desc->natts + cols->nfields + 1));
	if (from == TARGET_NAMES_TABLE)
	{
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && !att->attgenerated)
			{
				cols->field_col[cols->nfields++] = list_length(atts);
				atts = lappend(atts, att);
			}
		}
	}
	if (from == TARGET_NAMES_HEADER)
		check_mapped_fields(names, opts);
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		Form_pg_attribute att;
		ListCell   *prev;

		if (from == TARGET_NAMES_HEADER)
			att = header_column(rel, name, opts);
		else
		{
			int			idx = find_column(desc, name, false);

			if (idx < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" listed in the columns option does not exist in table %s",
								name, target_name(rel))));
			att = TupleDescAttr(desc, idx);
		}
		if (att == NULL)
		{
			cols->field_col[foreach_current_index(lc)] = -1;
			continue;
		}
		foreach(prev, atts)
			if (((Form_pg_attribute) lfirst(prev))->attnum == att->attnum)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_COLUMN),
						 errmsg("column \"%s\" appears more than once in %s",
								NameStr(att->attname), names_source(from))));
		cols->field_col[foreach_current_index(lc)] = list_length(atts);
		atts = lappend(atts, att);
	}

	/*
	 * A header none of whose fields is a column is a file read wrongly (a
	 * ";"-separated file read with ","), not a file of defaults.
	 */
	if (from == TARGET_NAMES_HEADER && atts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("no field of the header names a column of table %s", target_name(rel)),
				 errhint("Check the \"delimiter\" option, and map header names to columns with \"columns\".")));

	fill_columns(rel, atts, role, cols, cxt);
	list_free(atts);
}

/*
 * At enqueue: role must be able to insert what the job will insert: the
 * listed (or mapped-to) columns, every column when the file has neither
 * header nor column list, or at least one column when the header decides
 * (the header's names are resolved once it is read). Returns whether the
 * columns are known now, in *cols.
 */
bool
target_check_enqueue(Oid relid, const IngestOptions *opts, Oid role, IngestColumns *cols)
{
	Relation	rel = target_open(relid, AccessShareLock);
	bool		known = true;

	target_check_foreign_rls(relid, role);

	/* the worker names the table, which needs USAGE on its schema */
	if (!compat_schema_usable(RelationGetNamespace(rel), role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s",
						get_namespace_name(RelationGetNamespace(rel)))));

	if (opts->columns != NIL)
		target_resolve(rel, opts->columns, TARGET_NAMES_OPTION, opts, role, cols, CurrentMemoryContext);
	else if (opts->map_to != NIL)
		/* the header is read later; the columns it is mapped to are known now */
		target_resolve(rel, opts->map_to, TARGET_NAMES_OPTION, opts, role, cols, CurrentMemoryContext);
	else if (!opts->header)
		target_resolve(rel, NIL, TARGET_NAMES_TABLE, opts, role, cols, CurrentMemoryContext);
	else
	{
		known = false;
		if (!identity_can_insert(relid, 0, role))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", target_name(rel)),
					 errdetail("Role \"%s\" loads the file and has no INSERT privilege on the table or any of its columns.",
							   GetUserNameFromId(role, false))));
	}
	relation_close(rel, AccessShareLock);
	return known;
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
