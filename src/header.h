/*
 * header.h
 *		A file's header: its names, and the check of them against the target
 *		as soon as the first bytes are known.
 */
#ifndef INGEST_HEADER_H
#define INGEST_HEADER_H

#include "options.h"
#include "parser.h"

/* How much of a source the early check reads: a header is rarely longer. */
#define EARLY_HEADER_BYTES		(64 * 1024)

/* The first bytes of a source, as far as the server has them at enqueue. */
typedef struct SourceHead
{
	const char *bytes;
	size_t		len;
	bool		complete;		/* they are all of the source */
	const char *where;			/* the source, for messages */
} SourceHead;

/*
 * A file's header record read from its first bytes as they come, as a load
 * reads it: past the lines skip_lines passes over, one record parsed with
 * the job's options. Its parser is freed with the memory context it was
 * made in.
 */
typedef struct HeaderReader
{
	CsvpParser *parser;
	int64_t		skip_left;		/* lines still to pass over */
	bool		after_cr;		/* the last passed over ended in a CR, its LF may follow */
	MemoryContextCallback cb;
} HeaderReader;

extern HeaderReader *header_reader_create(const IngestOptions *opts, MemoryContext cxt);
extern const CsvpRecord *header_reader_feed(HeaderReader *hr, const char *buf, size_t len);
extern const CsvpRecord *header_reader_finish(HeaderReader *hr);

extern void header_check_readable(const CsvpRecord *header, const char *where);
extern List *header_names(CsvpParser *parser, const CsvpRecord *header, const char *where);
extern void header_check_early(Oid target, const IngestOptions *opts, const SourceHead *head);

#endif							/* INGEST_HEADER_H */
