/*
 * options.h
 *		The jsonb options of a job, validated into one struct.
 */
#ifndef INGEST_OPTIONS_H
#define INGEST_OPTIONS_H

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "encoding.h"
#include "parser.h"

/* compression: what the source's bytes are (decode.c) */
typedef enum IngestCompression
{
	INGEST_COMPRESSION_AUTO = 0,	/* gzip or zstd if it starts with their magic bytes */
	INGEST_COMPRESSION_GZIP,
	INGEST_COMPRESSION_ZSTD,
	INGEST_COMPRESSION_NONE
} IngestCompression;

/* "parallel": absent (decided by the file's size), false, or true */
typedef enum IngestParallel
{
	INGEST_PARALLEL_AUTO = 0,
	INGEST_PARALLEL_OFF,
	INGEST_PARALLEL_ON
} IngestParallel;

/* on_conflict: what a record whose key is already in the table does (conflict.c) */
typedef enum IngestOnConflict
{
	INGEST_CONFLICT_ERROR = 0,	/* unique violation: the record is rejected */
	INGEST_CONFLICT_NOTHING,	/* skipped, counted in rows_skipped */
	INGEST_CONFLICT_UPDATE		/* the row takes the record's values */
} IngestOnConflict;

typedef struct IngestOptions
{
	bool		header;			/* first record names the columns */
	List	   *columns;		/* target column names in file order (char *), or NIL */
	List	   *map_from;		/* "columns" as an object: header names (char *) ... */
	List	   *map_to;			/* ... and the table columns they load into */
	bool		extra_ignore;	/* "extra_columns": "ignore": unknown header names skipped */
	bool		header_insensitive; /* "header_match": "insensitive" */
	bool		decimal_comma;	/* "decimal": ",": numbers written 1.234,56 */
	int64		skip_lines;		/* lines before the header (or the data) */
	char		delimiter;
	char		quote;
	char	   *null_string;	/* NULL: an unquoted empty field is NULL */
	bool		strict_quotes;	/* refuse quotes COPY would read (stray, text after) */
	List	   *force_null;		/* columns whose quoted null string is NULL too (char *) */
	int64		max_errors;		/* rejected records tolerated before the job fails */
	int64		commit_every;	/* records per transaction; 0: one transaction */
	int			max_attempts;	/* -1: not given (ingest.max_attempts applies) */
	int64		timeout_ms;		/* -1: not given (ingest.job_timeout applies); 0: none */
	int			priority;		/* orders the owner's own queued jobs */
	bool		keep_data;		/* keep uploaded bytes after a successful load */
	bool		unlink;			/* enqueue_lo: remove the large object after a successful load */
	IngestCompression compression;
	int			encoding;		/* the file's: see INGEST_ENCODING_* */
	IngestOnConflict on_conflict;
	List	   *conflict_columns;	/* "conflict_target" as column names (char *), or NIL */
	char	   *conflict_constraint;	/* "conflict_target" as a constraint name, or NULL */
	IngestParallel parallel;	/* one file loaded by several workers (parallel.c) */
} IngestOptions;

extern void options_parse(Jsonb *jb, IngestOptions *opts);
extern void options_csv(const IngestOptions *opts, int max_record_size, CsvpOptions *csv);

#endif							/* INGEST_OPTIONS_H */
