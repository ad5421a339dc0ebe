/*
 * compat.h
 *		Every difference between the PostgreSQL versions ingest builds
 *		against (15 and later), in one place.
 */
#ifndef INGEST_COMPAT_H
#define INGEST_COMPAT_H

#include "fmgr.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_namespace.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc_tables.h"

#if PG_VERSION_NUM < 150000
#error "ingest needs PostgreSQL 15 or later"
#endif

/* aclchk.c's per-kind checks became object_aclcheck / object_ownercheck in 16 */
#if PG_VERSION_NUM >= 160000
#define compat_schema_usable(nsp, role) \
	(object_aclcheck(NamespaceRelationId, (nsp), (role), ACL_USAGE) == ACLCHECK_OK)
#define compat_lo_owned_by(loid, role) \
	object_ownercheck(LargeObjectRelationId, (loid), (role))
#else
#define compat_schema_usable(nsp, role) \
	(pg_namespace_aclcheck((nsp), (role), ACL_USAGE) == ACLCHECK_OK)
#define compat_lo_owned_by(loid, role) pg_largeobject_ownercheck((loid), (role))
#endif

/* the GUC table became a hash in 16: its variables come with their count */
static inline struct config_generic **
compat_guc_variables(int *n)
{
#if PG_VERSION_NUM >= 160000
	return get_guc_variables(n);
#else
	*n = GetNumConfigOptions();
	return get_guc_variables();
#endif
}

/* 17: LockHeldByMe can also answer for stronger modes; the virtual xid moved */
#if PG_VERSION_NUM >= 170000
#define compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode), false)
#define COMPAT_MY_LXID (MyProc->vxid.lxid)
#else
#define compat_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode))
#define COMPAT_MY_LXID (MyProc->lxid)
#endif

/* 16: ExecInsertIndexTuples can be told to insert into summarizing indexes only */
#if PG_VERSION_NUM >= 160000
#define compat_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define compat_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/*
 * 16: the map from a partitioned root's rows to a child's is made on first
 * use by ExecGetRootToChildMap; before, ExecInitRoutingInfo set it for each
 * partition rows are routed to. NULL when no conversion is needed.
 */
#if PG_VERSION_NUM >= 160000
#define compat_root_to_child_map(rri, estate) ExecGetRootToChildMap((rri), (estate))
#else
#define compat_root_to_child_map(rri, estate) ((rri)->ri_RootToPartitionMap)
#endif

/*
 * 16: an input function can report a bad value without raising it (soft
 * errors), so a bad value costs no subtransaction. Returns false with the
 * error in *edata; before 16 a bad value raises, as it always did.
 */
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
static inline bool
compat_input_value(FmgrInfo *flinfo, char *str, Oid ioparam, int32 typmod,
				   Datum *result, ErrorData **edata)
{
	ErrorSaveContext escontext = {T_ErrorSaveContext};

	escontext.details_wanted = true;
	if (InputFunctionCallSafe(flinfo, str, ioparam, typmod, (Node *) &escontext, result))
		return true;
	*edata = escontext.error_data;
	return false;
}
#else
static inline bool
compat_input_value(FmgrInfo *flinfo, char *str, Oid ioparam, int32 typmod,
				   Datum *result, ErrorData **edata)
{
	*result = InputFunctionCall(flinfo, str, ioparam, typmod);
	return true;
}
#endif

#endif							/* INGEST_COMPAT_H */
