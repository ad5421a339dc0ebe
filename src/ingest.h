/*
 * ingest.h
 *		Settings (GUCs) shared by the files of the extension.
 */
#ifndef INGEST_H
#define INGEST_H

extern int	ingest_max_workers;
extern int	ingest_batch_rows;
extern int	ingest_worker_idle_timeout;
extern char *ingest_allowed_dirs;
extern bool ingest_preloaded;

#define INGEST_READ_CHUNK		(256 * 1024)
#define INGEST_MAX_FIELD_SIZE	((size_t) 256 * 1024 * 1024)
#define INGEST_RAW_LINE_MAX		1024
#define INGEST_RETAINED_ERRORS	100
#define INGEST_MAX_ATTEMPTS		3	/* starts of a job whose worker keeps dying */

#endif							/* INGEST_H */
