/*
 * dropdir.c
 *		ingest.enqueue_dir: a drop folder on the server, scanned by a
 *		schedule (pg_cron), each new file enqueued once.
 *
 * A call lists one directory (under ingest.allowed_dirs, with enqueue_file's
 * rules: superusers and pg_read_server_files members only, real paths), and
 * enqueues, in name order and one job each, the regular files whose names
 * match the pattern and that were never enqueued before with the same
 * identity (name, size and modification time; remembered by the jobs
 * service, jobs_dir.c). A file modified less than ingest.dir_settle_time ago
 * may still be being written: it waits for a later call. Symbolic links,
 * directories and other special files in the folder are passed over.
 *
 * Each file is enqueued through enqueue_job as enqueue_file's are, in a
 * subtransaction of its own, so that a file refused on its own account (over
 * ingest.max_file_size) is passed over with a WARNING, and the queue quota
 * (ingest.max_queued_per_role) ends the call with what it enqueued so far,
 * the rest waiting for the next call. Its header is not checked here but by
 * the worker: a file that does not fit the table is a failed job, seen in
 * ingest.upload_jobs, rather than an error that would stop every call and
 * hold up the files after it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "dropdir.h"
#include "enqueue.h"
#include "identity.h"
#include "jobs.h"
#include "reader.h"

PG_FUNCTION_INFO_V1(ingest_enqueue_dir);

/* seconds a file must have stayed unmodified before enqueue_dir takes it */
static int	ingest_dir_settle_time = 5;

/* A regular file of the directory, as listed. */
typedef struct DirFile
{
	char	   *name;
	int64		size;
	TimestampTz mtime;
} DirFile;

/* What became of one file's enqueue. */
typedef enum FileOutcome
{
	FILE_ENQUEUED,
	FILE_PASSED_OVER,			/* refused on its own account, or enqueued meanwhile */
	FILE_QUOTA					/* the queue quota is reached: stop */
} FileOutcome;

void
dropdir_init(void)
{
	DefineCustomIntVariable("ingest.dir_settle_time",
							"How long a file must have stayed unmodified before ingest.enqueue_dir enqueues it.",
							"A file modified more recently may still be being written: it waits for a later call.",
							&ingest_dir_settle_time,
							5, 0, 24 * 3600,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

static void
check_pattern(const char *pattern)
{
	if (pattern[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern must not be empty")));
	if (strchr(pattern, '/') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern \"%s\" must not contain \"/\"", pattern),
				 errhint("enqueue_dir reads the files of one directory, not of its subdirectories: name the directory in dir.")));
	/* no file name is longer: a longer pattern could only cost time */
	if (strlen(pattern) > NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pattern is too long: at most %d bytes", NAME_MAX)));
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(((const DirFile *) a)->name, ((const DirFile *) b)->name);
}

/*
 * The regular files of directory dir (a resolved path), sorted by name in
 * byte order: *count of them. Names that are not valid text in the
 * database's encoding cannot be a job's source: they are passed over, with
 * a WARNING.
 */
static DirFile *
list_dir(const char *dir, int *count)
{
	DIR		   *d;
	struct dirent *de;
	char		opened[64];
	int			n = 0;
	int			max = 64;
	int			invalid = 0;
	DirFile    *files = palloc(sizeof(DirFile) * max);

	d = AllocateDir(dir);
	if (d == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", dir)));

	/*
	 * A directory on the path may have been swapped for a symlink between
	 * the check and the open: check what was really opened.
	 */
	snprintf(opened, sizeof(opened), "/proc/self/fd/%d", dirfd(d));
	if (access("/proc/self/fd", F_OK) == 0 && strcmp(reader_resolve_dir(opened), dir) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("directory \"%s\" was replaced while it was being opened", dir)));

	while ((de = ReadDirExtended(d, dir, ERROR)) != NULL)
	{
		struct stat st;

		CHECK_FOR_INTERRUPTS();
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* relative to the directory opened, and not through a symlink */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno == ENOENT)
				continue;		/* removed since it was listed */
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s/%s\": %m", dir, de->d_name)));
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if (!pg_verifymbstr(de->d_name, strlen(de->d_name), true))
		{
			invalid++;
			continue;
		}
		if (n == max)
		{
			max *= 2;
			files = repalloc(files, sizeof(DirFile) * max);
		}
		files[n].name = pstrdup(de->d_name);
		files[n].size = (int64) st.st_size;
		files[n].mtime = reader_mtime(&st);
		n++;
	}
	FreeDir(d);

	if (invalid > 0)
		ereport(WARNING,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg_plural("%d file name in directory \"%s\" is not valid in the database's encoding: the file is passed over",
							   "%d file names in directory \"%s\" are not valid in the database's encoding: those files are passed over",
							   invalid, invalid, dir)));
	if (n > 1)
		qsort(files, n, sizeof(DirFile), cmp_names);
	*count = n;
	return files;
}

/*
 * Enqueue file f of directory dir, in a subtransaction of its own, and
 * remember it; *job_id is its job when FILE_ENQUEUED.
 */
static FileOutcome
enqueue_one(Oid target, Jsonb *options, const char *dir, const DirFile *f,
			const char *tenant, int64 *job_id)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile FileOutcome outcome = FILE_PASSED_OVER;
	size_t		dirlen = strlen(dir);
	char	   *path = psprintf("%s%s%s", dir, dirlen > 0 && dir[dirlen - 1] == '/' ? "" : "/", f->name);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int64		id = enqueue_job(target, path, JOB_SOURCE_FILE, options, f->size, NULL, false, NULL);

		if (jobs_dir_remember(dir, f->name, f->size, f->mtime, id, GetUserId(), tenant))
		{
			*job_id = id;
			outcome = FILE_ENQUEUED;
			ReleaseCurrentSubTransaction();
		}
		else
			RollbackAndReleaseCurrentSubTransaction();	/* enqueued meanwhile */
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;

		if (edata->sqlerrcode == ERRCODE_CONFIGURATION_LIMIT_EXCEEDED)
		{
			/* the quota's message, as a NOTICE: the call ends with what it has */
			ereport(NOTICE,
					(errmsg_internal("%s", edata->message),
					 errdetail("\"%s\" and the files after it wait for a later call of ingest.enqueue_dir.", path)));
			outcome = FILE_QUOTA;
		}
		else if (edata->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg_internal("%s", edata->message),
					 errdetail("The file is passed over; the next call tries it again.")));
		else
			ReThrowError(edata);
	}
	PG_END_TRY();
	return outcome;
}

/*
 * ingest.enqueue_dir(target regclass, dir text, pattern text DEFAULT '*.csv',
 *					  options jsonb DEFAULT '{}') RETURNS SETOF bigint
 */
Datum
ingest_enqueue_dir(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			target;
	char	   *pattern;
	Jsonb	   *options;
	char	   *tenant;
	char	   *dir;
	DirFile    *files;
	int			n;
	char	  **names;
	int64	   *sizes;
	TimestampTz *mtimes;
	bool	   *known;
	TimestampTz settled;
	int			waiting = 0;

	enqueue_not_null(fcinfo, 0, "target table");
	enqueue_not_null(fcinfo, 1, "dir");
	enqueue_not_null(fcinfo, 2, "pattern");
	enqueue_check_server_files("ingest.enqueue_dir");

	target = PG_GETARG_OID(0);
	pattern = text_to_cstring(PG_GETARG_TEXT_PP(2));
	check_pattern(pattern);
	options = enqueue_options_arg(fcinfo, 3);
	/* a bad call is an error even when the folder has nothing new */
	enqueue_check_target(target, options);
	tenant = identity_require_tenant();
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	dir = reader_resolve_dir(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	jobs_dir_lock(dir);
	files = list_dir(dir, &n);

	names = palloc(sizeof(char *) * Max(n, 1));
	sizes = palloc(sizeof(int64) * Max(n, 1));
	mtimes = palloc(sizeof(TimestampTz) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		names[i] = files[i].name;
		sizes[i] = files[i].size;
		mtimes[i] = files[i].mtime;
	}
	known = jobs_dir_sync(dir, n, names, sizes, mtimes);

	settled = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										  -(int64) ingest_dir_settle_time * 1000);
	for (int i = 0; i < n; i++)
	{
		FileOutcome outcome;
		int64		id = 0;

		CHECK_FOR_INTERRUPTS();
		if (known[i] || fnmatch(pattern, files[i].name, FNM_PERIOD) != 0)
			continue;
		/* modified lately, or in the future: it may still be being written */
		if (files[i].mtime > settled)
		{
			waiting++;
			continue;
		}
		outcome = enqueue_one(target, options, dir, &files[i], tenant, &id);
		if (outcome == FILE_QUOTA)
			break;
		if (outcome == FILE_ENQUEUED)
		{
			Datum		value = Int64GetDatum(id);
			bool		isnull = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
		}
	}

	if (waiting > 0)
		ereport(NOTICE,
				(errmsg_plural("%d file of \"%s\" was modified less than ingest.dir_settle_time (%d s) ago: it waits for a later call",
							   "%d files of \"%s\" were modified less than ingest.dir_settle_time (%d s) ago: they wait for a later call",
							   waiting, waiting, dir, ingest_dir_settle_time)));
	return (Datum) 0;
}
