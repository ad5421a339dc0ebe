/*
 * transcode.h
 *		The decoder's byte work in plain C: recognising a source's compression
 *		and byte order mark, decompressing gzip and zstd member by member, and
 *		UTF-16 to UTF-8; the markers that stand for bytes it could not take.
 *
 * Nothing here needs the server: errors are return codes, memory is the
 * caller's buffers plus zlib's and libzstd's own state, so the fuzzer builds
 * transcode.c alone (test/fuzz/fuzz_decode.c). decode.c drives it, reading the
 * source, raising the errors and applying ingest.max_file_size.
 */
#ifndef INGEST_TRANSCODE_H
#define INGEST_TRANSCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A byte sequence the decoding could not take is replaced by a marker: a NUL,
 * a kind, the count of bytes (1 to 4), those bytes in hex and a NUL. No text
 * value can hold a NUL, so the record holding one is rejected (convert.c).
 */
#define ENCODING_MARKER_MAX			12	/* NUL, kind, count, up to 4 bytes in hex, NUL */
#define ENCODING_MARKER_INVALID		'i'	/* invalid in the file's encoding */
#define ENCODING_MARKER_NO_EQUIV	'u'	/* no equivalent in the database's */

extern size_t encoding_put_marker(char *out, char kind, const unsigned char *bytes, int n);

/* Length of a complete marker at s, 0 if there is none; *partial: s may be the start of one. */
extern size_t encoding_marker_scan(const char *s, size_t len, bool *partial);

/* ---------- recognising a source ---------- */

typedef enum TcCompression
{
	TC_PLAIN = 0,
	TC_GZIP,
	TC_ZSTD
} TcCompression;

typedef enum TcUtf16
{
	TC_UTF16_NONE = 0,
	TC_UTF16_LE,
	TC_UTF16_BE
} TcUtf16;

/* The longest magic number looked at (zstd's): sniff at least this many bytes when there are. */
#define TC_MAGIC_LEN	4

/*
 * What the first bytes of a source say it is compressed with: gzip's magic,
 * zstd's (a frame's or a skippable frame's), or neither.
 */
extern TcCompression tc_sniff_compression(const unsigned char *m, size_t len);

/* The byte order a UTF-16 byte order mark says (2 bytes), or TC_UTF16_NONE. */
extern TcUtf16 tc_sniff_bom(const unsigned char *m, size_t len);

/* ---------- UTF-16 to UTF-8 ---------- */

/*
 * Convert UTF-16 code units from in (len bytes) to UTF-8 in out (room
 * bytes); returns the bytes written, *used the input taken. eof: no input
 * follows, so a last odd byte or a high surrogate at the end is taken too.
 * Surrogate pairs become one character; an unpaired surrogate, U+0000 and a
 * last odd byte become ENCODING_MARKER_INVALID markers. Writes nothing when
 * room < ENCODING_MARKER_MAX; the output is valid UTF-8 between markers.
 */
extern size_t tc_utf16_to_utf8(TcUtf16 order, const unsigned char *in, size_t len, bool eof,
							   char *out, size_t room, size_t *used);

/* ---------- decompression ---------- */

typedef enum TcStatus
{
	TC_OK = 0,					/* out is full, or the input is used up: give more */
	TC_END,						/* the input ended after a complete member */
	TC_TRUNCATED,				/* the input ended inside a member */
	TC_BAD_DATA,				/* invalid compressed data (msg says how) */
	TC_TRAILING,				/* after a member: bytes that start no member */
	TC_NO_MEMORY
} TcStatus;

typedef struct TcUnpacker
{
	TcCompression kind;
	bool		member_ended;	/* between members: the next must start with the magic */
	bool		started;		/* a member has begun */
	const char *msg;			/* with TC_BAD_DATA: what is wrong */
	void	   *state;			/* z_stream or ZSTD_DStream */
	/* zstd: the frame under way's header, its content size, the bytes it gave */
	unsigned char fh[18];		/* ZSTD_FRAMEHEADERSIZE_MAX */
	size_t		fh_len;
	bool		fh_done;
	unsigned long long frame_size;
	unsigned long long frame_out;
} TcUnpacker;

/*
 * zstd frames may ask for a window up to this (8 MB: every level of the zstd
 * command without --long or --ultra); larger ones are TC_BAD_DATA, so that
 * memory stays bounded.
 */
#define TC_ZSTD_WINDOW_LOG_MAX	23

extern TcStatus tc_unpack_init(TcUnpacker *u, TcCompression kind);
extern void tc_unpack_end(TcUnpacker *u);

/*
 * Decompress from in (len bytes) into out (room bytes): *used input taken,
 * *made output written (also when an error is returned). in_eof: nothing
 * follows in. Members (gzip) or frames (zstd) may follow one another, each
 * starting with its magic bytes; zstd's skippable frames are passed over.
 */
extern TcStatus tc_unpack(TcUnpacker *u, const char *in, size_t len, bool in_eof,
						  char *out, size_t room, size_t *used, size_t *made);

#endif							/* INGEST_TRANSCODE_H */
