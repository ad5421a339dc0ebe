/*
 * catalog.h
 *		Where ingest's own tables are.
 */
#ifndef INGEST_CATALOG_H
#define INGEST_CATALOG_H

/* The schema of the tables only ingest's C code reads and writes (from version 1.2). */
#define INGEST_PRIVATE_SCHEMA	"ingest_private"

extern Oid	catalog_jobs_table(void);

#endif							/* INGEST_CATALOG_H */
