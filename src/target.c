/*
 * target.c
 *		Checks of a load's target table that the enqueue and the worker share.
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

#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"

#include "target.h"

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
