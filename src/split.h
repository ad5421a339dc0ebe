/*
 * split.h
 *		Where a CSV file may be cut into parts that separate parsers read
 *		exactly as one parser reads the whole: a quote-aware scan that finds
 *		record boundaries near chosen byte offsets, with the line and record
 *		numbers in force there.
 *
 * Like parser.h, this needs nothing from the server (the fuzzer builds it
 * alone with parser.c): it allocates with malloc, reports through return
 * codes, and uses only the parser's public interface.
 */
#ifndef INGEST_SPLIT_H
#define INGEST_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser.h"

/*
 * A place where a part may start. A parser created with the same options but
 * first_line = line, fed the input from offset on, gives the same records
 * (fields, errors, line numbers) as the whole-input parser gives from there;
 * record counts the records the whole-input parser completed before it
 * (the header and error records included), so a part numbers its records
 * record + 1, record + 2, ... as the whole input's parser would.
 */
typedef struct CsvsPoint
{
	uint64_t	offset;			/* bytes of the input before the part */
	int64_t		line;			/* first_line for the part's parser */
	int64_t		record;			/* records before the part */
} CsvsPoint;

typedef struct CsvsSplitter CsvsSplitter;

/*
 * A scan for at most max_parts - 1 cut points, the k-th at the first clean
 * record boundary at or after k * part_bytes (and after the previous point):
 * a line start outside quotes, after the skip_lines preamble, not at a byte
 * that could start a byte order mark. options as for csvp_create (first_line
 * included: the line after the preamble). NULL when out of memory.
 */
extern CsvsSplitter *csvs_create(const CsvpOptions *options, int64_t skip_lines,
								 uint64_t part_bytes, int max_parts);
extern void csvs_destroy(CsvsSplitter *s);

/* The input in order, in pieces of any size; false when out of memory. */
extern bool csvs_feed(CsvsSplitter *s, const char *buf, size_t len);

/*
 * End of input. The points found (none at the input's end), in order;
 * *npoints of them. The parts are [0, p[0].offset), [p[0].offset,
 * p[1].offset) ... [p[n-1].offset, end). false when out of memory.
 */
extern bool csvs_finish(CsvsSplitter *s, const CsvsPoint **points, int *npoints);

#endif							/* INGEST_SPLIT_H */
