/*
 * upload.c
 *		Sources a client sends rather than a file on the server: uploads in
 *		chunks (begin_upload, upload_chunk, finish_upload) and large objects
 *		(enqueue_lo).
 *
 * An upload lets a client send a file of any size over an ordinary
 * connection, a few megabytes per call, and resume after losing its
 * connection: begin_upload validates like enqueue_data and creates a job
 * in state 'uploading'; upload_chunk stores numbered chunks (sending one
 * again is harmless), each counted against ingest.max_file_size as it
 * arrives; finish_upload checks that chunks 0..n-1 all arrived and queues
 * the job. The view ingest.upload_chunks shows a reconnecting client what
 * the server has. Uploads that go quiet for ingest.upload_ttl are removed
 * (jobs_expire_uploads, swept here and by the workers).
 *
 * enqueue_lo loads a large object, which is what psql's \lo_import makes
 * of a client-side file. The caller needs SELECT on it, and must own it
 * when the "unlink" option asks for its removal after a successful load.
 *
 * The job tables are read and written by the jobs service (jobs_data.c for
 * chunks); the bytes are read back by reader.c.
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_largeobject.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "enqueue.h"
#include "header.h"
#include "settings.h"
#include "jobs.h"
#include "options.h"
#include "reader.h"
#include "upload.h"

PG_FUNCTION_INFO_V1(ingest_begin_upload);
PG_FUNCTION_INFO_V1(ingest_upload_chunk);
PG_FUNCTION_INFO_V1(ingest_finish_upload);
PG_FUNCTION_INFO_V1(ingest_enqueue_lo);

int			ingest_upload_ttl = 24 * 3600;
int			ingest_max_chunks_per_upload = 10000;

/* GUCs of uploads in chunks */
void
upload_init(void)
{
	DefineCustomIntVariable("ingest.upload_ttl",
							"How long an upload may go without a chunk before it is removed.",
							NULL,
							&ingest_upload_ttl,
							24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ingest.max_chunks_per_upload",
							"Chunks one upload may have; their numbers run from 0 to this minus 1.",
							"Bounds the rows one upload adds to ingest.job_chunks whatever the chunk size; ingest.max_file_size bounds its bytes.",
							&ingest_max_chunks_per_upload,
							10000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
}

Datum
ingest_begin_upload(PG_FUNCTION_ARGS)
{
	enqueue_not_null(fcinfo, 0, "target table");

	/* abandoned uploads go first, so that they do not count against a quota */
	(void) jobs_expire_uploads();

	/* size 0 so far: bytes_total counts the bytes as they arrive */
	PG_RETURN_INT64(enqueue_job(PG_GETARG_OID(0), "uploaded data (in chunks)",
								JOB_SOURCE_CHUNKS, enqueue_options_arg(fcinfo, 1), 0, NULL, true,
								NULL));
}

Datum
ingest_upload_chunk(PG_FUNCTION_ARGS)
{
	int64		job_id;
	int32		seq;
	bytea	   *data;
	int64		total;
	Oid			target;
	Jsonb	   *options;

	enqueue_not_null(fcinfo, 0, "job_id");
	enqueue_not_null(fcinfo, 1, "seq");
	enqueue_not_null(fcinfo, 2, "data");
	job_id = PG_GETARG_INT64(0);
	seq = PG_GETARG_INT32(1);
	data = PG_GETARG_BYTEA_PP(2);
	if (seq < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk number %d is negative", seq),
				 errhint("Chunks are numbered from 0.")));

	/*
	 * What one upload may add to ingest's tables is bounded: its bytes by
	 * ingest.max_file_size, its rows (a chunk's row, a new version of the
	 * job's row) by the number of chunks, each of which must bring data.
	 */
	if (seq >= ingest_max_chunks_per_upload)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("chunk number %d is past the last an upload may have (%d)",
						seq, ingest_max_chunks_per_upload - 1),
				 errhint("Send fewer, larger chunks: ingest.max_chunks_per_upload is %d.",
						 ingest_max_chunks_per_upload)));
	if (VARSIZE_ANY_EXHDR(data) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chunk %d of upload job " INT64_FORMAT " is empty", seq, job_id),
				 errhint("Every chunk carries data (the last may be short); an empty upload needs no chunk at all.")));

	total = jobs_upload_chunk(job_id, seq, data, GetUserId(), &target, &options);

	/* the first chunk starts the file: its header can be checked now */
	if (seq == 0)
	{
		IngestOptions opts;
		SourceHead	head;

		options_parse(options, &opts);
		head.bytes = VARDATA_ANY(data);
		head.len = VARSIZE_ANY_EXHDR(data);
		head.complete = false;
		head.where = psprintf("chunk 0 of upload job " INT64_FORMAT, job_id);
		header_check_early(target, &opts, &head);
	}

	/*
	 * Counted as the bytes arrive, not only at the end: nobody can park
	 * gigabytes in the job tables by never finishing. The ERROR rolls the
	 * chunk back; the upload stays, for the client to cancel.
	 */
	reader_check_size(total, psprintf("upload job " INT64_FORMAT " with chunk %d", job_id, seq));
	PG_RETURN_INT64(total);
}

Datum
ingest_finish_upload(PG_FUNCTION_ARGS)
{
	int64		job_id;
	int64		total_bytes = -1;
	int64		size;

	enqueue_not_null(fcinfo, 0, "job_id");
	job_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(1))
	{
		total_bytes = PG_GETARG_INT64(1);
		if (total_bytes < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("total_bytes must not be negative")));
	}

	size = jobs_finish_upload(job_id, total_bytes, GetUserId());
	/* the limit may have been lowered since the chunks arrived */
	reader_check_size(size, psprintf("upload job " INT64_FORMAT, job_id));
	enqueue_wake_at_commit();
	PG_RETURN_INT64(job_id);
}

Datum
ingest_enqueue_lo(PG_FUNCTION_ARGS)
{
	Oid			loid;
	Jsonb	   *options;
	IngestOptions opts;
	Oid			userid = GetUserId();
	int64		size;
	char	   *bytes;
	SourceHead	head;

	enqueue_not_null(fcinfo, 0, "target table");
	enqueue_not_null(fcinfo, 1, "loid");
	loid = PG_GETARG_OID(1);
	options = enqueue_options_arg(fcinfo, 2);
	options_parse(options, &opts);

	if (!LargeObjectExists(loid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("large object %u does not exist", loid),
				 errhint("psql's \\lo_import prints the OID of the large object it creates and sets :LASTOID to it.")));

	/*
	 * As lo_get would check, except that lo_compat_privileges is not
	 * honoured: the load reads the object in a worker, on the caller's
	 * behalf, long after this call.
	 */
	if (pg_largeobject_aclcheck_snapshot(loid, userid, ACL_SELECT, NULL) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for large object %u", loid),
				 errhint("Its owner can GRANT SELECT ON LARGE OBJECT %u to the role that loads it.", loid)));

	/* the worker removes it as the extension's owner: only its owner may ask for that */
	if (opts.unlink && !reader_lo_owned_by(loid, userid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of large object %u to load it with \"unlink\": true", loid),
				 errdetail("The unlink option removes the large object after a successful load.")));

	size = reader_lo_io(loid, 0, NULL, 0);

	/* the start of the object, for the header to be checked now */
	bytes = palloc(EARLY_HEADER_BYTES);
	head.len = reader_lo_io(loid, 0, bytes, EARLY_HEADER_BYTES);
	head.bytes = bytes;
	head.complete = (int64) head.len >= size;
	head.where = psprintf("large object %u", loid);
	PG_RETURN_INT64(enqueue_job(PG_GETARG_OID(0), psprintf("large object %u", loid),
								JOB_SOURCE_LO, options, size, NULL, false, &head));
}
