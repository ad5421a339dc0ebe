/*
 * atcommit.h
 *		Actions run only if the transaction that asks for them commits.
 */
#ifndef INGEST_ATCOMMIT_H
#define INGEST_ATCOMMIT_H

typedef void (*AtCommitAction) (void *arg);

/*
 * Run action(arg) once the current transaction has committed; never if it,
 * or the subtransaction that asks, aborts. arg is NULL or palloc'd in
 * TopMemoryContext, and is freed here. what completes "cannot PREPARE a
 * transaction that has ..." (a prepared transaction commits elsewhere).
 */
extern void at_commit(AtCommitAction action, void *arg, const char *what);

#endif							/* INGEST_ATCOMMIT_H */
