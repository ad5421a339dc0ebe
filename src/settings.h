/*
 * settings.h
 *		Settings (GUCs) and limits shared by the files of the extension.
 */
#ifndef INGEST_SETTINGS_H
#define INGEST_SETTINGS_H

/* Each is defined, with its GUC, by the module named. */
extern bool ingest_preloaded;	/* ingest.c */
extern int	ingest_batch_rows;	/* loader.c */
extern int	ingest_max_record_size;
extern int	ingest_max_error_rows;
extern int	ingest_max_workers; /* launcher.c */
extern int	ingest_worker_idle_timeout; /* worker.c */
extern int	ingest_max_running_per_role;
extern int	ingest_max_worker_deaths;
extern int	ingest_keep_failed_data;
extern int	ingest_max_attempts;	/* enqueue.c */
extern int	ingest_job_timeout;
extern int	ingest_max_queued_per_role;
extern char *ingest_allowed_dirs;	/* reader.c */
extern double ingest_max_file_size;
extern int	ingest_upload_ttl;	/* upload.c */
extern int	ingest_max_chunks_per_upload;
extern char *ingest_tenant_key; /* identity.c */

/*
 * The extension version whose tables and views the SQL of the jobs service
 * (jobs*.c) is written for: raise it with every new upgrade
 * script.
 */
#define INGEST_SCHEMA_VERSION	"1.5"

#define INGEST_READ_CHUNK		(256 * 1024)
#define INGEST_MAX_RECORD_SIZE_LIMIT	(1024 * 1024 * 1024 - 1)	/* a varlena's limit */
#define INGEST_MAX_ATTEMPTS_LIMIT	100
#define INGEST_RAW_LINE_MAX		1024

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

#endif							/* INGEST_SETTINGS_H */
