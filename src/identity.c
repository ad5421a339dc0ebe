/*
 * identity.c
 *		Who a job runs as: capture the owner's session settings at enqueue,
 *		switch to the owner (or to the extension's owner) and back.
 *
 * A load must behave as if its owner had inserted the rows in the session
 * that enqueued them. The worker does not log in as the owner (which would
 * need LOGIN and a connection slot); it switches its effective user with
 * SetUserIdAndSecContext, so privileges, RLS and current_user follow the
 * owner. SET ROLE would not bring the owner's ALTER ROLE ... SET defaults,
 * and a worker has none of the session's SETs, so we capture at enqueue the
 * settings that change what a policy, trigger or input function sees, and
 * re-apply them in every transaction of the load.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "identity.h"

/* Built-in settings that change how values are read: always captured. */
static const char *const value_settings[] = {
	"TimeZone", "DateStyle", "IntervalStyle", "search_path"
};

/*
 * Is this setting one the load must see as the session saw it? Custom
 * (dotted) settings that a user can set and that are not at their default:
 * app.tenant, request.jwt.claims and the like, including placeholders for
 * which no extension is loaded (pg_settings does not show those).
 */
static bool
capture_custom(struct config_generic *gconf)
{
	if (strchr(gconf->name, '.') == NULL)
		return false;
	if (gconf->source == PGC_S_DEFAULT || gconf->source == PGC_S_OVERRIDE)
		return false;
	return (gconf->flags & GUC_CUSTOM_PLACEHOLDER) != 0 || gconf->context == PGC_USERSET;
}

Jsonb *
identity_capture_settings(void)
{
	JsonbParseState *state = NULL;
	struct config_generic **vars;
	int			nvars;

#if PG_VERSION_NUM >= 160000
	vars = get_guc_variables(&nvars);
#else
	vars = get_guc_variables();
	nvars = GetNumConfigOptions();
#endif

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < nvars; i++)
	{
		struct config_generic *gconf = vars[i];
		bool		wanted = capture_custom(gconf);
		const char *value;
		JsonbValue	k;
		JsonbValue	v;

		for (int j = 0; j < lengthof(value_settings) && !wanted; j++)
			wanted = (pg_strcasecmp(gconf->name, value_settings[j]) == 0);
		if (!wanted)
			continue;
		value = GetConfigOption(gconf->name, true, false);
		if (value == NULL)
			continue;
		k.type = jbvString;
		k.val.string.val = pstrdup(gconf->name);
		k.val.string.len = strlen(gconf->name);
		v.type = jbvString;
		v.val.string.val = pstrdup(value);
		v.val.string.len = strlen(value);
		pushJsonbValue(&state, WJB_KEY, &k);
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/*
 * Re-apply captured settings for the current transaction only (they vanish
 * at commit or abort, so each transaction of a load sets them again).
 */
void
identity_apply_settings(Jsonb *settings)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *name = NULL;

	if (settings != NULL && JB_ROOT_IS_OBJECT(settings))
	{
		it = JsonbIteratorInit(&settings->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				name = pnstrdup(v.val.string.val, v.val.string.len);
			else if (tok == WJB_VALUE && v.type == jbvString && name != NULL)
			{
				/*
				 * As a user could: a setting this worker knows as one only a
				 * superuser may change (its extension is loaded here but was
				 * not in the session) is skipped with a warning.
				 */
				(void) set_config_option(name,
										 pnstrdup(v.val.string.val, v.val.string.len),
										 PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_LOCAL, true, WARNING, false);
			}
		}
	}

	/*
	 * A web role often carries a short statement_timeout; a load of millions
	 * of rows must not inherit it. The job has its own limits.
	 */
	(void) set_config_option("statement_timeout", "0", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, ERROR, false);
}

/* A job whose owner was dropped fails; it must never run as someone else. */
void
identity_check_owner(Oid owner, int64 job_id)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the owner of ingest job " INT64_FORMAT " (role with OID %u) no longer exists",
						job_id, owner)));
}

void
identity_enter(Oid role, IdentitySave *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	SetUserIdAndSecContext(role, save->sec_context | SECURITY_LOCAL_USERID_CHANGE);
}

void
identity_leave(const IdentitySave *save)
{
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/*
 * Become the extension's owner for bookkeeping, with search_path pinned to
 * pg_catalog the way a SECURITY DEFINER function's SET clause pins it: the
 * caller's (or a job's) search_path must never choose which operator or
 * function a superuser runs.
 */
void
identity_enter_system(IdentitySave *save)
{
	Oid			owner = identity_extension_owner();

	identity_enter(owner, save);
	save->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
identity_leave_system(const IdentitySave *save)
{
	AtEOXact_GUC(true, save->guc_level);
	identity_leave(save);
}

/*
 * The role that owns the extension's tables: bookkeeping runs as it, so
 * users need (and get) no write privilege on ingest.upload_jobs.
 */
Oid
identity_extension_owner(void)
{
	Oid			nsp = get_namespace_oid("ingest", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("upload_jobs", nsp) : InvalidOid;
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

/*
 * May role insert into the column (attnum > 0), or into some column of the
 * table (attnum 0)? Table-level INSERT covers every column; column grants
 * are the fallback, as in the executor's own check.
 */
bool
identity_can_insert(Oid relid, AttrNumber attnum, Oid role)
{
	if (pg_class_aclcheck(relid, role, ACL_INSERT) == ACLCHECK_OK)
		return true;
	if (attnum == 0)
		return pg_attribute_aclcheck_all(relid, role, ACL_INSERT, ACLMASK_ANY) == ACLCHECK_OK;
	return pg_attribute_aclcheck(relid, attnum, role, ACL_INSERT) == ACLCHECK_OK;
}
