/*
 * parser_internal.h
 *		The parser's state, shared by parser.c (the interface: options,
 *		feeding, the records) and tokenize.c (the byte state machine and the
 *		records' storage). Private to those two files.
 */
#ifndef INGEST_PARSER_INTERNAL_H
#define INGEST_PARSER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parser.h"

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

/* tokenize.c */
extern size_t csvp_tokenize(CsvpParser *p, const char *buf, size_t len, int max_records);
extern void csvp_end_input(CsvpParser *p);

#endif							/* INGEST_PARSER_INTERNAL_H */
