/*
 * catalog.h
 *		Where ingest's own objects are: its extension row, its version, its
 *		job table and the role that owns it.
 */
#ifndef INGEST_CATALOG_H
#define INGEST_CATALOG_H

/* The schema of the tables only ingest's C code reads and writes (from version 1.2). */
#define INGEST_PRIVATE_SCHEMA	"ingest_private"

/* The extension in this database, as far as a worker or a job may use it. */
typedef enum CatalogState
{
	CATALOG_ABSENT,				/* not installed here (or being created or dropped) */
	CATALOG_OUTDATED,			/* installed at another version than this library's */
	CATALOG_CURRENT
} CatalogState;

extern Oid	catalog_extension_oid(bool missing_ok);
extern char *catalog_extension_version(Oid *extoid);
extern CatalogState catalog_extension_state(char **version);
extern void catalog_check_version(void);
extern Oid	catalog_jobs_table(void);
extern Oid	catalog_tables_owner(void);

#endif							/* INGEST_CATALOG_H */
