/*
 * catalog.c
 *		Where ingest's own tables are.
 *
 * From version 1.2 the job tables live in schema ingest_private, which no
 * role but the extension's owner may use, and users read them through views
 * of the same names in schema ingest. A role that can name a table can queue
 * a lock request on it (CREATE RULE, CREATE TRIGGER and COMMENT ON take their
 * lock before they check ownership), and every other session's request then
 * waits behind it: tables no user can name keep enqueues and claims out of
 * that queue. Databases not yet updated from 1.0 or 1.1 still have the tables
 * in schema ingest.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "utils/lsyscache.h"

#include "catalog.h"

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
