/*
 * reader.h
 *		Byte sources of a job behind one small interface.
 */
#ifndef INGEST_READER_H
#define INGEST_READER_H

#include <sys/stat.h>

#include "jobs.h"
#include "options.h"

typedef struct IngestReader IngestReader;

extern void reader_init(void);

extern IngestReader *reader_open(const IngestJob *job, MemoryContext cxt);
extern IngestReader *reader_open_part(const IngestJob *job, MemoryContext cxt);
extern size_t reader_read(IngestReader *r, char *buf, size_t len);
extern void reader_set_range(IngestReader *r, int64 start, int64 end, bool tail);
extern bool reader_seekable(const IngestJob *job);
extern const char *reader_what(const IngestReader *r);

/* In the transaction that records a successful load: what the source asks for then. */
extern void reader_succeeded(IngestReader *r, const IngestOptions *opts);

extern char *reader_resolve_path(const char *path, int64 *size);
extern char *reader_resolve_dir(const char *path);
extern TimestampTz reader_mtime(const struct stat *st);
extern size_t reader_file_head(const char *path, char *buf, size_t len, bool *complete);
extern void reader_check_size(int64 size, const char *what);
extern int64 reader_lo_io(Oid loid, int64 offset, char *buf, int len);
extern bool reader_lo_owned_by(Oid loid, Oid role);

#endif							/* INGEST_READER_H */
