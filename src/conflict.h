/*
 * conflict.h
 *		The on_conflict option's arbiter: resolved and checked the same way
 *		at enqueue and in the worker, and written as the INSERT's clause.
 */
#ifndef INGEST_CONFLICT_H
#define INGEST_CONFLICT_H

#include "lib/stringinfo.h"
#include "options.h"
#include "target.h"

typedef struct IngestConflict
{
	IngestOnConflict action;
	char	   *constraint;		/* ON CONFLICT ON CONSTRAINT this; NULL: by columns */
	int			nkeys;
	AttrNumber *keys;			/* the arbiter's key columns */
	char	  **key_names;
} IngestConflict;

extern void conflict_resolve(Relation rel, const IngestOptions *opts, IngestConflict *c,
							 MemoryContext cxt);
extern void conflict_check_privileges(Relation rel, const IngestConflict *c,
								  const IngestColumns *cols, Oid role);
extern char *conflict_clause(const IngestConflict *c, const IngestColumns *cols);

#endif							/* INGEST_CONFLICT_H */
