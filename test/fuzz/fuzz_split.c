/*
 * fuzz_split.c
 *		libFuzzer harness for src/split.c: the cut points of a CSV file that
 *		several workers load in parts. Built alone with split.c and parser.c
 *		by test/fuzz/run.sh, as fuzz_parser.c is (with -DFUZZ_REPLAY: a main()
 *		that replays the inputs named on the command line).
 *
 * An input is a 4-byte header, then the data:
 *
 *	byte 0	bit 0: strict_quotes; bits 1-2: skip_lines (0-3); bit 3: ';' as
 *			the delimiter; bit 4: a small max_field_size (8)
 *	byte 1	part_bytes - 1 (1 to 256)
 *	byte 2	max_parts: 2 + (byte % 8)
 *	byte 3	seed of the chunk sizes the scan and the parts are fed in
 *
 * The invariant: the data parsed whole (after the preamble, as the loader
 * does) and the data parsed part by part, each part by a fresh parser whose
 * first line is its point's, give the same records: line numbers, error
 * lines, errors, fields (text, NULL, quoted); and each point's record count
 * is the number of records the whole parse completed before it. Points are
 * increasing and none lies at the end. A violation prints what differs and
 * aborts.
 */
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parser.h"
#include "split.h"

#define HEADER_LEN	4

static void
fail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_split: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
	} while (0)

/* Records serialized, for comparison; one entry per record, its start offset in buf. */
typedef struct Out
{
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t	   *starts;
	int64_t		n;
	size_t		ncap;
} Out;

static void
put(Out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap)
	{
		o->cap = (o->len + n) * 2 + 64;
		o->buf = realloc(o->buf, o->cap);
		CHECK(o->buf != NULL);
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void
collect(Out *o, CsvpParser *p)
{
	for (int i = 0; i < csvp_nrecords(p); i++)
	{
		const CsvpRecord *r = csvp_record(p, i);
		char		head[96];

		if ((size_t) o->n == o->ncap)
		{
			o->ncap = o->ncap * 2 + 16;
			o->starts = realloc(o->starts, o->ncap * sizeof(size_t));
			CHECK(o->starts != NULL);
		}
		o->starts[o->n++] = o->len;
		snprintf(head, sizeof(head), "[L%lld E%lld N%d X%d]", (long long) r->line,
				 (long long) r->error_line, r->nfields, (int) r->error);
		put(o, head, strlen(head));
		for (int f = 0; f < r->nfields; f++)
		{
			size_t		flen;
			bool		isnull;
			const char *t = csvp_field(p, r, f, &flen, &isnull);
			char		fh[48];

			snprintf(fh, sizeof(fh), "(%zu %d %d)", flen, (int) isnull,
					 (int) csvp_field_quoted(p, r, f));
			put(o, fh, strlen(fh));
			if (!isnull)
				put(o, t, flen);
		}
	}
	csvp_clear(p);
}

/* Chunk sizes from a small generator: 0 to 16 bytes, or all that is left. */
static size_t
next_chunk(uint32_t *state, size_t left)
{
	size_t		n;

	*state = *state * 1103515245u + 12345u;
	n = (*state >> 16) % 20;
	if (n > 16)
		return left;
	return n < left ? n : left;
}

/* Parse data whole or as one part (skip: the preamble's lines first); records into o. */
static void
parse_part(const CsvpOptions *opts, int64_t first_line, int64_t skip,
		   const char *data, size_t len, uint32_t seed, Out *o)
{
	CsvpOptions po = *opts;
	CsvpParser *p;
	size_t		pos = 0;
	bool		after_cr = false;

	po.first_line = first_line;
	p = csvp_create(&po);
	CHECK(p != NULL);
	while (pos < len)
	{
		size_t		n = next_chunk(&seed, len - pos);
		size_t		off = 0;

		if (skip > 0 || after_cr)
			off = csvp_skip_lines(data + pos, n, &skip, &after_cr);
		while (off < n)
		{
			size_t		k = csvp_feed(p, data + pos + off, n - off, INT_MAX);

			CHECK(k != (size_t) -1);
			off += k;
			collect(o, p);
		}
		pos += n;
	}
	CHECK(csvp_finish(p));
	collect(o, p);
	csvp_destroy(p);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CsvpOptions opts;
	int64_t		skip;
	uint64_t	part_bytes;
	int			max_parts;
	uint32_t	seed;
	const char *csv;
	size_t		len;
	Out			whole = {0};
	Out			parts = {0};
	CsvsSplitter *s;
	const CsvsPoint *points;
	int			npoints;
	size_t		pos = 0;

	if (size < HEADER_LEN)
		return 0;
	memset(&opts, 0, sizeof(opts));
	opts.delimiter = (data[0] & 8) ? ';' : ',';
	opts.quote = '"';
	opts.strict_quotes = (data[0] & 1) != 0;
	opts.max_field_size = (data[0] & 16) ? 8 : 0;
	opts.max_record_size = (data[0] & 16) ? 20 : 0;
	opts.max_fields = 8;
	skip = (data[0] >> 1) & 3;
	opts.first_line = 1 + skip;
	part_bytes = (uint64_t) data[1] + 1;
	max_parts = 2 + data[2] % 8;
	seed = data[3];
	csv = (const char *) data + HEADER_LEN;
	len = size - HEADER_LEN;

	parse_part(&opts, opts.first_line, skip, csv, len, seed, &whole);

	s = csvs_create(&opts, skip, part_bytes, max_parts);
	CHECK(s != NULL);
	while (pos < len)
	{
		size_t		n = next_chunk(&seed, len - pos);

		CHECK(csvs_feed(s, csv + pos, n));
		pos += n;
	}
	CHECK(csvs_finish(s, &points, &npoints));
	CHECK(npoints <= max_parts - 1);

	for (int i = 0; i <= npoints; i++)
	{
		uint64_t	start = i == 0 ? 0 : points[i - 1].offset;
		uint64_t	end = i == npoints ? len : points[i].offset;

		CHECK(start < end || (i == 0 && end == 0));
		if (i > 0)
		{
			if (points[i - 1].record != parts.n)
				fail("point %d at offset %llu: record %lld, but the parts before it gave %lld",
					 i - 1, (unsigned long long) start, (long long) points[i - 1].record,
					 (long long) parts.n);
			parse_part(&opts, points[i - 1].line, 0, csv + start, (size_t) (end - start), seed, &parts);
		}
		else
			parse_part(&opts, opts.first_line, skip, csv, (size_t) end, seed, &parts);
	}
	if (whole.n != parts.n || whole.len != parts.len ||
		(whole.len > 0 && memcmp(whole.buf, parts.buf, whole.len) != 0))
	{
		fprintf(stderr, "whole (%lld records): %.*s\n", (long long) whole.n, (int) whole.len, whole.buf);
		fprintf(stderr, "parts (%lld records): %.*s\n", (long long) parts.n, (int) parts.len, parts.buf);
		for (int i = 0; i < npoints; i++)
			fprintf(stderr, "point %d: offset %llu line %lld record %lld\n", i,
					(unsigned long long) points[i].offset, (long long) points[i].line,
					(long long) points[i].record);
		fail("the parts' records differ from the whole file's");
	}
	csvs_destroy(s);
	free(whole.buf);
	free(whole.starts);
	free(parts.buf);
	free(parts.starts);
	return 0;
}

#ifdef FUZZ_REPLAY

/* Without libFuzzer: run each input named on the command line (files, or directories of them) once. */
static void
replay_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	size_t		len = 0;
	size_t		cap = 0;
	size_t		n;

	if (f == NULL)
	{
		perror(path);
		exit(1);
	}
	do
	{
		if (len == cap)
		{
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			CHECK(buf != NULL);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	fprintf(stderr, "running %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
	free(buf);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
	{
		struct stat sb;
		DIR		   *d;
		struct dirent *e;

		if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode))
		{
			replay_file(argv[i]);
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL)
		{
			perror(argv[i]);
			return 1;
		}
		while ((e = readdir(d)) != NULL)
		{
			char		path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			replay_file(path);
		}
		closedir(d);
	}
	return 0;
}

#endif							/* FUZZ_REPLAY */
