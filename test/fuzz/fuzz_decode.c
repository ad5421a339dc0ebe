/*
 * fuzz_decode.c
 *		libFuzzer harness for src/transcode.c: the decoder's byte work that
 *		needs no server (gzip and zstd members, UTF-16 to UTF-8, magic bytes
 *		and byte order marks, the markers of bytes that could not be decoded).
 *
 * Built alone with transcode.c, zlib and libzstd by test/fuzz/run.sh, under
 * AddressSanitizer and UndefinedBehaviorSanitizer; with -DFUZZ_REPLAY instead
 * of -fsanitize=fuzzer it gets a main() that runs the inputs named on its
 * command line (files, or directories of files) once each.
 *
 * An input is a 4-byte header, then the data:
 *
 *	byte 0	bits 0-2: mode (below); bit 3: big-endian UTF-16
 *	byte 1	seed of the input chunk sizes of the chunked run
 *	byte 2	seed of the output room of the chunked run
 *	byte 3	where a round trip cuts the compressed stream, and how it splits
 *			the data into two members
 *
 * Modes:
 *	0	UTF-16: the data as UTF-16 code units;
 *	1	UTF-16 round trip: the data read as code points (3 bytes each), written
 *		as UTF-16 with surrogate pairs, must come back as their UTF-8;
 *	2, 3	gzip, zstd: the data as a compressed stream;
 *	4, 5	gzip, zstd round trip: the data compressed (as two members, with a
 *		zstd skippable frame first when bit 3 is set), then decompressed: it
 *		must come back whole, and cut anywhere it must say truncated (or end,
 *		when cut between members);
 *	6, 7	the sniffers and the marker scanner on the data.
 *
 * Each conversion runs twice: in one piece, and in chunks of varying size
 * (empty ones too) into output buffers of varying room (each allocated to its
 * exact size, so that ASan sees a byte written past it); the two must agree.
 * UTF-16 output must be valid UTF-8 between markers, every NUL must start a
 * complete marker, and all the input must be taken at its end. A violation
 * prints what differs and aborts, so libFuzzer saves the input as a crash.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>
#include <zstd.h>

#include "transcode.h"

#define HEADER_LEN	4
#define OUT_LIMIT	(1024 * 1024)	/* decompress no more than this: a bomb is not a finding */

#define CHECK(cond) \
	do { \
		if (!(cond)) \
			fail("%s:%d: check failed: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static void
fail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_decode: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		fail("out of memory");
	return p;
}

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

/* Never NULL, even empty: pointer arithmetic on it is defined. */
static void
buf_init(Buf *b)
{
	b->cap = 64;
	b->len = 0;
	b->data = xmalloc(b->cap);
}

static void
buf_add(Buf *b, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (b->len + n > b->cap)
	{
		b->cap = (b->len + n) * 2 + 64;
		b->data = realloc(b->data, b->cap);
		if (b->data == NULL)
			fail("out of memory");
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* A small deterministic generator for chunk sizes. */
static unsigned
next_size(unsigned *seed, unsigned max)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) % (max + 1);
}

/* Is s (len bytes) valid UTF-8 with no NUL, no surrogate, nothing over U+10FFFF? */
static bool
valid_utf8(const unsigned char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		int			n;
		uint32_t	cp;

		if (c == 0)
			return false;
		if (c < 0x80)
		{
			i++;
			continue;
		}
		n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (n == 0 || i + n > len)
			return false;
		cp = c & (0x7f >> n);
		for (int k = 1; k < n; k++)
		{
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
			(cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n;
	}
	return true;
}

/* UTF-16 output: valid UTF-8 between markers, each NUL the start of a complete marker. */
static void
check_text(const Buf *out)
{
	size_t		i = 0;

	while (i < out->len)
	{
		const char *nul = memchr(out->data + i, '\0', out->len - i);
		size_t		end = nul ? (size_t) (nul - out->data) : out->len;
		bool		partial;
		size_t		ml;

		if (!valid_utf8((const unsigned char *) out->data + i, end - i))
			fail("UTF-16 output is not valid UTF-8 at %zu", i);
		if (nul == NULL)
			break;
		ml = encoding_marker_scan(nul, out->len - end, &partial);
		if (ml == 0 || nul[1] != ENCODING_MARKER_INVALID)
			fail("a NUL at %zu of the UTF-16 output is no marker", end);
		i = end + ml;
	}
}

/* ---------- UTF-16 ---------- */

/* Convert in one piece (seed 0) or in chunks into buffers of varying room. */
static void
run_utf16(TcUtf16 order, const unsigned char *in, size_t len, unsigned seed, unsigned room_seed,
		  Buf *out)
{
	size_t		pos = 0;
	size_t		have = 0;		/* input given so far */
	int			stuck = 0;

	for (;;)
	{
		size_t		room = seed ? ENCODING_MARKER_MAX + next_size(&room_seed, 40) : len * 2 + 64;
		char	   *o = xmalloc(room);
		size_t		used;
		size_t		made;
		bool		eof;

		if (seed)
			have = have + next_size(&seed, 9);
		else
			have = len;
		if (have > len)
			have = len;
		eof = (have == len);
		made = tc_utf16_to_utf8(order, in + pos, have - pos, eof, o, room, &used);
		CHECK(used <= have - pos && made <= room);
		buf_add(out, o, made);
		free(o);
		pos += used;
		if (eof && pos == len)
			break;
		stuck = (used == 0 && made == 0 && eof) ? stuck + 1 : 0;
		if (stuck > 2)
			fail("UTF-16 conversion makes no progress at %zu of %zu", pos, len);
	}
}

static void
fuzz_utf16(TcUtf16 order, const unsigned char *in, size_t len, unsigned s1, unsigned s2)
{
	Buf			whole;
	Buf			chunked;

	buf_init(&whole);
	buf_init(&chunked);
	run_utf16(order, in, len, 0, 0, &whole);
	run_utf16(order, in, len, s1 | 1, s2, &chunked);
	check_text(&whole);
	if (whole.len != chunked.len || memcmp(whole.data, chunked.data, whole.len) != 0)
		fail("UTF-16: chunked output (%zu bytes) differs from whole (%zu bytes)",
			 chunked.len, whole.len);
	free(whole.data);
	free(chunked.data);
}

/* Code points from the data (3 bytes each), as UTF-16 and as UTF-8; must convert to the latter. */
static void
fuzz_utf16_round_trip(TcUtf16 order, const unsigned char *data, size_t len, unsigned s1, unsigned s2)
{
	Buf			u16;
	Buf			u8;
	Buf			got;

	buf_init(&u16);
	buf_init(&u8);
	buf_init(&got);
	for (size_t i = 0; i + 3 <= len; i += 3)
	{
		uint32_t	cp = ((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]) % 0x110000;
		uint16_t	units[2];
		int			nu = 0;
		unsigned char b[4];
		size_t		n8 = 0;

		if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
			continue;
		if (cp >= 0x10000)
		{
			units[nu++] = 0xd800 + ((cp - 0x10000) >> 10);
			units[nu++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
		}
		else
			units[nu++] = cp;
		for (int k = 0; k < nu; k++)
		{
			unsigned char u[2];

			u[order == TC_UTF16_LE ? 0 : 1] = units[k] & 0xff;
			u[order == TC_UTF16_LE ? 1 : 0] = units[k] >> 8;
			buf_add(&u16, (char *) u, 2);
		}
		if (cp < 0x80)
			b[n8++] = cp;
		else if (cp < 0x800)
		{
			b[n8++] = 0xc0 | (cp >> 6);
			b[n8++] = 0x80 | (cp & 0x3f);
		}
		else if (cp < 0x10000)
		{
			b[n8++] = 0xe0 | (cp >> 12);
			b[n8++] = 0x80 | ((cp >> 6) & 0x3f);
			b[n8++] = 0x80 | (cp & 0x3f);
		}
		else
		{
			b[n8++] = 0xf0 | (cp >> 18);
			b[n8++] = 0x80 | ((cp >> 12) & 0x3f);
			b[n8++] = 0x80 | ((cp >> 6) & 0x3f);
			b[n8++] = 0x80 | (cp & 0x3f);
		}
		buf_add(&u8, (char *) b, n8);
	}
	run_utf16(order, (unsigned char *) u16.data, u16.len, s1 | 1, s2, &got);
	if (got.len != u8.len || (u8.len > 0 && memcmp(got.data, u8.data, u8.len) != 0))
		fail("UTF-16 round trip: %zu bytes back, %zu expected", got.len, u8.len);
	free(u16.data);
	free(u8.data);
	free(got.data);
}

/* ---------- decompression ---------- */

/*
 * Decompress in one piece (seed 0) or in chunks; returns the final status.
 * Stops at OUT_LIMIT bytes of output (TC_OK then).
 */
static TcStatus
run_unpack(TcCompression kind, const char *in, size_t len, unsigned seed, unsigned room_seed,
		   Buf *out)
{
	TcUnpacker u;
	size_t		pos = 0;
	size_t		have = 0;
	TcStatus	st;
	int			idle = 0;

	if (tc_unpack_init(&u, kind) != TC_OK)
		fail("tc_unpack_init failed");
	for (;;)
	{
		size_t		room = seed ? 1 + next_size(&room_seed, 300) : 64 * 1024;
		char	   *o = xmalloc(room);
		size_t		used;
		size_t		made;

		have = seed ? have + next_size(&seed, 64) : len;
		if (have > len)
			have = len;
		st = tc_unpack(&u, in + pos, have - pos, have == len, o, room, &used, &made);
		CHECK(used <= have - pos && made <= room);
		buf_add(out, o, made);
		free(o);
		pos += used;
		if (st != TC_OK || out->len > OUT_LIMIT)
			break;
		/* TC_OK: out full, or the input given is used up (or waits for a magic's rest) */
		idle = (used == 0 && made == 0 && have == len) ? idle + 1 : 0;
		if (idle > 2)
			fail("decompression makes no progress: status OK at the end of input (%zu of %zu)",
				 pos, len);
	}
	tc_unpack_end(&u);
	return st;
}

static bool
is_data_error(TcStatus st)
{
	return st == TC_BAD_DATA || st == TC_TRAILING;
}

static void
fuzz_unpack(TcCompression kind, const char *in, size_t len, unsigned s1, unsigned s2)
{
	Buf			whole;
	Buf			chunked;
	TcStatus	a;
	TcStatus	b;
	size_t		n;

	buf_init(&whole);
	buf_init(&chunked);
	a = run_unpack(kind, in, len, 0, 0, &whole);
	b = run_unpack(kind, in, len, s1 | 1, s2, &chunked);
	n = whole.len < chunked.len ? whole.len : chunked.len;

	/* the same bytes, as far as both went; the same ending when both ended */
	if (n > 0 && memcmp(whole.data, chunked.data, n) != 0)
		fail("decompression: chunked output differs from whole");
	if (whole.len <= OUT_LIMIT && chunked.len <= OUT_LIMIT)
	{
		/*
		 * libzstd decodes a frame that is all in its input in one pass, and
		 * may then call bytes after it corrupt rather than trailing: both
		 * are errors, and either is right.
		 */
		if (a != b && !(is_data_error(a) && is_data_error(b)))
			fail("decompression: whole ends with status %d, chunked with %d", a, b);
		if ((a == TC_END || a == TC_TRUNCATED) && whole.len != chunked.len)
			fail("decompression: whole gives %zu bytes, chunked %zu", whole.len, chunked.len);
	}
	free(whole.data);
	free(chunked.data);
}

/* Compress data as one member (gzip, or a zstd frame) onto out. */
static void
compress_member(TcCompression kind, const unsigned char *data, size_t len, Buf *out)
{
	if (kind == TC_GZIP)
	{
		z_stream	z = {0};
		size_t		bound;
		char	   *tmp;

		if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			fail("deflateInit2 failed");
		bound = deflateBound(&z, len) + 32;
		tmp = xmalloc(bound);
		z.next_in = (Bytef *) data;
		z.avail_in = len;
		z.next_out = (Bytef *) tmp;
		z.avail_out = bound;
		if (deflate(&z, Z_FINISH) != Z_STREAM_END)
			fail("deflate failed");
		buf_add(out, tmp, bound - z.avail_out);
		deflateEnd(&z);
		free(tmp);
	}
	else
	{
		size_t		bound = ZSTD_compressBound(len);
		char	   *tmp = xmalloc(bound);
		size_t		n = ZSTD_compress(tmp, bound, data, len, 3);

		if (ZSTD_isError(n))
			fail("ZSTD_compress: %s", ZSTD_getErrorName(n));
		buf_add(out, tmp, n);
		free(tmp);
	}
}

static void
fuzz_round_trip(TcCompression kind, const unsigned char *data, size_t len, unsigned char cut,
				bool skippable, unsigned s1, unsigned s2)
{
	Buf			z;
	Buf			got;
	size_t		split = len ? cut % (len + 1) : 0;
	size_t		first_end;
	size_t		at;
	TcStatus	st;

	buf_init(&z);
	buf_init(&got);
	if (kind == TC_ZSTD && skippable)
		buf_add(&z, "\x50\x2a\x4d\x18\x02\x00\x00\x00xy", 10);
	compress_member(kind, data, split, &z);
	first_end = z.len;
	compress_member(kind, data + split, len - split, &z);
	CHECK(tc_sniff_compression((unsigned char *) z.data, z.len) == kind);

	st = run_unpack(kind, z.data, z.len, s1 | 1, s2, &got);
	if (st != TC_END || got.len != len || (len > 0 && memcmp(got.data, data, len) != 0))
		fail("round trip: status %d, %zu bytes back of %zu", st, got.len, len);

	/* cut short: truncated, unless the cut falls between members */
	at = (size_t) ((cut * 2654435761u) % (z.len ? z.len : 1));
	got.len = 0;
	st = run_unpack(kind, z.data, at, s2 | 1, s1, &got);
	if (at == first_end)
		CHECK(st == TC_END && got.len == split);
	else if (kind == TC_ZSTD && skippable && at == 10)
		CHECK(st == TC_END && got.len == 0);	/* after the skippable frame */
	else
		CHECK(st == TC_TRUNCATED);
	CHECK(got.len <= len && (got.len == 0 || memcmp(got.data, data, got.len) == 0));
	free(z.data);
	free(got.data);
}

/* ---------- sniffers and markers ---------- */

static void
fuzz_sniff(const unsigned char *data, size_t len)
{
	TcCompression c = tc_sniff_compression(data, len);
	TcUtf16		b = tc_sniff_bom(data, len);

	CHECK(c == TC_PLAIN || len >= 2);
	CHECK(c != TC_GZIP || (data[0] == 0x1f && data[1] == 0x8b));
	CHECK(c != TC_ZSTD || len >= 4);
	CHECK(b == TC_UTF16_NONE || (len >= 2 && data[0] + data[1] == 0xff + 0xfe));
	for (size_t i = 0; i < len; i++)
	{
		bool		partial;
		size_t		ml = encoding_marker_scan((const char *) data + i, len - i, &partial);

		CHECK(ml <= len - i && ml <= ENCODING_MARKER_MAX);
		CHECK(ml == 0 || !partial);
		if (ml > 0)
		{
			/* a marker scanned is one put: the same bytes again */
			unsigned char bytes[4];
			char		again[ENCODING_MARKER_MAX];
			int			k = data[i + 2] - '0';

			for (int j = 0; j < k; j++)
			{
				unsigned	v;

				CHECK(sscanf((const char *) data + i + 3 + 2 * j, "%2x", &v) == 1);
				bytes[j] = (unsigned char) v;
			}
			CHECK(encoding_put_marker(again, data[i + 1], bytes, k) == ml);
			CHECK(strncasecmp(again + 3, (const char *) data + i + 3, 2 * k) == 0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
	const unsigned char *data = input + HEADER_LEN;
	size_t		len;
	TcUtf16		order;

	if (size < HEADER_LEN)
		return 0;
	len = size - HEADER_LEN;
	order = (input[0] & 8) ? TC_UTF16_BE : TC_UTF16_LE;
	switch (input[0] & 7)
	{
		case 0:
			fuzz_utf16(order, data, len, input[1], input[2]);
			break;
		case 1:
			fuzz_utf16_round_trip(order, data, len, input[1], input[2]);
			break;
		case 2:
		case 3:
			fuzz_unpack((input[0] & 7) == 2 ? TC_GZIP : TC_ZSTD, (const char *) data, len,
						input[1], input[2]);
			break;
		case 4:
		case 5:
			fuzz_round_trip((input[0] & 7) == 4 ? TC_GZIP : TC_ZSTD, data, len, input[3],
							(input[0] & 8) != 0, input[1], input[2]);
			break;
		default:
			fuzz_sniff(data, len);
			break;
	}
	return 0;
}

#ifdef FUZZ_REPLAY

/* Without libFuzzer: run each input named on the command line (or in a directory named) once. */
static int
replay_file(const char *path)
{
	FILE	   *f = fopen(path, "rb");
	Buf			b;
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
	{
		perror(path);
		return 1;
	}
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	fprintf(stderr, "running %s (%zu bytes)\n", path, b.len);
	LLVMFuzzerTestOneInput((const uint8_t *) b.data, b.len);
	free(b.data);
	return 0;
}

int
main(int argc, char **argv)
{
	int			errors = 0;

	for (int i = 1; i < argc; i++)
	{
		struct stat sb;
		DIR		   *d;
		struct dirent *e;

		if (stat(argv[i], &sb) != 0 || !S_ISDIR(sb.st_mode))
		{
			errors += replay_file(argv[i]);
			continue;
		}
		if ((d = opendir(argv[i])) == NULL)
		{
			perror(argv[i]);
			errors++;
			continue;
		}
		while ((e = readdir(d)) != NULL)
		{
			char		path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			errors += replay_file(path);
		}
		closedir(d);
	}
	return errors ? 1 : 0;
}

#endif							/* FUZZ_REPLAY */
