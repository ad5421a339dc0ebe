/*
 * decode.c
 *		Between the reader and the parser: a job's bytes decompressed (gzip,
 *		zstd) and converted from the file's encoding to the database's,
 *		streaming.
 *
 * The worker drives reader -> decode -> loader; the early header check
 * (header.c) runs the same chain over a source's first bytes at enqueue
 * (decode_open_head). A decoder is a short chain of stages, each pulling from
 * the one before:
 *
 *	raw		the source's bytes, as the reader gives them (one buffer);
 *	unpack	gzip (zlib) or zstd (libzstd), when the options say so or
 *			(compression "auto", the default) the source starts with their
 *			magic bytes; members (frames) follow one another;
 *	utf16	UTF-16 (LE or BE, recognised by its byte order mark, or named) to
 *			UTF-8, surrogate pairs included;
 *	convert	PostgreSQL's default conversion from the file's encoding (UTF-8
 *			after utf16) to the database's, with noError, so that a bad byte
 *			sequence stops it instead of raising.
 *
 * The byte work that needs no server (decompression framing, UTF-16, the
 * magic bytes and byte order marks) is in transcode.c, which the fuzzer
 * builds alone; here are the source, the errors, the limits and
 * PostgreSQL's conversions.
 *
 * Memory is bounded: a raw buffer and an output buffer of INGEST_READ_CHUNK,
 * zlib's fixed state (a 32 kB window) or libzstd's (its window capped at
 * 8 MB), and 64 kB of input for each conversion stage, whatever the source's
 * size. ingest.max_file_size applies to the decompressed bytes too: the
 * decompressor is never asked for more than one byte past the limit, so a
 * decompression bomb stops there. A head decoder pulls in small steps, so
 * that it decompresses little more than the text it is asked for.
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

#include "access/xact.h"
#include "catalog/namespace.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "decode.h"
#include "encoding.h"
#include "settings.h"
#include "transcode.h"

#define CONVERT_IN_CAP	(64 * 1024)
#define HEAD_STEP		(4 * 1024)	/* what a head decoder's stages pull at once */

typedef size_t (*StagePull) (IngestDecoder *d, char *buf, size_t len);

struct IngestDecoder
{
	DecodeReadFn read;
	void	   *arg;
	const char *what;
	bool		identity;		/* nothing to decode: raw bytes straight to the parser */
	bool		partial;		/* a head: the source goes on past the bytes read's end */
	size_t		step;			/* what each stage pulls at once, at most CONVERT_IN_CAP */
	size_t		out_cap;

	/* raw */
	char	   *raw;
	size_t		raw_pos;
	size_t		raw_len;
	bool		raw_eof;
	int64		src_read;		/* bytes the source gave */

	/* unpack */
	TcUnpacker	u;				/* kind TC_PLAIN: not compressed */
	uint64		z_pending;		/* decompressed by the pull under way */
	uint64		plain_bytes;	/* decompressed so far */

	/* bytes peeked at the start of the plain stream (byte order mark) */
	char		head[2];
	int			head_len;
	int			head_pos;

	/* utf16 */
	TcUtf16		utf16;
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

	tc_unpack_end(&d->u);
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

/* ---------- unpack ---------- */

static const char *
unpack_name(const IngestDecoder *d)
{
	return d->u.kind == TC_ZSTD ? "zstd" : "gzip";
}

static void
unpack_error(IngestDecoder *d, const char *problem)
{
	uint64		plain = d->plain_bytes + d->z_pending;

	ereport(ERROR,
			(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
			 errmsg("%s is not valid %s data: %s at byte " INT64_FORMAT " of the compressed data",
					d->what, unpack_name(d), problem, src_consumed(d)),
			 errdetail(UINT64_FORMAT " bytes were decompressed before it.", plain)));
}

static void
unpack_status(IngestDecoder *d, TcStatus st)
{
	switch (st)
	{
		case TC_OK:
		case TC_END:
			break;
		case TC_TRUNCATED:
			/* a head ends where the bytes given end: the rest comes later */
			if (!d->partial)
				unpack_error(d, "it ends early (truncated)");
			break;
		case TC_BAD_DATA:
			unpack_error(d, d->u.msg);
			break;
		case TC_TRAILING:
			unpack_error(d, d->u.kind == TC_ZSTD ? "data that is not zstd follows it" :
						 "data that is not gzip follows it");
			break;
		case TC_NO_MEMORY:
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
}

static size_t
unpack_pull(IngestDecoder *d, char *buf, size_t len)
{
	size_t		cap = len;
	size_t		made = 0;
	int64		limit = INGEST_MAX_FILE_BYTES;

	/* never more than one byte past ingest.max_file_size */
	if (limit > 0)
		cap = Min(cap, (uint64) limit - d->plain_bytes + 1);
	d->z_pending = 0;
	for (;;)
	{
		size_t		used;
		TcStatus	st;

		CHECK_FOR_INTERRUPTS();
		st = tc_unpack(&d->u, d->raw + d->raw_pos, d->raw_len - d->raw_pos, d->raw_eof,
					   buf, cap, &used, &made);
		d->raw_pos += used;
		d->z_pending = made;
		unpack_status(d, st);
		if (made > 0 || st != TC_OK)
			break;
		/* all the raw bytes taken, or the start of a member's magic: read more */
		(void) raw_more(d);
	}
	d->plain_bytes += made;
	d->z_pending = 0;
	if (limit > 0 && d->plain_bytes > (uint64) limit)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s decompresses to more than ingest.max_file_size (" INT64_FORMAT " bytes)",
						d->what, limit),
				 errdetail("Decompression stopped there, after " INT64_FORMAT " compressed bytes.",
						   src_consumed(d)),
				 errhint("Split the file, or ask an administrator to raise ingest.max_file_size.")));
	return made;
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
	return d->u.kind != TC_PLAIN ? unpack_pull(d, buf, len) : raw_pull(d, buf, len);
}

/* ---------- utf16 ---------- */

static size_t
utf16_pull(IngestDecoder *d, char *buf, size_t len)
{
	for (;;)
	{
		size_t		used;
		size_t		o;

		if (!d->u_eof && d->u_len < d->step)
		{
			size_t		n = plain_pull(d, d->u_in + d->u_len, d->step - d->u_len);

			if (n == 0)
				d->u_eof = true;
			d->u_len += n;
		}
		if (d->u_len == 0 && d->u_eof)
			return 0;
		o = tc_utf16_to_utf8(d->utf16, (unsigned char *) d->u_in, d->u_len, d->u_eof,
							 buf, len, &used);
		memmove(d->u_in, d->u_in + used, d->u_len - used);
		d->u_len -= used;
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
		if (!d->c_eof && d->c_len < d->step)
		{
			size_t		n = d->conv_up(d, d->c_in + d->c_len, d->step - d->c_len);

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

/* gzip or zstd, when asked for or (compression "auto") when the first bytes are theirs */
static void
open_unpack(IngestDecoder *d, IngestCompression compression)
{
	TcCompression kind = TC_PLAIN;

	while (d->raw_len < TC_MAGIC_LEN && raw_more(d))
		;
	if (compression == INGEST_COMPRESSION_GZIP)
		kind = TC_GZIP;
	else if (compression == INGEST_COMPRESSION_ZSTD)
		kind = TC_ZSTD;
	else if (compression == INGEST_COMPRESSION_AUTO)
		kind = tc_sniff_compression((const unsigned char *) d->raw, d->raw_len);
	if (tc_unpack_init(&d->u, kind) != TC_OK)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
}

/* UTF-16, from its byte order mark (not given an encoding, or a UTF-16 one) or as named */
static void
open_utf16(IngestDecoder *d, int enc, MemoryContext cxt)
{
	TcUtf16		bom;
	size_t		got;

	d->src_enc = PG_UTF8;
	if (enc != INGEST_ENCODING_DEFAULT && enc != INGEST_ENCODING_UTF16 &&
		enc != INGEST_ENCODING_UTF16LE && enc != INGEST_ENCODING_UTF16BE)
	{
		d->src_enc = enc;
		return;
	}
	while (d->head_len < 2 &&
		   (got = (d->u.kind != TC_PLAIN ? unpack_pull(d, d->head + d->head_len, 2 - d->head_len)
				   : raw_pull(d, d->head + d->head_len, 2 - d->head_len))) > 0)
		d->head_len += (int) got;
	bom = tc_sniff_bom((const unsigned char *) d->head, d->head_len);
	if ((bom == TC_UTF16_LE && enc != INGEST_ENCODING_UTF16BE) ||
		(bom == TC_UTF16_BE && enc != INGEST_ENCODING_UTF16LE))
		d->utf16 = bom;
	if (d->utf16 != TC_UTF16_NONE)
		d->head_pos = d->head_len;	/* the byte order mark is not text */
	else if (enc == INGEST_ENCODING_UTF16LE)
		d->utf16 = TC_UTF16_LE;
	else if (enc == INGEST_ENCODING_UTF16 || enc == INGEST_ENCODING_UTF16BE)
		d->utf16 = TC_UTF16_BE;	/* no mark: big-endian, as Unicode says */
	if (d->utf16 != TC_UTF16_NONE)
	{
		encoding_job_source(d->utf16 == TC_UTF16_LE ? "UTF16LE" : "UTF16BE");
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
		(enc == INGEST_ENCODING_DEFAULT && d->utf16 == TC_UTF16_NONE))
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
	d->conv_up = d->utf16 != TC_UTF16_NONE ? utf16_pull : plain_pull;
	d->markers_upstream = (d->utf16 != TC_UTF16_NONE);
}

/* ---------- the decoder ---------- */

/* Open a decoder; head: in small steps; partial: its end is not the source's. */
static IngestDecoder *
open_decoder(DecodeReadFn read, void *arg, const char *what, const IngestOptions *opts,
			 bool head, bool partial, MemoryContext cxt)
{
	IngestDecoder *d = MemoryContextAllocZero(cxt, sizeof(IngestDecoder));

	d->read = read;
	d->arg = arg;
	d->what = MemoryContextStrdup(cxt, what);
	d->partial = partial;
	d->step = head ? HEAD_STEP : CONVERT_IN_CAP;
	d->out_cap = head ? HEAD_STEP : INGEST_READ_CHUNK;
	d->raw = MemoryContextAlloc(cxt, INGEST_READ_CHUNK);
	d->cb.func = decoder_cleanup;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(cxt, &d->cb);

	encoding_job_begin(opts->encoding);
	open_unpack(d, opts->compression);
	open_utf16(d, opts->encoding, cxt);
	open_convert(d, opts->encoding, cxt);

	if (d->convert)
		d->last = convert_pull;
	else if (d->utf16 != TC_UTF16_NONE)
		d->last = utf16_pull;
	else
		d->last = plain_pull;
	d->identity = d->u.kind == TC_PLAIN && !d->convert && d->utf16 == TC_UTF16_NONE;
	/* a file read as is may hold anything after a NUL: markers only where made */
	encoding_job_markers(d->convert || d->utf16 != TC_UTF16_NONE);
	if (!d->identity)
		d->out = MemoryContextAlloc(cxt, d->out_cap);
	return d;
}

IngestDecoder *
decode_open(DecodeReadFn read, void *arg, const char *what,
			const IngestOptions *opts, MemoryContext cxt)
{
	return open_decoder(read, arg, what, opts, false, false, cxt);
}

/* A head's bytes, read from memory. */
typedef struct HeadSource
{
	const char *bytes;
	size_t		len;
	size_t		pos;
} HeadSource;

static size_t
head_read(void *arg, char *buf, size_t len)
{
	HeadSource *h = arg;
	size_t		n = Min(len, h->len - h->pos);

	memcpy(buf, h->bytes + h->pos, n);
	h->pos += n;
	return n;
}

IngestDecoder *
decode_open_head(const char *bytes, size_t len, bool complete, const char *what,
				 const IngestOptions *opts, MemoryContext cxt)
{
	HeadSource *h = MemoryContextAlloc(cxt, sizeof(HeadSource));

	h->bytes = bytes;
	h->len = len;
	h->pos = 0;
	return open_decoder(head_read, h, what, opts, true, !complete, cxt);
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
	return d->last(d, d->out, d->out_cap);
}

int64
decode_source_bytes(const IngestDecoder *d, uint64 decoded)
{
	if (d == NULL || d->identity)
		return (int64) decoded;
	return src_consumed(d);
}
