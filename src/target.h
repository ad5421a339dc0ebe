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

/* The columns a load fills, in file order. */
typedef struct IngestColumns
{
	int			ncols;
	AttrNumber *attnums;
	char	  **names;
	Oid		   *typids;
	int32	   *typmods;
	FmgrInfo   *infuncs;		/* set by convert_prepare */
	Oid		   *ioparams;
} IngestColumns;

/* Where the names of the columns to load come from. */
typedef enum TargetNames
{
	TARGET_NAMES_OPTION,		/* the "columns" option: names as written */
	TARGET_NAMES_HEADER,		/* the file's header: a unique match in another case will do */
	TARGET_NAMES_TABLE			/* none: every column that can be loaded, in table order */
} TargetNames;

extern Relation target_open(Oid relid, LOCKMODE lockmode);
extern char *target_name(Relation rel);
extern void target_resolve(Relation rel, List *names, TargetNames from, Oid role,
						   IngestColumns *cols, MemoryContext cxt);
extern void target_check_enqueue(Oid relid, const IngestOptions *opts, Oid role);

extern bool target_has_foreign_partitions(Oid relid);
extern void target_check_foreign_rls(Oid relid, Oid owner);

#endif							/* INGEST_TARGET_H */
