/*
 * api.c
 *		The SQL-callable functions: enqueue_data, enqueue_file, cancel, retry,
 *		discard, purge, queue_position, and the live rows of the
 *		ingest.workers view.
 *		(Uploads in chunks and large objects are in upload.c.)
 *
 * Each is a thin shell: creating a job and waking workers at commit is
 * enqueue.c's, reading and changing jobs the jobs service's (jobs.h), which
 * also decides what the calling role may see.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "enqueue.h"
#include "identity.h"
#include "settings.h"
#include "jobs.h"
#include "options.h"
#include "reader.h"
#include "shmem.h"
#include "target.h"

PG_FUNCTION_INFO_V1(ingest_enqueue_data);
PG_FUNCTION_INFO_V1(ingest_enqueue_file);
PG_FUNCTION_INFO_V1(ingest_cancel);
PG_FUNCTION_INFO_V1(ingest_worker_status);
PG_FUNCTION_INFO_V1(ingest_xid_is_current);
PG_FUNCTION_INFO_V1(ingest_retry);
PG_FUNCTION_INFO_V1(ingest_discard);
PG_FUNCTION_INFO_V1(ingest_wake_workers);
PG_FUNCTION_INFO_V1(ingest_purge);
PG_FUNCTION_INFO_V1(ingest_queue_position);
PG_FUNCTION_INFO_V1(ingest_current_tenant);
PG_FUNCTION_INFO_V1(ingest_tenant_visible);
PG_FUNCTION_INFO_V1(ingest_job_visible);

Datum
ingest_enqueue_data(PG_FUNCTION_ARGS)
{
	bytea	   *data;
	int64		size;
	SourceHead	head;

	enqueue_not_null(fcinfo, 0, "target table");
	enqueue_not_null(fcinfo, 1, "data");
	data = PG_GETARG_BYTEA_PP(1);
	size = VARSIZE_ANY_EXHDR(data);

	head.bytes = VARDATA_ANY(data);
	head.len = size;
	head.complete = true;
	head.where = "uploaded data";
	PG_RETURN_INT64(enqueue_job(PG_GETARG_OID(0),
								psprintf("uploaded data (" INT64_FORMAT " bytes)", size),
								JOB_SOURCE_DATA, enqueue_options_arg(fcinfo, 2), size, data, false,
								&head));
}

Datum
ingest_enqueue_file(PG_FUNCTION_ARGS)
{
	char	   *path;
	char	   *resolved;
	int64		size;
	char	   *bytes;
	SourceHead	head;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("target table and path must not be NULL")));

	enqueue_check_server_files("ingest.enqueue_file");

	path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	resolved = reader_resolve_path(path, &size);

	/* the start of the file, for the header to be checked now */
	bytes = palloc(EARLY_HEADER_BYTES);
	head.len = reader_file_head(resolved, bytes, EARLY_HEADER_BYTES, &head.complete);
	head.bytes = bytes;
	head.where = psprintf("file \"%s\"", resolved);
	PG_RETURN_INT64(enqueue_job(PG_GETARG_OID(0), resolved, JOB_SOURCE_FILE,
								enqueue_options_arg(fcinfo, 2), size, NULL, false, &head));
}

Datum
ingest_cancel(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	bool		running = false;
	bool		result = jobs_cancel(job_id, GetUserId(), &running);

	if (running)
		enqueue_cancel_at_commit(job_id);
	PG_RETURN_BOOL(result);
}

Datum
ingest_retry(PG_FUNCTION_ARGS)
{
	bool		queued = jobs_retry(PG_GETARG_INT64(0), GetUserId());

	if (queued)
		enqueue_wake_at_commit();
	PG_RETURN_BOOL(queued);
}

/* ingest.discard: a finished job's stored bytes go; returns how many bytes. */
Datum
ingest_discard(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(jobs_discard(PG_GETARG_INT64(0), GetUserId()));
}

/* Called by upgrade scripts: jobs that waited for the update start at its commit. */
Datum
ingest_wake_workers(PG_FUNCTION_ARGS)
{
	enqueue_wake_at_commit();
	PG_RETURN_VOID();
}

Datum
ingest_purge(PG_FUNCTION_ARGS)
{
	Interval	zero = {0};
	Interval   *older_than;

	enqueue_not_null(fcinfo, 0, "older_than");
	older_than = PG_GETARG_INTERVAL_P(0);
	if (DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(older_than),
										 IntervalPGetDatum(&zero))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative")));
	PG_RETURN_INT64(jobs_purge(older_than, GetUserId()));
}

Datum
ingest_queue_position(PG_FUNCTION_ARGS)
{
	int			position;

	if (!jobs_queue_position(PG_GETARG_INT64(0), GetUserId(), &position))
		PG_RETURN_NULL();
	PG_RETURN_INT32(position);
}

/*
 * Is a worker's job, owned by userid, the caller's to see? A job's tenant
 * can only be compared in its own database, where its id means that job
 * (each database numbers its jobs from 1) and whose ingest.tenant_key says
 * what the caller's tenant is: a job of another database is shown to its
 * owner only when neither the job nor the caller has a tenant.
 */
static bool
own_job_visible(const IngestWorkerSlot *slot, Oid userid)
{
	if (slot->dboid != MyDatabaseId)
		return !slot->job_has_tenant && !identity_tenant_scoped();
	return jobs_job_visible(slot->job_id, userid);
}

/* One row per worker; job details only where the caller may see the job. */
Datum
ingest_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			userid = GetUserId();
	Oid			admin = get_role_oid("ingest_admin", true);
	bool		see_all = superuser() || (OidIsValid(admin) && has_privs_of_role(userid, admin));
	IngestWorkerSlot *copy;
	int			n = 0;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (!shmem_available())
		return (Datum) 0;

	/* copy under the lock, look names up after */
	copy = palloc(sizeof(IngestWorkerSlot) * ingest_shared->nslots);
	LWLockAcquire(ingest_shared->lock, LW_SHARED);
	for (int i = 0; i < ingest_shared->nslots; i++)
	{
		IngestWorkerSlot *slot = &ingest_shared->slots[i];

		if (slot->state == SLOT_FREE || slot->pid == 0)
			continue;
		memcpy(&copy[n], slot, offsetof(IngestWorkerSlot, rows));
		pg_atomic_init_u64(&copy[n].rows, pg_atomic_read_u64(&slot->rows));
		pg_atomic_init_u64(&copy[n].bytes, pg_atomic_read_u64(&slot->bytes));
		n++;
	}
	LWLockRelease(ingest_shared->lock);

	for (int i = 0; i < n; i++)
	{
		IngestWorkerSlot *slot = &copy[i];
		Datum		values[11];
		bool		nulls[11];
		char	   *datname = get_database_name(slot->dboid);
		bool		visible = slot->job_id != 0 &&
			(see_all || (slot->job_owner == userid && own_job_visible(slot, userid)));

		memset(nulls, true, sizeof(nulls));
		values[0] = Int32GetDatum(slot->pid);
		nulls[0] = false;
		if (datname)
		{
			NameData   *name = palloc(sizeof(NameData));

			namestrcpy(name, datname);
			values[1] = NameGetDatum(name);
			nulls[1] = false;
		}
		if (visible)
		{
			int64		rows = (int64) pg_atomic_read_u64(&slot->rows);
			int64		bytes = (int64) pg_atomic_read_u64(&slot->bytes);
			double		seconds = (double) (now - slot->started_at) / USECS_PER_SEC;

			values[2] = Int64GetDatum(slot->job_id);
			values[3] = Int64GetDatum(rows);
			values[4] = Int64GetDatum(bytes);
			values[5] = TimestampTzGetDatum(slot->started_at);
			values[6] = ObjectIdGetDatum(slot->job_owner);
			memset(nulls + 2, false, 5);
			/* a table's oid means that table only in its own database's catalog */
			if (slot->dboid == MyDatabaseId)
			{
				values[7] = ObjectIdGetDatum(slot->job_target);
				nulls[7] = false;
			}
			if (slot->bytes_total >= 0)
			{
				values[8] = Int64GetDatum(slot->bytes_total);
				nulls[8] = false;
			}
			/* the share of the source read: bytes as bytes_total counts them */
			if (slot->bytes_total > 0)
			{
				values[9] = Float8GetDatum(Min((double) bytes / (double) slot->bytes_total, 1.0));
				nulls[9] = false;
			}
			/* rows this attempt inserted (a resumed job's earlier rows aside), per second */
			if (seconds > 0)
			{
				values[10] = Float8GetDatum((double) Max(rows - slot->rows_at_start, 0) / seconds);
				nulls[10] = false;
			}
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* For ingest.wait: a job queued by this very transaction cannot start yet. */
Datum
ingest_xid_is_current(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(DatumGetTransactionId(PG_GETARG_DATUM(0))));
}

/* ingest.current_tenant(): this session's tenant as ingest reads it, or NULL. */
Datum
ingest_current_tenant(PG_FUNCTION_ARGS)
{
	char	   *tenant = identity_session_tenant();

	if (tenant == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(tenant));
}

/*
 * ingest._tenant_visible(tenant): may this session see a job of this
 * tenant, as far as tenants go (the policies add the role)?
 */
Datum
ingest_tenant_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(identity_tenant_matches(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/* ingest._job_visible(job_id): may this session see the job (for job_errors, upload_chunks)? */
Datum
ingest_job_visible(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(jobs_job_visible(PG_GETARG_INT64(0), GetUserId()));
}
