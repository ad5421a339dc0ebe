# ingest: PGXS build, plus the two commands of the README's quick start.

MODULE_big = ingest
OBJS = \
	src/ingest.o \
	src/api.o \
	src/upload.o \
	src/dropdir.o \
	src/enqueue.o \
	src/options.o \
	src/parallel.o \
	src/identity.o \
	src/catalog.o \
	src/jobs.o \
	src/jobs_queue.o \
	src/jobs_access.o \
	src/jobs_data.o \
	src/joblog.o \
	src/atcommit.o \
	src/jobs_dir.o \
	src/jobs_parts.o \
	src/jobs_prepared.o \
	src/split.o \
	src/shmem.o \
	src/launcher.o \
	src/worker.o \
	src/worker_hold.o \
	src/worker_parts.o \
	src/worker_prepared.o \
	src/outcome.o \
	src/reader.o \
	src/decode.o \
	src/transcode.o \
	src/encoding.o \
	src/parser.o \
	src/tokenize.o \
	src/loader.o \
	src/loadxact.o \
	src/loadfail.o \
	src/loadbatch.o \
	src/batchscan.o \
	src/multiinsert.o \
	src/target.o \
	src/conflict.o \
	src/header.o \
	src/batch.o \
	src/convert.o \
	src/insert.o \
	src/isolate.o

EXTENSION = ingest
DATA = $(wildcard ingest--*.sql)
PGFILEDESC = "ingest - background CSV loading as the submitting role"

PG_CPPFLAGS = -I$(srcdir)/src
SHLIB_LINK = -lz -lzstd

# pg_regress starts its own server with ingest preloaded.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=$(srcdir)/test/regress.conf --temp-instance=tmp_check/regress

# pg_regress suites: files under ingest.allowed_dirs (test/regress.conf) and symlinks that
# try to leave it must exist before the suites start (pgxs.mk names REGRESS_PREP as a
# prerequisite of installcheck when it reads the rule, so it is set before the include);
# the temp instance is UTF-8, C locale.
REGRESS_PREP = regress-prep
ENCODING = UTF8
NOLOCALE = --no-locale

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when a header
# changes (a stale object reading a changed shared-memory struct misbehaves).
$(OBJS): $(wildcard $(srcdir)/src/*.h)

.PHONY: demo test
demo:
	bash test/demo.sh

test:
	bash test/run-tests.sh

# REGRESS_PREP (above): what the suites need before they start
.PHONY: regress-prep
regress-prep:
	@mkdir -p tmp_check
	bash $(srcdir)/test/lib/regress-prep.sh
