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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
	size_t		max_field_size; /* SIZE_MAX: no limit */
	size_t		max_record_size;	/* SIZE_MAX: no limit */
	int			max_fields;

	TokState	state;

	/*
	 * The record in progress is not copied field by field: the tokenizer
	 * only notes where each field starts and ends in the record's raw bytes
	 * ("raw offsets", from the record's first byte), and the raw bytes are
	 * copied into data in one piece, at the end of the record or of the
	 * bytes fed. Then each field is ended in place: its terminating
	 * delimiter or line end becomes its NUL, and a field with a quote in it
	 * has its quotes taken out (the text only gets shorter). So data holds
	 * the records as the file has them, each byte copied once. The limits
	 * count text bytes, as before, so a record within them may hold up to
	 * three times max_record_size here (`""x` is one text byte), the price
	 * of not copying each field on its own; csvp_held_bytes counts the raw
	 * bytes where they are more, so that batches stay bounded by them.
	 */
	size_t		rec_data_off;	/* start of the record in progress in data */
	size_t		rec_raw;		/* raw offset of the next byte to tokenize */
	size_t		carried;		/* raw bytes of the record in data */
	size_t		seg_start;		/* in the bytes being tokenized: the first not in data */
	size_t		keep_raw;		/* raw bytes its stored fields need, NULs included */
	size_t		fstart;			/* raw offset of the field in progress */
	size_t		fsyntax;		/* its quote characters that are not data */
	bool		field_quoted;	/* a quote seen in the field in progress */

	/*
	 * A record past a limit keeps parsing (to find where it ends) but stores
	 * nothing more: memory stays bounded by the limits, whatever the input.
	 */
	CsvpRecordError cur_overflow;
	size_t		cur_bytes;		/* text bytes of the record's stored fields */
	bool		over_in_field;	/* the field in progress made the record too large */

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
	size_t		text_held;		/* text and NUL bytes of the stored fields */
	size_t		partial_len;	/* text bytes of the field in progress when the last feed ended */

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

/* Is a record in progress, its fields still being stored? */
static inline bool
storing(const CsvpParser *p)
{
	return p->state != TS_RECORD_START && p->state != TS_SKIP &&
		p->cur_overflow == CSVP_OK && !p->oom;
}

/*
 * Copy the record's raw bytes of buf from seg_start up to (not including)
 * buf[upto] into data.
 */
static void
copy_raw(CsvpParser *p, const char *buf, size_t upto)
{
	size_t		n = upto - p->seg_start;

	if (n == 0)
		return;
	if (p->data_len + n > p->data_cap &&
		!grow((void **) &p->data, &p->data_cap, p->data_len + n, 1))
	{
		p->oom = true;
		return;
	}
	memcpy(p->data + p->data_len, buf + p->seg_start, n);
	p->data_len += n;
	p->carried += n;
	p->seg_start = upto;
}

/*
 * Make data hold exactly the raw bytes the record's stored fields need
 * (keep_raw of them), copying what is still in buf (up to buf[avail]) and
 * dropping what is not needed (a field that was not stored). The last byte
 * needed is the last field's terminator, which the end of input may not
 * have: its place is made.
 */
static void
keep_stored(CsvpParser *p, const char *buf, size_t avail)
{
	if (p->carried < p->keep_raw && buf != NULL)
	{
		size_t		upto = p->seg_start + (p->keep_raw - p->carried);

		copy_raw(p, buf, upto < avail ? upto : avail);
		if (p->oom)
			return;
	}
	if (p->carried < p->keep_raw &&
		!grow((void **) &p->data, &p->data_cap, p->rec_data_off + p->keep_raw, 1))
	{
		p->oom = true;
		return;
	}
	p->data_len = p->rec_data_off + p->keep_raw;
	p->carried = p->keep_raw;
}

/* The record in progress broke a limit: drop the field in progress, store no more. */
static void
overflow(CsvpParser *p, CsvpRecordError error, const char *buf, size_t avail)
{
	keep_stored(p, buf, avail);
	p->cur_overflow = error;
}

/*
 * Which limit, if any, a field of len text bytes breaks, the record having
 * cur_bytes before it. The limits were once checked byte by byte (the first
 * byte past either limit, the field's on a tie, and a field that makes the
 * record too large and then gets past its own limit is too large itself);
 * that comes to this: past its own limit, the field is too large, else past
 * the record's, the record is.
 */
static inline CsvpRecordError
limit_broken(const CsvpParser *p, size_t len)
{
	if (len > p->max_field_size)
		return CSVP_FIELD_TOO_LARGE;
	/* cur_bytes is within the limit: no overflow */
	if (len > p->max_record_size - p->cur_bytes)
		return CSVP_RECORD_TOO_LARGE;
	return CSVP_OK;
}

/* A field begins at buf[pos]; raw is the raw offset of that byte. */
static inline void
start_field(CsvpParser *p, size_t raw)
{
	p->fstart = raw;
	p->fsyntax = 0;
	p->field_quoted = false;
}

/* end_field's cases other than a field stored with room for it. */
static void
end_field_slow(CsvpParser *p, size_t raw_end, size_t len, const char *buf, size_t avail)
{
	CsvpRecordError broken;

	if (p->oom)
		return;
	if (p->cur_overflow != CSVP_OK)
	{
		/* the field that made the record too large may be too large itself */
		if (p->over_in_field && len > p->max_field_size)
			p->cur_overflow = CSVP_FIELD_TOO_LARGE;
		p->over_in_field = false;
		return;
	}
	broken = limit_broken(p, len);
	if (broken != CSVP_OK)
	{
		overflow(p, broken, buf, avail);
		return;
	}
	if (!grow((void **) &p->fields, &p->fields_cap, p->nfields + 1, sizeof(CsvpField)))
	{
		p->oom = true;
		return;
	}
}

/*
 * The field in progress ends at raw offset raw_end (its terminator, a
 * delimiter or line end, or the end of input). Its text is stored when the
 * record ends (finish_fields); here only its place and whether it fits.
 * Inline, for every field of every record comes here.
 */
static inline void
end_field(CsvpParser *p, size_t raw_end, const char *buf, size_t avail)
{
	CsvpField  *f;
	size_t		rawlen = raw_end - p->fstart;
	size_t		len = rawlen - p->fsyntax;

	if (p->cur_overflow != CSVP_OK || p->oom || p->nfields >= p->fields_cap ||
		limit_broken(p, len) != CSVP_OK)
	{
		end_field_slow(p, raw_end, len, buf, avail);
		if (p->cur_overflow != CSVP_OK || p->oom)
			return;
	}
	f = &p->fields[p->nfields++];
	/* raw offset and length until finish_fields */
	f->off = p->fstart;
	f->len = p->field_quoted ? rawlen : len;
	f->quoted = p->field_quoted;
	p->cur_bytes += len;
	p->text_held += len + 1;
	p->keep_raw = raw_end + 1;
}

/* After a delimiter: a next field, if the record may have one. */
static inline void
next_field(CsvpParser *p, size_t raw_end, const char *buf, size_t avail)
{
	end_field(p, raw_end, buf, avail);
	if (p->cur_overflow == CSVP_OK && p->max_fields > 0 &&
		p->nfields - p->cur_first_field >= (size_t) p->max_fields)
		overflow(p, CSVP_TOO_MANY_FIELDS, buf, avail);
	start_field(p, raw_end + 1);
}

/*
 * Take the quote characters that are not data out of a field's raw text, in
 * place: COPY's reading, where a quote opens or closes a quoted section
 * anywhere and a doubled quote inside one is one quote. The text's length.
 */
static size_t
unquote(char *s, size_t rawlen, char quote)
{
	size_t		i = 0;
	size_t		o;
	bool		inside = false;
	char	   *q = memchr(s, quote, rawlen);

	if (q == NULL)
		return rawlen;
	o = i = (size_t) (q - s);
	while (i < rawlen)
	{
		char		c = s[i++];

		if (c != quote)
			s[o++] = c;
		else if (!inside)
			inside = true;
		else if (i < rawlen && s[i] == quote)
		{
			s[o++] = quote;
			i++;
		}
		else
			inside = false;
	}
	return o;
}

/*
 * The record's stored fields, whose raw bytes data now holds from
 * rec_data_off: each gets its text in place, NUL-terminated, and its NULL
 * flag.
 */
static void
finish_fields(CsvpParser *p)
{
	for (size_t k = p->cur_first_field; k < p->nfields; k++)
	{
		CsvpField  *f = &p->fields[k];
		char	   *t;

		f->off += p->rec_data_off;
		t = p->data + f->off;
		if (f->quoted)
		{
			/* COPY's rule: a field with a quote in it is never NULL */
			f->len = unquote(t, f->len, p->quote);
			f->isnull = false;
		}
		else if (p->null_string == NULL)
			f->isnull = (f->len == 0);
		else
			f->isnull = (f->len == p->null_len &&
						 memcmp(t, p->null_string, f->len) == 0);
		t[f->len] = '\0';
	}
}

/*
 * The record in progress is complete (error: why it failed, or CSVP_OK);
 * buf[avail] is the first byte of buf not consumed, if buf is not NULL.
 */
static void
add_record(CsvpParser *p, CsvpRecordError error, const char *buf, size_t avail)
{
	CsvpRecord *r;

	keep_stored(p, buf, avail);
	if (p->oom)
		return;
	if (!grow((void **) &p->records, &p->records_cap, (size_t) p->nrecords + 1,
			  sizeof(CsvpRecord)))
	{
		p->oom = true;
		return;
	}
	finish_fields(p);
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
	p->rec_data_off = p->data_len;
	p->carried = 0;
	p->keep_raw = 0;
}

/* A record starts at buf[pos]. */
static inline void
start_record(CsvpParser *p, size_t pos)
{
	p->cur_start = p->line;
	p->rec_data_off = p->data_len;
	p->carried = 0;
	p->seg_start = pos;
	p->keep_raw = 0;
	start_field(p, 0);
}

/* strict_quotes: a stray quote or text after a closing quote at buf[pos]. */
static void
bad_quote(CsvpParser *p, const char *buf, size_t pos)
{
	add_record(p, CSVP_BAD_QUOTE, buf, pos);
	p->state = TS_SKIP;
}

/* A line end c at raw offset raw, buf[pos - 1], outside quotes ends the record in progress. */
static void
end_record(CsvpParser *p, char c, size_t raw, const char *buf, size_t pos)
{
	end_field(p, raw, buf, pos);
	add_record(p, CSVP_OK, buf, pos);
	p->line++;
	p->prev_cr = (c == '\r');
	p->state = TS_RECORD_START;
}

/*
 * The end of the bytes fed, buf[pos] at raw offset raw; inside a record:
 * copy what it has of them, or
 * if the field in progress is already past a limit, drop it and store no
 * more (so a huge field is never held whole).
 */
static void
feed_ended(CsvpParser *p, const char *buf, size_t pos, size_t raw)
{
	size_t		len;
	CsvpRecordError broken;

	p->partial_len = 0;
	p->rec_raw = raw;
	if (!storing(p))
		return;
	len = raw - p->fstart - p->fsyntax;
	broken = limit_broken(p, len);
	if (broken != CSVP_OK)
	{
		overflow(p, broken, buf, pos);
		/* measure on: if the field gets past its own limit, say that instead */
		p->over_in_field = (broken == CSVP_RECORD_TOO_LARGE);
		return;
	}
	copy_raw(p, buf, pos);
	p->partial_len = len;
}

/*
 * The first byte from s[pos] on that is not data for cls, c1 and c2 being
 * the bytes other than CR and LF that are not (the delimiter and the quote;
 * the quote twice inside quotes); len if none. Sixteen bytes at a time where
 * SSE2 is there (every x86-64), for data is most of any file.
 */
static inline size_t
skip_data(const unsigned char *s, size_t pos, size_t len, const unsigned char *cls,
		  unsigned char c1, unsigned char c2)
{
#if defined(__SSE2__)
	if (pos + 16 <= len)
	{
		const __m128i v1 = _mm_set1_epi8((char) c1);
		const __m128i v2 = _mm_set1_epi8((char) c2);
		const __m128i vcr = _mm_set1_epi8('\r');
		const __m128i vlf = _mm_set1_epi8('\n');

		do
		{
			__m128i		x = _mm_loadu_si128((const __m128i *) (s + pos));
			__m128i		m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, v1), _mm_cmpeq_epi8(x, v2)),
										 _mm_or_si128(_mm_cmpeq_epi8(x, vcr), _mm_cmpeq_epi8(x, vlf)));
			int			mask = _mm_movemask_epi8(m);

			if (mask != 0)
				return pos + (size_t) __builtin_ctz((unsigned int) mask);
			pos += 16;
		} while (pos + 16 <= len);
	}
#endif
	while (pos < len && cls[s[pos]] == CL_DATA)
		pos++;
	return pos;
}

/*
 * Tokenize up to len bytes, stopping after max_records records; the bytes
 * consumed. One function on purpose, longer than the others: it is the byte
 * loop of a state machine (state in p, so a chunk may end anywhere), and
 * every byte of every file goes through it; split into calls per state it
 * would be slower and no easier to check against COPY's reading. The raw
 * offset of buf[i] in the record in progress is i + adj (wrapping unsigned
 * arithmetic: adj is minus the position where the record started).
 */
static size_t
tokenize(CsvpParser *p, const char *buf, size_t len, int max_records)
{
	const unsigned char *s = (const unsigned char *) buf;
	size_t		pos = 0;
	size_t		adj;

	p->seg_start = 0;
	adj = p->rec_raw;
#define RAW(i)	((size_t) (i) + adj)

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
				start_record(p, pos);
				adj = (size_t) 0 - pos;
				p->state = TS_FIELD_START;
				/* FALLTHROUGH */
			case TS_FIELD_START:
				if (p->strict && p->cls[c] == CL_QUOTE)
				{
					p->field_quoted = true;
					p->fsyntax++;
					p->state = TS_QUOTED;
					pos++;
					continue;
				}
				p->state = TS_UNQUOTED;
				/* FALLTHROUGH */
			case TS_UNQUOTED:
				{
					pos = skip_data(s, pos, len, p->cls, (unsigned char) p->delimiter,
									(unsigned char) p->quote);
					if (pos == len)
						break;
					c = s[pos++];
					switch (p->cls[c])
					{
						case CL_DELIM:
							next_field(p, RAW(pos - 1), buf, pos);
							p->state = TS_FIELD_START;
							break;
						case CL_QUOTE:
							if (p->strict)
							{
								pos--;
								bad_quote(p, buf, pos);
								break;
							}
							p->field_quoted = true;
							p->fsyntax++;
							p->state = TS_QUOTED;
							break;
						default:
							end_record(p, (char) c, RAW(pos - 1), buf, pos);
							break;
					}
				}
				break;
			case TS_QUOTED:
				{
					size_t		e = skip_data(s, pos, len, p->qcls, (unsigned char) p->quote,
											  (unsigned char) p->quote);

					if (e > pos)
					{
						p->prev_cr = false;
						pos = e;
					}
					if (pos == len)
						break;
					c = s[pos++];
					if (c == (unsigned char) p->quote)
					{
						/* the end of the section, or the first of a doubled quote */
						p->fsyntax++;
						p->prev_cr = false;
						p->state = TS_QUOTE_IN_QUOTED;
						break;
					}
					/* a line end inside quotes: data, and a physical line */
					if (c == '\r' || !p->prev_cr)
						p->line++;
					p->prev_cr = (c == '\r');
				}
				break;
			case TS_QUOTE_IN_QUOTED:
				if (c == (unsigned char) p->quote)
				{
					/* a doubled quote: the second is one quote character of data */
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
					next_field(p, RAW(pos - 1), buf, pos);
					p->state = TS_FIELD_START;
				}
				else if (c == '\r' || c == '\n')
					end_record(p, (char) c, RAW(pos - 1), buf, pos);
				else
				{
					pos--;
					bad_quote(p, buf, pos);
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
	if (!p->oom)
		feed_ended(p, buf, pos, RAW(pos));
#undef RAW
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
			end_field(p, p->rec_raw, NULL, 0);
			add_record(p, CSVP_OK, NULL, 0);
			break;
		case TS_QUOTED:
			/* input ended inside a quoted field */
			add_record(p, CSVP_UNTERMINATED_QUOTE, NULL, 0);
			break;
	}
	p->state = TS_RECORD_START;
	p->partial_len = 0;
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
