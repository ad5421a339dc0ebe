/*
 * target.h
 *		Checks of a load's target table that the enqueue and the worker share.
 */
#ifndef INGEST_TARGET_H
#define INGEST_TARGET_H

extern bool target_has_foreign_partitions(Oid relid);
extern void target_check_foreign_rls(Oid relid, Oid owner);

#endif							/* INGEST_TARGET_H */
