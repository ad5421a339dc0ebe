/*
 * batchscan.h
 *		A custom scan that feeds the worker's converted batch to its INSERT.
 */
#ifndef INGEST_BATCHSCAN_H
#define INGEST_BATCHSCAN_H

extern void batchscan_install(void);
extern void batchscan_refresh(void);
extern void batchscan_expect_own(bool expected);
extern bool batchscan_is_own_plan(struct Plan *plan);

#endif							/* INGEST_BATCHSCAN_H */
