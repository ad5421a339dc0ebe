/*
 * dropdir.h
 *		ingest.enqueue_dir: the files of a drop folder, each enqueued once.
 */
#ifndef INGEST_DROPDIR_H
#define INGEST_DROPDIR_H

extern void dropdir_init(void);

#endif							/* INGEST_DROPDIR_H */
