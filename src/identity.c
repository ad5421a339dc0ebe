/*
 * identity.c
 *		Who a job runs as and in what context: the owner, the tenant, and the
 *		enqueuing session's settings, captured at enqueue and re-applied by
 *		the worker; switching to the owner (or to the extension's owner) and
 *		back.
 *
 * A load must behave as if its owner had inserted the rows in the session
 * that enqueued them. The worker does not log in as the owner (which would
 * need LOGIN and a connection slot); it switches its effective user with
 * SetUserIdAndSecContext, so privileges, RLS and current_user follow the
 * owner. SET ROLE would not bring the owner's ALTER ROLE ... SET defaults,
 * and a worker has none of the session's SETs, so we capture at enqueue
 * every setting the session had changed from the server's defaults (but a
 * few that must not travel) and re-apply them in every transaction of the
 * load.
 *
 * Tenants: applications that connect every end user through one role tell
 * them apart by a setting their policies read (app.tenant, or a claim in
 * request.jwt.claims). ingest.tenant_key names it; each job records its
 * session's value, and every user-facing read and action is scoped to the
 * (owner, tenant) pair.
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
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "compat.h"
#include "identity.h"
#include "settings.h"

/* Built-in settings that change how values are read: always captured. */
static const char *const value_settings[] = {
	"TimeZone", "DateStyle", "IntervalStyle", "search_path"
};

/*
 * Settings that never travel with a job: who the session is, its
 * transaction's characteristics, timeouts the job governs itself, what the
 * connection or the log is, settings that would take the worker down with
 * an error, and ingest's own (captured into the job's columns instead).
 */
static const char *const staying_settings[] = {
	"role", "session_authorization",
	"transaction_isolation", "transaction_read_only", "transaction_deferrable",
	"default_transaction_isolation", "default_transaction_read_only",
	"default_transaction_deferrable",
	"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
	"idle_session_timeout",
	"application_name", "client_encoding", "client_min_messages",
	"client_connection_check_interval", "exit_on_error"
};
static const char *const staying_prefixes[] = {"log_", "debug_", "trace_", "tcp_", "ingest."};

static bool
travels(struct config_generic *gconf)
{
	const char *name = gconf->name;

	for (int i = 0; i < lengthof(value_settings); i++)
		if (pg_strcasecmp(name, value_settings[i]) == 0)
			return true;
	/*
	 * A session's batch size travels, and whether its jobs may batch their
	 * inserts (superuser-only: only a superuser's session or ALTER ROLE can
	 * have changed it).
	 */
	if (strcmp(name, "ingest.batch_rows") == 0 || strcmp(name, "ingest.batched_insert") == 0)
		return gconf->source > PGC_S_FILE;
	for (int i = 0; i < lengthof(staying_settings); i++)
		if (pg_strcasecmp(name, staying_settings[i]) == 0)
			return false;
	for (int i = 0; i < lengthof(staying_prefixes); i++)
		if (pg_strncasecmp(name, staying_prefixes[i], strlen(staying_prefixes[i])) == 0)
			return false;

	/*
	 * A placeholder the session only touched (a SET LOCAL or set_config(...,
	 * true) of a transaction that has ended) reads '' there, not NULL: so it
	 * must in the load, whether or not the worker has met that name before.
	 */
	if ((gconf->flags & GUC_CUSTOM_PLACEHOLDER) && gconf->source == PGC_S_DEFAULT)
		return true;

	/*
	 * Changed from the server's defaults (postgresql.conf, the command line)
	 * by whatever source: ALTER ROLE or DATABASE ... SET, the client's
	 * connection, SET, SET LOCAL, set_config, a function's SET clause.
	 * Custom settings no loaded module defines (placeholders) are the
	 * application's: app.tenant, request.jwt.claims.
	 */
	if (gconf->source <= PGC_S_ARGV || gconf->source == PGC_S_OVERRIDE)
		return false;
	if (gconf->flags & GUC_CUSTOM_PLACEHOLDER)
		return true;

	/*
	 * Only what the owner could set in its own session: a superuser-only
	 * setting travels with a superuser's job only, never lets a plain role
	 * do more through a worker than it could do itself.
	 */
	if (gconf->context == PGC_USERSET)
		return true;
	return gconf->context == PGC_SUSET && superuser();
}

Jsonb *
identity_capture_settings(void)
{
	JsonbParseState *state = NULL;
	struct config_generic **vars;
	int			nvars;

	vars = compat_guc_variables(&nvars);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < nvars; i++)
	{
		struct config_generic *gconf = vars[i];
		const char *value;
		JsonbValue	k;
		JsonbValue	v;

		if (!travels(gconf))
			continue;
		value = GetConfigOption(gconf->name, true, false);
		if (value == NULL && (gconf->flags & GUC_CUSTOM_PLACEHOLDER))
			value = "";			/* one never set: current_setting() reads '' */
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
				 * As the owner could: a superuser-only setting is captured
				 * only from a superuser's session. A custom (dotted) one is
				 * applied with a plain user's rights whoever the owner is:
				 * in the session it may have been a placeholder anybody could
				 * set, which this worker, having loaded its module, knows as
				 * superuser-only; it is then skipped with a warning. But
				 * ingest.batched_insert, which ingest defines in every backend
				 * (no placeholder), so only a superuser (or a role granted SET
				 * on it) can have set it.
				 */
				(void) set_config_option(name,
										 pnstrdup(v.val.string.val, v.val.string.len),
										 (superuser() && strchr(name, '.') == NULL) ||
										 strcmp(name, "ingest.batched_insert") == 0 ? PGC_SUSET : PGC_USERSET,
										 PGC_S_SESSION, GUC_ACTION_LOCAL, true, WARNING, false);
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
	Oid			owner = catalog_tables_owner();

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

/* ---------- tenants ---------- */

char	   *ingest_tenant_key = NULL;

static bool check_tenant_key(char **newval, void **extra, GucSource source);

/* GUCs of the submitter's context */
void
identity_init(void)
{
	DefineCustomStringVariable("ingest.tenant_key",
							   "Where a session's tenant is read from: a setting, optionally with a path into its JSON value.",
							   "For example app.tenant, or request.jwt.claims->>sub. Empty: jobs are isolated by role only.",
							   &ingest_tenant_key,
							   "",
							   PGC_SUSET, 0,
							   check_tenant_key, NULL, NULL);
}

/*
 * ingest.tenant_key: the name of a setting, optionally followed by a path
 * into its JSON value, written as PostgreSQL's JSON operators write one:
 *
 *	 app.tenant
 *	 request.jwt.claims->>sub
 *	 request.jwt.claims->app_metadata->>org_id
 *
 * Keys are taken as written between the arrows (spaces around them
 * dropped); -> and ->> mean the same, the last value being read as text.
 * Returns false for a malformed key.
 */
static bool
parse_tenant_key(const char *key, char **setting, List **path)
{
	const char *arrow = strstr(key, "->");
	const char *p;

	*path = NIL;
	*setting = pnstrdup(key, arrow ? arrow - key : strlen(key));
	while (**setting == ' ')
		(*setting)++;
	for (int n = strlen(*setting); n > 0 && (*setting)[n - 1] == ' '; n--)
		(*setting)[n - 1] = '\0';
	if (**setting == '\0' || strchr(*setting, ' ') != NULL)
		return false;

	p = arrow;
	while (p != NULL)
	{
		const char *start = p + 2;
		const char *next;
		char	   *k;
		int			len;

		if (*start == '>')
			start++;
		next = strstr(start, "->");
		len = next ? next - start : strlen(start);
		while (len > 0 && *start == ' ')
			start++, len--;
		while (len > 0 && start[len - 1] == ' ')
			len--;
		if (len == 0)
			return false;
		k = pnstrdup(start, len);
		*path = lappend(*path, k);
		p = next;
	}
	return true;
}

static bool
check_tenant_key(char **newval, void **extra, GucSource source)
{
	char	   *setting;
	List	   *path;

	if (*newval == NULL || **newval == '\0')
		return true;
	if (!parse_tenant_key(*newval, &setting, &path))
	{
		GUC_check_errdetail("ingest.tenant_key is a setting name, optionally followed by a path into its JSON value, such as \"app.tenant\" or \"request.jwt.claims->app_metadata->>org_id\".");
		return false;
	}
	return true;
}

bool
identity_tenant_scoped(void)
{
	return ingest_tenant_key != NULL && ingest_tenant_key[0] != '\0';
}

static void
tenant_error_context(void *arg)
{
	errcontext("reading the tenant from setting \"%s\" (ingest.tenant_key is \"%s\")",
			   (const char *) arg, ingest_tenant_key);
}

/* The scalar at path in a JSON text, as text; NULL if there is none. */
static char *
json_path_text(const char *json, List *path)
{
	Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	JsonbContainer *c = &jb->root;
	JsonbValue	v;
	ListCell   *lc;

	foreach(lc, path)
	{
		const char *key = lfirst(lc);

		if (!JsonContainerIsObject(c) ||
			getKeyJsonValueFromContainer(c, key, strlen(key), &v) == NULL)
			return NULL;
		if (lnext(path, lc) == NULL)
			break;
		if (v.type != jbvBinary)
			return NULL;
		c = v.val.binary.data;
	}
	switch (v.type)
	{
		case jbvString:
			return pnstrdup(v.val.string.val, v.val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
		case jbvBool:
			return pstrdup(v.val.boolean ? "true" : "false");
		default:
			return NULL;		/* null, an object or an array: no tenant */
	}
}

/*
 * This session's tenant: the value ingest.tenant_key names, or NULL when the
 * key is not set, or the session has no (or an empty) value for it. The
 * parsed key and the last answer are kept: views ask once per row.
 */
char *
identity_session_tenant(void)
{
	/* the key last parsed, its setting name, and the last value read of it */
	static char *cached_key = NULL;
	static char *cached_setting = NULL;
	static char *cached_raw = NULL;
	static char *cached_tenant = NULL;
	char	   *setting;
	List	   *path;
	const char *raw;
	char	   *tenant;
	ErrorContextCallback errcb;
	MemoryContext old;

	if (!identity_tenant_scoped())
		return NULL;
	if (cached_key == NULL || strcmp(cached_key, ingest_tenant_key) != 0)
	{
		if (!parse_tenant_key(ingest_tenant_key, &setting, &path))
			return NULL;
		old = MemoryContextSwitchTo(TopMemoryContext);
		if (cached_key)
			pfree(cached_key);
		if (cached_setting)
			pfree(cached_setting);
		if (cached_raw)
			pfree(cached_raw);
		cached_key = pstrdup(ingest_tenant_key);
		cached_setting = pstrdup(setting);
		cached_raw = NULL;
		MemoryContextSwitchTo(old);
	}
	raw = GetConfigOption(cached_setting, true, false);
	if (raw == NULL || raw[0] == '\0')
		return NULL;
	if (cached_raw && strcmp(cached_raw, raw) == 0)
		return cached_tenant ? pstrdup(cached_tenant) : NULL;

	(void) parse_tenant_key(ingest_tenant_key, &setting, &path);
	errcb.callback = tenant_error_context;
	errcb.arg = setting;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	tenant = path == NIL ? pstrdup(raw) : json_path_text(raw, path);
	error_context_stack = errcb.previous;
	if (tenant != NULL && tenant[0] == '\0')
		tenant = NULL;

	old = MemoryContextSwitchTo(TopMemoryContext);
	if (cached_raw)
		pfree(cached_raw);
	if (cached_tenant)
		pfree(cached_tenant);
	cached_raw = pstrdup(raw);
	cached_tenant = tenant ? pstrdup(tenant) : NULL;
	MemoryContextSwitchTo(old);
	return tenant;
}

/*
 * The tenant a new job records: NULL when ingest.tenant_key is not set; an
 * ERROR when it is and this session has no value for it, as such a job
 * would belong to no tenant.
 */
char *
identity_require_tenant(void)
{
	char	   *tenant;
	char	   *setting;
	List	   *path;

	if (!identity_tenant_scoped())
		return NULL;
	tenant = identity_session_tenant();
	if (tenant != NULL)
		return tenant;
	(void) parse_tenant_key(ingest_tenant_key, &setting, &path);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("this session has no tenant: ingest.tenant_key is \"%s\", which is missing or empty here",
					ingest_tenant_key),
			 path == NIL
			 ? errhint("Set %s in the transaction that calls ingest, e.g. SET LOCAL %s = '...' or set_config('%s', '...', true).",
					   setting, setting, setting)
			 : errhint("Set %s, with a value at %s, in the transaction that calls ingest, e.g. with set_config('%s', '...', true).",
					   setting, ingest_tenant_key + strlen(setting), setting)));
	return NULL;				/* keep compiler quiet */
}

/*
 * May this session see a job of this tenant, as far as tenants go? Without
 * ingest.tenant_key, yes (isolation is by role only); with it, only its own
 * tenant's jobs.
 */
bool
identity_tenant_matches(const char *job_tenant)
{
	char	   *mine;

	if (!identity_tenant_scoped())
		return true;
	mine = identity_session_tenant();
	return mine != NULL && job_tenant != NULL && strcmp(mine, job_tenant) == 0;
}
