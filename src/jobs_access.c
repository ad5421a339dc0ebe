/*
 * jobs_access.c
 *		Who may see and act on a job, and how many jobs a role may queue.
 *
 * A role sees and manages its own jobs, of its own tenant when
 * ingest.tenant_key is set; members of ingest_admin see every job. The
 * views read the same rule through the policy own_jobs and through
 * ingest._job_visible (jobs_job_visible); the C functions of ingest check it
 * here before they act, and answer the same whether a job does not exist or
 * is someone else's, so that nobody learns of another's jobs by their ids.
 *
 * Part of the jobs service (jobs.h): every read runs as the tables' owner.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "compat.h"
#include "identity.h"
#include "jobs_internal.h"

/* ingest_admin sees and acts on every job. */
bool
jobs_is_admin(Oid role)
{
	Oid			admin = get_role_oid("ingest_admin", true);

	return superuser_arg(role) || (OidIsValid(admin) && has_privs_of_role(role, admin));
}

/* The same error whether the job does not exist or is another role's or tenant's. */
void
jobs_not_found(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("ingest job " INT64_FORMAT " does not exist", job_id),
			 identity_tenant_scoped()
			 ? errhint("A session sees and manages only the jobs of its own role and tenant, unless its role is a member of ingest_admin.")
			 : errhint("A role sees and manages only its own jobs, unless it is a member of ingest_admin.")));
}

/*
 * May caller, the session's user, see and act on a job of owner and tenant?
 * Its own jobs of its own tenant, or every job for ingest_admin.
 */
static bool
visible_to(Oid owner, const char *tenant, Oid caller)
{
	return (owner == caller && identity_tenant_matches(tenant)) || jobs_is_admin(caller);
}

/*
 * Fill the four parameters of CALLER_SQL from values[first]: "(owner =
 * $n::regrole AND (NOT $n+1 OR tenant = $n+2)) OR $n+3", the caller, whether
 * the session is scoped to a tenant, its tenant, whether it is an admin.
 */
void
jobs_caller_params(Oid caller, Oid *types, Datum *values, char *nulls, int first)
{
	char	   *tenant = identity_session_tenant();

	types[first] = OIDOID;
	values[first] = ObjectIdGetDatum(caller);
	types[first + 1] = BOOLOID;
	values[first + 1] = BoolGetDatum(identity_tenant_scoped());
	types[first + 2] = TEXTOID;
	values[first + 2] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	nulls[first + 2] = tenant ? ' ' : 'n';
	types[first + 3] = BOOLOID;
	values[first + 3] = BoolGetDatum(jobs_is_admin(caller));
}

/*
 * A job's owner (InvalidOid if there is no such job), its tenant, and with
 * state not NULL its state, in the caller's memory context.
 */
static Oid
fetch_job(int64 job_id, char **tenant, JobState *state)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	Oid			owner = InvalidOid;
	bool		isnull;
	MemoryContext cxt = CurrentMemoryContext;

	*tenant = NULL;
	SPI_connect();
	jobs_exec_as_owner("SELECT owner::oid, state, tenant FROM ingest_private.upload_jobs WHERE id = $1",
					   1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (state)
			*state = jobs_state_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		*tenant = jobs_copy_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, cxt);
	}
	SPI_finish();
	return owner;
}

/*
 * The owner of a job the caller may see (its own, or any for ingest_admin),
 * and its state in *state when state is not NULL; an ERROR otherwise, the
 * same whether the job does not exist or belongs to someone else.
 */
Oid
jobs_check_visible(int64 job_id, Oid caller, JobState *state)
{
	Oid			owner;
	char	   *tenant;

	catalog_check_version();
	owner = fetch_job(job_id, &tenant, state);
	if (!OidIsValid(owner) || !visible_to(owner, tenant, caller))
		jobs_not_found(job_id);
	return owner;
}

/*
 * The lock that orders the quota checks of one (role, tenant), held to
 * commit: a role's lock on its own row of pg_authid, with 48 bits of hashes
 * of the tenant beside it, so that another tenant's transaction left open
 * does not hold this one's enqueues (a collision by chance is all but
 * impossible, and one made on purpose would take some 2^48 tries). The
 * advisory tag in the default lock method is out of reach of SQL's advisory
 * locks, which live in the user lock method.
 */
static void
lock_quota(Oid owner, const char *tenant)
{
	LOCKTAG		tag;
	uint32		h1 = 0;
	uint32		h2 = 0;

	if (tenant)
	{
		h1 = hash_bytes((const unsigned char *) tenant, strlen(tenant));
		h2 = hash_bytes_extended((const unsigned char *) tenant, strlen(tenant), 0x1ee7) & 0xFFFF;
	}
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, owner, h1, h2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * May caller see the job job_id (false also when there is none)? For the
 * views over tables a job's rows hang off (ingest.job_errors,
 * ingest.upload_chunks), checked in the same scan as the caller's own
 * conditions, so that none of those is ever evaluated on another's rows
 * before this check; and for ingest.workers, which reads jobs from shared
 * memory. The answer for the last job asked is kept: a job's
 * owner and tenant never change.
 */
bool
jobs_job_visible(int64 job_id, Oid caller)
{
	static int64 last_id = 0;
	static Oid	last_caller = InvalidOid;
	static LocalTransactionId last_lxid = InvalidLocalTransactionId;
	static char *last_tenant = NULL;
	static bool last_visible = false;
	char	   *tenant = identity_session_tenant();
	Oid			owner;
	char	   *job_tenant;

	if (job_id == last_id && caller == last_caller && COMPAT_MY_LXID == last_lxid &&
		((tenant == NULL && last_tenant == NULL) ||
		 (tenant && last_tenant && strcmp(tenant, last_tenant) == 0)))
		return last_visible;

	owner = fetch_job(job_id, &job_tenant, NULL);

	last_visible = OidIsValid(owner) && visible_to(owner, job_tenant, caller);
	last_id = job_id;
	last_caller = caller;
	last_lxid = COMPAT_MY_LXID;
	if (last_tenant)
		pfree(last_tenant);
	last_tenant = tenant ? MemoryContextStrdup(TopMemoryContext, tenant) : NULL;
	return last_visible;
}

/*
 * ingest.max_queued_per_role: the owner's jobs queued or uploading. Checked
 * under a lock on the role (in this database, held to commit) so that
 * concurrent enqueues by one role cannot all slip under the limit.
 */
void
jobs_check_queue_quota(Oid owner, const char *tenant)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(owner), (Datum) 0};
	char		nulls[2] = {' ', tenant ? ' ' : 'n'};
	int64		limit;
	int64		queued;
	bool		isnull;
	IdentitySave save;
	SPIPlanPtr	plan;
	int			rc;

	jobs_exec_as_owner("SELECT ingest._role_setting($1, 'ingest.max_queued_per_role')",
					   1, types, values, NULL, true);
	limit = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || limit <= 0)
		return;

	lock_quota(owner, tenant);
	if (tenant)
		values[1] = CStringGetTextDatum(tenant);

	/*
	 * Count with the latest snapshot, not the transaction's: in REPEATABLE
	 * READ or SERIALIZABLE that one may predate jobs the role queued and
	 * committed since (the lock orders only overlapping enqueues), and would
	 * let the role past its quota. Not read-only, so the jobs this
	 * transaction queued itself are counted too.
	 */
	identity_enter_system(&save);
	plan = SPI_prepare("SELECT count(*) FROM ingest_private.upload_jobs "
					   "WHERE owner = $1::regrole AND COALESCE(tenant, '') = COALESCE($2, '') "
					   "  AND state IN ('queued', 'uploading')",
					   2, types);
	if (plan == NULL)
		elog(ERROR, "ingest: could not prepare the quota count: %s",
			 SPI_result_code_string(SPI_result));
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot,
							  false, false, 0);
	identity_leave_system(&save);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ingest: quota count failed: %s", SPI_result_code_string(rc));
	queued = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (queued >= limit)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 tenant
				 ? errmsg("tenant \"%s\" of role \"%s\" already has " INT64_FORMAT " ingest jobs queued or uploading, the most ingest.max_queued_per_role allows",
						  tenant, GetUserNameFromId(owner, false), queued)
				 : errmsg("role \"%s\" already has " INT64_FORMAT " ingest jobs queued or uploading, the most ingest.max_queued_per_role allows",
						  GetUserNameFromId(owner, false), queued),
				 errhint("Wait for some of them to finish (or cancel them), or ask an administrator to raise the limit with ALTER ROLE ... SET ingest.max_queued_per_role.")));
}
