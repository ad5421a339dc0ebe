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

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"

#include "compat.h"
#include "encoding.h"
#include "convert.h"

/*
 * Input functions for the columns whose types and typmods are set; with
 * decimal_comma, which columns read numbers written with one (numeric, real,
 * double precision, and domains over them).
 */
void
convert_prepare(IngestColumns *cols, bool decimal_comma, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);

	cols->infuncs = palloc0(sizeof(FmgrInfo) * Max(cols->ncols, 1));
	cols->ioparams = palloc0(sizeof(Oid) * Max(cols->ncols, 1));
	cols->decimal_comma = decimal_comma ? palloc0(sizeof(bool) * Max(cols->ncols, 1)) : NULL;
	for (int j = 0; j < cols->ncols; j++)
	{
		Oid			infunc;
		Oid			base = getBaseType(cols->typids[j]);

		getTypeInputInfo(cols->typids[j], &infunc, &cols->ioparams[j]);
		fmgr_info_cxt(infunc, &cols->infuncs[j], cxt);
		if (decimal_comma)
			cols->decimal_comma[j] = base == NUMERICOID || base == FLOAT4OID || base == FLOAT8OID;
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
	const char *hint;

	if ((size_t) valid >= len)
		return NULL;
	/* a byte sequence the decoder could not convert (decode.c) */
	if (*bad == '\0')
	{
		char	   *decoded = encoding_marker_message(bad, len - valid);

		if (decoded != NULL)
			return decoded;
	}
	/* the character that starts there, as far as the field holds it (at most 8 bytes) */
	n = (*bad == '\0') ? 1 : pg_encoding_mblen(enc, bad);
	n = Min(Min(n, (int) (len - valid)), 8);
	initStringInfo(&bytes);
	for (int k = 0; k < n; k++)
		appendStringInfo(&bytes, "%s0x%02x", k ? " " : "", (unsigned char) bad[k]);
	/* not NUL: perhaps the file is in another encoding than the one assumed */
	hint = (*bad != '\0') ? encoding_hint() : NULL;
	return psprintf("invalid byte sequence for encoding \"%s\": %s%s%s",
					GetDatabaseEncodingName(), bytes.data,
					hint ? "; " : "", hint ? hint : "");
}

/*
 * Is every byte of buf text in the server encoding, NUL-free, with what the
 * previous chunk left in cc? Then so is every field the parser makes of
 * these bytes, and convert_record need not check them one by one (about
 * 1,100 instructions a row of the bench file, 4 % of a load, against 130
 * here): fields are cut at ASCII bytes (delimiter, quote, line ends) and
 * lose only ASCII quotes, and in every server encoding a byte below 0x80 is
 * a whole character, never part of another. False says only that some field
 * may be invalid: the caller then checks each field, which finds it (or, in
 * the conservative cases below, finds them all valid after all).
 *
 * A character the chunk's end cuts is checked whole with the next chunk's
 * first bytes; one still cut by the end of that chunk too, or by the end of
 * the input (cc->tail_len > 0 then), counts as invalid.
 */
bool
convert_chunk_valid(ConvertChunkCheck *cc, const char *buf, size_t len)
{
	int			enc = GetDatabaseEncoding();
	bool		valid = true;
	size_t		off = 0;
	size_t		rest;
	int			ok;

	if (cc->tail_len > 0)
	{
		int			have = cc->tail_len;
		int			whole = pg_encoding_mblen(enc, cc->tail);

		cc->tail_len = 0;
		if ((size_t) (whole - have) > len)
			return false;
		memcpy(cc->tail + have, buf, whole - have);
		off = whole - have;
		valid = pg_encoding_verifymbchar(enc, cc->tail, whole) == whole;
	}

	/* ASCII without NUL, the bulk of most files, is text in every server encoding */
	while (off + 8 <= len)
	{
		uint64		w;

		memcpy(&w, buf + off, 8);
		/* a byte with its top bit set, or a zero byte */
		if ((w & UINT64CONST(0x8080808080808080)) != 0 ||
			((w - UINT64CONST(0x0101010101010101)) & ~w & UINT64CONST(0x8080808080808080)) != 0)
			break;
		off += 8;
	}
	if (off >= len)
		return valid;
	rest = len - off;
	ok = pg_encoding_verifymbstr(enc, buf + off, (int) rest);
	if ((size_t) ok == rest)
		return valid;
	/* a character cut by the chunk's end: checked with the next chunk */
	if (buf[off + ok] != '\0' &&
		(size_t) pg_encoding_mblen(enc, buf + off + ok) > rest - ok &&
		rest - ok < sizeof(cc->tail))
	{
		cc->tail_len = (int) (rest - ok);
		memcpy(cc->tail, buf + off + ok, cc->tail_len);
		return valid;
	}
	return false;
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
 * A number written with a decimal comma (1.234,56, -1234,5e3), rewritten with
 * a decimal point. A point may only group thousands (1.234.567); any other
 * (1.5, which a file with decimal commas does not mean as 1.5) makes the
 * value invalid, never silently another number. Values with neither a point
 * nor a comma (1234, NaN, Infinity) pass as they are. NULL: invalid.
 */
static char *
decimal_point(const char *f, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		i = 0;
	size_t		o = 0;
	int			group = 0;		/* digits since the last thousands point */
	bool		grouped = false;

	if (memchr(f, '.', len) == NULL && memchr(f, ',', len) == NULL)
	{
		memcpy(out, f, len);
		out[len] = '\0';
		return out;
	}
	while (i < len && f[i] == ' ')
		out[o++] = f[i++];
	if (i < len && (f[i] == '-' || f[i] == '+'))
		out[o++] = f[i++];
	for (; i < len; i++)
	{
		if (f[i] >= '0' && f[i] <= '9')
		{
			out[o++] = f[i];
			group++;
		}
		else if (f[i] == '.')
		{
			/* 1 to 3 digits before the first point, exactly 3 between points */
			if (grouped ? group != 3 : (group < 1 || group > 3))
				return NULL;
			grouped = true;
			group = 0;
		}
		else
			break;
	}
	if (grouped && group != 3)
		return NULL;
	if (i < len && f[i] == ',')
	{
		out[o++] = '.';
		i++;
	}
	/* the rest (decimals, an exponent, spaces) is the input function's to judge */
	for (; i < len; i++)
	{
		if (f[i] == '.' || f[i] == ',')
			return NULL;
		out[o++] = f[i];
	}
	out[o] = '\0';
	return out;
}

/*
 * Convert rec into values/nulls (ncols each). Returns false, with the reason
 * in *failure, when the record's shape is wrong. As COPY does: too many
 * fields are reported first; with too few, the fields there are converted
 * first, so a bad value among them is what is reported. force_null (per
 * column, or NULL) makes a quoted field equal to null_string NULL too.
 * check_text: check that each field is text in the server encoding (false
 * when convert_chunk_valid found all the bytes it came from valid).
 */
bool
convert_record(const IngestColumns *cols, CsvpParser *parser, const CsvpRecord *rec,
			   int max_record_size, const bool *force_null, const char *null_string,
			   bool check_text, Datum *values, bool *nulls, int *at_col, ConvertFailure *failure)
{
	const char *null_text = null_string ? null_string : "";
	size_t		null_len = strlen(null_text);

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
	if (rec->nfields > cols->nfields)
		return fail(failure, ERRCODE_BAD_COPY_FILE_FORMAT,
					psprintf("extra data after last expected column (%d fields, %d expected)",
							 rec->nfields, cols->nfields));

	for (int i = 0; i < cols->nfields; i++)
	{
		int			j = cols->field_col[i];
		size_t		len;
		bool		isnull;
		char	   *f;
		char	   *bad_text;

		if (i >= rec->nfields)
		{
			int			missing = cols->field_col[rec->nfields];

			*at_col = -1;
			return fail(failure, ERRCODE_BAD_COPY_FILE_FORMAT,
						missing >= 0 ?
						psprintf("missing data for column \"%s\" (%d fields, %d expected)",
								 cols->names[missing], rec->nfields, cols->nfields) :
						psprintf("missing data for field %d (%d fields, %d expected)",
								 rec->nfields + 1, rec->nfields, cols->nfields));
		}
		if (j < 0)
			continue;			/* a header field "extra_columns": "ignore" skips */
		f = (char *) csvp_field(parser, rec, i, &len, &isnull);
		if (force_null != NULL && force_null[j] && !isnull &&
			csvp_field_quoted(parser, rec, i) &&
			len == null_len && memcmp(f, null_text, len) == 0)
			isnull = true;
		bad_text = (isnull || !check_text) ? NULL : convert_invalid_text(f, len);
		if (bad_text != NULL)
			return fail(failure, ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
						psprintf("column \"%s\": %s", cols->names[j], bad_text));
		if (!isnull && cols->decimal_comma && cols->decimal_comma[j])
		{
			char	   *point = decimal_point(f, len);

			if (point == NULL)
				return fail(failure, ERRCODE_INVALID_TEXT_REPRESENTATION,
							psprintf("column \"%s\": invalid number with a decimal comma: \"%s\"",
									 cols->names[j], pnstrdup(f, len)));
			f = point;
		}
		*at_col = j;
		if (!compat_input_value(&cols->infuncs[j], isnull ? NULL : f,
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
