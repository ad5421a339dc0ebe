/*
 * parser.c
 *		Bytes to CSV records with physical line numbers.
 *
 * The reader hands us chunks of a file; the loader takes complete records in
 * batches. This is our own CSV tokenizer, a byte state machine that resumes
 * anywhere (a chunk may end inside a field, a quote or a CRLF), with:
 *
 * - COPY's reading of quotes (CopyReadAttributesCSV): a quote character
 *   starts or ends a quoted section anywhere in a field, so `1, "Smith, John"`
 *   gives ` Smith, John`, `"ab"cd` and `ab"cd"` give `abcd`; inside a quoted
 *   section a doubled quote is one quote (COPY's default ESCAPE is the quote;
 *   a backslash is data). With strict_quotes the old refusal instead: a quote
 *   may only open a field and close it, a quote inside an unquoted field or
 *   text after a closing quote makes the record a CSVP_BAD_QUOTE error, and
 *   the rest of that physical line is skipped, the next line starting afresh.
 * - NULL as COPY decides it: a field with no quote in it whose text is the
 *   null string (by default the empty string). A field with a quote in it is
 *   never NULL ("" is the empty string, "NULL" the word); csvp_field_quoted
 *   tells the caller, for COPY's FORCE_NULL.
 * - Line numbers. LF, CRLF and a lone CR each end one physical line, inside
 *   quoted fields too; a record is numbered by the line it starts on, and a
 *   line with nothing on it is no record. (COPY numbers a record by the line
 *   where it ends, refuses a file mixing line ends, and counts only its own
 *   line end inside quoted fields.)
 * - Limits: a field or record past max_field_size / max_record_size, or more
 *   than max_fields fields, makes the record an error record; parsing goes on
 *   to find where the record ends but stores nothing more, so memory stays
 *   bounded by the limits whatever the input.
 * - A UTF-8 byte order mark before the first record is dropped.
 *
 * This file is the interface; the byte state machine and the records'
 * storage are in tokenize.c. Nothing in either raises a PostgreSQL error:
 * the fuzzers build the two alone.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "parser_internal.h"

static const char utf8_bom[3] = {'\xEF', '\xBB', '\xBF'};

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
	/* NUL stands for an empty string here */
	if (c == '\0' || (unsigned char) c >= 0x80)
		return CHAR_NOT_SINGLE_BYTE;
	/* a line end always ends a line, whatever the state */
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

size_t
csvp_skip_lines(const char *buf, size_t len, int64_t *left, bool *after_cr)
{
	size_t		off = 0;

	while (off < len && (*left > 0 || *after_cr))
	{
		char		c = buf[off];

		if (*after_cr)
		{
			/* the CR ended a line already: an LF right after it is the same line end */
			*after_cr = false;
			if (c == '\n')
				off++;
			continue;
		}
		off++;
		if (c == '\n' || c == '\r')
		{
			(*left)--;
			*after_cr = (c == '\r');
		}
	}
	return off;
}

CsvpParser *
csvp_create(const CsvpOptions *options)
{
	CsvpParser *p = calloc(1, sizeof(CsvpParser));

	if (p == NULL)
		return NULL;
	p->delimiter = options->delimiter;
	p->quote = options->quote;
	p->strict = options->strict_quotes;
	p->max_field_size = options->max_field_size > 0 ? options->max_field_size : SIZE_MAX;
	p->max_record_size = options->max_record_size > 0 ? options->max_record_size : SIZE_MAX;
	p->max_fields = options->max_fields;

	/* an empty null string is the default: an unquoted empty field is NULL */
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

	p->cls[(unsigned char) p->delimiter] = CL_DELIM;
	p->cls[(unsigned char) p->quote] = CL_QUOTE;
	p->cls['\r'] = CL_CR;
	p->cls['\n'] = CL_LF;
	p->qcls[(unsigned char) p->quote] = CL_QUOTE;
	p->qcls['\r'] = CL_CR;
	p->qcls['\n'] = CL_LF;

	p->state = TS_RECORD_START;
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
	free(p->records);
	free(p->fields);
	free(p->data);
	free(p->null_string);
	free(p);
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
		csvp_tokenize(p, utf8_bom, (size_t) held, INT_MAX);
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

	pos += csvp_tokenize(p, buf + pos, len - pos, max_records);
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
	csvp_end_input(p);
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

bool
csvp_field_quoted(const CsvpParser *p, const CsvpRecord *rec, int i)
{
	return p->fields[rec->first_field + i].quoted;
}

void
csvp_clear(CsvpParser *p)
{
	size_t		keep = p->nfields - p->cur_first_field;
	size_t		base = p->rec_data_off;

	/*
	 * The record in progress: its raw bytes, and its stored fields, whose
	 * offsets stay raw ones until it is complete.
	 */
	if (base > 0)
	{
		memmove(p->data, p->data + base, p->data_len - base);
		p->data_len -= base;
		p->rec_data_off = 0;
	}
	if (keep > 0)
		memmove(p->fields, p->fields + p->cur_first_field, keep * sizeof(CsvpField));
	p->nfields = keep;
	p->cur_first_field = 0;
	p->nrecords = 0;
	p->text_held = p->cur_bytes + keep;
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
			return "unexpected quote character: a quote inside an unquoted field, or text after a closing quote (\"strict_quotes\": true)";
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

/*
 * The field texts (what a batch's values are made from) or, where more,
 * the raw bytes in data: a field's quotes stay there as gaps, so a file of
 * quoted fields holds more than its text (up to three raw bytes for a text
 * byte: `""x` gives x). Without quotes the two are equal.
 */
size_t
csvp_held_bytes(const CsvpParser *p)
{
	size_t		text = p->text_held + p->partial_len;

	return (text > p->data_len ? text : p->data_len) + p->nfields * sizeof(CsvpField);
}
