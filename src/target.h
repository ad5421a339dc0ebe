/*
 * target.h
 *		A load's target table: its columns resolved and checked once, the same
 *		way at enqueue and in the worker.
 */
#ifndef INGEST_TARGET_H
#define INGEST_TARGET_H

#include "access/attnum.h"
#include "fmgr.h"
#include "options.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"

/* The columns a load fills, and which field of a record fills each. */
typedef struct IngestColumns
{
	int			nfields;		/* fields a record has */
	int		   *field_col;		/* per field: the column it fills, or -1: skipped */
	int			ncols;
	AttrNumber *attnums;
	char	  **names;
	Oid		   *typids;
	int32	   *typmods;
	FmgrInfo   *infuncs;		/* set by convert_prepare */
	Oid		   *ioparams;
	bool	   *decimal_comma;	/* per column, with "decimal": ","; else NULL */
} IngestColumns;

/* Where the names of the columns to load come from. */
typedef enum TargetNames
{
	TARGET_NAMES_OPTION,		/* the "columns" option: names as written */
	TARGET_NAMES_HEADER,		/* the file's header, mapped by "columns", matched by "header_match" */
	TARGET_NAMES_TABLE			/* none: every column that can be loaded, in table order */
} TargetNames;

extern Relation target_open(Oid relid, LOCKMODE lockmode);
extern char *target_name(Relation rel);
extern void target_resolve(Relation rel, List *names, TargetNames from,
						   const IngestOptions *opts, Oid role,
						   IngestColumns *cols, MemoryContext cxt);
extern bool target_check_enqueue(Oid relid, const IngestOptions *opts, Oid role,
								 IngestColumns *cols);

extern bool target_has_foreign_partitions(Oid relid);
extern void target_check_foreign_rls(Oid relid, Oid owner);

#endif							/* INGEST_TARGET_H */
