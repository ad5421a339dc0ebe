/*
 * parallel.c
 *		The "parallel" option: one file loaded by several workers.
 *
 * A load by parts needs a source that can be read from any byte offset and
 * parsed from there: the cut points are found by split.c, a scan of the file
 * with the parser that gives each part its first line and record number. A
 * compressed stream (gzip, zstd) can only be read from its start, and a file
 * in another encoding than the database's is converted as one stream (a cut
 * could fall inside a character, and UTF-16 has no ASCII line ends): those
 * run as one worker. Without commit_every a load is all-or-nothing, which
 * parts can only keep by preparing each part's transaction (two-phase
 * commit) and committing them together: without max_prepared_transactions
 * such a load runs as one worker too.
 *
 * This version does not run parts yet: "parallel": false and an absent
 * option load with one worker, and "parallel": true is refused at enqueue,
 * naming what would keep the source from being split, if anything, so that
 * a script that asks for parts is told rather than silently given one
 * worker.
 */
#include "postgres.h"

#include "access/twophase.h"
#include "mb/pg_wchar.h"

#include "encoding.h"
#include "parallel.h"
#include "transcode.h"

/* Why the source cannot be split, or NULL. head: its first bytes, when known. */
static const char *
unsplittable(const IngestOptions *opts, const SourceHead *head)
{
	if (opts->compression == INGEST_COMPRESSION_GZIP ||
		opts->compression == INGEST_COMPRESSION_ZSTD)
		return "a compressed source is read as one stream from its start";
	if (opts->encoding != INGEST_ENCODING_DEFAULT && opts->encoding != GetDatabaseEncoding())
		return "a file in another encoding than the database's is converted as one stream";
	if (head != NULL)
	{
		const unsigned char *m = (const unsigned char *) head->bytes;

		if (opts->compression == INGEST_COMPRESSION_AUTO &&
			tc_sniff_compression(m, head->len) != TC_PLAIN)
			return "a compressed source is read as one stream from its start";
		if (opts->encoding == INGEST_ENCODING_DEFAULT &&
			tc_sniff_bom(m, head->len) != TC_UTF16_NONE)
			return "a file in another encoding than the database's is converted as one stream";
	}
	if (opts->commit_every == 0 && max_prepared_xacts == 0)
		return "without \"commit_every\" the parts would have to be committed together by two-phase commit, and max_prepared_transactions is 0";
	return NULL;
}

/*
 * At enqueue: "parallel": true is refused, with the reason a split is
 * impossible when there is one.
 */
void
parallel_check_enqueue(const IngestOptions *opts, const SourceHead *head)
{
	const char *why;

	if (opts->parallel != INGEST_PARALLEL_ON)
		return;
	why = unsplittable(opts, head);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ingest option \"parallel\" is true, but this source cannot be loaded in parts: %s", why),
				 errhint("Leave \"parallel\" out or set it to false: one worker then loads the file.")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("ingest option \"parallel\" is true, but this version of ingest loads every file with one worker"),
			 errhint("Leave \"parallel\" out or set it to false.")));
}
