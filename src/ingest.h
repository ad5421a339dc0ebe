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
extern int	ingest_max_attempts;
extern int	ingest_job_timeout;
extern double ingest_max_file_size;
extern int	ingest_max_record_size;
extern int	ingest_upload_ttl;
extern int	ingest_max_queued_per_role;
extern int	ingest_max_running_per_role;
extern int	ingest_max_chunks_per_upload;
extern int	ingest_max_worker_deaths;
extern char *ingest_tenant_key;
extern int	ingest_max_error_rows;

/*
 * The extension version whose tables and views the SQL of the jobs service
 * (jobs*.c) and loader.c is written for: raise it with every new upgrade
 * script.
 */
#define INGEST_SCHEMA_VERSION	"1.2"

#define INGEST_READ_CHUNK		(256 * 1024)
#define INGEST_MAX_RECORD_SIZE_LIMIT	(1024 * 1024 * 1024 - 1)	/* a varlena's limit */
#define INGEST_MAX_ATTEMPTS_LIMIT	100
#define INGEST_RAW_LINE_MAX		1024
#define INGEST_RETAINED_ERRORS	100

/*
 * A batch is cut by bytes and by values as well as by ingest.batch_rows: the
 * text the parser holds for it, and the values converted from it, stay
 * bounded whatever the records' sizes, the column count and batch_rows.
 */
#define INGEST_BATCH_BYTES		(32 * 1024 * 1024)
#define INGEST_BATCH_VALUES		(4 * 1024 * 1024)
/* job_errors.message and upload_jobs.last_error are cut to this many bytes */
#define INGEST_MESSAGE_MAX		2048

/* ingest.max_file_size in bytes; 0 means no limit. */
#define INGEST_MAX_FILE_BYTES	((int64) ingest_max_file_size)

#endif							/* INGEST_H */
