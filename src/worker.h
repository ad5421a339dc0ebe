/*
 * worker.h
 *		The per-database background worker.
 */
#ifndef INGEST_WORKER_H
#define INGEST_WORKER_H

extern void worker_init(void);
extern PGDLLEXPORT void ingest_worker_main(Datum main_arg);

#endif							/* INGEST_WORKER_H */
