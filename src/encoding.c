/*
 * encoding.c
 *		A file's encoding: its name in the options, and the markers that a
 *		byte sequence the conversion could not take leaves in the text.
 *
 * The decoder (decode.c) converts a file's text to the database encoding
 * before it is parsed, as COPY does: in SJIS, BIG5, GBK, UHC or GB18030 a
 * byte of a character can be the delimiter, the quote or a line end. A byte
 * sequence invalid in the file's encoding (or a character with no equivalent
 * in the database's) must reject its record, not the job: it is replaced by
 * a marker, a NUL, a kind, the bytes in hex and a NUL. No text value can hold
 * a NUL, so the check every value goes through (convert.c) rejects the record
 * holding the marker and asks here what to say about it: the bytes and the
 * encoding, as PostgreSQL says it. The markers are made and scanned in
 * transcode.c, which needs no server. options.c reads the encoding's name
 * here too, so that the options need nothing of the decoder.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"

#include "encoding.h"

/*
 * What the rejected-record messages of the job being decoded need: one job
 * runs at a time in a worker. Set by the decoder when it opens (decode.c),
 * cleared when it goes.
 */
static struct
{
	bool		active;
	bool		markers;		/* the decoder converts: a NUL-led marker is one of its */
	bool		encoding_given;
	char		src_name[NAMEDATALEN];
} current;

const char *
encoding_name(int encoding)
{
	switch (encoding)
	{
		case INGEST_ENCODING_DEFAULT:
			return "UTF8";
		case INGEST_ENCODING_UTF16:
			return "UTF16";
		case INGEST_ENCODING_UTF16LE:
			return "UTF16LE";
		case INGEST_ENCODING_UTF16BE:
			return "UTF16BE";
		default:
			return pg_encoding_to_char(encoding);
	}
}

/* Can PostgreSQL convert text in encoding enc to the database's? */
static bool
convertible(int enc)
{
	int			db = GetDatabaseEncoding();

	return enc == db || enc == PG_SQL_ASCII || db == PG_SQL_ASCII ||
		OidIsValid(FindDefaultConversionProc(enc, db));
}

int
encoding_parse(const char *name)
{
	char		clean[NAMEDATALEN];
	int			n = 0;
	int			enc;

	for (const char *p = name; *p && n < NAMEDATALEN - 1; p++)
		if (isalnum((unsigned char) *p))
			clean[n++] = pg_ascii_tolower((unsigned char) *p);
	clean[n] = '\0';
	if (strcmp(clean, "utf16") == 0)
		enc = INGEST_ENCODING_UTF16;
	else if (strcmp(clean, "utf16le") == 0)
		enc = INGEST_ENCODING_UTF16LE;
	else if (strcmp(clean, "utf16be") == 0)
		enc = INGEST_ENCODING_UTF16BE;
	else
	{
		enc = pg_char_to_encoding(name);
		if (enc < 0 || !PG_VALID_ENCODING(enc))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ingest option \"encoding\": \"%s\" is not a known encoding", name),
					 errhint("Use an encoding name PostgreSQL knows (such as \"LATIN1\", \"WIN1252\", \"SJIS\", \"UTF8\"), or \"UTF16\", \"UTF16LE\", \"UTF16BE\".")));
	}
	/*
	 * At enqueue; the worker parses its options before its first transaction
	 * and learns the same when it opens the decoder.
	 */
	if (IsTransactionState() && !convertible(enc < 0 ? PG_UTF8 : enc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("ingest option \"encoding\": there is no conversion from \"%s\" to the database encoding \"%s\"",
						encoding_name(enc), GetDatabaseEncodingName())));
	return enc;
}

size_t
encoding_marker_len(const char *s, size_t len)
{
	bool		partial;

	if (!current.active || !current.markers)
		return 0;
	return encoding_marker_scan(s, len, &partial);
}

char *
encoding_marker_message(const char *s, size_t len)
{
	StringInfoData bytes;
	int			k;

	if (encoding_marker_len(s, len) == 0)
		return NULL;
	k = s[2] - '0';
	initStringInfo(&bytes);
	for (int i = 0; i < k; i++)
		appendStringInfo(&bytes, "%s0x%c%c", i ? " " : "", s[3 + 2 * i], s[4 + 2 * i]);
	if (s[1] == ENCODING_MARKER_INVALID)
		return psprintf("invalid byte sequence for encoding \"%s\": %s",
						current.src_name, bytes.data);
	return psprintf("character with byte sequence %s in encoding \"%s\" has no equivalent in encoding \"%s\"",
					bytes.data, current.src_name, GetDatabaseEncodingName());
}

const char *
encoding_hint(void)
{
	if (current.active && current.encoding_given)
		return NULL;
	return psprintf("if the file is not %s, name its encoding with the \"encoding\" option",
					GetDatabaseEncodingName());
}

void
encoding_job_begin(int enc)
{
	current.active = true;
	current.markers = false;
	current.encoding_given = (enc != INGEST_ENCODING_DEFAULT);
	strlcpy(current.src_name, encoding_name(enc), sizeof(current.src_name));
}

/* The text's encoding after all, when its byte order mark told (UTF-16). */
void
encoding_job_source(const char *name)
{
	strlcpy(current.src_name, name, sizeof(current.src_name));
}

/* Whether the decoder converts, so that a NUL-led marker in the text is one of its. */
void
encoding_job_markers(bool on)
{
	current.markers = on;
}

void
encoding_job_end(void)
{
	current.active = false;
}
