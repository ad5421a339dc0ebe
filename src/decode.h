/*
 * decode.h
 *		Between the reader and the parser: a job's bytes decompressed (gzip, zstd)
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
 * source's first bytes (to recognise gzip, zstd and a UTF-16 byte order mark).
 */
extern IngestDecoder *decode_open(DecodeReadFn read, void *arg, const char *what,
								  const IngestOptions *opts, MemoryContext cxt);

/*
 * A decoder over the first bytes of a source, held in memory (the early
 * header check, header.c). Unless complete (they are all of the source),
 * their end is not the source's: a compressed stream cut there is no error,
 * only the end of what can be decoded now. Its stages pull in small steps.
 */
extern IngestDecoder *decode_open_head(const char *bytes, size_t len, bool complete,
									   const char *what, const IngestOptions *opts,
									   MemoryContext cxt);

/* The next decoded bytes: *out points into the decoder; 0 at the end. */
extern size_t decode_read(IngestDecoder *d, const char **out);

/*
 * bytes_done for a job: the source's bytes (as stored: compressed, in the
 * file's encoding) behind "decoded" bytes handed to the parser. Exact when
 * nothing is decoded; otherwise the source bytes the decoder has read.
 */
extern int64 decode_source_bytes(const IngestDecoder *d, uint64 decoded);

#endif							/* INGEST_DECODE_H */
