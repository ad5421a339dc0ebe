/*
 * api.h
 *		The SQL-callable functions of ingest.
 */
#ifndef INGEST_API_H
#define INGEST_API_H

extern void api_init(void);

#endif							/* INGEST_API_H */
