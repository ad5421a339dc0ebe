/*
 * loader_internal.h
 *		The state of one load, shared by loader.c (the load across its
 *		transactions) and loadbatch.c (one batch of it); nothing else sees it.
 */
#ifndef INGEST_LOADER_INTERNAL_H
#define INGEST_LOADER_INTERNAL_H

#include "batch.h"
#include "conflict.h"
#include "convert.h"
#include "identity.h"
#include "insert.h"
#include "isolate.h"
#include "jobs.h"
#include "loader.h"
#include "options.h"
#include "parser.h"
#include "target.h"

/* What the load was doing when an error escaped, to say which record to blame. */
typedef enum LoadPhase
{
	PHASE_OTHER,
	PHASE_CONVERT,
	PHASE_INSERT
} LoadPhase;

struct IngestLoad
{
	IngestJob  *job;
	IngestOptions opts;
	char	   *where;			/* 'file "/x.csv"' or 'uploaded data', for messages */
	MemoryContext job_cxt;
	CsvpParser *parser;
	MemoryContextCallback parser_cb;
	struct IngestDecoder *decoder;	/* between the reader and the parser; NULL: none */
	int			batch_size;		/* ingest.batch_rows, as the owner's settings have it */
	int			max_record_size;	/* ingest.max_record_size when the job started */

	bool		columns_ready;
	bool	   *force_null;		/* per target column: FORCE_NULL (NULL: none) */
	bool		header_pending;
	IngestColumns cols;
	IngestConflict conflict;	/* the on_conflict option's arbiter */
	IngestInsert ins;
	IngestBatch batch;
	IngestRejects rejects;

	/* a load of one part of a job loaded by several workers */
	bool		has_part;
	JobPart		part;
	int64		record_base;	/* data records before the part (0: the whole job) */
	bool		header_wanted;	/* the columns come from the file's header, not yet read */
	struct HeaderReader *header_reader; /* reading it (loader_take_header) */
	char	   *gid;			/* all-or-nothing: the part's transaction is
								 * prepared under this identifier, not committed */
	bool		preparing;		/* an error now is the prepare's */

	int64		skip_left;		/* lines still to skip before parsing ("skip_lines") */
	bool		skip_after_cr;	/* the last byte skipped was a CR: an LF may follow */
	int64		skipped_bytes;	/* their bytes, which the parser never sees */
	int64		records_seen;	/* data records read so far in this attempt */

	/*
	 * The bytes fed are checked to be text once per chunk (field by field
	 * the check cost 4 % of a load): the batches that may hold bytes of a
	 * chunk that failed it check each field (the batch being gathered and,
	 * for the record in progress, the next).
	 */
	ConvertChunkCheck chunk_check;
	int			check_text_batches;
	JobCounters done;			/* so far, in the open transaction too */
	JobCounters committed;		/* as the last commit left them */
	int64		since_commit;

	LoadPhase	phase;
	int			pos_row;		/* the row being converted, -1 if none */
	int			at_col;			/* its column being converted, -1 if none */

	IdentitySave owner_save;
	int			guc_level;		/* GUC nest level of the open transaction */
	bool		cancelled;		/* stopped by ingest.cancel */
};

/* loader.c */
extern IngestLoad *loader_active(void);
extern bool loader_job_timed_out(void);
extern bool loader_watch_cancelled(void);
extern bool loader_watch_lock_waited(void);

/* loadxact.c */
extern void loadxact_begin(IngestLoad *ld);
extern void loadxact_commit(IngestLoad *ld);

/* loadbatch.c */
extern int64 loader_bytes_done(IngestLoad *ld);
extern void loadbatch_setup_columns(IngestLoad *ld, const CsvpRecord *header);
extern void loadbatch_process(IngestLoad *ld);
extern char *loadbatch_conversion_message(IngestLoad *ld, ErrorData *edata);

#endif							/* INGEST_LOADER_INTERNAL_H */
