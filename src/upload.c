/*
 * upload.c
 *		Sources a client sends rather than a file on the server: uploads in
 *		chunks (begin_upload, upload_chunk, finish_upload) and large objects
 *		(enqueue_lo).
 */
#include "postgres.h"

#include "fmgr.h"

#include "api.h"

PG_FUNCTION_INFO_V1(ingest_begin_upload);
PG_FUNCTION_INFO_V1(ingest_upload_chunk);
PG_FUNCTION_INFO_V1(ingest_finish_upload);
PG_FUNCTION_INFO_V1(ingest_enqueue_lo);

Datum
ingest_begin_upload(PG_FUNCTION_ARGS)
{
	elog(ERROR, "not implemented yet");
}

Datum
ingest_upload_chunk(PG_FUNCTION_ARGS)
{
	elog(ERROR, "not implemented yet");
}

Datum
ingest_finish_upload(PG_FUNCTION_ARGS)
{
	elog(ERROR, "not implemented yet");
}

Datum
ingest_enqueue_lo(PG_FUNCTION_ARGS)
{
	elog(ERROR, "not implemented yet");
}
