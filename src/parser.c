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
 * Nothing here raises a PostgreSQL error: the fuzzer builds this file alone.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "parser.h"

static const char utf8_bom[3] = {'\xEF', '\xBB', '\xBF'};

/* Byte classes: what the tokenizer stops at in a field. */
enum
{
	CL_DATA = 0,
	CL_DELIM,
	CL_QUOTE,
	CL_CR,
	CL_LF
};

typedef enum TokState
{
	TS_RECORD_START,			/* between records */
	TS_FIELD_START,				/* after a delimiter: nothing of the field yet */
	TS_UNQUOTED,				/* in a field, outside quotes */
	TS_QUOTED,					/* inside a quoted section */
	TS_QUOTE_IN_QUOTED,			/* a quote seen inside quotes: doubled, or the end */
	TS_SKIP						/* strict_quotes: the rest of a bad line */
} TokState;

struct CsvpParser
{
	unsigned char cls[256];		/* byte classes outside quotes */
	unsigned char qcls[256];	/* inside quotes (the delimiter is data there) */
	char		delimiter;
	char		quote;
	bool		strict;
	char	   *null_string;	/* NULL: the empty string */
	size_t		null_len;
	size_t		max_field_size;
	size_t		max_record_size;
	int			max_fields;

	TokState	state;
	bool		field_quoted;	/* a quote seen in the field in progress */
	size_t		field_off;		/* its text's start in data */

	/*
	 * A record past a limit keeps parsing (to find where it ends) but stores
	 * nothing more: memory stays bounded by the limits, whatever the input.
	 */
	CsvpRecordError cur_overflow;
	size_t		cur_bytes;		/* bytes of the record's stored fields */
	size_t		over_field_len; /* length of a field that made the record too large */
	bool		over_in_field;	/* ... the field in progress did it */
	size_t		cur_rec_off;	/* start of the record in progress in data */

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
	bool		oom;
	bool		bom_checked;	/* past the place of a byte order mark */
	int			bom_held;		/* bytes of one consumed but not parsed yet */
	uint64_t	bytes;
};

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
	p->max_field_size = options->max_field_size;
	p->max_record_size = options->max_record_size;
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

/* The record in progress broke a limit: drop the field in progress, store no more. */
static void
overflow(CsvpParser *p, CsvpRecordError error)
{
	p->cur_overflow = error;
	p->data_len = p->field_off;
}

/*
 * Add n bytes of text to the field in progress. The limits are decided per
 * byte (the first byte past either limit, the field's first on a tie), so the
 * outcome does not depend on how the input was cut into pieces.
 */
static inline void
append(CsvpParser *p, const char *s, size_t n)
{
	size_t		flen;

	if (p->cur_overflow != CSVP_OK || n == 0)
	{
		/* the field limit is checked before the record's (as at a field's end) */
		if (p->over_in_field)
		{
			p->over_field_len += n;
			if (p->over_field_len > p->max_field_size)
			{
				p->cur_overflow = CSVP_FIELD_TOO_LARGE;
				p->over_in_field = false;
			}
		}
		return;
	}
	flen = p->data_len - p->field_off;
	if (p->max_field_size > 0 || p->max_record_size > 0)
	{
		size_t		ffit = SIZE_MAX;
		size_t		rfit = SIZE_MAX;

		if (p->max_field_size > 0)
			ffit = p->max_field_size > flen ? p->max_field_size - flen : 0;
		if (p->max_record_size > 0)
			rfit = p->max_record_size > p->cur_bytes + flen ?
				p->max_record_size - p->cur_bytes - flen : 0;
		if (n > ffit || n > rfit)
		{
			if (n > ffit)
				overflow(p, CSVP_FIELD_TOO_LARGE);
			else
			{
				/* measure on: if the field gets past its own limit, say that instead */
				overflow(p, CSVP_RECORD_TOO_LARGE);
				p->over_in_field = (p->max_field_size > 0);
				p->over_field_len = flen + n;
			}
			return;
		}
	}
	if (p->data_len + n + 1 > p->data_cap &&
		!grow((void **) &p->data, &p->data_cap, p->data_len + n + 1, 1))
	{
		p->oom = true;
		return;
	}
	memcpy(p->data + p->data_len, s, n);
	p->data_len += n;
}

/* The field in progress is complete. */
static void
end_field(CsvpParser *p)
{
	CsvpField  *f;
	size_t		len;
	bool		quoted = p->field_quoted;

	p->field_quoted = false;
	p->over_in_field = false;
	if (p->cur_overflow != CSVP_OK || p->oom)
		return;
	len = p->data_len - p->field_off;
	if (!grow((void **) &p->fields, &p->fields_cap, p->nfields + 1, sizeof(CsvpField)) ||
		!grow((void **) &p->data, &p->data_cap, p->data_len + 1, 1))
	{
		p->oom = true;
		return;
	}
	f = &p->fields[p->nfields++];
	f->off = p->field_off;
	f->len = len;
	f->quoted = quoted;
	/* COPY's rule: raw text equal to the null string, no quote seen */
	if (quoted)
		f->isnull = false;
	else if (p->null_string == NULL)
		f->isnull = (len == 0);
	else
		f->isnull = (len == p->null_len &&
					 memcmp(p->data + p->field_off, p->null_string, len) == 0);
	p->data[p->data_len++] = '\0';
	p->field_off = p->data_len;
	p->cur_bytes += len;
}

/* After a delimiter: a next field, if the record may have one. */
static void
next_field(CsvpParser *p)
{
	end_field(p);
	if (p->cur_overflow == CSVP_OK && p->max_fields > 0 &&
		p->nfields - p->cur_first_field >= (size_t) p->max_fields)
		overflow(p, CSVP_TOO_MANY_FIELDS);
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
	p->field_quoted = false;
	p->over_in_field = false;
	p->data_len = p->field_off;	/* drop a partial field of a failed record */
	p->cur_rec_off = p->field_off = p->data_len;
}

/* strict_quotes: a stray quote or text after a closing quote at the current byte. */
static void
bad_quote(CsvpParser *p)
{
	p->data_len = p->field_off;
	add_record(p, CSVP_BAD_QUOTE);
	p->state = TS_SKIP;
}

/* A line end c outside quotes ends the record in progress. */
static void
end_record(CsvpParser *p, char c)
{
	end_field(p);
	add_record(p, CSVP_OK);
	p->line++;
	p->prev_cr = (c == '\r');
	p->state = TS_RECORD_START;
}

/*
 * Tokenize up to len bytes, stopping after max_records records; the bytes
 * consumed. One function on purpose, longer than the others: it is the byte
 * loop of a state machine (state in p, so a chunk may end anywhere), and
 * every byte of every file goes through it; split into calls per state it
 * would be slower and no easier to check against COPY's reading.
 */
static size_t
tokenize(CsvpParser *p, const char *buf, size_t len, int max_records)
{
	const unsigned char *s = (const unsigned char *) buf;
	size_t		pos = 0;

	while (pos < len && p->nrecords < max_records && !p->oom)
	{
		unsigned char c = s[pos];

		switch (p->state)
		{
			case TS_RECORD_START:
				if (c == '\n')
				{
					/* the LF of a CRLF, or a blank line */
					if (!p->prev_cr)
						p->line++;
					p->prev_cr = false;
					pos++;
					continue;
				}
				if (c == '\r')
				{
					p->line++;
					p->prev_cr = true;
					pos++;
					continue;
				}
				p->prev_cr = false;
				p->cur_start = p->line;
				p->state = TS_FIELD_START;
				/* FALLTHROUGH */
			case TS_FIELD_START:
				if (p->strict && p->cls[c] == CL_QUOTE)
				{
					p->field_quoted = true;
					p->state = TS_QUOTED;
					pos++;
					continue;
				}
				p->state = TS_UNQUOTED;
				/* FALLTHROUGH */
			case TS_UNQUOTED:
				{
					size_t		e = pos;

					while (e < len && p->cls[s[e]] == CL_DATA)
						e++;
					append(p, buf + pos, e - pos);
					pos = e;
					if (pos == len)
						break;
					c = s[pos++];
					switch (p->cls[c])
					{
						case CL_DELIM:
							next_field(p);
							p->state = TS_FIELD_START;
							break;
						case CL_QUOTE:
							if (p->strict)
							{
								pos--;
								bad_quote(p);
								break;
							}
							p->field_quoted = true;
							p->state = TS_QUOTED;
							break;
						default:
							end_record(p, (char) c);
							break;
					}
				}
				break;
			case TS_QUOTED:
				{
					size_t		e = pos;

					while (e < len && p->qcls[s[e]] == CL_DATA)
						e++;
					if (e > pos)
					{
						append(p, buf + pos, e - pos);
						p->prev_cr = false;
						pos = e;
					}
					if (pos == len)
						break;
					c = s[pos++];
					if (c == (unsigned char) p->quote)
					{
						p->prev_cr = false;
						p->state = TS_QUOTE_IN_QUOTED;
						break;
					}
					/* a line end inside quotes: data, and a physical line */
					append(p, (const char *) &s[pos - 1], 1);
					if (c == '\r' || !p->prev_cr)
						p->line++;
					p->prev_cr = (c == '\r');
				}
				break;
			case TS_QUOTE_IN_QUOTED:
				if (c == (unsigned char) p->quote)
				{
					/* a doubled quote: one quote character of data */
					append(p, buf + pos, 1);
					pos++;
					p->state = TS_QUOTED;
					break;
				}
				/* the quoted section ended */
				if (!p->strict)
				{
					p->state = TS_UNQUOTED;
					break;
				}
				pos++;
				if (p->cls[c] == CL_DELIM)
				{
					next_field(p);
					p->state = TS_FIELD_START;
				}
				else if (c == '\r' || c == '\n')
					end_record(p, (char) c);
				else
				{
					pos--;
					bad_quote(p);
				}
				break;
			case TS_SKIP:
				{
					size_t		e = pos;

					while (e < len && s[e] != '\r' && s[e] != '\n')
						e++;
					pos = e;
					if (pos == len)
						break;
					c = s[pos++];
					p->line++;
					p->prev_cr = (c == '\r');
					p->state = TS_RECORD_START;
				}
				break;
		}
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
		tokenize(p, utf8_bom, (size_t) held, INT_MAX);
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

	pos += tokenize(p, buf + pos, len - pos, max_records);
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
	switch (p->state)
	{
		case TS_RECORD_START:
		case TS_SKIP:
			break;
		case TS_FIELD_START:
		case TS_UNQUOTED:
		case TS_QUOTE_IN_QUOTED:
			/* a last record without a line end */
			end_field(p);
			add_record(p, CSVP_OK);
			break;
		case TS_QUOTED:
			/* input ended inside a quoted field */
			add_record(p, CSVP_UNTERMINATED_QUOTE);
			break;
	}
	p->state = TS_RECORD_START;
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
	size_t		base = p->cur_rec_off;

	/* the record in progress: its fields and the text of the one not complete yet */
	if (base > 0)
	{
		memmove(p->data, p->data + base, p->data_len - base);
		p->data_len -= base;
		p->field_off -= base;
		p->cur_rec_off = 0;
	}
	if (keep > 0)
	{
		memmove(p->fields, p->fields + p->cur_first_field, keep * sizeof(CsvpField));
		for (size_t i = 0; i < keep; i++)
			p->fields[i].off -= base;
	}
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

size_t
csvp_held_bytes(const CsvpParser *p)
{
	return p->data_len + p->nfields * sizeof(CsvpField);
}
