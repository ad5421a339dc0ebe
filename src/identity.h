/*
 * identity.h
 *		Who a job runs as: capture the owner's session settings at enqueue,
 *		switch to the owner (or to the extension's owner) and back.
 */
#ifndef INGEST_IDENTITY_H
#define INGEST_IDENTITY_H

#include "utils/guc.h"
#include "utils/jsonb.h"

typedef struct IdentitySave
{
	Oid			userid;
	int			sec_context;
	int			guc_level;		/* identity_enter_system only */
} IdentitySave;

extern void identity_init(void);
extern Jsonb *identity_capture_settings(void);
extern void identity_apply_settings(Jsonb *settings);
extern void identity_check_owner(Oid owner, int64 job_id);
extern void identity_enter(Oid role, IdentitySave *save);
extern void identity_leave(const IdentitySave *save);
extern void identity_enter_system(IdentitySave *save);
extern void identity_leave_system(const IdentitySave *save);
extern bool identity_can_insert(Oid relid, AttrNumber attnum, Oid role);

extern bool identity_tenant_scoped(void);
extern char *identity_session_tenant(void);
extern char *identity_require_tenant(void);
extern bool identity_tenant_matches(const char *job_tenant);

#endif							/* INGEST_IDENTITY_H */
