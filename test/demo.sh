#!/bin/bash
# test/demo.sh: what `make demo` runs.
#
# Installs what is missing, builds and installs ingest, then starts a throwaway cluster
# (ingest preloaded, ingest.allowed_dirs set, its own socket directory and its own port: the
# first free one of INGEST_PORTS=LO-HI, default 5450-5459) and shows a load end to end: an
# RLS-protected table, a tenant role, a generated CSV of a few thousand rows with a few bad
# ones, enqueued with max_errors, the job row, the counts and the rejected rows. The cluster
# is stopped at the end; with DEMO_KEEP=1 it is left running and the script says how to
# connect and stop it.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
# shellcheck source=lib/setup.sh
source test/lib/setup.sh

ingest_port_range 5450-5459
ingest_setup ingest-demo
DEMO=$INGEST_STAGE/demo
PORT=$(ingest_free_port "$INGEST_PORT_LO" "$INGEST_PORT_HI") ||
    die "no free port in $INGEST_PORT_LO-$INGEST_PORT_HI (set INGEST_PORTS=LO-HI)"
run_as mkdir -p "$DEMO/sock" "$DEMO/files"

stop_cluster() {
    run_as pg_ctl -D "$DEMO/data" -m fast stop >/dev/null 2>&1
}

log "starting a throwaway cluster on port $PORT (socket directory $DEMO/sock)"
run_as initdb -D "$DEMO/data" -A trust -E UTF8 --no-locale >/dev/null || die "initdb failed"
cat >> "$DEMO/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DEMO/sock'
shared_preload_libraries = 'ingest'
ingest.allowed_dirs = '$DEMO/files'
ingest.max_workers = 2
EOF
run_as pg_ctl -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null ||
    { cat "$DEMO/server.log"; die "the server did not start"; }
if [ "${DEMO_KEEP:-0}" != 1 ]; then
    trap stop_cluster EXIT
fi

# A generated CSV: 5,000 meter readings of tenant acme, in shuffled column order, with a
# few bad records: readings that are not numbers, negative ones (a CHECK), and rows of
# another tenant (the RLS policy rejects them). One note spans two lines.
CSV=$DEMO/files/readings.csv
awk 'BEGIN {
    print "kwh,meter_id,read_at,tenant,note"
    for (i = 1; i <= 5000; i++) {
        kwh = sprintf("%.3f", (i * 37 % 1000) / 10); tenant = "acme"; note = "ok"
        if (i % 1250 == 0) kwh = "n/a"
        if (i == 777 || i == 2222) kwh = "-1.5"
        if (i == 1500 || i == 3000 || i == 4500) tenant = "globex"
        if (i == 10) note = "\"replaced meter,\nsee ticket 42\""
        printf "%s,%d,2024-03-%02d %02d:%02d:00,%s,%s\n", kwh, i % 50 + 1, i % 28 + 1, i % 24, i % 60, tenant, note
    }
}' > "$CSV" || die "could not write $CSV"
chmod 644 "$CSV"
log "generated $CSV: $(wc -l < "$CSV") lines; the first ones:"
head -n 4 "$CSV"

psql_demo() {
    run_as psql -X -h "$DEMO/sock" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 "$@"
}

log "the SQL session"
psql_demo -e <<SQL || die "the demo session failed"
CREATE EXTENSION ingest;

-- A multi-tenant table: each tenant sees and writes only its own rows.
CREATE TABLE readings (
    tenant   text NOT NULL DEFAULT current_setting('app.tenant'),
    meter_id int NOT NULL,
    read_at  timestamptz NOT NULL,
    kwh      numeric(10,3) NOT NULL CHECK (kwh >= 0),
    note     text
);
ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON readings
    USING (tenant = current_setting('app.tenant'))
    WITH CHECK (tenant = current_setting('app.tenant'));

-- The tenant's role: no LOGIN needed, no superuser; may read server files only under
-- ingest.allowed_dirs (pg_read_server_files is what enqueue_file asks for).
CREATE ROLE acme_loader NOLOGIN IN ROLE pg_read_server_files;
GRANT SELECT, INSERT ON readings TO acme_loader;

-- As the tenant: enqueue the file, up to 20 bad records tolerated. Returns at once.
SET ROLE acme_loader;
SET app.tenant = 'acme';
SELECT ingest.enqueue_file('readings', '$CSV', '{"max_errors": 20}') AS job_id \gset

-- Or send the bytes with the call, as any client library can (tenant from app.tenant):
SELECT ingest.enqueue_data('readings',
       convert_to(E'meter_id,read_at,kwh\n51,2024-04-01 00:00,1.5\n52,2024-04-01 00:15,oops\n', 'UTF8'),
       '{"max_errors": 5}') AS job2_id \gset

SELECT ingest.wait(:job_id) AS job1, ingest.wait(:job2_id) AS job2;

\x on
SELECT id, owner, target, source_type, state, rows_inserted, rows_rejected,
       bytes_total, bytes_done, last_error, finished_at - started_at AS took
  FROM ingest.upload_jobs ORDER BY id;
\x off

-- what the tenant sees: its rows only
SELECT tenant, count(*), round(sum(kwh), 1) AS kwh FROM readings GROUP BY tenant;

-- why rows were rejected, with the physical line of the file (header = line 1)
SELECT job_id, line_number, sqlstate, message, left(raw_line, 50) AS raw_line
  FROM ingest.job_errors ORDER BY job_id, line_number;

RESET ROLE;
-- another tenant's role sees none of acme's jobs
CREATE ROLE globex_loader NOLOGIN;
SET ROLE globex_loader;
SELECT count(*) AS jobs_globex_sees FROM ingest.upload_jobs;
RESET ROLE;
SQL
status=$?

if [ "${DEMO_KEEP:-0}" = 1 ]; then
    log "the cluster is still running"
    as_user=()
    [ "$(id -u)" -eq 0 ] && as_user=(runuser -u "$INGEST_RUNAS" --)
    echo "connect: $(printf '%q ' "${as_user[@]}" "$PG_BINDIR/psql" -h "$DEMO/sock" -p "$PORT" -d postgres)"
    echo "stop:    $(printf '%q ' "${as_user[@]}" "$PG_BINDIR/pg_ctl" -D "$DEMO/data" stop)&& rm -rf $INGEST_STAGE"
else
    stop_cluster
    trap - EXIT
    rm -rf "$INGEST_STAGE"
    log "cluster stopped and removed (DEMO_KEEP=1 keeps it running)"
fi
exit $status
