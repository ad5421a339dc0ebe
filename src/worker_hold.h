/*
 * worker_hold.h
 *		A worker's hold on the job table, against DROP EXTENSION.
 */
#ifndef INGEST_WORKER_HOLD_H
#define INGEST_WORKER_HOLD_H

#include "catalog.h"

extern CatalogState hold_extension_state(void);
extern bool hold_lock_table(bool wait);
extern bool hold_take(void);
extern void hold_release(void);
extern bool hold_retake(void);
extern bool hold_suspend(void);
extern bool hold_resume(bool wait);
extern bool hold_wanted(void);
extern bool hold_database_wanted(void);

#endif							/* INGEST_WORKER_HOLD_H */
