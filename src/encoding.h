/*
 * encoding.h
 *		A file's encoding: its name in the options, and the markers that a
 *		byte sequence the conversion could not take leaves in the text.
 */
#ifndef INGEST_ENCODING_H
#define INGEST_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

#include "transcode.h"			/* the markers */

/* encoding: a PostgreSQL encoding id, or one of these */
#define INGEST_ENCODING_DEFAULT	(-1)	/* not given: the database's, or UTF-16 by its BOM */
#define INGEST_ENCODING_UTF16	(-2)	/* byte order by the BOM; big-endian without one */
#define INGEST_ENCODING_UTF16LE	(-3)
#define INGEST_ENCODING_UTF16BE	(-4)

/*
 * An encoding option's value: a PostgreSQL encoding id, or one of the
 * INGEST_ENCODING_UTF16* values; ERROR for a name no conversion exists for.
 */
extern int	encoding_parse(const char *name);
extern const char *encoding_name(int encoding);

/*
 * encoding_marker_len: the length of the marker at s, or 0;
 * encoding_marker_message: what to say about it, or NULL when s holds no
 * marker of the job being decoded (a NUL in a file read as is).
 */
extern size_t encoding_marker_len(const char *s, size_t len);
extern char *encoding_marker_message(const char *s, size_t len);

/* The hint added to "invalid byte sequence" when the file's encoding was not given, or NULL. */
extern const char *encoding_hint(void);

/* The job being decoded, for the messages above (decode.c). */
extern void encoding_job_begin(int enc);
extern void encoding_job_source(const char *name);
extern void encoding_job_markers(bool on);
extern void encoding_job_end(void);

#endif							/* INGEST_ENCODING_H */
