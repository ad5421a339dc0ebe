/*
 * parser.h
 *		Bytes to CSV records with physical line numbers: our own tokenizer,
 *		reading quotes the way COPY's CSV format does (or strictly).
 *
 * This interface needs nothing from the server: it allocates with malloc and
 * reports failures through return codes, so the fuzzer builds parser.c alone
 * and nothing in it ever has to raise a PostgreSQL error.
 */
#ifndef INGEST_PARSER_H
#define INGEST_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a record could not be parsed; CSVP_OK for a good one. */
typedef enum CsvpRecordError
{
	CSVP_OK = 0,
	CSVP_BAD_QUOTE,				/* strict_quotes: quote inside an unquoted field, or text after a closing quote */
	CSVP_UNTERMINATED_QUOTE,	/* input ended inside a quoted field */
	CSVP_FIELD_TOO_LARGE,		/* a field longer than the limit */
	CSVP_TOO_MANY_FIELDS,		/* more fields than any table can have */
	CSVP_RECORD_TOO_LARGE		/* a record longer than the limit */
} CsvpRecordError;

typedef struct CsvpField
{
	size_t		off;			/* offset of the NUL-terminated text in the data buffer */
	size_t		len;
	bool		isnull;
	bool		quoted;			/* a quote character was seen in it */
} CsvpField;

typedef struct CsvpRecord
{
	int64_t		line;			/* physical line (1-based) on which the record starts */
	int64_t		error_line;		/* line where a parse error was seen */
	size_t		first_field;	/* index into the field array */
	int			nfields;
	CsvpRecordError error;
} CsvpRecord;

typedef struct CsvpOptions
{
	char		delimiter;
	char		quote;
	const char *null_string;	/* NULL or "": an unquoted empty field is NULL;
								 * a field with a quote in it never is */
	bool		strict_quotes;	/* refuse a quote that does not open or close a whole field */
	size_t		max_field_size; /* 0: no limit but the allocator's */
	size_t		max_record_size;	/* bytes of all fields of a record; 0: none */
	int			max_fields;		/* fields kept per record; 0: no limit */
	int64_t		first_line;		/* the number of the first line fed; 0 means 1 */
} CsvpOptions;

typedef struct CsvpParser CsvpParser;

/*
 * The checks of the CSV format options, here rather than in options.c so
 * that the fuzzer can run them outside the server. Both return NULL when all
 * is well, else a static message that options.c reports as an error.
 *
 * csvp_check_char: s, the value given for the delimiter or the quote, must be
 * one single-byte character other than CR and LF. The message is the part
 * that follows 'ingest option "<key>" ', for example "cannot be a newline or
 * carriage return".
 *
 * csvp_check_options: the whole message. What csvp_create requires of its
 * options (delimiter and quote single-byte, not NUL, CR or LF, different from
 * each other; the null string contains neither); the size limits are not
 * checked.
 */
extern const char *csvp_check_char(const char *s);
extern const char *csvp_check_options(const CsvpOptions *options);

/*
 * Pass over *left lines of buf (a report's preamble before the parser is
 * fed), ending lines as the parser does: LF, CRLF, a lone CR. Resumable
 * across buffers: *after_cr says the last byte passed over was a CR, whose
 * LF may start the next buffer. Returns the bytes passed over.
 */
extern size_t csvp_skip_lines(const char *buf, size_t len, int64_t *left, bool *after_cr);

/* options must pass csvp_check_options. NULL when out of memory. */
extern CsvpParser *csvp_create(const CsvpOptions *options);
extern void csvp_destroy(CsvpParser *p);

/*
 * Parse up to len bytes, stopping early once max_records complete records are
 * held; returns the number of bytes consumed. Returns (size_t) -1 when memory
 * ran out (the parser is then unusable).
 */
extern size_t csvp_feed(CsvpParser *p, const char *buf, size_t len, int max_records);

/* End of input: completes a last record without a line end. false on out of memory. */
extern bool csvp_finish(CsvpParser *p);

extern int	csvp_nrecords(const CsvpParser *p);
extern const CsvpRecord *csvp_record(const CsvpParser *p, int i);
extern const char *csvp_field(const CsvpParser *p, const CsvpRecord *rec, int i,
							  size_t *len, bool *isnull);

/* Was there a quote character in field i of rec (COPY's FORCE_NULL needs it)? */
extern bool csvp_field_quoted(const CsvpParser *p, const CsvpRecord *rec, int i);

/* Forget the complete records, keeping a record still being parsed. */
extern void csvp_clear(CsvpParser *p);

/* Bytes the parser holds for its records (field texts, or their raw bytes
 * where more, and the fields' descriptors). */
extern size_t csvp_held_bytes(const CsvpParser *p);

/* Lines seen so far (the line the parser is on) and bytes consumed. */
extern int64_t csvp_line(const CsvpParser *p);
extern uint64_t csvp_bytes(const CsvpParser *p);

extern const char *csvp_error_message(CsvpRecordError error);

#endif							/* INGEST_PARSER_H */
