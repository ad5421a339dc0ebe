/*
 * reader.c
 *		Byte sources of a job behind one small interface.
 *
 * A job's bytes come from a file on the server (enqueue_file) or from
 * ingest.job_data (enqueue_data). Either way the loader asks for the next
 * chunk and never holds the whole source: a file is read with read(2), and
 * stored bytes, kept uncompressed (STORAGE EXTERNAL), are fetched one TOAST
 * slice at a time.
 *
 * Sources outlive transactions (a load with commit_every spans many), so
 * the file descriptor is ours, not fd.c's transaction-scoped kind; a reset
 * callback on the job's memory context closes it however the job ends.
 *
 * reader_resolve_path is also the enqueue-time check: the real path (no
 * "..", no symlink) must lie under a directory of ingest.allowed_dirs. The
 * worker checks again before opening, since the file may have been replaced.
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "identity.h"
#include "ingest.h"
#include "reader.h"

struct IngestReader
{
	int			fd;				/* file source, or -1 */
	struct varlena *toast_ptr;	/* data source: the stored value, still toasted */
	int64		size;
	int64		offset;
	MemoryContextCallback cb;
};

static bool
under_dir(const char *path, const char *dir)
{
	size_t		n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'));
}

/*
 * The resolved path of a file a job may read, or an ERROR saying why not;
 * its size in *size when size is not NULL.
 */
char *
reader_resolve_path(const char *path, int64 *size)
{
	char		resolved[PATH_MAX];
	char	   *dirs;
	List	   *dirlist;
	ListCell   *lc;
	struct stat st;
	bool		allowed = false;

	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ingest file path \"%s\" must be absolute", path)));

	if (ingest_allowed_dirs == NULL || ingest_allowed_dirs[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("ingest may not read \"%s\": ingest.allowed_dirs is empty", path),
				 errhint("A superuser can list directories in ingest.allowed_dirs in postgresql.conf.")));

	if (realpath(path, resolved) == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for ingest: %m", path)));

	dirs = pstrdup(ingest_allowed_dirs);
	if (!SplitDirectoriesString(dirs, ',', &dirlist))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in ingest.allowed_dirs")));
	foreach(lc, dirlist)
	{
		char		realdir[PATH_MAX];

		/* compare real paths, so a symlinked allowed dir still works */
		if (realpath((char *) lfirst(lc), realdir) != NULL && under_dir(resolved, realdir))
			allowed = true;
	}
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("ingest may not read \"%s\": it is not under a directory listed in ingest.allowed_dirs",
						path),
				 strcmp(path, resolved) != 0 ?
				 errdetail("The path resolves to \"%s\".", resolved) : 0));

	if (stat(resolved, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", resolved)));
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", resolved)));
	if (size != NULL)
		*size = (int64) st.st_size;
	return pstrdup(resolved);
}

static void
reader_cleanup(void *arg)
{
	IngestReader *r = arg;

	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static struct varlena *
fetch_stored_value(int64 job_id, MemoryContext cxt)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	IdentitySave save;
	struct varlena *ptr = NULL;
	bool		isnull;
	int			rc;

	SPI_connect();
	identity_enter_system(&save);
	rc = SPI_execute_with_args("SELECT data FROM ingest.job_data WHERE job_id = $1",
							   1, types, values, NULL, true, 1);
	identity_leave_system(&save);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		struct varlena *v = (struct varlena *) DatumGetPointer(d);
		Size		sz = VARATT_IS_EXTERNAL(v) ? VARSIZE_EXTERNAL(v) : VARSIZE_ANY(v);

		/* keep the TOAST pointer (or the small inline value), not the bytes */
		ptr = MemoryContextAlloc(cxt, sz);
		memcpy(ptr, v, sz);
	}
	SPI_finish();
	if (ptr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the data of ingest job " INT64_FORMAT " is missing", job_id)));
	return ptr;
}

IngestReader *
reader_open(const IngestJob *job, MemoryContext cxt)
{
	IngestReader *r = MemoryContextAllocZero(cxt, sizeof(IngestReader));

	r->fd = -1;
	r->cb.func = reader_cleanup;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->cb);

	if (job->source_type == JOB_SOURCE_FILE)
	{
		char	   *path = reader_resolve_path(job->source, NULL);
		char		opened[64];
		struct stat st;
		int			flags;

		if (!superuser_arg(job->owner) &&
			!has_privs_of_role(job->owner, ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to load a file on the database server"),
					 errdetail("The owner of the job is no longer a superuser or a member of pg_read_server_files.")));

		/* non-blocking, so a FIFO put in the file's place cannot hang us */
		r->fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | PG_BINARY, 0);
		if (r->fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open file \"%s\" for ingest: %m", path)));
		if (fstat(r->fd, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path)));
		if (!S_ISREG(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a regular file", path)));
		flags = fcntl(r->fd, F_GETFL);
		if (flags >= 0)
			(void) fcntl(r->fd, F_SETFL, flags & ~O_NONBLOCK);

		/*
		 * A directory on the path may have been swapped for a symlink
		 * between the check and the open: check what was really opened.
		 */
		snprintf(opened, sizeof(opened), "/proc/self/fd/%d", r->fd);
		if (access("/proc/self/fd", F_OK) == 0)
			(void) reader_resolve_path(opened, NULL);
		r->size = st.st_size;
	}
	else
	{
		r->toast_ptr = fetch_stored_value(job->id, cxt);
		r->size = (int64) toast_raw_datum_size(PointerGetDatum(r->toast_ptr)) - VARHDRSZ;
	}
	return r;
}

/* Up to len bytes into buf; 0 at the end of the source. */
size_t
reader_read(IngestReader *r, char *buf, size_t len)
{
	if (r->fd >= 0)
	{
		ssize_t		n;

		do
		{
			CHECK_FOR_INTERRUPTS();
			n = read(r->fd, buf, len);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read ingest source: %m")));
		r->offset += n;
		return (size_t) n;
	}
	else
	{
		int64		want = Min((int64) len, r->size - r->offset);
		struct varlena *slice;

		if (want <= 0)
			return 0;
		slice = detoast_attr_slice(r->toast_ptr, (int32) r->offset, (int32) want);
		memcpy(buf, VARDATA_ANY(slice), VARSIZE_ANY_EXHDR(slice));
		want = VARSIZE_ANY_EXHDR(slice);
		pfree(slice);
		r->offset += want;
		return (size_t) want;
	}
}

void
reader_succeeded(IngestReader *r, const IngestOptions *opts)
{
	/* a large object with the unlink option is removed here (upload.c's sources) */
}
