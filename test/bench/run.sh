#!/bin/bash
# ingest benchmark: COPY vs ingest vs a psycopg client, on a throwaway cluster.
# Not part of `make test`. See test/bench/README.md.
#
# Environment:
#   ROWS=1000000      data rows per file (QUICK=1 means ROWS=100000 REPS=2 unless set)
#   REPS=3            runs per method; the summary uses the median (and shows the best)
#   KEEP=1            leave the cluster running afterwards (psql -h $RUN_DIR/sock -p $PORT bench)
#   PORT=5460         5460..5469 only (unless ANY_PORT=1)
#   RUN_DIR=/tmp/ingest-bench-$PORT   cluster data, socket and server log
#   DATA_DIR=test/bench/data          where the CSV files are generated (kept between runs)
#   METHODS=a,b,...   subset of: copy_plain ingest_plain ingest_plain_perrow copy_tenant ingest_rls
#                     ingest_rls_perrow ingest_data_rls insert_select_rls psycopg_rls
#                     upload_gz_rls upload_gzm_rls upload_zst_rls upload_plain_rls upload_data_rls
#                     ingest_plain_parallel ingest_rls_parallel
#                     copy_part ingest_part ingest_part_perrow (4 partitions by tenant)
#                     (default: all)
#   PARALLEL_COMMIT_EVERY=100000      commit_every of the parallel methods (0: none, two-phase
#                                     commit: add max_prepared_transactions to EXTRA_CONF)
#   UPLOAD_CHUNK_MB=4 UPLOAD_GZIP_LEVEL=1 UPLOAD_ZSTD_LEVEL=1 UPLOAD_PIPELINE=1 UPLOAD_THREADS=2
#                     the upload clients
#                     (client_upload.py; upload_gzm_rls compresses each chunk as a gzip member)
#   BATCH_ROWS=N      sets ingest.batch_rows in postgresql.conf
#   COMMIT_EVERY=N    adds "commit_every": N to the job options
#   INGEST_OPTIONS='{"...": ...}'      more job options (jsonb)
#   INGEST=0          do not preload or use the extension even if it is installed
#   CLIENT_BATCH=10000                 rows per INSERT of the psycopg client
#   SHARED_BUFFERS=4GB MAX_WAL_SIZE=8GB
#   EXTRA_CONF='huge_pages = on'       more postgresql.conf lines
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
if [ "${QUICK:-0}" = 1 ]; then
    ROWS=${ROWS:-100000}
    REPS=${REPS:-2}
fi
ROWS=${ROWS:-1000000}
REPS=${REPS:-3}
KEEP=${KEEP:-0}
PORT=${PORT:-5460}
SEED=${SEED:-20240101}
RUN_DIR=${RUN_DIR:-/tmp/ingest-bench-$PORT}
DATA_DIR=${DATA_DIR:-$BENCH_DIR/data}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
SHARED_BUFFERS=${SHARED_BUFFERS:-4GB}
MAX_WAL_SIZE=${MAX_WAL_SIZE:-8GB}
PG_CONFIG=${PG_CONFIG:-pg_config}
PY=/usr/bin/python3     # Debian's python3-psycopg lives here, not in a pyenv python

if [ "${ANY_PORT:-0}" != 1 ] && { [ "$PORT" -lt 5460 ] || [ "$PORT" -gt 5469 ]; }; then
    echo "PORT must be in 5460..5469 (5440..5459 belong to other work; ANY_PORT=1 lifts this)" >&2
    exit 2
fi

# --- packages (as root we may install what is missing) -----------------------
need=()
command -v "$PG_CONFIG" >/dev/null 2>&1 || need+=(postgresql-server-dev-15)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
"$PY" -c 'import psycopg' 2>/dev/null || need+=(python3-psycopg)
"$PY" -c 'import zstandard' 2>/dev/null || need+=(python3-zstandard)   # upload_zst_rls
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        echo "missing packages: ${need[*]} (run as root to install them)" >&2
        exit 2
    fi
fi

BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)

# PostgreSQL refuses to run as root: as root, run the cluster as the postgres OS user.
if [ "$(id -u)" = 0 ]; then
    OS_USER=postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    OS_USER=$(id -un)
    as_pg() { "$@"; }
fi

INGEST=${INGEST:-auto}
if [ "$INGEST" = auto ]; then
    if [ -f "$PKGLIBDIR/ingest.so" ] && [ -f "$SHAREDIR/extension/ingest.control" ]; then
        INGEST=1
    else
        INGEST=0
        echo "NOTE: ingest is not installed ($PKGLIBDIR/ingest.so): only the non-ingest methods will run" >&2
    fi
fi

PGDATA=$RUN_DIR/pgdata
SOCK=$RUN_DIR/sock
LOG=$RUN_DIR/server.log
STAMP=$(date +%Y%m%d-%H%M%S)

# --- data files (generated once per ROWS/SEED/generator version) -------------
mkdir -p "$DATA_DIR" "$RESULTS_DIR"
chmod 755 "$DATA_DIR"
DATA_DIR=$(realpath "$DATA_DIR")
GEN_VER=$(sha1sum "$BENCH_DIR/gen_csv.py" | cut -c1-8)
FILE_ALL=$DATA_DIR/bench-$ROWS-s$SEED-$GEN_VER.csv
FILE_TENANT=$DATA_DIR/bench-$ROWS-s$SEED-$GEN_VER-org_a.csv
for f in "$FILE_ALL" "$FILE_TENANT"; do
    if [ ! -s "$f" ]; then
        echo "generating $f ..."
        if [ "$f" = "$FILE_TENANT" ]; then t=(--tenant org_a); else t=(); fi
        "$PY" "$BENCH_DIR/gen_csv.py" --rows "$ROWS" --seed "$SEED" "${t[@]}" -o "$f"
        chmod 644 "$f"
    fi
done
# the server (and the ingest worker) must be able to read them
if ! as_pg test -r "$FILE_ALL"; then
    echo "$OS_USER cannot read $FILE_ALL: use DATA_DIR= a directory it can reach" >&2
    exit 2
fi

# --- throwaway cluster ---------------------------------------------------------
stop_cluster() {
    if [ -f "$PGDATA/postmaster.pid" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
stop_cluster
rm -rf "$PGDATA" "$SOCK"
mkdir -p "$RUN_DIR" "$SOCK"
chown "$OS_USER" "$RUN_DIR" "$SOCK"
: > "$LOG"; chown "$OS_USER" "$LOG"
initdb_once() {
    as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$RUN_DIR/initdb.log" 2>&1
}
if ! initdb_once; then
    # seen once on a busy machine: a PANIC in bootstrap ("could not open file global/6100"); retry once
    echo "!!! initdb failed (log below); retrying once" >&2
    tail -5 "$RUN_DIR/initdb.log" >&2
    rm -rf "$PGDATA"
    initdb_once || { cat "$RUN_DIR/initdb.log" >&2; exit 1; }
fi

{
    echo "# ingest bench ($BENCH_DIR/run.sh)"
    echo "port = $PORT"
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$SOCK'"
    echo "max_connections = 50"
    echo "shared_buffers = $SHARED_BUFFERS"
    echo "work_mem = 64MB"
    echo "maintenance_work_mem = 1GB"
    echo "effective_cache_size = 16GB"
    echo "wal_buffers = 64MB"
    echo "max_wal_size = $MAX_WAL_SIZE"
    echo "min_wal_size = 1GB"
    echo "checkpoint_timeout = 30min"
    echo "checkpoint_completion_target = 0.9"
    echo "fsync = on"
    echo "synchronous_commit = on"
    echo "full_page_writes = on"
    echo "jit = off"
    echo "max_worker_processes = 16"
    echo "log_checkpoints = on"
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    echo "lc_messages = 'C'"
    if [ "$INGEST" = 1 ]; then
        echo "shared_preload_libraries = 'ingest'"
        echo "ingest.allowed_dirs = '$DATA_DIR'"
        echo "ingest.max_workers = 2"
        [ -n "${BATCH_ROWS:-}" ] && echo "ingest.batch_rows = $BATCH_ROWS"
    fi
    if [ -n "${EXTRA_CONF:-}" ]; then printf '%s\n' "$EXTRA_CONF"; fi
} >> "$PGDATA/postgresql.conf"

if [ "$KEEP" != 1 ]; then
    trap 'stop_cluster; rm -rf "$PGDATA"' EXIT
fi
as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null
"$BINDIR/psql" -X -q -h "$SOCK" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE bench"

echo "cluster: $PGDATA, socket $SOCK, port $PORT, log $LOG, ingest=$INGEST"
if [ "$INGEST" = 1 ]; then
    echo "ingest.so: $(sha1sum "$PKGLIBDIR/ingest.so" | cut -c1-12), installed $(date -u -r "$PKGLIBDIR/ingest.so" '+%Y-%m-%d %H:%M:%S UTC')"
fi
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"

OUT=$RESULTS_DIR/$STAMP-$ROWS
set +e
BENCH_CONNINFO="host=$SOCK port=$PORT dbname=bench user=postgres" \
BENCH_TENANT_CONNINFO="host=$SOCK port=$PORT dbname=bench user=bench_tenant_app" \
BENCH_FILE_ALL=$FILE_ALL BENCH_FILE_TENANT=$FILE_TENANT BENCH_RESULTS=$OUT.json \
ROWS=$ROWS REPS=$REPS INGEST=$INGEST \
    "$PY" "$BENCH_DIR/bench.py" 2>&1 | tee "$OUT.txt"
rc=${PIPESTATUS[0]}
set -e

# --- what the server said -----------------------------------------------------
cp "$LOG" "$OUT-server.log"
echo
echo "server log: $LOG (copy: $OUT-server.log)"
bad=$(grep -cE '(ERROR|FATAL|PANIC|WARNING):' "$LOG" || true)
if [ "$bad" -gt 0 ]; then
    echo "!!! $bad ERROR/FATAL/PANIC/WARNING line(s) in the server log, first ones:"
    grep -E '(ERROR|FATAL|PANIC|WARNING):' "$LOG" | head -20
    [ "$rc" = 0 ] && rc=1
fi
unplanned=$(grep -cE 'checkpoint starting: (wal|time)' "$LOG" || true)
if [ "$unplanned" -gt 0 ]; then
    echo "NOTE: $unplanned checkpoint(s) started by WAL volume or timeout, possibly during a timed load"
fi
echo "results: $OUT.txt $OUT.json"
if [ "$KEEP" = 1 ]; then
    echo "cluster kept: psql -h $SOCK -p $PORT -U postgres bench   (stop: runuser -u $OS_USER -- $BINDIR/pg_ctl -D $PGDATA stop)"
fi
exit "$rc"
