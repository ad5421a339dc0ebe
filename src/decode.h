/*
 * decode.h
 *		Between the reader and the parser: a job's bytes decompressed (gzip)
 *		and converted from the file's encoding to the database's, streaming.
 */
#ifndef INGEST_DECODE_H
#define INGEST_DECODE_H

#include "options.h"

/* Where the decoder pulls the source's bytes from: up to len into buf, 0 at its end. */
typedef size_t (*DecodeReadFn) (void *arg, char *buf, size_t len);

typedef struct IngestDecoder IngestDecoder;

/*
 * Open a decoder over a source ("what" names it in messages). Reads the
 * source's first bytes (to recognise gzip and a UTF-16 byte order mark).
 */
extern IngestDecoder *decode_open(DecodeReadFn read, void *arg, const char *what,
								  const IngestOptions *opts, MemoryContext cxt);

/* The next decoded bytes: *out points into the decoder; 0 at the end. */
extern size_t decode_read(IngestDecoder *d, const char **out);

/*
 * bytes_done for a job: the source's bytes (as stored: compressed, in the
 * file's encoding) behind "decoded" bytes handed to the parser. Exact when
 * nothing is decoded; otherwise the source bytes the decoder has read.
 */
extern int64 decode_source_bytes(const IngestDecoder *d, uint64 decoded);

/*
 * An encoding option's value: a PostgreSQL encoding id, or one of the
 * INGEST_ENCODING_UTF16* values; ERROR for a name no conversion exists for.
 */
extern int	decode_parse_encoding(const char *name);
extern const char *decode_encoding_name(int encoding);

/*
 * A byte sequence that is invalid in the file's encoding, or that has no
 * equivalent in the database's, is replaced in the decoded text by a marker
 * (a NUL, which no text can hold, then the bytes, then a NUL), so that the
 * record holding it is rejected by the check of every value (convert.c)
 * rather than the job. decode_marker_len: the length of the marker at s, or
 * 0; decode_marker_message: what to say about it, or NULL when s holds no
 * marker of the job being decoded (a NUL in a file read as is).
 */
extern size_t decode_marker_len(const char *s, size_t len);
extern char *decode_marker_message(const char *s, size_t len);

/* The hint added to "invalid byte sequence" when the file's encoding was not given, or NULL. */
extern const char *decode_encoding_hint(void);

#endif							/* INGEST_DECODE_H */
