/*
 * split.c
 *		Cut points of a CSV file for a load by several workers: one scan of the
 *		file with the parser (parser.h, its public interface only) that stops
 *		near chosen byte offsets at the next clean record boundary and notes
 *		the line and record numbers there.
 *
 * Quotes decide where a record ends (a quoted field may hold line ends), and
 * line numbers count every physical line before a point, so a cut needs the
 * parser's state from the start of the file: the scan parses the whole file
 * once (parsing runs at hundreds of MB/s; a load at a few tens). A point is
 * taken only where a fresh parser is in the whole-file parser's state:
 *
 * - right after a record that ended at a line end outside quotes (a strict
 *   mode bad-quote record ends mid-line: the scan waits for the next one),
 * - past the line ends that follow (blank lines; the LF of a CRLF), so the
 *   part starts at a record's first byte and no CR is left pending,
 * - not at a 0xEF byte: a fresh parser would drop a UTF-8 byte order mark
 *   there, which the whole-file parser reads as data.
 *
 * The fuzzer (test/fuzz/fuzz_split.c) checks that parsing the parts, each
 * with its point's first line, gives the whole file's records exactly.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "split.h"

typedef enum SplitPhase
{
	SP_PREAMBLE,				/* passing over skip_lines lines */
	SP_SCAN,					/* parsing up to the next target offset */
	SP_RECORD_END,				/* past the target: until a record ends at a line end */
	SP_LINE_ENDS				/* after that record: the line ends that follow */
} SplitPhase;

struct CsvsSplitter
{
	CsvpParser *parser;
	SplitPhase	phase;
	int64_t		skip_left;
	bool		skip_after_cr;
	uint64_t	offset;			/* input bytes consumed */
	int64_t		records;		/* records completed */
	uint64_t	part_bytes;
	uint64_t	target;			/* the offset after which the next point is sought */
	int			max_points;
	CsvsPoint  *points;
	int			npoints;
	bool		oom;
};

CsvsSplitter *
csvs_create(const CsvpOptions *options, int64_t skip_lines,
			uint64_t part_bytes, int max_parts)
{
	CsvsSplitter *s = calloc(1, sizeof(CsvsSplitter));

	if (s == NULL)
		return NULL;
	s->parser = csvp_create(options);
	s->max_points = max_parts > 1 ? max_parts - 1 : 0;
	if (s->max_points > 0)
		s->points = malloc(sizeof(CsvsPoint) * (size_t) s->max_points);
	if (s->parser == NULL || (s->max_points > 0 && s->points == NULL))
	{
		csvs_destroy(s);
		return NULL;
	}
	s->skip_left = skip_lines;
	s->part_bytes = part_bytes > 0 ? part_bytes : 1;
	s->target = s->part_bytes;
	s->phase = skip_lines > 0 ? SP_PREAMBLE : SP_SCAN;
	return s;
}

void
csvs_destroy(CsvsSplitter *s)
{
	if (s == NULL)
		return;
	if (s->parser)
		csvp_destroy(s->parser);
	free(s->points);
	free(s);
}

/* Feed len bytes to the parser, at most max_records records; -1 on out of memory. */
static int64_t
feed(CsvsSplitter *s, const char *buf, size_t len, int max_records)
{
	size_t		n = csvp_feed(s->parser, buf, len, max_records);

	if (n == (size_t) -1)
	{
		s->oom = true;
		return -1;
	}
	s->records += csvp_nrecords(s->parser);
	csvp_clear(s->parser);
	s->offset += n;
	return (int64_t) n;
}

bool
csvs_feed(CsvsSplitter *s, const char *buf, size_t len)
{
	size_t		pos = 0;

	if (s->oom)
		return false;
	while (pos < len)
	{
		int64_t		n;

		switch (s->phase)
		{
			case SP_PREAMBLE:
				/* the LF of a CRLF that ends the preamble is the preamble's too */
				n = (int64_t) csvp_skip_lines(buf + pos, len - pos, &s->skip_left, &s->skip_after_cr);
				s->offset += (uint64_t) n;
				pos += (size_t) n;
				if (s->skip_left == 0 && !s->skip_after_cr)
					s->phase = SP_SCAN;
				break;

			case SP_SCAN:
				{
					size_t		want = len - pos;

					if (s->npoints < s->max_points)
					{
						if (s->offset >= s->target)
						{
							s->phase = SP_RECORD_END;
							break;
						}
						if (s->target - s->offset < want)
							want = (size_t) (s->target - s->offset);
					}
					if ((n = feed(s, buf + pos, want, INT_MAX)) < 0)
						return false;
					pos += (size_t) n;
				}
				break;

			case SP_RECORD_END:
				{
					int64_t		before = s->records;

					if ((n = feed(s, buf + pos, len - pos, 1)) < 0)
						return false;
					pos += (size_t) n;

					/*
					 * A record that ends at a line end consumed that line end
					 * last; a bad-quote record ends before its quote, which is
					 * never a line end.
					 */
					if (s->records > before && n > 0 &&
						(buf[pos - 1] == '\n' || buf[pos - 1] == '\r'))
						s->phase = SP_LINE_ENDS;
				}
				break;

			case SP_LINE_ENDS:
				{
					size_t		e = pos;

					while (e < len && (buf[e] == '\n' || buf[e] == '\r'))
						e++;
					if (e > pos)
					{
						/* blank lines and a CRLF's LF: the parser counts them */
						if ((n = feed(s, buf + pos, e - pos, INT_MAX)) < 0)
							return false;
						pos += (size_t) n;
						break;
					}
					if ((unsigned char) buf[pos] == 0xEF)
					{
						s->phase = SP_RECORD_END;
						break;
					}
					s->points[s->npoints].offset = s->offset;
					s->points[s->npoints].line = csvp_line(s->parser);
					s->points[s->npoints].record = s->records;
					s->npoints++;
					s->target = (s->offset / s->part_bytes + 1) * s->part_bytes;
					s->phase = SP_SCAN;
				}
				break;
		}
	}
	return true;
}

bool
csvs_finish(CsvsSplitter *s, const CsvsPoint **points, int *npoints)
{
	*points = s->points;
	*npoints = s->npoints;
	return !s->oom;
}
