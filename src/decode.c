/*
 * decode.c
 *		Between the reader and the parser: a job's bytes decompressed (gzip)
 *		and converted from the file's encoding to the database's, streaming.
 *
 * The worker drives reader -> decode -> loader. A decoder is a short chain
 * of stages, each pulling from the one before:
 *
 *	raw		the source's bytes, as the reader gives them (one buffer);
 *	gunzip	zlib's inflate, when the options say gzip or (compression "auto",
 *			the default) the source starts with gzip's magic bytes; members
 *			of a multi-member file follow one another;
 *	utf16	UTF-16 (LE or BE, recognised by its byte order mark, or named) to
 *			UTF-8, surrogate pairs included;
 *	convert	PostgreSQL's default conversion from the file's encoding (UTF-8
 *			after utf16) to the database's, with noError, so that a bad byte
 *			sequence stops it instead of raising.
 *
 * Memory is bounded: a raw buffer and an output buffer of INGEST_READ_CHUNK,
 * zlib's fixed state (a 32 kB window), and 64 kB of input for each
 * conversion stage, whatever the source's size. ingest.max_file_size
 * applies to the decompressed bytes too: inflate is never asked for more
 * than one byte past the limit, so a decompression bomb stops there.
 *
 * Conversion happens before parsing, as COPY does (since PostgreSQL 16 for
 * every encoding; 15 scans lines in the raw bytes for encodings that cannot
 * embed ASCII): in SJIS, BIG5, GBK, UHC or GB18030 a byte of a character can
 * be the delimiter, the quote or a line end, and only the converted text can
 * be parsed byte by byte. A byte sequence that is invalid in the file's
 * encoding (or a character with no equivalent in the database's) must then
 * reject its record, not the job: it is replaced by a marker, a NUL, a kind,
 * the bytes in hex and a NUL. No text value can hold a NUL, so the check
 * every value goes through (convert.c) rejects the record holding the marker,
 * and asks here what to say about it: the bytes and the encoding, as
 * PostgreSQL says it. After an invalid byte the conversion starts again at
 * the next byte (a character is never longer than the bytes that make it).
 *
 * Progress (bytes_done) counts the source's side, as bytes_total does: the
 * bytes as stored, compressed and in the file's encoding.
 */
#include "postgres.h"

#include <zlib.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "decode.h"
#include "encoding.h"
#include "settings.h"

#define CONVERT_IN_CAP	(64 * 1024)

typedef enum Utf16Order
{
	UTF16_NONE = 0,
	UTF16_LE,
	UTF16_BE
} Utf16Order;

typedef size_t (*StagePull) (IngestDecoder *d, char *buf, size_t len);

struct IngestDecoder
{
	DecodeReadFn read;
	void	   *arg;
	const char *what;
	bool		identity;		/* nothing to decode: raw bytes straight to the parser */

	/* raw */
	char	   *raw;
	size_t		raw_pos;
	size_t		raw_len;
	bool		raw_eof;
	int64		src_read;		/* bytes the source gave */

	/* gunzip */
	bool		gzip;
	bool		z_open;
	bool		z_member_ended;
	z_stream	z;
	uint64		z_pending;		/* decompressed by the pull under way */
	uint64		plain_bytes;	/* decompressed so far */

	/* bytes peeked at the start of the plain stream (byte order mark) */
	char		head[2];
	int			head_len;
	int			head_pos;

	/* utf16 */
	Utf16Order	utf16;
	char	   *u_in;
	size_t		u_len;
	bool		u_eof;

	/* convert */
	bool		convert;
	int			src_enc;
	int			dst_enc;
	FmgrInfo	proc;
	StagePull	conv_up;
	char	   *c_in;
	size_t		c_len;
	bool		c_eof;
	bool		markers_upstream;	/* utf16 comes before: pass its markers on */

	StagePull	last;
	char	   *out;

	MemoryContextCallback cb;
};

static void
decoder_cleanup(void *arg)
{
	IngestDecoder *d = arg;

	if (d->z_open)
		inflateEnd(&d->z);
	d->z_open = false;
	encoding_job_end();
}

/* ---------- raw ---------- */

/* Read more of the source after what the raw buffer holds; false at its end. */
static bool
raw_more(IngestDecoder *d)
{
	size_t		n;

	if (d->raw_eof)
		return false;
	if (d->raw_pos > 0)
	{
		memmove(d->raw, d->raw + d->raw_pos, d->raw_len - d->raw_pos);
		d->raw_len -= d->raw_pos;
		d->raw_pos = 0;
	}
	if (d->raw_len >= INGEST_READ_CHUNK)
		return true;
	n = d->read(d->arg, d->raw + d->raw_len, INGEST_READ_CHUNK - d->raw_len);
	d->src_read += n;
	d->raw_len += n;
	if (n == 0)
		d->raw_eof = true;
	return n > 0;
}

static size_t
raw_pull(IngestDecoder *d, char *buf, size_t len)
{
	size_t		n;

	if (d->raw_pos >= d->raw_len)
	{
		d->raw_pos = d->raw_len = 0;
		if (!raw_more(d))
			return 0;
	}
	n = Min(len, d->raw_len - d->raw_pos);
	memcpy(buf, d->raw + d->raw_pos, n);
	d->raw_pos += n;
	return n;
}

/* Source bytes consumed: read, less what the raw buffer still holds. */
static int64
src_consumed(const IngestDecoder *d)
{
	return d->src_read - (int64) (d->raw_len - d->raw_pos);
}

/* ---------- gunzip ---------- */

static void
gzip_error(IngestDecoder *d, const char *problem)
{
	uint64		plain = d->plain_bytes + d->z_pending;

	ereport(ERROR,
			(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
			 errmsg("%s is not valid gzip data: %s at byte " INT64_FORMAT " of the compressed data",
					d->what, problem, src_consumed(d)),
			 errdetail(UINT64_FORMAT " bytes were decompressed before it.", plain)));
}

static size_t
gunzip_pull(IngestDecoder *d, char *buf, size_t len)
{
	size_t		cap = len;
	size_t		n;
	int64		limit = INGEST_MAX_FILE_BYTES;

	/* never more than one byte past ingest.max_file_size */
	if (limit > 0)
		cap = Min(cap, (uint64) limit - d->plain_bytes + 1);
	d->z.next_out = (Bytef *) buf;
	d->z.avail_out = (uInt) cap;
	d->z_pending = 0;
	while (d->z.avail_out == cap)
	{
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (d->z_member_ended)
		{
			/* another member may follow (cat a.gz b.gz); nothing else may */
			if (d->raw_len - d->raw_pos < 2 && !d->raw_eof)
			{
				(void) raw_more(d);
				continue;
			}
			if (d->raw_len == d->raw_pos)
				break;
			if ((unsigned char) d->raw[d->raw_pos] != 0x1f ||
				d->raw_len - d->raw_pos < 2 ||
				(unsigned char) d->raw[d->raw_pos + 1] != 0x8b)
				gzip_error(d, "data that is not gzip follows it");
			if (inflateReset(&d->z) != Z_OK)
				gzip_error(d, "it cannot be read");
			d->z_member_ended = false;
		}
		if (d->raw_pos >= d->raw_len)
		{
			d->raw_pos = d->raw_len = 0;
			if (!raw_more(d))
				gzip_error(d, "it ends early (truncated)");
		}
		d->z.next_in = (Bytef *) d->raw + d->raw_pos;
		d->z.avail_in = (uInt) (d->raw_len - d->raw_pos);
		rc = inflate(&d->z, Z_NO_FLUSH);
		d->raw_pos = (char *) d->z.next_in - d->raw;
		d->z_pending = cap - d->z.avail_out;
		if (rc == Z_STREAM_END)
			d->z_member_ended = true;
		else if (rc == Z_MEM_ERROR)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		else if (rc != Z_OK && rc != Z_BUF_ERROR)
			gzip_error(d, d->z.msg ? d->z.msg : "invalid data");
	}
	n = cap - d->z.avail_out;
	d->plain_bytes += n;
	d->z_pending = 0;
	if (limit > 0 && d->plain_bytes > (uint64) limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s decompresses to more than ingest.max_file_size (" INT64_FORMAT " bytes)",
						d->what, limit),
				 errdetail("Decompression stopped there, after " INT64_FORMAT " compressed bytes.",
						   src_consumed(d)),
				 errhint("Split the file, or ask an administrator to raise ingest.max_file_size.")));
	return n;
}

/* The plain (decompressed) stream: the peeked bytes first. */
static size_t
plain_pull(IngestDecoder *d, char *buf, size_t len)
{
	if (d->head_pos < d->head_len)
	{
		size_t		n = Min(len, (size_t) (d->head_len - d->head_pos));

		memcpy(buf, d->head + d->head_pos, n);
		d->head_pos += n;
		return n;
	}
	return d->gzip ? gunzip_pull(d, buf, len) : raw_pull(d, buf, len);
}

/* ---------- utf16 ---------- */

static size_t
put_utf8(char *out, pg_wchar cp)
{
	unicode_to_utf8(cp, (unsigned char *) out);
	return (size_t) pg_utf_mblen((unsigned char *) out);
}

static size_t
utf16_pull(IngestDecoder *d, char *buf, size_t len)
{
	for (;;)
	{
		size_t		i = 0;
		size_t		o = 0;

		if (!d->u_eof && d->u_len < CONVERT_IN_CAP)
		{
			size_t		n = plain_pull(d, d->u_in + d->u_len, CONVERT_IN_CAP - d->u_len);

			if (n == 0)
				d->u_eof = true;
			d->u_len += n;
		}
		if (d->u_len == 0 && d->u_eof)
			return 0;

		while (o + ENCODING_MARKER_MAX <= len)
		{
			const unsigned char *p = (const unsigned char *) d->u_in + i;
			size_t		left = d->u_len - i;
			pg_wchar	cu;
			pg_wchar	cu2;

			if (left < 2)
			{
				if (left == 1 && d->u_eof)
				{
					o += encoding_put_marker(buf + o, ENCODING_MARKER_INVALID, p, 1);
					i += 1;
				}
				break;
			}
			cu = (d->utf16 == UTF16_LE) ? (p[0] | (p[1] << 8)) : ((p[0] << 8) | p[1]);
			if (cu >= 0xD800 && cu <= 0xDBFF)
			{
				if (left < 4 && !d->u_eof)
					break;
				if (left >= 4)
				{
					cu2 = (d->utf16 == UTF16_LE) ? (p[2] | (p[3] << 8)) : ((p[2] << 8) | p[3]);
					if (cu2 >= 0xDC00 && cu2 <= 0xDFFF)
					{
						o += put_utf8(buf + o, 0x10000 + ((cu - 0xD800) << 10) + (cu2 - 0xDC00));
						i += 4;
						continue;
					}
				}
				/* a high surrogate with no low one after it */
				o += encoding_put_marker(buf + o, ENCODING_MARKER_INVALID, p, 2);
				i += 2;
			}
			else if ((cu >= 0xDC00 && cu <= 0xDFFF) || cu == 0)
			{
				/* a lone low surrogate; or U+0000, which no text can hold */
				o += encoding_put_marker(buf + o, ENCODING_MARKER_INVALID, p, 2);
				i += 2;
			}
			else
			{
				o += put_utf8(buf + o, cu);
				i += 2;
			}
		}
		memmove(d->u_in, d->u_in + i, d->u_len - i);
		d->u_len -= i;
		if (o > 0)
			return o;
	}
}

/* ---------- convert ---------- */

/* Convert what c_in holds into buf; *consumed: the input used. */
static size_t
convert_some(IngestDecoder *d, char *buf, size_t len, size_t *consumed)
{
	size_t		pos = 0;
	size_t		o = 0;
	int			maxlen = pg_encoding_max_length(d->src_enc);

	while (pos < d->c_len)
	{
		char	   *p = d->c_in + pos;
		size_t		avail = d->c_len - pos;
		size_t		room = len - o;
		size_t		n;
		size_t		left;
		char	   *nul;
		int			conv;
		int			l;

		if (*p == '\0')
		{
			bool		partial = false;
			size_t		ml = d->markers_upstream ? encoding_marker_scan(p, avail, &partial) : 0;

			if (ml == 0 && partial && !d->c_eof)
				break;			/* the rest of a marker comes with more input */
			if (room < ENCODING_MARKER_MAX)
				break;
			if (ml > 0)
			{
				memcpy(buf + o, p, ml);
				o += ml;
				pos += ml;
			}
			else
			{
				/* a NUL of the file itself */
				o += encoding_put_marker(buf + o, ENCODING_MARKER_INVALID, (unsigned char *) p, 1);
				pos += 1;
			}
			continue;
		}

		if (room < ENCODING_MARKER_MAX + 1 + MAX_CONVERSION_GROWTH * 16)
			break;
		n = Min(avail, (room - ENCODING_MARKER_MAX - 1) / MAX_CONVERSION_GROWTH);
		nul = memchr(p, '\0', n);
		if (nul != NULL)
			n = nul - p;
		conv = DatumGetInt32(FunctionCall6(&d->proc,
										   Int32GetDatum(d->src_enc),
										   Int32GetDatum(d->dst_enc),
										   CStringGetDatum(p),
										   CStringGetDatum(buf + o),
										   Int32GetDatum((int) n),
										   BoolGetDatum(true)));
		o += strlen(buf + o);
		pos += conv;
		if ((size_t) conv == n)
			continue;

		/* it stopped: a character cut by the window, invalid, or with no equivalent */
		if (nul == NULL && n < avail && n - conv < (size_t) maxlen && conv > 0)
			continue;			/* cut by the window: the next one starts with it */
		p = d->c_in + pos;
		nul = memchr(p, '\0', d->c_len - pos);
		left = nul ? (size_t) (nul - p) : d->c_len - pos;
		l = pg_encoding_verifymbchar(d->src_enc, p, (int) left);
		if (l > 0)
		{
			o += encoding_put_marker(buf + o, ENCODING_MARKER_NO_EQUIV, (unsigned char *) p, l);
			pos += l;
		}
		else if (nul == NULL && !d->c_eof && left < (size_t) maxlen)
			break;				/* a character whose end has not been read yet */
		else
		{
			o += encoding_put_marker(buf + o, ENCODING_MARKER_INVALID, (unsigned char *) p, 1);
			pos += 1;
		}
	}
	*consumed = pos;
	return o;
}

static size_t
convert_pull(IngestDecoder *d, char *buf, size_t len)
{
	for (;;)
	{
		size_t		consumed;
		size_t		o;

		CHECK_FOR_INTERRUPTS();
		if (!d->c_eof && d->c_len < CONVERT_IN_CAP)
		{
			size_t		n = d->conv_up(d, d->c_in + d->c_len, CONVERT_IN_CAP - d->c_len);

			if (n == 0)
				d->c_eof = true;
			d->c_len += n;
		}
		if (d->c_len == 0 && d->c_eof)
			return 0;
		o = convert_some(d, buf, len, &consumed);
		memmove(d->c_in, d->c_in + consumed, d->c_len - consumed);
		d->c_len -= consumed;
		if (o > 0)
			return o;
		if (consumed == 0 && d->c_eof)
			elog(ERROR, "ingest: the conversion of %s makes no progress", d->what);
	}
}

/* gunzip, when asked for or (compression "auto") when the first bytes are gzip's */
static void
open_gunzip(IngestDecoder *d, IngestCompression compression)
{
	const unsigned char *m;
	int			rc;

	while (d->raw_len < 4 && raw_more(d))
		;
	m = (const unsigned char *) d->raw;
	if (compression == INGEST_COMPRESSION_GZIP)
		d->gzip = true;
	else if (compression == INGEST_COMPRESSION_AUTO && d->raw_len >= 2 &&
			 m[0] == 0x1f && m[1] == 0x8b)
		d->gzip = true;
	else if (compression == INGEST_COMPRESSION_AUTO && d->raw_len >= 4 &&
			 m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is compressed with zstd, which ingest does not read", d->what),
				 errhint("Decompress it, or compress it with gzip.")));
	if (!d->gzip)
		return;
	d->z.zalloc = Z_NULL;
	d->z.zfree = Z_NULL;
	d->z.opaque = Z_NULL;
	rc = inflateInit2(&d->z, 16 + MAX_WBITS);	/* gzip framing only */
	if (rc == Z_MEM_ERROR)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (rc != Z_OK)
		elog(ERROR, "ingest: zlib's inflateInit2 failed: %d", rc);
	d->z_open = true;
}

/* UTF-16, from its byte order mark (not given an encoding, or a UTF-16 one) or as named */
static void
open_utf16(IngestDecoder *d, int enc, MemoryContext cxt)
{
	const unsigned char *m;
	size_t		got;

	d->src_enc = PG_UTF8;
	if (enc != INGEST_ENCODING_DEFAULT && enc != INGEST_ENCODING_UTF16 &&
		enc != INGEST_ENCODING_UTF16LE && enc != INGEST_ENCODING_UTF16BE)
	{
		d->src_enc = enc;
		return;
	}
	while (d->head_len < 2 &&
		   (got = (d->gzip ? gunzip_pull(d, d->head + d->head_len, 2 - d->head_len)
				   : raw_pull(d, d->head + d->head_len, 2 - d->head_len))) > 0)
		d->head_len += (int) got;
	m = (const unsigned char *) d->head;
	if (d->head_len == 2 && m[0] == 0xff && m[1] == 0xfe && enc != INGEST_ENCODING_UTF16BE)
		d->utf16 = UTF16_LE;
	else if (d->head_len == 2 && m[0] == 0xfe && m[1] == 0xff && enc != INGEST_ENCODING_UTF16LE)
		d->utf16 = UTF16_BE;
	if (d->utf16 != UTF16_NONE)
		d->head_pos = d->head_len;	/* the byte order mark is not text */
	else if (enc == INGEST_ENCODING_UTF16LE)
		d->utf16 = UTF16_LE;
	else if (enc == INGEST_ENCODING_UTF16 || enc == INGEST_ENCODING_UTF16BE)
		d->utf16 = UTF16_BE;	/* no mark: big-endian, as Unicode says */
	if (d->utf16 != UTF16_NONE)
	{
		encoding_job_source(d->utf16 == UTF16_LE ? "UTF16LE" : "UTF16BE");
		d->u_in = MemoryContextAlloc(cxt, CONVERT_IN_CAP);
	}
}

/* PostgreSQL's conversion from the text's encoding to the database's, when they differ */
static void
open_convert(IngestDecoder *d, int enc, MemoryContext cxt)
{
	int			db = GetDatabaseEncoding();
	Oid			proc;

	d->dst_enc = db;
	if (d->src_enc == db || d->src_enc == PG_SQL_ASCII || db == PG_SQL_ASCII ||
		(enc == INGEST_ENCODING_DEFAULT && d->utf16 == UTF16_NONE))
		return;
	proc = FindDefaultConversionProc(d->src_enc, db);
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("there is no conversion from \"%s\" to the database encoding \"%s\"",
						pg_encoding_to_char(d->src_enc), GetDatabaseEncodingName())));
	fmgr_info_cxt(proc, &d->proc, cxt);
	d->convert = true;
	d->c_in = MemoryContextAlloc(cxt, CONVERT_IN_CAP);
	d->conv_up = d->utf16 != UTF16_NONE ? utf16_pull : plain_pull;
	d->markers_upstream = (d->utf16 != UTF16_NONE);
}

/* ---------- the decoder ---------- */

IngestDecoder *
decode_open(DecodeReadFn read, void *arg, const char *what,
			const IngestOptions *opts, MemoryContext cxt)
{
	IngestDecoder *d = MemoryContextAllocZero(cxt, sizeof(IngestDecoder));

	d->read = read;
	d->arg = arg;
	d->what = MemoryContextStrdup(cxt, what);
	d->raw = MemoryContextAlloc(cxt, INGEST_READ_CHUNK);
	d->cb.func = decoder_cleanup;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(cxt, &d->cb);

	encoding_job_begin(opts->encoding);
	open_gunzip(d, opts->compression);
	open_utf16(d, opts->encoding, cxt);
	open_convert(d, opts->encoding, cxt);

	if (d->convert)
		d->last = convert_pull;
	else if (d->utf16 != UTF16_NONE)
		d->last = utf16_pull;
	else
		d->last = plain_pull;
	d->identity = !d->gzip && !d->convert && d->utf16 == UTF16_NONE;
	/* a file read as is may hold anything after a NUL: markers only where made */
	encoding_job_markers(d->convert || d->utf16 != UTF16_NONE);
	if (!d->identity)
		d->out = MemoryContextAlloc(cxt, INGEST_READ_CHUNK);
	return d;
}

size_t
decode_read(IngestDecoder *d, const char **out)
{
	if (d->identity)
	{
		size_t		n;

		/* straight from the raw buffer: no copy */
		if (d->head_pos < d->head_len)
		{
			*out = d->head + d->head_pos;
			n = d->head_len - d->head_pos;
			d->head_pos = d->head_len;
			return n;
		}
		if (d->raw_pos >= d->raw_len)
		{
			d->raw_pos = d->raw_len = 0;
			if (!raw_more(d))
				return 0;
		}
		*out = d->raw + d->raw_pos;
		n = d->raw_len - d->raw_pos;
		d->raw_pos = d->raw_len;
		return n;
	}
	*out = d->out;
	return d->last(d, d->out, INGEST_READ_CHUNK);
}

int64
decode_source_bytes(const IngestDecoder *d, uint64 decoded)
{
	if (d == NULL || d->identity)
		return (int64) decoded;
	return src_consumed(d);
}
