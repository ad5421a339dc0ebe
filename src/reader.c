/*
 * reader.c
 *		Byte sources of a job behind one small interface.
 *
 * A job's bytes come from a file on the server (enqueue_file), from
 * ingest.job_data (enqueue_data), from the rows of ingest.job_chunks
 * (uploads in chunks) or from a large object (enqueue_lo). Whatever the
 * source, the loader asks for the next buffer and never holds the whole
 * source: a file is read with read(2); stored bytes, kept uncompressed
 * (STORAGE EXTERNAL), are fetched one TOAST slice at a time, chunk after
 * chunk for an upload; a large object is read a buffer at a time. The jobs
 * service finds stored bytes (jobs_stored_data, jobs_stored_chunk) and
 * hands them over still toasted: this file runs no SQL.
 *
 * Sources outlive transactions (a load with commit_every spans many), so
 * the file descriptor is ours, not fd.c's transaction-scoped kind; a reset
 * callback on the job's memory context closes it however the job ends.
 * Large-object descriptors die with their transaction: each read opens the
 * object, seeks to the offset reached and closes it again.
 *
 * ingest.max_file_size is enforced here for every source, as the bytes are
 * read: a file can grow after its size was checked at enqueue.
 *
 * reader_resolve_path is also the enqueue-time check: the real path (no
 * "..", no symlink) must lie under a directory of ingest.allowed_dirs. The
 * worker checks again before opening, since the file may have been replaced.
 * reader_resolve_dir is the same check for the directory enqueue_dir lists.
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/detoast.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_largeobject.h"
#include "catalog/pg_largeobject_metadata.h"
#include "libpq/libpq-fs.h"
#include "miscadmin.h"
#include "storage/large_object.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "compat.h"
#include "identity.h"
#include "settings.h"
#include "reader.h"

char	   *ingest_allowed_dirs = NULL;
double		ingest_max_file_size = 0;

struct IngestReader
{
	JobSourceType type;
	int64		job_id;
	Oid			owner;
	const char *what;			/* the source, for messages: file "...", large object N */
	int			fd;				/* file source, or -1 */
	struct varlena *toast_ptr;	/* data: the stored value; chunks: the current chunk;
								 * still toasted */
	int64		size;			/* at open: the file's, the data's, all chunks', the LO's */
	int64		offset;			/* bytes read so far */
	int32		nchunks;		/* chunks: how many (numbered 0..nchunks-1) */
	int32		next_seq;		/* chunks: the next one to fetch */
	int64		chunk_size;		/* chunks: size of the current one */
	int64		chunk_off;		/* chunks: bytes of it read */
	Oid			loid;			/* large object */
	int64		end;			/* reader_set_range: read no further; -1: to the end */
	MemoryContext cxt;
	MemoryContextCallback cb;
};

/* GUCs of the sources: which files may be read, how large a source may be */
void
reader_init(void)
{
	DefineCustomStringVariable("ingest.allowed_dirs",
							   "Directories (comma-separated, absolute) whose files ingest.enqueue_file may read.",
							   "Empty: no server file may be loaded.",
							   &ingest_allowed_dirs,
							   "",
							   PGC_SIGHUP, GUC_LIST_INPUT,
							   NULL, NULL, NULL);

	/*
	 * In bytes, as the setting is documented; a real rather than an int,
	 * whose bytes would stop at 2 GB. Memory units ('500MB') work as usual.
	 */
	DefineCustomRealVariable("ingest.max_file_size",
							 "Largest source a job may load, in bytes; 0 means no limit.",
							 "Checked at enqueue where the size is known, as uploaded chunks arrive, and by the worker as it reads.",
							 &ingest_max_file_size,
							 0, 0, 1e18,
							 PGC_SUSET, GUC_UNIT_BYTE,
							 NULL, NULL, NULL);
}

/*
 * Is path under dir (or, with itself_ok, dir itself)? Both are real paths.
 */
static bool
under_dir(const char *path, const char *dir, bool itself_ok)
{
	size_t		n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (strncmp(path, dir, n) != 0)
		return false;
	if (path[n] == '\0')
		return itself_ok;
	return path[n] == '/' || (n == 1 && dir[0] == '/');
}

/*
 * The real path of path (no "..", no symlink) into resolved, or an ERROR
 * unless it lies under a directory of ingest.allowed_dirs (or, with
 * itself_ok, is one); st is what it is. What enqueue_file's files and
 * enqueue_dir's directories share.
 */
static void
resolve_allowed(const char *path, char *resolved, bool itself_ok, struct stat *st)
{
	char	   *dirs;
	List	   *dirlist;
	ListCell   *lc;
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
		if (realpath((char *) lfirst(lc), realdir) != NULL && under_dir(resolved, realdir, itself_ok))
			allowed = true;
	}
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("ingest may not read \"%s\": it is not under a directory listed in ingest.allowed_dirs",
						path),
				 strcmp(path, resolved) != 0 ?
				 errdetail("The path resolves to \"%s\".", resolved) : 0));

	if (stat(resolved, st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", resolved)));
}

/*
 * The resolved path of a file a job may read, or an ERROR saying why not;
 * its size in *size when size is not NULL.
 */
char *
reader_resolve_path(const char *path, int64 *size)
{
	char		resolved[PATH_MAX];
	struct stat st;

	resolve_allowed(path, resolved, false, &st);
	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a regular file", resolved)));
	if (size != NULL)
		*size = (int64) st.st_size;
	return pstrdup(resolved);
}

/*
 * The resolved path of a directory whose files jobs may read (one listed
 * in ingest.allowed_dirs, or under one), or an ERROR saying why not.
 */
char *
reader_resolve_dir(const char *path)
{
	char		resolved[PATH_MAX];
	struct stat st;

	resolve_allowed(path, resolved, true, &st);
	if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a directory", resolved)));
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

/* Bytes [off, off + len) of a stored value into buf; returns how many. */
static size_t
read_slice(struct varlena *toast_ptr, int64 off, int64 len, char *buf)
{
	struct varlena *slice;
	size_t		n;

	slice = detoast_attr_slice(toast_ptr, (int32) off, (int32) len);
	n = VARSIZE_ANY_EXHDR(slice);
	memcpy(buf, VARDATA_ANY(slice), n);
	pfree(slice);
	return n;
}

/*
 * An upload's chunks: how many there are and their total size. finish_upload
 * queued the job only with chunks 0..n-1 all there; check again, as the
 * worker trusts nothing stored in a table.
 */
static void
open_chunks(IngestReader *r)
{
	int64		n;
	int32		last;

	jobs_stored_chunks(r->job_id, &n, &last, &r->size);
	if (n != (int64) last + 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the upload of ingest job " INT64_FORMAT " is incomplete: it has " INT64_FORMAT " chunks, numbered up to %d",
						r->job_id, n, last)));
	r->nchunks = (int32) n;
	r->next_seq = 0;
}

/* Make chunk next_seq the current one. */
static void
next_chunk(IngestReader *r)
{
	struct varlena *ptr;

	ptr = jobs_stored_chunk(r->job_id, r->next_seq, r->cxt);
	if (ptr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("chunk %d of upload job " INT64_FORMAT " is missing", r->next_seq, r->job_id)));
	if (r->toast_ptr)
		pfree(r->toast_ptr);
	r->toast_ptr = ptr;
	r->chunk_size = (int64) toast_raw_datum_size(PointerGetDatum(ptr)) - VARHDRSZ;
	r->chunk_off = 0;
	r->next_seq++;
}

/* Up to len bytes of the upload, across chunk boundaries. */
static size_t
read_chunks(IngestReader *r, char *buf, size_t len)
{
	size_t		done = 0;

	while (done < len)
	{
		int64		want;
		size_t		n;

		CHECK_FOR_INTERRUPTS();
		if (r->chunk_off >= r->chunk_size)
		{
			if (r->next_seq >= r->nchunks)
				break;
			next_chunk(r);
			continue;
		}
		want = Min((int64) (len - done), r->chunk_size - r->chunk_off);
		n = read_slice(r->toast_ptr, r->chunk_off, want, buf + done);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("chunk %d of upload job " INT64_FORMAT " ends before its size of " INT64_FORMAT " bytes",
							r->next_seq - 1, r->job_id, r->chunk_size)));
		r->chunk_off += n;
		done += n;
	}
	return done;
}

/*
 * Read len bytes of large object loid at offset into buf (or, with buf
 * NULL, return its size) as the current role, which needs SELECT on it.
 *
 * The inv_* functions leave pg_largeobject open until the transaction
 * ends, where only the lo_* SQL functions arrange for it to be closed:
 * close it here, and on error forget it (abort releases it), so that no
 * later transaction of this process finds a stale relation.
 */
int64
reader_lo_io(Oid loid, int64 offset, char *buf, int len)
{
	LargeObjectDesc *volatile desc = NULL;
	volatile int64 result = 0;

	PG_TRY();
	{
		desc = inv_open(loid, INV_READ, CurrentMemoryContext);
		if (buf == NULL)
			result = inv_seek(desc, 0, SEEK_END);
		else
		{
			(void) inv_seek(desc, offset, SEEK_SET);
			result = inv_read(desc, buf, len);
		}
		inv_close(desc);
	}
	PG_CATCH();
	{
		close_lo_relation(false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	close_lo_relation(true);
	return result;
}

/* Does role own large object loid? (enqueue_lo's unlink check, and ours before unlinking) */
bool
reader_lo_owned_by(Oid loid, Oid role)
{
	return compat_lo_owned_by(loid, role);
}

/* The job's large object, still there and readable by the job's owner. */
static void
open_lo(IngestReader *r, const IngestJob *job)
{
	if (sscanf(job->source, "large object %u", &r->loid) != 1)
		elog(ERROR, "ingest job " INT64_FORMAT " names no large object: \"%s\"", job->id, job->source);
	if (!LargeObjectExists(r->loid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("large object %u does not exist any more", r->loid)));
	if (pg_largeobject_aclcheck_snapshot(r->loid, job->owner, ACL_SELECT, NULL) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for large object %u", r->loid),
				 errdetail("The owner of the job, role \"%s\", no longer has SELECT on it.",
						   GetUserNameFromId(job->owner, false))));
	r->size = reader_lo_io(r->loid, 0, NULL, 0);
}

/*
 * ingest.max_file_size (0: none) against size bytes of a source described
 * by "what": at enqueue (api.c, upload.c) and when a worker opens a source.
 */
void
reader_check_size(int64 size, const char *what)
{
	if (ingest_max_file_size > 0 && size > INGEST_MAX_FILE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large: " INT64_FORMAT " bytes, more than ingest.max_file_size (" INT64_FORMAT " bytes)",
						what, size, INGEST_MAX_FILE_BYTES),
				 errhint("Split the file, or ask an administrator to raise ingest.max_file_size.")));
}

/*
 * Open a file that reader_resolve_path accepted, for reading: non-blocking,
 * so a FIFO put in the file's place cannot hang us, and checked to be what
 * the path resolved to when it was checked.
 */
static int
open_file(const char *path, int64 *size, TimestampTz *mtime)
{
	int			fd;
	struct stat st;
	int			flags;
	char		opened[64];

	/*
	 * A plain descriptor, not a transient file: the worker reads it across
	 * the load's transactions. So every error below closes it first.
	 */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | PG_BINARY, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for ingest: %m", path)));
	PG_TRY();
	{
		if (fstat(fd, &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path)));
		if (!S_ISREG(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a regular file", path)));
		flags = fcntl(fd, F_GETFL);
		if (flags >= 0)
			(void) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);

		/*
		 * A directory on the path may have been swapped for a symlink
		 * between the check and the open: check what was really opened.
		 */
		snprintf(opened, sizeof(opened), "/proc/self/fd/%d", fd);
		if (access("/proc/self/fd", F_OK) == 0)
			(void) reader_resolve_path(opened, NULL);
	}
	PG_CATCH();
	{
		close(fd);
		PG_RE_THROW();
	}
	PG_END_TRY();
	*size = st.st_size;
	if (mtime != NULL)
		*mtime = reader_mtime(&st);
	return fd;
}

/*
 * The first bytes of a file that reader_resolve_path accepted (the header
 * checked at enqueue): at most len into buf; *complete when that is all of it.
 */
size_t
reader_file_head(const char *path, char *buf, size_t len, bool *complete)
{
	int64		size;
	int			fd = open_file(path, &size, NULL);
	ssize_t		n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", path)));
	*complete = (int64) n >= size;
	return (size_t) n;
}

/* The same while reading: the source grew after the load started. */
static void
check_size(IngestReader *r, int64 size, bool at_open)
{
	if (at_open)
		reader_check_size(size, r->what);
	else if (ingest_max_file_size > 0 && size > INGEST_MAX_FILE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is larger than ingest.max_file_size (" INT64_FORMAT " bytes)",
						r->what, INGEST_MAX_FILE_BYTES),
				 errdetail(INT64_FORMAT " bytes were read; it was " INT64_FORMAT " bytes when the load started.",
						   size, r->size)));
}

/* A file's modification time as a timestamp (microseconds; what enqueue_dir remembers). */
TimestampTz
reader_mtime(const struct stat *st)
{
	return time_t_to_timestamptz(st->st_mtim.tv_sec) + st->st_mtim.tv_nsec / 1000;
}

/*
 * A file that enqueue_dir enqueued must still be what it enqueued: if it
 * changed since (it was still being written, or was replaced), this job
 * fails and loads nothing, and enqueue_dir enqueues the new version as a
 * new file, so that no version is loaded twice or in part.
 */
static void
check_dir_identity(const IngestReader *r, const IngestJob *job, TimestampTz mtime)
{
	int64		size0;
	TimestampTz mtime0;

	if (!jobs_dir_identity(job->id, &size0, &mtime0))
		return;
	if (size0 != r->size || mtime0 != mtime)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s changed after ingest.enqueue_dir enqueued it", r->what),
				 errdetail("It had " INT64_FORMAT " bytes, modified at %s; it has " INT64_FORMAT " bytes, modified at %s.",
						   size0, timestamptz_to_str(mtime0), r->size, timestamptz_to_str(mtime)),
				 errhint("The next call of ingest.enqueue_dir enqueues it again once it has not changed for ingest.dir_settle_time.")));
}

static IngestReader *
open_reader(const IngestJob *job, MemoryContext cxt, bool part)
{
	IngestReader *r = MemoryContextAllocZero(cxt, sizeof(IngestReader));
	TimestampTz mtime;

	r->type = job->source_type;
	r->job_id = job->id;
	r->owner = job->owner;
	r->cxt = cxt;
	r->fd = -1;
	r->end = -1;
	r->cb.func = reader_cleanup;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->cb);

	if (job->source_type == JOB_SOURCE_FILE)
	{
		char	   *path = reader_resolve_path(job->source, NULL);

		r->what = MemoryContextStrdup(cxt, psprintf("file \"%s\"", path));
		if (!superuser_arg(job->owner) &&
			!has_privs_of_role(job->owner, ROLE_PG_READ_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to load a file on the database server"),
					 errdetail("The owner of the job is no longer a superuser or a member of pg_read_server_files.")));

		r->fd = open_file(path, &r->size, &mtime);
		/* a part's file was checked when it was cut, and its size is checked by part */
		if (!part)
			check_dir_identity(r, job, mtime);
	}
	else if (job->source_type == JOB_SOURCE_DATA)
	{
		r->what = "uploaded data";
		r->toast_ptr = jobs_stored_data(job->id, cxt);
		if (r->toast_ptr == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("the data of ingest job " INT64_FORMAT " is missing", job->id)));
		r->size = (int64) toast_raw_datum_size(PointerGetDatum(r->toast_ptr)) - VARHDRSZ;
	}
	else if (job->source_type == JOB_SOURCE_CHUNKS)
	{
		r->what = "uploaded data";
		open_chunks(r);
		/* finish_upload counted every chunk's bytes; fewer means some are gone */
		if (job->bytes_total >= 0 && r->size != job->bytes_total)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("the upload of ingest job " INT64_FORMAT " is missing: " INT64_FORMAT " of its " INT64_FORMAT " bytes are stored",
							job->id, r->size, job->bytes_total)));
	}
	else if (job->source_type == JOB_SOURCE_LO)
	{
		open_lo(r, job);
		r->what = MemoryContextStrdup(cxt, psprintf("large object %u", r->loid));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("ingest job " INT64_FORMAT " has a source type this library does not know",
						job->id),
				 errhint("A job queued by another version of ingest: run ALTER EXTENSION ingest UPDATE, or enqueue the file again.")));
	check_size(r, r->size, true);
	return r;
}

/* Open the job's source, to read it from its start. */
IngestReader *
reader_open(const IngestJob *job, MemoryContext cxt)
{
	return open_reader(job, cxt, false);
}

/*
 * Open it for one part of a job loaded by several workers (reader_set_range
 * follows). Reads no ingest table: the part's transaction may be prepared.
 */
IngestReader *
reader_open_part(const IngestJob *job, MemoryContext cxt)
{
	return open_reader(job, cxt, true);
}

/*
 * Read only the bytes [start, end) from now on: one part of a job loaded by
 * several workers. Sources that can be read from any offset only: a file,
 * stored data, a large object. tail: the part ends where the source ended
 * when it was cut.
 */
void
reader_set_range(IngestReader *r, int64 start, int64 end, bool tail)
{
	if (r->type == JOB_SOURCE_FILE)
	{
		/*
		 * The parts were cut from the file as it was: one cut too short, or
		 * the last one not at its end any more, was written since. (One
		 * rewritten in place to the same size is not seen.)
		 */
		if (r->size < end || (tail && r->size != end))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s changed after it was cut into parts: it had " INT64_FORMAT " bytes or more, it has " INT64_FORMAT,
							r->what, end, r->size),
					 errhint("A file loaded by several workers must not change until its job ends. Enqueue it again.")));
		if (lseek(r->fd, (off_t) start, SEEK_SET) < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not seek in ingest source %s: %m", r->what)));
	}
	else if (r->type != JOB_SOURCE_DATA && r->type != JOB_SOURCE_LO)
		elog(ERROR, "ingest: %s cannot be read in parts", r->what);
	r->offset = start;
	r->end = end;
}

/* Can the source be read from any offset (reader_set_range)? */
bool
reader_seekable(const IngestJob *job)
{
	return job->source_type == JOB_SOURCE_FILE || job->source_type == JOB_SOURCE_DATA ||
		job->source_type == JOB_SOURCE_LO;
}

/* Up to len bytes into buf; 0 at the end of the source (or of its range). */
size_t
reader_read(IngestReader *r, char *buf, size_t len)
{
	size_t		n = 0;

	if (r->end >= 0)
	{
		if (r->offset >= r->end)
			return 0;
		len = (size_t) Min((int64) len, r->end - r->offset);
	}

	switch (r->type)
	{
		case JOB_SOURCE_FILE:
			{
				ssize_t		got;

				do
				{
					CHECK_FOR_INTERRUPTS();
					got = read(r->fd, buf, len);
				} while (got < 0 && errno == EINTR);
				if (got < 0)
					ereport(ERROR,
							(errcode_for_file_access(),
							 errmsg("could not read ingest source %s: %m", r->what)));
				n = (size_t) got;
				break;
			}
		case JOB_SOURCE_DATA:
			{
				int64		want = Min((int64) len, r->size - r->offset);

				if (want > 0)
					n = read_slice(r->toast_ptr, r->offset, want, buf);
				break;
			}
		case JOB_SOURCE_CHUNKS:
			n = read_chunks(r, buf, len);
			break;
		case JOB_SOURCE_LO:
			CHECK_FOR_INTERRUPTS();
			n = (size_t) reader_lo_io(r->loid, r->offset, buf, (int) Min(len, (size_t) INT_MAX));
			break;
		case JOB_SOURCE_UNKNOWN:
			elog(ERROR, "ingest: reading a source of unknown type");
			break;
	}
	r->offset += n;
	check_size(r, r->offset, false);
	return n;
}

/* The source, for messages: file "...", uploaded data, large object N */
const char *
reader_what(const IngestReader *r)
{
	return r->what;
}

/*
 * In the transaction that records a successful load: a large object loaded
 * with "unlink" is removed, as the job's owner, who must own it (enqueue_lo
 * checked that; if it is no longer so, the object stays). The least
 * privilege that works: lo_unlink asks no more of its caller.
 */
void
reader_succeeded(IngestReader *r, const IngestOptions *opts)
{
	IdentitySave save;

	if (r->type != JOB_SOURCE_LO || !opts->unlink)
		return;
	if (!LargeObjectExists(r->loid))
		return;					/* removed meanwhile: nothing left to do */
	if (!reader_lo_owned_by(r->loid, r->owner))
	{
		ereport(WARNING,
				(errmsg("ingest job " INT64_FORMAT " did not remove large object %u: role \"%s\" no longer owns it",
						r->job_id, r->loid, GetUserNameFromId(r->owner, false))));
		return;
	}
	identity_enter(r->owner, &save);
	(void) inv_drop(r->loid);
	identity_leave(&save);
}
