/*
 * launcher.h
 *		The static background worker that starts per-database workers.
 */
#ifndef INGEST_LAUNCHER_H
#define INGEST_LAUNCHER_H

extern void launcher_init(void);
extern void launcher_register(void);
extern PGDLLEXPORT void ingest_launcher_main(Datum main_arg);

#endif							/* INGEST_LAUNCHER_H */
