/*
 * fuzz_parser.c
 *		libFuzzer harness for src/parser.c and tokenize.c: the code that turns bytes into CSV
 *		records and fields (our own tokenizer) and the checks of the CSV
 *		format options that options.c reports.
 *
 * parser.c and tokenize.c need nothing from the server, so this file is built
 * alone with them, under AddressSanitizer and UndefinedBehaviorSanitizer, by
 * test/fuzz/run.sh (which test/run-tests.sh runs as the "fuzz" suite). Built
 * with -DFUZZ_REPLAY instead of -fsanitize=fuzzer it gets a main() that runs
 * the inputs named on its command line (files, or directories of files) once
 * each: the seed corpus test/fuzz/corpus/ on a machine without libFuzzer.
 *
 * An input is an 8-byte header, then the null string, then the data:
 *
 *	byte 0	bits 0-1: 3 = round-trip mode (below), else raw mode;
 *			bit 2: a null string is given (its length: byte 3, bits 0-2);
 *			bit 3: size limits are given (bytes 3 to 5);
 *			bit 4: delimiter and quote are bytes 1 and 2 as they are, else
 *			those bytes pick from short lists of likely characters;
 *			bit 5: strict_quotes.
 *	byte 1	delimiter; byte 2 quote
 *	byte 3	bits 0-2: length of the null string; bits 3-7: max_fields
 *	byte 4	max_field_size; byte 5 max_record_size (0: no limit)
 *	byte 6	records per csvp_feed call: 1 to 4, or no limit
 *	byte 7	seed of the chunk sizes of the chunked run
 *
 * Raw mode parses the data as it is. Round-trip mode reads the data as
 * records (separated by 0xFF) of fields (separated by 0xFE; a field "\xFD" is
 * NULL), writes them as CSV with the options (quoting as needed, varying line
 * ends) and parses that; the records must come back as written.
 *
 * Each input is parsed twice: once in one csvp_feed call, once in chunks of
 * varying size (empty ones too) with few records per call and csvp_clear at
 * varying points, as the loader does. Every record is checked as it is
 * collected (line numbers, field sizes against the limits, NUL termination,
 * NULL flags), then the two runs must agree exactly (records, fields, line
 * numbers, bytes consumed, final line), and the one-piece run must agree with
 * an independent model when there is one: round-trip mode, raw data
 * without a quote character, or (no limits, not strict) a model of COPY's
 * own two steps, CopyReadLineText then CopyReadAttributesCSV. An input is
 * also parsed in the other quote mode: when the strict parse refused no
 * quote, the two must agree (strict only refuses; it never reads otherwise). A violation prints what differs and aborts, so
 * libFuzzer saves the input as a crash. With FUZZ_PARSER_DUMP=FILE set, the
 * CSV parsed (the data, or what round-trip mode wrote) is written to FILE.
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

#define HEADER_LEN	8

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static void
fail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_parser: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		fail("out of memory in the harness");
	return p;
}

/* ---------------------------------------------------------------- records */

typedef struct Field
{
	char	   *s;				/* a copy, NUL-terminated */
	size_t		len;
	bool		isnull;
	bool		quoted;
} Field;

typedef struct Rec
{
	int64_t		line;
	int64_t		error_line;
	CsvpRecordError error;
	int			nfields;
	Field	   *fields;
} Rec;

typedef struct RecList
{
	Rec		   *recs;
	int			n;
	int			cap;
} RecList;

static Rec *
add_rec(RecList *l)
{
	Rec		   *r;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 16;
		l->recs = xrealloc(l->recs, sizeof(Rec) * l->cap);
	}
	r = &l->recs[l->n++];
	memset(r, 0, sizeof(Rec));
	return r;
}

static void add_field_q(Rec *r, const char *s, size_t len, bool isnull, bool quoted);

static void
add_field(Rec *r, const char *s, size_t len, bool isnull)
{
	add_field_q(r, s, len, isnull, false);
}

static void
add_field_q(Rec *r, const char *s, size_t len, bool isnull, bool quoted)
{
	Field	   *f;

	r->fields = xrealloc(r->fields, sizeof(Field) * (r->nfields + 1));
	f = &r->fields[r->nfields++];
	f->s = xrealloc(NULL, len + 1);
	if (len > 0)
		memcpy(f->s, s, len);
	f->s[len] = '\0';
	f->len = len;
	f->isnull = isnull;
	f->quoted = quoted;
}

static void
free_recs(RecList *l)
{
	for (int i = 0; i < l->n; i++)
	{
		for (int j = 0; j < l->recs[i].nfields; j++)
			free(l->recs[i].fields[j].s);
		free(l->recs[i].fields);
	}
	free(l->recs);
	memset(l, 0, sizeof(RecList));
}

static void
print_rec(const char *what, int i, const Rec *r)
{
	fprintf(stderr, "  %s record %d: line %lld, error_line %lld, error %d, %d fields:",
			what, i, (long long) r->line, (long long) r->error_line, (int) r->error,
			r->nfields);
	for (int j = 0; j < r->nfields; j++)
	{
		fprintf(stderr, " %s%s[", r->fields[j].isnull ? "NULL" : "", r->fields[j].quoted ? "Q" : "");
		for (size_t k = 0; k < r->fields[j].len && k < 40; k++)
		{
			unsigned char c = (unsigned char) r->fields[j].s[k];

			fprintf(stderr, (c >= 0x20 && c < 0x7f && c != '\\') ? "%c" : "\\x%02x", c);
		}
		fprintf(stderr, "%s](%zu)", r->fields[j].len > 40 ? "..." : "", r->fields[j].len);
	}
	fprintf(stderr, "\n");
}

/* Abort, showing the first difference, unless a and b hold the same records. */
static void
compare_recs(const char *what, const RecList *a, const RecList *b)
{
	int			n = a->n < b->n ? a->n : b->n;

	for (int i = 0; i <= n; i++)
	{
		const Rec  *x = i < a->n ? &a->recs[i] : NULL;
		const Rec  *y = i < b->n ? &b->recs[i] : NULL;
		bool		same = true;

		if (x == NULL && y == NULL)
			return;
		if (x == NULL || y == NULL)
			same = false;
		else if (x->line != y->line || x->error_line != y->error_line ||
				 x->error != y->error || x->nfields != y->nfields)
			same = false;
		else
		{
			for (int j = 0; j < x->nfields && same; j++)
				same = x->fields[j].len == y->fields[j].len &&
					x->fields[j].isnull == y->fields[j].isnull &&
					x->fields[j].quoted == y->fields[j].quoted &&
					memcmp(x->fields[j].s, y->fields[j].s, x->fields[j].len) == 0;
		}
		if (!same)
		{
			fprintf(stderr, "fuzz_parser: %s: %d records against %d; first difference at record %d\n",
					what, a->n, b->n, i);
			if (x)
				print_rec("left", i, x);
			if (y)
				print_rec("right", i, y);
			fail("%s differ", what);
		}
	}
}

/* ---------------------------------------------------------------- set-up */

typedef struct Setup
{
	CsvpOptions opts;
	char		null_buf[8];
	int			records_per_feed;
	uint32_t	seed;
	bool		roundtrip;
} Setup;

static const char delimiters[] = {',', ';', '\t', '|', ' ', ':', 'x', '\''};
static const char quotes[] = {'"', '\'', '`', '$', ',', '~', 'a', '"'};

/*
 * Line ends in s[from..to): LF, CRLF and a lone CR each count once (an LF
 * right after a CR, s[from - 1] included, is part of a CRLF).
 */
static int64_t
count_line_ends_range(const char *s, size_t from, size_t to)
{
	int64_t		ends = 0;

	for (size_t i = from; i < to; i++)
	{
		if (s[i] == '\r')
			ends++;
		else if (s[i] == '\n' && !(i > 0 && s[i - 1] == '\r'))
			ends++;
	}
	return ends;
}

static int64_t
count_line_ends(const char *s, size_t n)
{
	return count_line_ends_range(s, 0, n);
}

static bool
is_null_text(const Setup *st, const char *s, size_t len)
{
	const char *ns = st->opts.null_string;

	return ns != NULL && ns[0] != '\0' && len == strlen(ns) && memcmp(s, ns, len) == 0;
}

/* The checks of one delimiter or quote string must agree with the whole. */
static void
check_option_checks(const uint8_t *h)
{
	char		s[3] = {(char) h[1], (char) h[2], '\0'};
	CsvpOptions o;

	for (int len = 0; len <= 2; len++)
	{
		char		t[3];
		const char *msg;

		memcpy(t, s, len);
		t[len] = '\0';
		msg = csvp_check_char(t);
		if (strlen(t) != 1)
		{
			CHECK(msg != NULL);
			continue;
		}
		memset(&o, 0, sizeof(o));
		o.delimiter = t[0];
		o.quote = (t[0] == '"') ? '\'' : '"';
		CHECK((msg == NULL) == (csvp_check_options(&o) == NULL));
		o.quote = t[0];
		o.delimiter = (t[0] == ',') ? ';' : ',';
		CHECK((msg == NULL) == (csvp_check_options(&o) == NULL));
	}
}

/* ---------------------------------------------------------------- parsing */

typedef struct Run
{
	const Setup *st;
	const char *input;
	size_t		input_len;
	RecList		recs;
	int64_t		last_line;
} Run;

/* Check and copy the records csvp_feed added since from. */
static void
collect(Run *run, CsvpParser *p, int from)
{
	const CsvpOptions *o = &run->st->opts;
	int			n = csvp_nrecords(p);

	CHECK(n >= from);
	for (int i = from; i < n; i++)
	{
		const CsvpRecord *r = csvp_record(p, i);
		Rec		   *out = add_rec(&run->recs);
		size_t		total = 0;

		CHECK(r->line >= 1);
		CHECK(r->line >= run->last_line);
		CHECK(r->error_line >= r->line);
		CHECK(r->error_line <= csvp_line(p));
		CHECK(r->error >= CSVP_OK && r->error <= CSVP_RECORD_TOO_LARGE);
		CHECK(r->nfields >= 0);
		if (r->error == CSVP_OK)
			CHECK(r->nfields >= 1);
		if (o->max_fields > 0)
		{
			CHECK(r->nfields <= o->max_fields);
			if (r->error == CSVP_TOO_MANY_FIELDS)
				CHECK(r->nfields == o->max_fields);
		}
		else
			CHECK(r->error != CSVP_TOO_MANY_FIELDS);
		if (o->max_record_size == 0)
			CHECK(r->error != CSVP_RECORD_TOO_LARGE);
		if (o->max_field_size == 0)
			CHECK(r->error != CSVP_FIELD_TOO_LARGE);
		run->last_line = r->line;
		out->line = r->line;
		out->error_line = r->error_line;
		out->error = r->error;

		for (int j = 0; j < r->nfields; j++)
		{
			size_t		len = 12345;
			bool		isnull = false;
			const char *s = csvp_field(p, r, j, &len, &isnull);
			bool		quoted = csvp_field_quoted(p, r, j);

			CHECK(s != NULL);
			/* COPY's rule: a field with a quote in it is never NULL */
			if (quoted)
				CHECK(!isnull);
			CHECK(len <= run->input_len);	/* quoting only ever removes bytes */
			CHECK(s[len] == '\0');
			if (o->max_field_size > 0)
				CHECK(len <= o->max_field_size);
			if (isnull)
			{
				if (o->null_string == NULL || o->null_string[0] == '\0')
					CHECK(len == 0);
				else
					CHECK(is_null_text(run->st, s, len));
			}
			else if (!quoted)
			{
				if (o->null_string != NULL && o->null_string[0] != '\0')
					CHECK(!is_null_text(run->st, s, len));
				else
					CHECK(len > 0);
			}
			total += len;
			add_field_q(out, s, len, isnull, quoted);
		}
		if (o->max_record_size > 0)
			CHECK(total <= o->max_record_size);
	}
}

static uint32_t
next_rand(uint32_t *state)
{
	uint32_t	x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* The whole input in one csvp_feed call, as many records as it has. */
static void
parse_one_piece(Run *run)
{
	CsvpParser *p = csvp_create(&run->st->opts);
	size_t		n;
	int			held;

	CHECK(p != NULL);
	n = csvp_feed(p, run->input, run->input_len, INT_MAX);
	CHECK(n == run->input_len);
	CHECK(csvp_bytes(p) == run->input_len);
	collect(run, p, 0);
	held = csvp_nrecords(p);
	CHECK(csvp_finish(p));
	collect(run, p, held);
	CHECK(csvp_bytes(p) == run->input_len);
	CHECK(csvp_line(p) == 1 + count_line_ends(run->input, run->input_len));
	csvp_destroy(p);
}

/*
 * Chunks of varying size, few records per call, csvp_clear when the parser
 * is full and sometimes before: what the loader does with reads of a file.
 */
static void
parse_chunked(Run *run)
{
	CsvpParser *p = csvp_create(&run->st->opts);
	uint32_t	rnd = run->st->seed;
	size_t		pos = 0;
	int			held = 0;		/* records already collected since csvp_clear */
	int			max = run->st->records_per_feed;

	CHECK(p != NULL);
	while (pos < run->input_len)
	{
		size_t		rem = run->input_len - pos;
		size_t		chunk;
		size_t		done = 0;

		switch (next_rand(&rnd) % 8)
		{
			case 0:
				chunk = 0;
				break;
			case 1:
				chunk = 1;
				break;
			case 2:
				chunk = 2;
				break;
			case 3:
				chunk = 1 + next_rand(&rnd) % 4;
				break;
			case 4:
				chunk = 1 + next_rand(&rnd) % 16;
				break;
			case 5:
				chunk = 1 + next_rand(&rnd) % 128;
				break;
			case 6:
				chunk = rem;
				break;
			default:
				chunk = 1 + next_rand(&rnd) % rem;
				break;
		}
		if (chunk > rem)
			chunk = rem;

		/* the loader feeds the rest of a read until it is all consumed */
		do
		{
			int			before = csvp_nrecords(p);
			size_t		n = csvp_feed(p, run->input + pos + done, chunk - done, max);

			CHECK(n != (size_t) -1);
			CHECK(n <= chunk - done);
			done += n;
			CHECK(csvp_bytes(p) == pos + done);
			/* stopping short is for a full parser only, and never for nothing */
			if (done < chunk)
				CHECK(csvp_nrecords(p) >= max);
			if (n == 0 && chunk > 0)
				CHECK(csvp_nrecords(p) > before || before >= max);
			collect(run, p, held);
			held = csvp_nrecords(p);
			if (held >= max || next_rand(&rnd) % 4 == 0)
			{
				csvp_clear(p);
				CHECK(csvp_nrecords(p) == 0);
				held = 0;
			}
		} while (done < chunk);
		pos += chunk;
	}
	CHECK(csvp_finish(p));
	collect(run, p, held);
	CHECK(csvp_bytes(p) == run->input_len);
	CHECK(csvp_line(p) == 1 + count_line_ends(run->input, run->input_len));
	csvp_destroy(p);
}

/* ---------------------------------------------------------------- models */

/*
 * What the parser must return for data without a quote character: a record
 * per non-empty line, split at each delimiter, the limits applied as
 * parser.c documents them. false when a field is over max_field_size (what
 * follows such a field depends on how libcsv noticed it).
 */
static bool
model_unquoted(const Setup *st, const char *s, size_t len, RecList *out)
{
	const CsvpOptions *o = &st->opts;
	size_t		pos = 0;
	int64_t		line = 1;

	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	if (memchr(s + pos, o->quote, len - pos) != NULL)
		return false;

	while (pos < len)
	{
		size_t		end = pos;
		size_t		next;

		while (end < len && s[end] != '\r' && s[end] != '\n')
			end++;
		next = end;
		if (next < len)
			next += (s[next] == '\r' && next + 1 < len && s[next + 1] == '\n') ? 2 : 1;

		if (end > pos)
		{
			Rec		   *r = add_rec(out);
			size_t		total = 0;
			size_t		f = pos;

			r->line = r->error_line = line;
			for (;;)
			{
				size_t		fe = f;
				bool		isnull;

				while (fe < end && s[fe] != o->delimiter)
					fe++;
				if (o->max_field_size > 0 && fe - f > o->max_field_size)
					return false;
				if (r->error == CSVP_OK)
				{
					if (o->max_fields > 0 && r->nfields >= o->max_fields)
						r->error = CSVP_TOO_MANY_FIELDS;
					else
					{
						total += fe - f;
						if (o->max_record_size > 0 && total > o->max_record_size)
							r->error = CSVP_RECORD_TOO_LARGE;
						else
						{
							if (o->null_string == NULL || o->null_string[0] == '\0')
								isnull = (fe == f);
							else
								isnull = is_null_text(st, s + f, fe - f);
							add_field(r, s + f, fe - f, isnull);
						}
					}
				}
				if (fe == end)
					break;
				f = fe + 1;
			}
		}
		line += (end < len);
		pos = next;
	}
	return true;
}

typedef struct Buf
{
	char	   *s;
	size_t		len;
	size_t		cap;
} Buf;

static void
put(Buf *b, const char *s, size_t len)
{
	if (b->s == NULL || b->len + len > b->cap)
	{
		b->cap = (b->len + len) * 2 + 64;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, len);
	b->len += len;
}

static void
put_quoted(Buf *b, char quote, const char *s, size_t len)
{
	put(b, &quote, 1);
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == quote)
			put(b, &quote, 1);
		put(b, &s[i], 1);
	}
	put(b, &quote, 1);
}

static bool
safe_unquoted(const CsvpOptions *o, char c)
{
	return c != o->delimiter && c != o->quote && c != '\r' && c != '\n';
}

/*
 * COPY's reading of quotes (not strict): a quoted section anywhere in a
 * field. Write text as an unquoted prefix, a quoted middle (maybe empty) and
 * an unquoted suffix, the unquoted parts free of special characters.
 */
static void
put_partly_quoted(Buf *b, const CsvpOptions *o, const char *s, size_t len, uint32_t *rnd)
{
	size_t		pre = 0;
	size_t		suf = 0;
	size_t		want_pre = next_rand(rnd) % (len + 1);
	size_t		want_suf = next_rand(rnd) % (len + 1);

	/* a leading 0xEF unquoted could complete a byte order mark */
	while (pre < want_pre && pre < len && safe_unquoted(o, s[pre]) &&
		   !(pre == 0 && (unsigned char) s[0] == 0xEF))
		pre++;
	while (suf < want_suf && pre + suf < len && safe_unquoted(o, s[len - 1 - suf]))
		suf++;
	put(b, s, pre);
	put_quoted(b, o->quote, s + pre, len - pre - suf);
	put(b, s + len - suf, suf);
}

/*
 * COPY's own reading (PostgreSQL's CopyReadLineText and
 * CopyReadAttributesCSV, quote and escape the same character), with ingest's
 * line ends (LF, CRLF, lone CR), blank lines skipped, a byte order mark
 * dropped and lines counted physically. Raw data, no limits, not strict.
 */
static void
model_copy(const Setup *st, const char *s, size_t len, RecList *out)
{
	const CsvpOptions *o = &st->opts;
	size_t		pos = 0;
	int64_t		line = 1;
	char	   *fbuf = xrealloc(NULL, len + 1);

	if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len)
	{
		/* step 1: one logical line, quotes kept, line ends inside quotes included */
		size_t		start = pos;
		size_t		end;
		bool		in_quote = false;
		int64_t		start_line = line;
		bool		unterminated;

		while (pos < len)
		{
			char		c = s[pos];

			if (c == o->quote)
				in_quote = !in_quote;
			else if (c == '\r' || c == '\n')
			{
				if (!in_quote)
					break;
				if (c == '\r' || !(pos > 0 && s[pos - 1] == '\r'))
					line++;
			}
			pos++;
		}
		end = pos;
		unterminated = in_quote;
		if (pos < len)
		{
			pos += (s[pos] == '\r' && pos + 1 < len && s[pos + 1] == '\n') ? 2 : 1;
		}
		if (end == start)
		{
			line += (pos > end);
			continue;			/* a blank line */
		}

		/* step 2: fields, as CopyReadAttributesCSV splits them */
		{
			Rec		   *r = add_rec(out);
			size_t		cur = start;

			r->line = start_line;
			r->error_line = line;
			for (;;)
			{
				size_t		flen = 0;
				bool		saw_quote = false;
				bool		found_delim = false;
				bool		cut = false;

				for (;;)
				{
					bool		to_quote = false;

					/* not in quote */
					while (cur < end)
					{
						char		c = s[cur++];

						if (c == o->delimiter)
						{
							found_delim = true;
							break;
						}
						if (c == o->quote)
						{
							saw_quote = to_quote = true;
							break;
						}
						fbuf[flen++] = c;
					}
					if (!to_quote)
						break;
					/* in quote: a doubled quote is one, a single one ends the section */
					for (;;)
					{
						char		c;

						if (cur >= end)
						{
							cut = true;
							break;
						}
						c = s[cur++];
						if (c == o->quote)
						{
							if (cur < end && s[cur] == o->quote)
							{
								fbuf[flen++] = o->quote;
								cur++;
								continue;
							}
							break;
						}
						fbuf[flen++] = c;
					}
					if (cut)
						break;
				}
				if (cut)
				{
					/* the logical line ended inside quotes: input ended there */
					r->error = CSVP_UNTERMINATED_QUOTE;
					break;
				}
				{
					bool		isnull;

					if (saw_quote)
						isnull = false;
					else if (o->null_string == NULL || o->null_string[0] == '\0')
						isnull = (flen == 0);
					else
						isnull = is_null_text(st, fbuf, flen);
					add_field_q(r, fbuf, flen, isnull, saw_quote);
				}
				if (!found_delim)
					break;
			}
			if (unterminated)
				CHECK(r->error == CSVP_UNTERMINATED_QUOTE);
		}
		line += (pos > end);
	}
	free(fbuf);
}

/*
 * Round-trip mode: write the records the data describes as CSV into out and
 * what parsing it must return into expect. false when no model applies (a
 * field over max_field_size).
 */
static bool
write_roundtrip(const Setup *st, const uint8_t *data, size_t len, Buf *out, RecList *expect)
{
	const CsvpOptions *o = &st->opts;
	const char *ns = (o->null_string != NULL && o->null_string[0] != '\0') ? o->null_string : NULL;
	uint32_t	rnd = st->seed * 2654435761u + 1;
	size_t		pos = 0;
	bool		model = true;
	size_t		counted = 0;	/* line ends of out->s[0..counted) are in ends */
	int64_t		ends = 0;

	while (pos < len)
	{
		const uint8_t *rend = memchr(data + pos, 0xFF, len - pos);
		size_t		rlen = rend ? (size_t) (rend - (data + pos)) : len - pos;
		size_t		start = out->len;
		size_t		f = pos;
		Rec			r;
		size_t		total = 0;
		bool		blank;
		static const char *const terminators[] = {"\n", "\r\n", "\r"};

		memset(&r, 0, sizeof(r));
		for (;;)
		{
			const uint8_t *fend = memchr(data + f, 0xFE, pos + rlen - f);
			size_t		flen = fend ? (size_t) (fend - (data + f)) : pos + rlen - f;
			const char *text = (const char *) data + f;
			bool		isnull = (flen == 1 && data[f] == 0xFD);
			bool		quoted = false;

			if (f > pos)
				put(out, &o->delimiter, 1);
			if (isnull)
			{
				/*
				 * An unquoted null string, unless it needs quotes to stay one
				 * field: quoted, it is text (COPY's rule).
				 */
				if (ns == NULL)
					;
				else if (strpbrk(ns, "\r\n") != NULL || (unsigned char) ns[0] == 0xEF)
				{
					put_quoted(out, o->quote, ns, strlen(ns));
					quoted = true;
					isnull = false;
				}
				else
					put(out, ns, strlen(ns));
				/* the parser gives the text read, flagged NULL */
				text = ns ? ns : "";
				flen = strlen(text);
			}
			else
			{
				bool		needs_quotes = (flen == 0 || (unsigned char) text[0] == 0xEF ||
											next_rand(&rnd) % 4 == 0);

				for (size_t i = 0; i < flen && !needs_quotes; i++)
					needs_quotes = (text[i] == o->delimiter || text[i] == o->quote ||
									text[i] == '\r' || text[i] == '\n');
				/* a field with a quote in it is never NULL (COPY's rule) */
				quoted = needs_quotes;
				isnull = !quoted && is_null_text(st, text, flen);
				if (needs_quotes && !o->strict_quotes && next_rand(&rnd) % 2 == 0)
					put_partly_quoted(out, o, text, flen, &rnd);
				else if (needs_quotes)
					put_quoted(out, o->quote, text, flen);
				else
					put(out, text, flen);
			}
			if (o->max_field_size > 0 && flen > o->max_field_size)
				model = false;
			if (r.error == CSVP_OK)
			{
				if (o->max_fields > 0 && r.nfields >= o->max_fields)
					r.error = CSVP_TOO_MANY_FIELDS;
				else if (o->max_record_size > 0 && (total += flen) > o->max_record_size)
					r.error = CSVP_RECORD_TOO_LARGE;
				else
					add_field_q(&r, text, flen, isnull, quoted);
			}
			if (fend == NULL)
				break;
			f = fend - data + 1;
		}

		/* a line with nothing on it is no record */
		blank = (out->len == start);
		if (!blank)
		{
			ends += count_line_ends_range(out->s, counted, start);
			r.line = 1 + ends;
			ends += count_line_ends_range(out->s, start, out->len);
			counted = out->len;
			r.error_line = 1 + ends;
			*add_rec(expect) = r;
		}
		else
		{
			for (int j = 0; j < r.nfields; j++)
				free(r.fields[j].s);
			free(r.fields);
		}
		if (rend != NULL || next_rand(&rnd) % 2 == 0)
		{
			const char *e = terminators[next_rand(&rnd) % 3];

			put(out, e, strlen(e));
		}
		pos += rlen + (rend != NULL);
	}
	return model;
}

/* ---------------------------------------------------------------- entry */

static void
read_setup(const uint8_t *h, Setup *st)
{
	memset(st, 0, sizeof(Setup));
	st->roundtrip = (h[0] & 0x03) == 3;
	st->opts.strict_quotes = (h[0] & 0x20) != 0;
	if (h[0] & 0x10)
	{
		st->opts.delimiter = (char) h[1];
		st->opts.quote = (char) h[2];
	}
	else
	{
		st->opts.delimiter = delimiters[h[1] % sizeof(delimiters)];
		st->opts.quote = quotes[h[2] % sizeof(quotes)];
	}
	if (h[0] & 0x08)
	{
		st->opts.max_fields = h[3] >> 3;
		st->opts.max_field_size = h[4];
		st->opts.max_record_size = h[5];
	}
	st->records_per_feed = (h[6] % 5 == 0) ? INT_MAX : h[6] % 5;
	st->seed = 0x9E3779B9u ^ ((uint32_t) h[7] * 0x01000193u);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Setup		st;
	size_t		null_len;
	Buf			input = {0};
	RecList		expect = {0};
	bool		model;
	Run			one = {0};
	Run			chunked = {0};

	if (size < HEADER_LEN)
		return 0;
	read_setup(data, &st);
	check_option_checks(data);

	null_len = data[3] & 0x07;
	if (data[0] & 0x04)
	{
		if (size < HEADER_LEN + null_len)
			return 0;
		memcpy(st.null_buf, data + HEADER_LEN, null_len);
		st.null_buf[null_len] = '\0';	/* a NUL inside shortens it */
		st.opts.null_string = st.null_buf;
	}
	else
		null_len = 0;
	data += HEADER_LEN + null_len;
	size -= HEADER_LEN + null_len;

	/* what options.c would refuse, csvp_create need not take */
	if (csvp_check_options(&st.opts) != NULL)
		return 0;

	put(&input, "", 0);			/* a buffer even for no data */
	if (st.roundtrip)
		model = write_roundtrip(&st, data, size, &input, &expect);
	else
	{
		put(&input, (const char *) data, size);
		model = model_unquoted(&st, input.s, input.len, &expect);
		if (!model && !st.opts.strict_quotes && st.opts.max_fields == 0 &&
			st.opts.max_field_size == 0 && st.opts.max_record_size == 0)
		{
			free_recs(&expect);
			model_copy(&st, input.s, input.len, &expect);
			model = true;
		}
	}

	/* to see what a failing input parses: FUZZ_PARSER_DUMP=file */
	if (getenv("FUZZ_PARSER_DUMP") != NULL)
	{
		FILE	   *f = fopen(getenv("FUZZ_PARSER_DUMP"), "wb");

		if (f != NULL)
		{
			fwrite(input.s, 1, input.len, f);
			fclose(f);
		}
	}

	one.st = chunked.st = &st;
	one.input = chunked.input = input.s;
	one.input_len = chunked.input_len = input.len;
	parse_one_piece(&one);
	parse_chunked(&chunked);
	compare_recs("one-piece and chunked parses", &one.recs, &chunked.recs);
	if (model)
		compare_recs("parse and model", &one.recs, &expect);

	/* strict_quotes only refuses: where it refused nothing, both modes read alike */
	{
		Setup		other = st;
		Run			alt = {0};
		const RecList *strict_recs;
		bool		refused = false;

		other.opts.strict_quotes = !st.opts.strict_quotes;
		alt.st = &other;
		alt.input = input.s;
		alt.input_len = input.len;
		parse_one_piece(&alt);
		strict_recs = st.opts.strict_quotes ? &one.recs : &alt.recs;
		for (int i = 0; i < strict_recs->n; i++)
			refused |= (strict_recs->recs[i].error == CSVP_BAD_QUOTE);
		if (!st.opts.strict_quotes)
			for (int i = 0; i < one.recs.n; i++)
				CHECK(one.recs.recs[i].error != CSVP_BAD_QUOTE);
		if (!refused)
			compare_recs("strict and COPY-mode parses", &one.recs, &alt.recs);
		free_recs(&alt.recs);
	}

	free_recs(&one.recs);
	free_recs(&chunked.recs);
	free_recs(&expect);
	free(input.s);
	return 0;
}

#ifdef FUZZ_REPLAY

/* Without libFuzzer: run each input named on the command line once. */
static int
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
		return 1;
	}
	do
	{
		if (len == cap)
		{
			cap = cap ? cap * 2 : 4096;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	fprintf(stderr, "running %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int			ran = 0;
	int			errors = 0;

	for (int i = 1; i < argc; i++)
	{
		struct stat sb;
		DIR		   *d;
		struct dirent *e;

		if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode))
		{
			errors += replay_file(argv[i]);
			ran++;
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL)
		{
			perror(argv[i]);
			errors++;
			continue;
		}
		while ((e = readdir(d)) != NULL)
		{
			char		path[PATH_MAX];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			errors += replay_file(path);
			ran++;
		}
		closedir(d);
	}
	fprintf(stderr, "fuzz_parser: %d inputs run, %d could not be read\n", ran, errors);
	return errors ? 1 : 0;
}

#endif							/* FUZZ_REPLAY */
