/*
 * transcode.c
 *		The decoder's byte work in plain C: recognising a source's compression
 *		and byte order mark, decompressing gzip and zstd member by member, and
 *		UTF-16 to UTF-8; the markers that stand for bytes it could not take.
 *
 * decode.c pulls a job's bytes through these functions and owns everything
 * that needs the server: reading the source, raising errors (with the byte
 * offsets it counts), ingest.max_file_size, PostgreSQL's conversions. What
 * is here works on the caller's buffers and resumes anywhere: a buffer may
 * end inside a member's magic bytes, a UTF-16 code unit or a surrogate pair.
 * Nothing here raises a PostgreSQL error: the fuzzer builds this file alone
 * (test/fuzz/fuzz_decode.c).
 *
 * Memory: zlib's state (a 32 kB window) or libzstd's, whose window is capped
 * at 2^TC_ZSTD_WINDOW_LOG_MAX bytes so that a frame cannot ask for more.
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "transcode.h"

/* ---------- markers ---------- */

size_t
encoding_put_marker(char *out, char kind, const unsigned char *bytes, int n)
{
	static const char hex[] = "0123456789abcdef";
	size_t		o = 0;

	if (n > 4)
		n = 4;
	out[o++] = '\0';
	out[o++] = kind;
	out[o++] = (char) ('0' + n);
	for (int i = 0; i < n; i++)
	{
		out[o++] = hex[bytes[i] >> 4];
		out[o++] = hex[bytes[i] & 0xf];
	}
	out[o++] = '\0';
	return o;
}

size_t
encoding_marker_scan(const char *s, size_t len, bool *partial)
{
	int			k;

	*partial = false;
	if (len == 0 || s[0] != '\0')
		return 0;
	if (len < 3)
	{
		*partial = (len == 1 || s[1] == ENCODING_MARKER_INVALID || s[1] == ENCODING_MARKER_NO_EQUIV);
		return 0;
	}
	if ((s[1] != ENCODING_MARKER_INVALID && s[1] != ENCODING_MARKER_NO_EQUIV) || s[2] < '1' || s[2] > '4')
		return 0;
	k = s[2] - '0';
	if (len < (size_t) (4 + 2 * k))
	{
		*partial = true;
		return 0;
	}
	for (int i = 0; i < 2 * k; i++)
		if (!isxdigit((unsigned char) s[3 + i]))
			return 0;
	if (s[3 + 2 * k] != '\0')
		return 0;
	return (size_t) (4 + 2 * k);
}

/* ---------- recognising a source ---------- */

static bool
is_gzip_magic(const unsigned char *m, size_t len)
{
	return len >= 2 && m[0] == 0x1f && m[1] == 0x8b;
}

/* a zstd frame, or a skippable frame (magic 0x184D2A50 to 0x184D2A5F, little-endian) */
static bool
is_zstd_magic(const unsigned char *m, size_t len, bool skippable_too)
{
	if (len < 4)
		return false;
	if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return true;
	return skippable_too && (m[0] & 0xf0) == 0x50 && m[1] == 0x2a && m[2] == 0x4d && m[3] == 0x18;
}

TcCompression
tc_sniff_compression(const unsigned char *m, size_t len)
{
	if (is_gzip_magic(m, len))
		return TC_GZIP;
	if (is_zstd_magic(m, len, true))
		return TC_ZSTD;			/* pzstd starts with a skippable frame */
	return TC_PLAIN;
}

TcUtf16
tc_sniff_bom(const unsigned char *m, size_t len)
{
	if (len >= 2 && m[0] == 0xff && m[1] == 0xfe)
		return TC_UTF16_LE;
	if (len >= 2 && m[0] == 0xfe && m[1] == 0xff)
		return TC_UTF16_BE;
	return TC_UTF16_NONE;
}

/* ---------- UTF-16 to UTF-8 ---------- */

static size_t
put_utf8(char *out, uint32_t cp)
{
	unsigned char *o = (unsigned char *) out;

	if (cp < 0x80)
	{
		o[0] = (unsigned char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		o[0] = 0xc0 | (cp >> 6);
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000)
	{
		o[0] = 0xe0 | (cp >> 12);
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | (cp >> 18);
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

static uint32_t
code_unit(TcUtf16 order, const unsigned char *p)
{
	return order == TC_UTF16_LE ? (uint32_t) (p[0] | (p[1] << 8)) : (uint32_t) ((p[0] << 8) | p[1]);
}

size_t
tc_utf16_to_utf8(TcUtf16 order, const unsigned char *in, size_t len, bool eof,
				 char *out, size_t room, size_t *used)
{
	size_t		i = 0;
	size_t		o = 0;

	while (o + ENCODING_MARKER_MAX <= room)
	{
		const unsigned char *p = in + i;
		size_t		left = len - i;
		uint32_t	cu;

		if (left < 2)
		{
			if (left == 1 && eof)
			{
				o += encoding_put_marker(out + o, ENCODING_MARKER_INVALID, p, 1);
				i += 1;
			}
			break;
		}
		cu = code_unit(order, p);
		if (cu >= 0xD800 && cu <= 0xDBFF)
		{
			if (left < 4 && !eof)
				break;			/* its low surrogate comes with more input */
			if (left >= 4)
			{
				uint32_t	cu2 = code_unit(order, p + 2);

				if (cu2 >= 0xDC00 && cu2 <= 0xDFFF)
				{
					o += put_utf8(out + o, 0x10000 + ((cu - 0xD800) << 10) + (cu2 - 0xDC00));
					i += 4;
					continue;
				}
			}
			/* a high surrogate with no low one after it */
			o += encoding_put_marker(out + o, ENCODING_MARKER_INVALID, p, 2);
			i += 2;
		}
		else if ((cu >= 0xDC00 && cu <= 0xDFFF) || cu == 0)
		{
			/* a lone low surrogate; or U+0000, which no text can hold */
			o += encoding_put_marker(out + o, ENCODING_MARKER_INVALID, p, 2);
			i += 2;
		}
		else
		{
			o += put_utf8(out + o, cu);
			i += 2;
		}
	}
	*used = i;
	return o;
}

/* ---------- decompression ---------- */

TcStatus
tc_unpack_init(TcUnpacker *u, TcCompression kind)
{
	memset(u, 0, sizeof(*u));
	u->kind = kind;
	if (kind == TC_GZIP)
	{
		z_stream   *z = calloc(1, sizeof(z_stream));

		if (z == NULL)
			return TC_NO_MEMORY;
		/* gzip framing only (16 +) */
		if (inflateInit2(z, 16 + MAX_WBITS) != Z_OK)
		{
			free(z);
			return TC_NO_MEMORY;
		}
		u->state = z;
	}
	else if (kind == TC_ZSTD)
	{
		ZSTD_DStream *ds = ZSTD_createDStream();

		if (ds == NULL)
			return TC_NO_MEMORY;
		if (ZSTD_isError(ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax, TC_ZSTD_WINDOW_LOG_MAX)))
		{
			ZSTD_freeDStream(ds);
			return TC_NO_MEMORY;
		}
		u->state = ds;
		/* every frame, the first too, must start with a magic number */
		u->member_ended = true;
	}
	return TC_OK;
}

void
tc_unpack_end(TcUnpacker *u)
{
	if (u->state == NULL)
		return;
	if (u->kind == TC_GZIP)
	{
		inflateEnd((z_stream *) u->state);
		free(u->state);
	}
	else if (u->kind == TC_ZSTD)
		ZSTD_freeDStream((ZSTD_DStream *) u->state);
	u->state = NULL;
}

/* One call of zlib: *pos and *o advance; *progress: it took or gave bytes. */
static TcStatus
gzip_step(TcUnpacker *u, const char *in, size_t len, size_t *pos, char *out, size_t room,
		  size_t *o, bool *progress)
{
	z_stream   *z = u->state;
	size_t		in_n = len - *pos;
	size_t		out_n = room - *o;
	int			rc;

	z->next_in = (Bytef *) (in + *pos);
	z->avail_in = (uInt) (in_n > UINT_MAX ? UINT_MAX : in_n);
	z->next_out = (Bytef *) (out + *o);
	z->avail_out = (uInt) (out_n > UINT_MAX ? UINT_MAX : out_n);
	in_n = z->avail_in;
	out_n = z->avail_out;
	rc = inflate(z, Z_NO_FLUSH);
	*pos += in_n - z->avail_in;
	*o += out_n - z->avail_out;
	*progress = (in_n != z->avail_in || out_n != z->avail_out);
	if (rc == Z_STREAM_END)
		u->member_ended = true;
	else if (rc == Z_MEM_ERROR)
		return TC_NO_MEMORY;
	else if (rc != Z_OK && rc != Z_BUF_ERROR)
	{
		u->msg = z->msg ? z->msg : "invalid data";
		return TC_BAD_DATA;
	}
	return TC_OK;
}

/* Keep a zstd frame's first bytes (consumed ones) until its header can be read. */
static void
frame_header_bytes(TcUnpacker *u, const char *taken, size_t n)
{
	unsigned long long size;

	if (u->fh_done || n == 0)
		return;
	if (n > sizeof(u->fh) - u->fh_len)
		n = sizeof(u->fh) - u->fh_len;
	memcpy(u->fh + u->fh_len, taken, n);
	u->fh_len += n;
	size = ZSTD_getFrameContentSize(u->fh, u->fh_len);
	if (size == ZSTD_CONTENTSIZE_ERROR && u->fh_len < sizeof(u->fh))
		return;					/* the header goes on */
	u->fh_done = true;
	u->frame_size = (size == ZSTD_CONTENTSIZE_ERROR) ? ZSTD_CONTENTSIZE_UNKNOWN : size;
}

/*
 * Does a frame's output agree with the content size its header gives, if it
 * gives one? libzstd checks it when it decodes a whole frame at once, not
 * always when it streams.
 */
static bool
frame_size_ok(const TcUnpacker *u, bool ended)
{
	if (!u->fh_done || u->frame_size == ZSTD_CONTENTSIZE_UNKNOWN)
		return true;
	return ended ? u->frame_out == u->frame_size : u->frame_out <= u->frame_size;
}

/* One call of libzstd, as gzip_step. */
static TcStatus
zstd_step(TcUnpacker *u, const char *in, size_t len, size_t *pos, char *out, size_t room,
		  size_t *o, bool *progress)
{
	ZSTD_inBuffer ib = {in, len, *pos};
	ZSTD_outBuffer ob = {out, room, *o};
	size_t		r = ZSTD_decompressStream((ZSTD_DStream *) u->state, &ob, &ib);

	*progress = (ib.pos != *pos || ob.pos != *o);
	frame_header_bytes(u, in + *pos, ib.pos - *pos);
	u->frame_out += ob.pos - *o;
	*pos = ib.pos;
	*o = ob.pos;
	if (!ZSTD_isError(r) && !frame_size_ok(u, r == 0))
	{
		u->msg = "a frame's data differs in size from what its header says";
		return TC_BAD_DATA;
	}
	if (ZSTD_isError(r))
	{
		switch (ZSTD_getErrorCode(r))
		{
			case ZSTD_error_memory_allocation:
				return TC_NO_MEMORY;
			case ZSTD_error_frameParameter_windowTooLarge:
				u->msg = "a frame needs a window larger than 8 MB (compressed with --long or --ultra)";
				break;
			case ZSTD_error_prefix_unknown:
				u->msg = "no zstd frame starts there";
				break;
			case ZSTD_error_checksum_wrong:
				u->msg = "a frame's checksum does not match its data";
				break;
			case ZSTD_error_corruption_detected:
				u->msg = "the data is corrupt";
				break;
			default:
				u->msg = ZSTD_getErrorName(r);
				break;
		}
		return TC_BAD_DATA;
	}
	if (r == 0)
		u->member_ended = true;	/* a frame decoded and flushed */
	return TC_OK;
}

/* Are in's left bytes (fewer than a magic number's) the start of one? */
static bool
magic_prefix(TcCompression kind, const unsigned char *in, size_t left)
{
	static const unsigned char gz[2] = {0x1f, 0x8b};
	static const unsigned char zs[4] = {0x28, 0xb5, 0x2f, 0xfd};
	static const unsigned char skip[4] = {0x50, 0x2a, 0x4d, 0x18};

	if (kind == TC_GZIP)
		return memcmp(in, gz, left) == 0;
	if (memcmp(in, zs, left) == 0)
		return true;
	return (in[0] & 0xf0) == 0x50 && (left < 2 || memcmp(in + 1, skip + 1, left - 1) == 0);
}

/* Between members: may the next begin at in (left bytes)? TC_OK yes; else why not, or wait. */
static TcStatus
next_member(TcUnpacker *u, const unsigned char *in, size_t left, bool in_eof, bool *wait)
{
	size_t		magic = u->kind == TC_GZIP ? 2 : TC_MAGIC_LEN;

	*wait = false;
	if (left == 0)
	{
		*wait = !in_eof;
		/* no member at all is a stream cut before its first */
		return !in_eof ? TC_OK : u->started ? TC_END : TC_TRUNCATED;
	}
	if (left < magic && magic_prefix(u->kind, in, left))
	{
		/* the start of a magic number: more input, or a member cut in it */
		*wait = !in_eof;
		return in_eof ? TC_TRUNCATED : TC_OK;
	}
	if (u->kind == TC_GZIP ? !is_gzip_magic(in, left) : !is_zstd_magic(in, left, true))
	{
		if (u->started)
			return TC_TRAILING;
		/* zstd's first frame too (libzstd would also read its legacy formats) */
		u->msg = "no zstd frame starts there";
		return TC_BAD_DATA;
	}
	if (u->kind == TC_GZIP && inflateReset((z_stream *) u->state) != Z_OK)
	{
		u->msg = "it cannot be read";
		return TC_BAD_DATA;
	}
	u->member_ended = false;
	u->fh_len = 0;
	u->fh_done = false;
	u->frame_out = 0;
	return TC_OK;
}

TcStatus
tc_unpack(TcUnpacker *u, const char *in, size_t len, bool in_eof,
		  char *out, size_t room, size_t *used, size_t *made)
{
	size_t		pos = 0;
	size_t		o = 0;
	TcStatus	st = TC_OK;

	while (o < room)
	{
		bool		progress;

		if (u->member_ended)
		{
			bool		wait;

			st = next_member(u, (const unsigned char *) in + pos, len - pos, in_eof, &wait);
			if (st != TC_OK || wait)
				break;
		}
		u->started = true;
		st = (u->kind == TC_GZIP ? gzip_step : zstd_step) (u, in, len, &pos, out, room, &o, &progress);
		if (st != TC_OK)
			break;
		if (!progress)
		{
			/* all input taken and nothing pending: more input, or the member was cut */
			if (pos < len)
			{
				u->msg = "the decompressor makes no progress";
				st = TC_BAD_DATA;
			}
			else if (in_eof && !u->member_ended)
				st = TC_TRUNCATED;
			break;
		}
	}
	*used = pos;
	*made = o;
	return st;
}
