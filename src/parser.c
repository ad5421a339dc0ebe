/*
 * parser.c
 *		Bytes to CSV records with physical line numbers, around libcsv.
 *
 * The reader hands us chunks of a file; the loader takes complete records in
 * batches. libcsv does the CSV state machine; this file adds what it lacks:
 *
 * - Line numbers. libcsv has no notion of position, so we feed it one
 *   physical line at a time (input split after every CR or LF, inside quotes
 *   too) and count line ends ourselves: LF, CRLF and a lone CR each end one
 *   line. A record starts on the line where libcsv was between records when we
 *   fed it, which is exactly how COPY numbers lines.
 * - Recovery. In strict mode libcsv stops at a stray quote and cannot resync;
 *   we turn the partial record into an error record, skip to the next line end
 *   and restart the parser there, so one bad line costs one record.
 * - COPY's view of whitespace (kept, not trimmed), NULL versus "", a field
 *   size limit, and a UTF-8 byte order mark before the first record.
 *
 * Nothing here may raise a PostgreSQL error: libcsv keeps its state in locals
 * until csv_parse returns, so a longjmp out of a callback would corrupt it.
 * The callbacks only copy bytes into malloc'd buffers and flag failures.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>

#include "parser.h"

#define LIBCSV_BLOCK_SIZE	(64 * 1024)
#define LIBCSV_ROW_NOT_BEGUN 0	/* libcsv's pstate between records */

static const char utf8_bom[3] = {'\xEF', '\xBB', '\xBF'};

struct CsvpParser
{
	struct csv_parser csv;
	unsigned char csv_options;
	char		delimiter;
	char		quote;
	char	   *null_string;
	size_t		null_len;
	size_t		max_field_size;
	size_t		max_record_size;
	int			max_fields;

	/*
	 * A record past a limit keeps parsing (to find where it ends) but stores
	 * nothing more: memory stays bounded by the limits, whatever the input.
	 */
	CsvpRecordError cur_overflow;
	size_t		cur_bytes;

	CsvpRecord *records;		/* complete records, in file order */
	int			nrecords;
	size_t		records_cap;

	CsvpField  *fields;			/* fields of those records, then of the one in progress */
	size_t		nfields;
	size_t		fields_cap;
	size_t		cur_first_field;	/* first field of the record in progress */

	char	   *data;			/* field texts, each NUL-terminated */
	size_t		data_len;
	size_t		data_cap;

	int64_t		line;			/* the physical line being read, 1-based */
	int64_t		cur_start;		/* line where the record in progress starts */
	bool		prev_cr;		/* the last byte consumed was a CR */
	bool		skip_to_eol;	/* recovering from a bad record */
	bool		oom;
	bool		bom_checked;	/* past the place of a byte order mark */
	int			bom_held;		/* bytes of one consumed but not parsed yet */
	uint64_t	bytes;
};

/*
 * libcsv's realloc hook has no context argument, and a process parses one
 * file at a time, so the limit lives in a static.
 *
 * The hook only bounds memory; field_cb applies the limit exactly. libcsv
 * keeps a quoted field's closing quote in its buffer until it sees the byte
 * after it, and wants a free byte before it reads any byte (the delimiter or
 * line end after a field too): a quoted field of the limit's size needs two
 * bytes more. With one more only, such a field was refused as too large.
 */
static size_t field_size_limit = 0;

/* Did the hook refuse for the limit (not because memory ran out)? */
static bool refused_for_limit = false;

static void *
limited_realloc(void *ptr, size_t size)
{
	if (field_size_limit > 0 && size > 2 && size - 2 > field_size_limit)
	{
		refused_for_limit = true;
		return NULL;
	}
	return realloc(ptr, size);
}

/* COPY keeps spaces and tabs around unquoted fields; libcsv would trim them. */
static int
never_space(unsigned char c)
{
	(void) c;
	return 0;
}

static void
init_libcsv(CsvpParser *p)
{
	csv_init(&p->csv, p->csv_options);
	csv_set_delim(&p->csv, (unsigned char) p->delimiter);
	csv_set_quote(&p->csv, (unsigned char) p->quote);
	csv_set_space_func(&p->csv, never_space);
	csv_set_blk_size(&p->csv, LIBCSV_BLOCK_SIZE);
	csv_set_realloc_func(&p->csv, limited_realloc);
	csv_set_free_func(&p->csv, free);
}

/* What is wrong with c as a delimiter or quote character. */
typedef enum CharProblem
{
	CHAR_OK,
	CHAR_NOT_SINGLE_BYTE,
	CHAR_LINE_END
} CharProblem;

static CharProblem
check_char(char c)
{
	/* NUL stands for an empty string here (and libcsv would take it) */
	if (c == '\0' || (unsigned char) c >= 0x80)
		return CHAR_NOT_SINGLE_BYTE;
	/* feeding libcsv line by line cuts the input at every CR and LF */
	if (c == '\r' || c == '\n')
		return CHAR_LINE_END;
	return CHAR_OK;
}

const char *
csvp_check_char(const char *s)
{
	if (strlen(s) != 1)
		return "must be a single one-byte character";
	switch (check_char(s[0]))
	{
		case CHAR_OK:
			break;
		case CHAR_NOT_SINGLE_BYTE:
			return "must be a single one-byte character";
		case CHAR_LINE_END:
			return "cannot be a newline or carriage return";
	}
	return NULL;
}

const char *
csvp_check_options(const CsvpOptions *options)
{
	switch (check_char(options->delimiter))
	{
		case CHAR_OK:
			break;
		case CHAR_NOT_SINGLE_BYTE:
			return "ingest option \"delimiter\" must be a single one-byte character";
		case CHAR_LINE_END:
			return "ingest option \"delimiter\" cannot be a newline or carriage return";
	}
	switch (check_char(options->quote))
	{
		case CHAR_OK:
			break;
		case CHAR_NOT_SINGLE_BYTE:
			return "ingest option \"quote\" must be a single one-byte character";
		case CHAR_LINE_END:
			return "ingest option \"quote\" cannot be a newline or carriage return";
	}
	if (options->delimiter == options->quote)
		return "ingest options \"delimiter\" and \"quote\" must differ";
	if (options->null_string != NULL &&
		(strchr(options->null_string, options->delimiter) != NULL ||
		 strchr(options->null_string, options->quote) != NULL))
		return "ingest option \"null\" cannot contain the delimiter or quote character";
	return NULL;
}

CsvpParser *
csvp_create(const CsvpOptions *options)
{
	CsvpParser *p = calloc(1, sizeof(CsvpParser));

	if (p == NULL)
		return NULL;
	p->delimiter = options->delimiter;
	p->quote = options->quote;
	p->max_field_size = options->max_field_size;
	p->max_record_size = options->max_record_size;
	p->max_fields = options->max_fields;
	field_size_limit = options->max_field_size;

	/*
	 * An empty null string means the default: an unquoted empty field is
	 * NULL, a quoted one ("") the empty string. libcsv tells those apart only
	 * for empty fields, so any other null string matches quoted fields too.
	 */
	if (options->null_string != NULL && options->null_string[0] != '\0')
	{
		p->null_string = strdup(options->null_string);
		if (p->null_string == NULL)
		{
			free(p);
			return NULL;
		}
		p->null_len = strlen(p->null_string);
	}
	p->csv_options = CSV_STRICT | CSV_STRICT_FINI |
		(p->null_string == NULL ? CSV_EMPTY_IS_NULL : 0);
	init_libcsv(p);
	/* lines skipped before the parser was fed still count: numbers stay physical */
	p->line = options->first_line > 0 ? options->first_line : 1;
	p->cur_start = p->line;
	return p;
}

void
csvp_destroy(CsvpParser *p)
{
	if (p == NULL)
		return;
	csv_free(&p->csv);
	free(p->records);
	free(p->fields);
	free(p->data);
	free(p->null_string);
	free(p);
}

static bool
grow(void **buf, size_t *cap, size_t need, size_t elem)
{
	size_t		newcap;
	void	   *n;

	if (need <= *cap)
		return true;
	newcap = *cap ? *cap : 64;
	while (newcap < need)
		newcap *= 2;
	n = realloc(*buf, newcap * elem);
	if (n == NULL)
		return false;
	*buf = n;
	*cap = newcap;
	return true;
}

static void
field_cb(void *s, size_t len, void *arg)
{
	CsvpParser *p = arg;
	CsvpField  *f;

	if (p->oom || p->cur_overflow != CSVP_OK)
		return;

	/*
	 * libcsv refuses a field that does not fit its buffer (limited_realloc),
	 * but that room is two bytes more than the limit, and libcsv checks it
	 * only before storing the next byte: a field at the very end of the input
	 * (no line end after it) comes from csv_fini unchecked. The exact limit
	 * is applied here.
	 */
	if (p->max_field_size > 0 && len > p->max_field_size)
	{
		p->cur_overflow = CSVP_FIELD_TOO_LARGE;
		return;
	}
	if (p->max_fields > 0 && p->nfields - p->cur_first_field >= (size_t) p->max_fields)
	{
		p->cur_overflow = CSVP_TOO_MANY_FIELDS;
		return;
	}
	p->cur_bytes += len;
	if (p->max_record_size > 0 && p->cur_bytes > p->max_record_size)
	{
		p->cur_overflow = CSVP_RECORD_TOO_LARGE;
		return;
	}
	if (!grow((void **) &p->fields, &p->fields_cap, p->nfields + 1, sizeof(CsvpField)) ||
		!grow((void **) &p->data, &p->data_cap, p->data_len + len + 1, 1))
	{
		p->oom = true;
		return;
	}
	f = &p->fields[p->nfields++];
	f->off = p->data_len;
	f->len = len;
	f->isnull = (s == NULL) ||
		(p->null_string != NULL && len == p->null_len &&
		 memcmp(s, p->null_string, len) == 0);
	if (len > 0)
		memcpy(p->data + p->data_len, s, len);
	p->data[p->data_len + len] = '\0';
	p->data_len += len + 1;
}

static void
add_record(CsvpParser *p, CsvpRecordError error)
{
	CsvpRecord *r;

	if (p->oom)
		return;
	if (!grow((void **) &p->records, &p->records_cap, (size_t) p->nrecords + 1,
			  sizeof(CsvpRecord)))
	{
		p->oom = true;
		return;
	}
	r = &p->records[p->nrecords++];
	r->line = p->cur_start;
	r->error_line = p->line;
	r->first_field = p->cur_first_field;
	r->nfields = (int) (p->nfields - p->cur_first_field);
	r->error = (error == CSVP_OK) ? p->cur_overflow : error;
	p->cur_first_field = p->nfields;
	p->cur_overflow = CSVP_OK;
	p->cur_bytes = 0;
}

static void
record_cb(int c, void *arg)
{
	(void) c;
	add_record((CsvpParser *) arg, CSVP_OK);
}

/* Count the line end c that closed a piece of piece_len bytes. */
static void
count_line_end(CsvpParser *p, char c, size_t piece_len)
{
	if (c == '\n' && p->prev_cr && piece_len == 1)
		p->prev_cr = false;		/* the LF of a CRLF: same line end */
	else
	{
		p->line++;
		p->prev_cr = (c == '\r');
	}
}

static const char *
find_line_end(const char *s, size_t len)
{
	const char *lf = memchr(s, '\n', len);
	const char *cr = memchr(s, '\r', lf ? (size_t) (lf - s) : len);

	return cr ? cr : lf;
}

/* Parse line by line up to len bytes; the bytes consumed. */
static size_t
feed_lines(CsvpParser *p, const char *buf, size_t len, int max_records)
{
	size_t		pos = 0;

	while (pos < len && p->nrecords < max_records)
	{
		const char *start = buf + pos;
		size_t		rem = len - pos;
		const char *eol = find_line_end(start, rem);
		size_t		piece = eol ? (size_t) (eol - start) + 1 : rem;
		size_t		n;

		if (p->skip_to_eol)
		{
			/* after a bad record: drop the rest of its line, restart there */
			pos += piece;
			if (eol)
			{
				count_line_end(p, *eol, piece);
				p->skip_to_eol = false;
			}
			else
				p->prev_cr = false;
			continue;
		}

		if (p->csv.pstate == LIBCSV_ROW_NOT_BEGUN)
			p->cur_start = p->line;

		refused_for_limit = false;
		n = csv_parse(&p->csv, start, piece, field_cb, record_cb, p);
		if (p->oom)
			return pos;

		if (n < piece)
		{
			int			status = csv_error(&p->csv);

			/* memory that really ran out fails the load; only the limit rejects a record */
			if (status == CSV_ENOMEM && !refused_for_limit)
			{
				p->oom = true;
				return pos;
			}
			add_record(p, status == CSV_EPARSE ? CSVP_BAD_QUOTE : CSVP_FIELD_TOO_LARGE);
			if (p->oom)
				return pos;
			csv_free(&p->csv);
			init_libcsv(p);
			p->skip_to_eol = true;
			/* resume at the offending byte; the skip consumes the line's rest */
			pos += n;

			/*
			 * The bytes before it were no line end. Left set after a lone CR
			 * ended the previous line, prev_cr made the skip take an LF that
			 * was the offending byte for the second half of a CRLF, and every
			 * later line number was one short.
			 */
			if (n > 0)
				p->prev_cr = false;
			continue;
		}

		pos += piece;
		if (eol)
			count_line_end(p, *eol, piece);
		else
			p->prev_cr = false;
	}
	return pos;
}

/*
 * The input did not start with a byte order mark after all: parse the bytes
 * of one that were held back. They are non-ASCII, so (csvp_check_options) no
 * delimiter, quote or line end: at the start of the input they only begin an
 * unquoted field, and no record can end or fail here whatever max_records.
 */
static void
release_bom_bytes(CsvpParser *p)
{
	int			held = p->bom_held;

	p->bom_held = 0;
	if (held > 0)
		feed_lines(p, utf8_bom, (size_t) held, INT_MAX);
}

size_t
csvp_feed(CsvpParser *p, const char *buf, size_t len, int max_records)
{
	size_t		pos = 0;

	if (p->oom)
		return (size_t) -1;

	/*
	 * A UTF-8 byte order mark before the first record is dropped. A feed may
	 * end inside it (a short read, or a file of one or two bytes), so it is
	 * matched byte by byte across calls: matching bytes are consumed but held
	 * back until the mark is complete (then dropped) or a byte differs (then
	 * they were data). Deciding on the first feed alone made the records
	 * depend on how the input was cut.
	 */
	if (!p->bom_checked)
	{
		while (pos < len && p->bom_held < 3 && buf[pos] == utf8_bom[p->bom_held])
		{
			pos++;
			p->bom_held++;
		}
		if (p->bom_held == 3)
		{
			p->bom_checked = true;
			p->bom_held = 0;
		}
		else if (pos < len)
		{
			p->bom_checked = true;
			release_bom_bytes(p);
		}
	}

	pos += feed_lines(p, buf + pos, len - pos, max_records);
	if (p->oom)
		return (size_t) -1;
	p->bytes += pos;
	return pos;
}

bool
csvp_finish(CsvpParser *p)
{
	if (p->oom)
		return false;
	if (!p->bom_checked)
	{
		/* the input was one or two bytes of a byte order mark: data */
		p->bom_checked = true;
		release_bom_bytes(p);
		if (p->oom)
			return false;
	}
	if (p->skip_to_eol)
	{
		p->skip_to_eol = false;
		return true;
	}
	if (csv_fini(&p->csv, field_cb, record_cb, p) != 0)
	{
		/* input ended inside a quoted field */
		add_record(p, CSVP_UNTERMINATED_QUOTE);
		csv_free(&p->csv);
		init_libcsv(p);
	}
	return !p->oom;
}

int
csvp_nrecords(const CsvpParser *p)
{
	return p->nrecords;
}

const CsvpRecord *
csvp_record(const CsvpParser *p, int i)
{
	return &p->records[i];
}

const char *
csvp_field(const CsvpParser *p, const CsvpRecord *rec, int i, size_t *len, bool *isnull)
{
	const CsvpField *f = &p->fields[rec->first_field + i];

	*len = f->len;
	*isnull = f->isnull;
	return p->data + f->off;
}

void
csvp_clear(CsvpParser *p)
{
	size_t		keep = p->nfields - p->cur_first_field;

	if (keep > 0)
	{
		size_t		base = p->fields[p->cur_first_field].off;

		memmove(p->data, p->data + base, p->data_len - base);
		p->data_len -= base;
		memmove(p->fields, p->fields + p->cur_first_field, keep * sizeof(CsvpField));
		for (size_t i = 0; i < keep; i++)
			p->fields[i].off -= base;
	}
	else
		p->data_len = 0;
	p->nfields = keep;
	p->cur_first_field = 0;
	p->nrecords = 0;
}

int64_t
csvp_line(const CsvpParser *p)
{
	return p->line;
}

uint64_t
csvp_bytes(const CsvpParser *p)
{
	return p->bytes;
}

const char *
csvp_error_message(CsvpRecordError error)
{
	switch (error)
	{
		case CSVP_OK:
			return "no error";
		case CSVP_BAD_QUOTE:
			return "unexpected quote character: a quote inside an unquoted field, or text after a closing quote";
		case CSVP_UNTERMINATED_QUOTE:
			return "unterminated quoted field at end of input";
		case CSVP_FIELD_TOO_LARGE:
			return "field too large";
		case CSVP_TOO_MANY_FIELDS:
			return "too many fields in one record";
		case CSVP_RECORD_TOO_LARGE:
			return "record too large";
	}
	return "unknown parse error";
}

size_t
csvp_held_bytes(const CsvpParser *p)
{
	return p->data_len + p->nfields * sizeof(CsvpField);
}
