/*
 * parallel.c
 *		The "parallel" option: which jobs are loaded by several workers, and
 *		in parts of what size.
 *
 * A load by parts needs a source that can be read from any byte offset and
 * parsed from there: the cut points are found by split.c, a scan of the
 * file with the parser that gives each part its first line and record
 * number. A compressed stream (gzip, zstd) can only be read from its start,
 * a file in another encoding than the database's is converted as one
 * stream (a cut could fall inside a character, and UTF-16 has no ASCII line
 * ends), and uploaded chunks are read in order: those run as one worker.
 *
 * A part commits its rows with its own checkpoint, so a load in parts is a
 * load with "commit_every". One without it is all-or-nothing: each part is
 * one transaction, prepared (two-phase commit) rather than committed, and
 * the job's worker commits them all once every part is prepared, or rolls
 * them all back (worker_parts.c). That needs max_prepared_transactions: at
 * 0 such a load runs as one worker, and "parallel": true is refused for it
 * at enqueue. A part waiting for a lock may be waiting for another part of
 * the job, which holds its locks until the decision: such a wait ends at
 * ingest.parallel_lock_timeout (the load's own watch, loader.c, not the
 * lock_timeout the owner's code may change), and the job is then loaded by
 * one worker, as it is when a part cannot be prepared (a trigger that sent
 * a NOTIFY, no prepared transaction left).
 *
 * "parallel": false never splits; true splits whatever the size (parts of
 * at least ingest.parallel_min_bytes); without the option a file of at
 * least twice ingest.parallel_min_bytes is split. The worker that claimed
 * the job drives its parts (worker_parts.c).
 */
#include "postgres.h"

#include <limits.h>

#include "access/twophase.h"
#include "mb/pg_wchar.h"
#include "utils/guc.h"

#include "encoding.h"
#include "parallel.h"
#include "reader.h"
#include "transcode.h"

int			ingest_parallel_min_bytes = 64 * 1024 * 1024;
int			ingest_parallel_lock_timeout = 5000;

void
parallel_init(void)
{
	DefineCustomIntVariable("ingest.parallel_min_bytes",
							"Smallest part of a file that several workers load; a file twice this size is split unless its job says \"parallel\": false.",
							"Parts are cut at record boundaries near multiples of it (at most " CppAsString2(INGEST_MAX_PARTS) " parts, and no more than max_prepared_transactions for a job without commit_every).",
							&ingest_parallel_min_bytes,
							64 * 1024 * 1024, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ingest.parallel_lock_timeout",
							"Longest lock wait of a part of a job without commit_every loaded by several workers; at its end the job is loaded by one worker.",
							"The part may be waiting for another part of the same job, which keeps its locks until every part is prepared; the worker watches the wait itself, whatever lock_timeout the owner's code sets. 0: no such watch (a wait for another part then never ends).",
							&ingest_parallel_lock_timeout,
							5000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* An all-or-nothing job that two-phase commit is not there for (max_prepared_transactions 0)? */
static bool
two_phase_unavailable(const IngestOptions *opts)
{
	return parallel_two_phase(opts) && max_prepared_xacts == 0;
}

/* Why the options keep the source from being split, or NULL. */
static const char *
unsplittable_options(const IngestOptions *opts, JobSourceType source_type)
{
	if (opts->compression == INGEST_COMPRESSION_GZIP ||
		opts->compression == INGEST_COMPRESSION_ZSTD)
		return "a compressed source is read as one stream from its start";
	if (opts->encoding != INGEST_ENCODING_DEFAULT && opts->encoding != GetDatabaseEncoding())
		return "a file in another encoding than the database's is converted as one stream";
	if (source_type == JOB_SOURCE_CHUNKS)
		return "an upload in chunks is read in order";
	if (source_type == JOB_SOURCE_DATA && parallel_two_phase(opts))
		return "uploaded data is read from ingest's own table, which a part of a job without \"commit_every\" may not lock";
	return NULL;
}

/* Why the source's first bytes keep it from being split (compressed, UTF-16), or NULL. */
const char *
parallel_unsplittable_head(const IngestOptions *opts, const char *bytes, size_t len)
{
	const unsigned char *m = (const unsigned char *) bytes;

	if (opts->compression == INGEST_COMPRESSION_AUTO && tc_sniff_compression(m, len) != TC_PLAIN)
		return "a compressed source is read as one stream from its start";
	if (opts->encoding == INGEST_ENCODING_DEFAULT && tc_sniff_bom(m, len) != TC_UTF16_NONE)
		return "a file in another encoding than the database's is converted as one stream";
	return NULL;
}

/*
 * At enqueue: "parallel": true is refused where the job could never be
 * split, saying why.
 */
void
parallel_check_enqueue(const IngestOptions *opts, JobSourceType source_type,
					   const SourceHead *head)
{
	const char *why;

	if (opts->parallel != INGEST_PARALLEL_ON)
		return;
	why = unsplittable_options(opts, source_type);
	if (why == NULL && head != NULL)
		why = parallel_unsplittable_head(opts, head->bytes, head->len);
	if (why == NULL && two_phase_unavailable(opts))
		why = "without \"commit_every\" the parts are committed together by two-phase commit, and max_prepared_transactions is 0";
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ingest option \"parallel\" is true, but this source cannot be loaded in parts: %s", why),
				 errhint("Leave \"parallel\" out or set it to false: one worker then loads the file.")));
}

/*
 * Is the claimed job to be loaded in parts (its first bytes aside, which
 * the worker checks as it scans)?
 */
bool
parallel_wanted(const IngestOptions *opts, const IngestJob *job)
{
	if (opts->parallel == INGEST_PARALLEL_OFF || two_phase_unavailable(opts))
		return false;
	if (!reader_seekable(job) || unsplittable_options(opts, job->source_type) != NULL)
		return false;
	if (job->bytes_total <= 0)
		return false;
	if (opts->parallel == INGEST_PARALLEL_ON)
		return job->bytes_total > (int64) ingest_parallel_min_bytes;
	return job->bytes_total >= 2 * (int64) ingest_parallel_min_bytes;
}

/* Are the job's parts prepared and committed together (no commit_every)? */
bool
parallel_two_phase(const IngestOptions *opts)
{
	return opts->commit_every == 0;
}

/*
 * Parts of the job at most: every part of an all-or-nothing job holds a
 * prepared transaction until the decision.
 */
int
parallel_max_parts(const IngestOptions *opts)
{
	if (parallel_two_phase(opts))
		return Max(Min(INGEST_MAX_PARTS, max_prepared_xacts), 1);
	return INGEST_MAX_PARTS;
}

/* The bytes of a part, for a source of size bytes cut in max_parts parts at most. */
int64
parallel_part_bytes(int64 size, int max_parts)
{
	return Max((int64) ingest_parallel_min_bytes, size / max_parts + 1);
}
