/*
 * convert.h
 *		Records to typed values, with each target column's input function.
 */
#ifndef INGEST_CONVERT_H
#define INGEST_CONVERT_H

#include "parser.h"
#include "target.h"

/* Why a record was not converted (convert_record returned false). */
typedef struct ConvertFailure
{
	int			sqlerrcode;
	char	   *message;		/* what is wrong with the record's shape, or */
	ErrorData  *edata;			/* the error an input function reported (16+) */
} ConvertFailure;

/*
 * What convert_chunk_valid carries from one chunk of the input to the next:
 * the first bytes of a character the chunk's end cut.
 */
typedef struct ConvertChunkCheck
{
	char		tail[8];
	int			tail_len;
} ConvertChunkCheck;

extern void convert_prepare(IngestColumns *cols, bool decimal_comma, MemoryContext cxt);
extern bool convert_record(const IngestColumns *cols, CsvpParser *parser,
						   const CsvpRecord *rec, int max_record_size,
						   const bool *force_null, const char *null_string,
						   bool check_text, Datum *values, bool *nulls, int *at_col,
						   ConvertFailure *failure);
extern char *convert_invalid_text(const char *s, size_t len);
extern bool convert_chunk_valid(ConvertChunkCheck *cc, const char *buf, size_t len);

#endif							/* INGEST_CONVERT_H */
