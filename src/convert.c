/*
 * convert.c
 *		Records to typed values, as COPY converts them.
 *
 * Each value is built once, with its column's input function and typmod,
 * into the batch's Datum arrays, which the batch INSERT reads with no copy.
 * What is wrong with a record's shape (a parse error, too many or too few
 * fields, bytes that are not text in the database's encoding) is returned
 * to the caller, which sets the record aside or fails the job. So is a value
 * its input function refuses, on PostgreSQL 16 and later, where input
 * functions report bad input as soft errors: a bad value then costs no
 * subtransaction. An error an input function raises (any on 15; on 16 and
 * later one it cannot report softly, such as a domain check calling a
 * function that fails) is raised, with the column it was converting left in
 * *at_col so that the caller can name it.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"

#include "compat.h"
#include "convert.h"

/* Input functions for the columns whose types and typmods are set. */
void
convert_prepare(IngestColumns *cols, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	cols->infuncs = palloc0(sizeof(FmgrInfo) * cols->ncols);
	cols->ioparams = palloc0(sizeof(Oid) * cols->ncols);
	for (int j = 0; j < cols->ncols; j++)
	{
		Oid			infunc;

		getTypeInputInfo(cols->typids[j], &infunc, &cols->ioparams[j]);
		fmgr_info_cxt(infunc, &cols->infuncs[j], cxt);
	}
	MemoryContextSwitchTo(old);
}

/*
 * NULL if s is valid text in the server encoding, else what is wrong with it,
 * as PostgreSQL's own message says it: 'invalid byte sequence for encoding
 * "UTF8": 0xe2 0x82' (a NUL byte, which no text value can hold, is 0x00).
 */
char *
convert_invalid_text(const char *s, size_t len)
{
	int			enc = GetDatabaseEncoding();
	int			valid = pg_encoding_verifymbstr(enc, s, (int) len);
	const char *bad = s + valid;
	int			n;
	StringInfoData bytes;

	if ((size_t) valid >= len)
		return NULL;
	/* the character that starts there, as far as the field holds it (at most 8 bytes) */
	n = (*bad == '\0') ? 1 : pg_encoding_mblen(enc, bad);
	n = Min(Min(n, (int) (len - valid)), 8);
	initStringInfo(&bytes);
	for (int k = 0; k < n; k++)
		appendStringInfo(&bytes, "%s0x%02x", k ? " " : "", (unsigned char) bad[k]);
	return psprintf("invalid byte sequence for encoding \"%s\": %s",
					GetDatabaseEncodingName(), bytes.data);
}

static bool
fail(ConvertFailure *failure, int sqlerrcode, char *message)
{
	failure->sqlerrcode = sqlerrcode;
	failure->message = message;
	failure->edata = NULL;
	return false;
}

/*
 * Convert rec into values/nulls (ncols each). Returns false, with the reason
 * in *failure, when the record's shape is wrong.
 *
 * In COPY's order: too many fields is refused first; the values are then
 * converted column by column, and too few fields is found at the first
 * column without one, so a bad value before it is what the record is
 * refused for (22P02, say, rather than 22P04). A zero-column table takes no
 * record (COPY takes only empty lines, which ingest skips).
 *
 * force_null (NULL: none) flags the columns where a quoted field equal to
 * null_string is NULL as well (COPY's FORCE_NULL).
 */
bool
convert_record(const IngestColumns *cols, CsvpParser *parser, const CsvpRecord *rec,
			   int max_record_size, const bool *force_null, const char *null_string,
			   Datum *values, bool *nulls, int *at_col,
			   ConvertFailure *failure)
{
	*at_col = -1;
	if (rec->error != CSVP_OK)
	{
		char	   *message = pstrdup(csvp_error_message(rec->error));

		/* the one limit a user meets without a hint of it in the file: name it */
		if (rec->error == CSVP_FIELD_TOO_LARGE || rec->error == CSVP_RECORD_TOO_LARGE)
			message = psprintf("%s: more than ingest.max_record_size (%d bytes)",
							   message, max_record_size);
		if (rec->error_line != rec->line)
			message = psprintf("%s (at line " INT64_FORMAT ")", message, rec->error_line);
		return fail(failure, ERRCODE_BAD_COPY_FILE_FORMAT, message);
	}
	if (rec->nfields > cols->ncols)
		return fail(failure, ERRCODE_BAD_COPY_FILE_FORMAT,
					psprintf("extra data after last expected column (%d fields, %d expected)",
							 rec->nfields, cols->ncols));

	for (int j = 0; j < cols->ncols; j++)
	{
		size_t		len;
		bool		isnull;
		const char *f;
		char	   *bad_text;

		if (j >= rec->nfields)
		{
			*at_col = -1;
			return fail(failure, ERRCODE_BAD_COPY_FILE_FORMAT,
						psprintf("missing data for column \"%s\" (%d fields, %d expected)",
								 cols->names[rec->nfields], rec->nfields, cols->ncols));
		}
		f = csvp_field(parser, rec, j, &len, &isnull);
		if (force_null != NULL && force_null[j] && !isnull &&
			csvp_field_quoted(parser, rec, j) &&
			strlen(null_string ? null_string : "") == len &&
			memcmp(f, null_string ? null_string : "", len) == 0)
			isnull = true;
		bad_text = isnull ? NULL : convert_invalid_text(f, len);

		if (bad_text != NULL)
			return fail(failure, ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
						psprintf("column \"%s\": %s", cols->names[j], bad_text));
		*at_col = j;
		if (!compat_input_value(&cols->infuncs[j], isnull ? NULL : (char *) f,
								cols->ioparams[j], cols->typmods[j], &values[j],
								&failure->edata))
		{
			failure->sqlerrcode = failure->edata->sqlerrcode;
			failure->message = NULL;
			return false;
		}
		nulls[j] = isnull;
	}
	*at_col = -1;
	return true;
}
