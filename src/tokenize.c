/*
 * tokenize.c
 *		The parser's byte state machine (csvp_tokenize) and the storage of
 *		the records it finds: fields noted as offsets into a record's raw
 *		bytes, copied once, ended in place. parser.c holds the interface
 *		and documents the rules (COPY's quotes, NULLs, line numbers,
 *		limits); like it, this file needs nothing from the server.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "parser_internal.h"

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
size_t
csvp_tokenize(CsvpParser *p, const char *buf, size_t len, int max_records)
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
 * The input ended: a record in progress ends with it (a last record with no
 * line end), or fails (inside a quoted field).
 */
void
csvp_end_input(CsvpParser *p)
{
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
}
