/*
 * catalog.c
 *		Where ingest's own objects are: its extension row, its version, its
 *		job table and the role that owns it.
 *
 * Every other file asks here rather than looking for itself, so that the
 * layouts ingest has had are known in one place. From version 1.2 the job
 * tables live in schema ingest_private, which no role but the extension's
 * owner may use, and users read them through views of the same names in
 * schema ingest. A role that can name a table can queue a lock request on
 * it (CREATE RULE, CREATE TRIGGER and COMMENT ON take their lock before
 * they check ownership), and every other session's request then waits
 * behind it: tables no user can name keep enqueues and claims out of that
 * queue. Databases not yet updated from 1.0 or 1.1 still have the tables in
 * schema ingest.
 *
 * Nothing here takes a lock or says anything: these are questions, asked
 * from idle loops as well as before work. A caller that goes on to use the
 * job table locks it itself, in the way its work needs (worker.c).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "settings.h"

/* The OID of extension ingest here; InvalidOid (or an ERROR) when there is none. */
Oid
catalog_extension_oid(bool missing_ok)
{
	return get_extension_oid("ingest", missing_ok);
}

/* The installed version of the extension here, or NULL; its OID in *extoid. */
char *
catalog_extension_version(Oid *extoid)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	char	   *version = NULL;

	*extoid = InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("ingest"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		v = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		*extoid = ((Form_pg_extension) GETSTRUCT(tup))->oid;
		version = isnull ? pstrdup("") : TextDatumGetCString(v);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Is the extension here, complete, and at the version this library's SQL is
 * written for? Its version in *version (NULL when absent). A database where
 * CREATE EXTENSION ingest VERSION '1.0' was run, or that kept 1.0 when the
 * library was upgraded, has tables without the columns our SQL names:
 * nothing may run there until the update. While CREATE or DROP EXTENSION
 * runs, the extension's row may be there without its tables (or the other
 * way round): that is absent too.
 */
CatalogState
catalog_extension_state(char **version)
{
	Oid			extoid;
	Oid			nsp;

	*version = catalog_extension_version(&extoid);
	if (!OidIsValid(extoid))
		return CATALOG_ABSENT;
	nsp = get_namespace_oid("ingest", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("upload_jobs", nsp)) ||
		!OidIsValid(get_relname_relid("job_errors", nsp)))
		return CATALOG_ABSENT;
	return strcmp(*version, INGEST_SCHEMA_VERSION) == 0 ? CATALOG_CURRENT : CATALOG_OUTDATED;
}

/*
 * Sessions calling our functions in a database whose extension was created
 * at an older version than the loaded library's: a clear error rather than
 * one about a missing column.
 */
void
catalog_check_version(void)
{
	Oid			extoid;
	char	   *version = catalog_extension_version(&extoid);

	if (version != NULL && strcmp(version, INGEST_SCHEMA_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"ingest\" is at version %s, but the loaded library needs version %s",
						version, INGEST_SCHEMA_VERSION),
				 errhint("Run ALTER EXTENSION ingest UPDATE.")));
}

/* The table of jobs (either layout), or InvalidOid when there is none. */
Oid
catalog_jobs_table(void)
{
	Oid			nsp = get_namespace_oid(INGEST_PRIVATE_SCHEMA, true);
	Oid			relid;

	if (OidIsValid(nsp))
		return get_relname_relid("upload_jobs", nsp);
	nsp = get_namespace_oid("ingest", true);
	relid = OidIsValid(nsp) ? get_relname_relid("upload_jobs", nsp) : InvalidOid;
	return OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_RELATION ? relid : InvalidOid;
}

/*
 * The role that owns the job tables, the extension's owner: bookkeeping runs
 * as it (identity_enter_system), so users need (and get) no write privilege
 * on them. An ERROR when the extension is not here.
 */
Oid
catalog_tables_owner(void)
{
	Oid			relid = catalog_jobs_table();
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"ingest\" is not installed in this database")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
