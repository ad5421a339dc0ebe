#!/usr/bin/python3
"""Driver of the ingest benchmark; run.sh starts the cluster and calls this.

Everything is configured by environment variables that run.sh sets (see README.md):
BENCH_CONNINFO (superuser connection to the bench database), BENCH_TENANT_CONNINFO (the
login tenant role), BENCH_FILE_ALL / BENCH_FILE_TENANT (the two CSV files), ROWS, REPS,
METHODS, INGEST (1 if the extension is installed and preloaded), INGEST_OPTIONS (jsonb),
COMMIT_EVERY, CLIENT_BATCH, BENCH_RESULTS (JSON output path).

Measurements are interleaved: each repetition runs every method once, in a fixed order, so
drift (page cache, other load on the machine) touches all methods alike. Before each load
the target table is dropped and recreated and a CHECKPOINT is taken (untimed); after it the
row count and a content hash are compared with the same file loaded by COPY (untimed).
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

import psycopg

COLS = "device_id, ts, reading_id, value, temperature, status, tenant"
TENANT = "org_a"
NOLOGIN_TENANT = "bench_tenant"      # NOLOGIN; used through SET ROLE
LOGIN_TENANT = "bench_tenant_app"    # LOGIN; used by the psycopg client

ENV = os.environ
ROWS = int(ENV.get("ROWS", "1000000"))
REPS = int(ENV.get("REPS", "3"))
CONNINFO = ENV["BENCH_CONNINFO"]
TENANT_CONNINFO = ENV["BENCH_TENANT_CONNINFO"]
FILE_ALL = ENV["BENCH_FILE_ALL"]
FILE_TENANT = ENV["BENCH_FILE_TENANT"]
HAVE_INGEST = ENV.get("INGEST", "0") == "1"
CLIENT_BATCH = int(ENV.get("CLIENT_BATCH", "10000"))
UPLOAD_CHUNK_MB = float(ENV.get("UPLOAD_CHUNK_MB", "4"))
UPLOAD_GZIP_LEVEL = int(ENV.get("UPLOAD_GZIP_LEVEL", "1"))
UPLOAD_PIPELINE = ENV.get("UPLOAD_PIPELINE", "1") == "1"
UPLOAD_THREADS = int(ENV.get("UPLOAD_THREADS", "2"))
UPLOAD_ZSTD_LEVEL = int(ENV.get("UPLOAD_ZSTD_LEVEL", "1"))
CLK = os.sysconf("SC_CLK_TCK")
RESULTS = ENV.get("BENCH_RESULTS")
HERE = os.path.dirname(os.path.abspath(__file__))

INGEST_OPTIONS = json.loads(ENV.get("INGEST_OPTIONS", "") or "{}")
if ENV.get("COMMIT_EVERY"):
    INGEST_OPTIONS["commit_every"] = int(ENV["COMMIT_EVERY"])

# name -> (description, file kind, target table, rls?, baseline method)
METHODS = {
    "copy_plain":        ("COPY FROM file (superuser)",                    "all",    "t_copy",          False, "copy_plain"),
    "ingest_plain":      ("ingest.enqueue_file + wait (superuser)",        "all",    "t_ingest",        False, "copy_plain"),
    "ingest_plain_perrow": ("same, ingest.batched_insert off",            "all",    "t_ingest",        False, "copy_plain"),
    "copy_tenant":       ("COPY FROM file, owner, non-RLS twin",           "tenant", "t_copy_tenant",   False, "copy_tenant"),
    "ingest_rls":        ("ingest.enqueue_file + wait, tenant, FORCE RLS", "tenant", "t_rls_ingest",    True,  "copy_tenant"),
    "ingest_rls_perrow": ("same, ingest.batched_insert off",              "tenant", "t_rls_ingest",    True,  "copy_tenant"),
    "ingest_data_rls":   ("ingest.enqueue_data (file sent) + wait, tenant, RLS", "tenant", "t_rls_data", True, "copy_tenant"),
    "copy_part":         ("COPY FROM file, 4 partitions by tenant (superuser)", "all", "t_part_copy", False, "copy_part"),
    "ingest_part":       ("ingest.enqueue_file + wait, 4 partitions (superuser)", "all", "t_part_ingest", False, "copy_part"),
    "ingest_part_perrow": ("same, ingest.batched_insert off",             "all",    "t_part_ingest",   False, "copy_part"),
    "ingest_plain_parallel": ("enqueue_file, parallel + commit_every (superuser)", "all", "t_ingest_par", False, "copy_plain"),
    "ingest_rls_parallel": ("same, tenant, FORCE RLS",                       "tenant", "t_rls_ingest_par", True, "copy_tenant"),
    "insert_select_rls": ("ref: INSERT..SELECT staging, tenant, RLS",      "tenant", "t_rls_ref",       True,  "copy_tenant"),
    "psycopg_rls":       ("psycopg3 10k-row unnest INSERTs, tenant, RLS",  "tenant", "t_rls_client",    True,  "copy_tenant"),
    "upload_gz_rls":     ("client: gzip chunks begin/upload/finish + wait, RLS", "tenant", "t_rls_upgz",  True,  "copy_tenant"),
    "upload_gzm_rls":    ("client: gzip members/chunk, threads; upload + wait, RLS", "tenant", "t_rls_upgzm", True, "copy_tenant"),
    "upload_zst_rls":    ("client: zstd chunks begin/upload/finish + wait, RLS", "tenant", "t_rls_upzst", True, "copy_tenant"),
    "upload_plain_rls":  ("client: plain chunks begin/upload/finish + wait, RLS", "tenant", "t_rls_uppl", True,  "copy_tenant"),
    "upload_data_rls":   ("client: enqueue_data(file bytes) + wait, RLS",  "tenant", "t_rls_updata",    True,  "copy_tenant"),
}
ORDER = list(METHODS)
UPLOAD_METHODS = {"upload_gz_rls", "upload_gzm_rls", "upload_zst_rls", "upload_plain_rls", "upload_data_rls"}
INGEST_METHODS = {"ingest_plain", "ingest_plain_perrow", "ingest_rls", "ingest_rls_perrow",
                  "ingest_part", "ingest_part_perrow",
                  "ingest_data_rls", "ingest_plain_parallel", "ingest_rls_parallel"} | UPLOAD_METHODS
# the parallel methods: "parallel": true, and commit_every (0: none, all-or-nothing by two-phase
# commit, which needs max_prepared_transactions in EXTRA_CONF)
PARALLEL_COMMIT_EVERY = int(ENV.get("PARALLEL_COMMIT_EVERY", "100000"))
if PARALLEL_COMMIT_EVERY == 0:
    METHODS["ingest_plain_parallel"] = ("enqueue_file, parallel, all-or-nothing (superuser)",) + METHODS["ingest_plain_parallel"][1:]

problems = []   # loud failures, printed at the end


def loud(msg):
    problems.append(msg)
    print("!!! " + msg, flush=True)


def lit(s):
    """A SQL string literal (COPY takes no parameters)."""
    return "'" + s.replace("'", "''") + "'"


def connect(conninfo=CONNINFO):
    return psycopg.connect(conninfo, autocommit=True)


def create_table(cur, name, rls):
    cur.execute("DROP TABLE IF EXISTS %s" % name)
    if name.startswith("t_part"):
        # the same columns, list-partitioned by tenant: org_a..org_d, one partition each
        cur.execute("""
            CREATE TABLE %s (
                device_id   int NOT NULL,
                ts          timestamptz NOT NULL,
                reading_id  uuid NOT NULL,
                value       numeric(12,4),
                temperature double precision,
                status      text,
                tenant      text NOT NULL,
                PRIMARY KEY (tenant, device_id, ts)
            ) PARTITION BY LIST (tenant)""" % name)
        for t in ("org_a", "org_b", "org_c", "org_d"):
            cur.execute("CREATE TABLE %s_%s PARTITION OF %s FOR VALUES IN (%s)"
                        " WITH (autovacuum_enabled = off)" % (name, t, name, lit(t)))
        return
    cur.execute("""
        CREATE TABLE %s (
            device_id   int NOT NULL,
            ts          timestamptz NOT NULL,
            reading_id  uuid NOT NULL,
            value       numeric(12,4),
            temperature double precision,
            status      text,
            tenant      text NOT NULL,
            PRIMARY KEY (device_id, ts)
        ) WITH (autovacuum_enabled = off)""" % name)
    if rls:
        cur.execute("ALTER TABLE %s ENABLE ROW LEVEL SECURITY" % name)
        cur.execute("ALTER TABLE %s FORCE ROW LEVEL SECURITY" % name)
        cur.execute("""CREATE POLICY tenant_rows ON %s FOR ALL TO %s, %s
                       USING (tenant = current_setting('app.tenant'))
                       WITH CHECK (tenant = current_setting('app.tenant'))"""
                    % (name, NOLOGIN_TENANT, LOGIN_TENANT))
        cur.execute("GRANT SELECT, INSERT ON %s TO %s, %s" % (name, NOLOGIN_TENANT, LOGIN_TENANT))


def fingerprint(cur, table):
    """(count, order-independent content hash); as superuser, so RLS does not hide rows."""
    cur.execute("SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM %s t" % table)
    return tuple(cur.fetchone())


def setup(cur):
    cur.execute("SELECT current_setting('server_version')")
    for role, login in ((NOLOGIN_TENANT, "NOLOGIN"), (LOGIN_TENANT, "LOGIN")):
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if cur.fetchone() is None:
            cur.execute("CREATE ROLE %s %s" % (role, login))
    # enqueue_file is for superusers and members of pg_read_server_files only.
    cur.execute("GRANT pg_read_server_files TO %s" % NOLOGIN_TENANT)
    if HAVE_INGEST:
        cur.execute("CREATE EXTENSION IF NOT EXISTS ingest")
    refs = {}
    for kind, path in (("all", FILE_ALL), ("tenant", FILE_TENANT)):
        stage = "t_stage_" + kind
        cur.execute("DROP TABLE IF EXISTS %s" % stage)
        cur.execute("CREATE TABLE %s (LIKE t_copy_template) WITH (autovacuum_enabled = off)" % stage)
        cur.execute("COPY %s FROM %s WITH (FORMAT csv, HEADER)" % (stage, lit(path)))
        cur.execute("VACUUM ANALYZE %s" % stage)
        refs[kind] = fingerprint(cur, stage)
        if refs[kind][0] != ROWS:
            loud("COPY of %s into staging loaded %d rows, expected %d" % (path, refs[kind][0], ROWS))
    cur.execute("GRANT SELECT ON t_stage_tenant TO %s" % NOLOGIN_TENANT)
    return refs


def show_diff(cur, ref_table, table):
    """A few rows present in one table and not the other, to say what went wrong."""
    out = []
    for a, b, label in ((ref_table, table, "missing or different in " + table),
                        (table, ref_table, "unexpected in " + table)):
        cur.execute("SELECT t::text FROM (SELECT * FROM %s EXCEPT ALL SELECT * FROM %s) t LIMIT 3" % (a, b))
        for (r,) in cur.fetchall():
            out.append("    %s: %s" % (label, r[:300]))
    return out


def proc_cpu(pid):
    """user + system CPU seconds of process pid (0 if it is gone); the bench runs as root."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def worker_cpu(cur):
    """{pid: CPU seconds} of the database's ingest workers (they stay idle between loads)."""
    cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'ingest worker'")
    return {pid: proc_cpu(pid) for (pid,) in cur.fetchall()}


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def job_info(cur, job_id):
    cur.execute("""SELECT state, rows_inserted, rows_rejected, last_error,
                          extract(epoch FROM finished_at - started_at),
                          extract(epoch FROM started_at - created_at)
                     FROM ingest.upload_jobs WHERE id = %s""", (job_id,))
    return cur.fetchone()


def cluster_cpu(cur):
    """CPU seconds (user + system) of the whole cluster so far: the postmaster, its reaped
    children (cutime, cstime) and its live ones, so that a load's share is a difference."""
    cur.execute("SELECT pg_backend_pid()")
    me = cur.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid):
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()

    pm = int(stat(me)[1])
    f = stat(pm)
    total = sum(int(x) for x in f[11:15])
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            c = stat(int(d))
        except OSError:
            continue
        if int(c[1]) == pm:
            total += int(c[11]) + int(c[12])
    return total / tick


def run_ingest(cur, table, path, as_tenant, send_data=False, per_row=False, parallel=False):
    """enqueue_file (or enqueue_data with the file's bytes read here) and wait; timed end to end."""
    opts = dict(INGEST_OPTIONS)
    if parallel:
        opts["parallel"] = True
        opts["commit_every"] = opts.get("commit_every") or PARALLEL_COMMIT_EVERY
    opts = json.dumps(opts)
    # superuser-only; the session's value travels with the job
    cur.execute("SET ingest.batched_insert = %s" % ("off" if per_row else "on"))
    if as_tenant:
        cur.execute("SELECT set_config('app.tenant', %s, false)", (TENANT,))
        cur.execute("SET ROLE %s" % NOLOGIN_TENANT)
    try:
        t0 = time.monotonic()
        if send_data:
            with open(path, "rb") as f:
                data = f.read()
            cur.execute("SELECT ingest.enqueue_data(%s::regclass, %b, %s::jsonb)", (table, data, opts))
            del data
        else:
            cur.execute("SELECT ingest.enqueue_file(%s::regclass, %s, %s::jsonb)", (table, path, opts))
        job_id = cur.fetchone()[0]
        cur.execute("SELECT ingest.wait(%s, '60 min')", (job_id,))
        state = cur.fetchone()[0]
        elapsed = time.monotonic() - t0
    finally:
        cur.execute("RESET ROLE")
        cur.execute("RESET app.tenant")
    st, ins, rej, err, worker_s, queue_s = job_info(cur, job_id)
    extra = {"job": job_id, "state": state, "rows_inserted": ins, "rows_rejected": rej,
             "worker_s": float(worker_s) if worker_s is not None else None,
             "pickup_s": float(queue_s) if queue_s is not None else None}
    if state != "succeeded":
        loud("ingest job %s into %s ended %r: %s" % (job_id, table, state, err))
        if state not in ("failed", "cancelled"):
            cur.execute("SELECT ingest.cancel(%s)", (job_id,))
    elif ins != ROWS or rej:
        loud("ingest job %s into %s: rows_inserted=%s rows_rejected=%s, expected %d and 0"
             % (job_id, table, ins, rej, ROWS))
    return elapsed, extra


def run_upload_client(cur, name, table, path):
    """client_upload.py as the login tenant; returns (elapsed, extra) from its JSON line."""
    cmd = [sys.executable, os.path.join(HERE, "client_upload.py"),
           "--conninfo", TENANT_CONNINFO, "--table", table, "--file", path,
           "--tenant", TENANT, "--options", json.dumps(INGEST_OPTIONS)]
    if name == "upload_data_rls":
        cmd += ["--mode", "data"]
    else:
        cmd += ["--chunk-mb", str(UPLOAD_CHUNK_MB)]
        if name in ("upload_gz_rls", "upload_gzm_rls"):
            cmd += ["--gzip-level", str(UPLOAD_GZIP_LEVEL)]
        if name == "upload_gzm_rls":
            cmd += ["--threads", str(UPLOAD_THREADS)]
        if name == "upload_zst_rls":
            cmd += ["--zstd-level", str(UPLOAD_ZSTD_LEVEL)]
        if UPLOAD_PIPELINE:
            cmd += ["--pipeline"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        loud("%s client failed (exit %d): %s" % (name, p.returncode, p.stderr.strip()[-2000:]))
        return float("nan"), {}
    extra = json.loads(p.stdout.strip().splitlines()[-1])
    st, ins, rej, err, worker_s, queue_s = job_info(cur, extra["job"])
    extra.update({"rows_inserted": ins, "rows_rejected": rej,
                  "worker_s": float(worker_s) if worker_s is not None else None,
                  "pickup_s": float(queue_s) if queue_s is not None else None})
    if extra["state"] != "succeeded":
        loud("%s job %s ended %r: %s" % (name, extra["job"], extra["state"], err))
    elif ins != ROWS or rej:
        loud("%s job %s: rows_inserted=%s rows_rejected=%s" % (name, extra["job"], ins, rej))
    return extra.pop("elapsed_s"), extra


def run_method(cur, name):
    """Load with one method; returns (table, kind, seconds, extra). extra's cpu_* keys are
    CPU seconds of the client process, of the caller's backend and of the ingest workers."""
    desc, kind, table, rls, _ = METHODS[name]
    path = FILE_ALL if kind == "all" else FILE_TENANT
    create_table(cur, table, rls)
    cur.execute("CHECKPOINT")
    cur.execute("SELECT pg_backend_pid()")
    backend = cur.fetchone()[0]
    w0 = worker_cpu(cur)
    be0 = proc_cpu(backend)
    me0 = self_cpu()
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    table, kind, elapsed, extra = run_method_timed(cur, name, table, kind, path)
    me1 = self_cpu()
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    be1 = proc_cpu(backend)
    w1 = worker_cpu(cur)
    extra["cpu_workers"] = round(sum(c - w0.get(pid, 0.0) for pid, c in w1.items()), 3)
    if name in UPLOAD_METHODS:
        extra["cpu_client"] = round(extra.pop("client_cpu_s"), 3)
        extra["cpu_backend"] = round(extra.pop("backend_cpu_s"), 3)
    elif name == "psycopg_rls":
        # its backend is another connection's: not measured
        extra["cpu_client"] = round(ch1.ru_utime + ch1.ru_stime - ch0.ru_utime - ch0.ru_stime, 3)
    else:
        extra["cpu_client"] = round(me1 - me0, 3)
        extra["cpu_backend"] = round(be1 - be0, 3)
    return table, kind, elapsed, extra


def run_method_timed(cur, name, table, kind, path):
    extra = {}
    if name in ("copy_plain", "copy_tenant", "copy_part"):
        t0 = time.monotonic()
        cur.execute("COPY %s FROM %s WITH (FORMAT csv, HEADER)" % (table, lit(path)))
        elapsed = time.monotonic() - t0
    elif name == "ingest_plain":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=False)
    elif name == "ingest_rls":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=True)
    elif name == "ingest_part":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=False)
    elif name == "ingest_part_perrow":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=False, per_row=True)
    elif name == "ingest_plain_perrow":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=False, per_row=True)
    elif name == "ingest_rls_perrow":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=True, per_row=True)
    elif name == "ingest_data_rls":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=True, send_data=True)
    elif name == "ingest_plain_parallel":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=False, parallel=True)
    elif name == "ingest_rls_parallel":
        elapsed, extra = run_ingest(cur, table, path, as_tenant=True, parallel=True)
    elif name == "insert_select_rls":
        cur.execute("SELECT set_config('app.tenant', %s, false)", (TENANT,))
        cur.execute("SET ROLE %s" % NOLOGIN_TENANT)
        try:
            t0 = time.monotonic()
            cur.execute("INSERT INTO %s SELECT * FROM t_stage_tenant" % table)
            elapsed = time.monotonic() - t0
        finally:
            cur.execute("RESET ROLE")
            cur.execute("RESET app.tenant")
    elif name in UPLOAD_METHODS:
        elapsed, extra = run_upload_client(cur, name, table, path)
    elif name == "psycopg_rls":
        cmd = [sys.executable, os.path.join(HERE, "client_insert.py"),
               "--conninfo", TENANT_CONNINFO, "--table", table, "--file", path,
               "--tenant", TENANT, "--batch", str(CLIENT_BATCH)]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        if p.returncode != 0:
            loud("psycopg client failed (exit %d): %s" % (p.returncode, p.stderr.strip()[-2000:]))
        else:
            extra = json.loads(p.stdout.strip().splitlines()[-1])
    else:
        raise SystemExit("unknown method " + name)
    return table, kind, elapsed, extra


def fmt_rate(r):
    return "{:,.0f}".format(r) if r else "-"


def main():
    methods = [m.strip() for m in ENV.get("METHODS", ",".join(ORDER)).split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise SystemExit("unknown method %r (known: %s)" % (m, ", ".join(ORDER)))
    if not HAVE_INGEST:
        skipped = [m for m in methods if m in INGEST_METHODS]
        if skipped:
            loud("the ingest extension is not installed: skipped " + ", ".join(skipped))
        methods = [m for m in methods if m not in INGEST_METHODS]
    methods = [m for m in ORDER if m in methods]
    # each ratio needs its baseline in the same run
    for m in list(methods):
        base = METHODS[m][4]
        if base not in methods:
            methods.insert(0, base)
    methods = [m for m in ORDER if m in methods]

    conn = connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS t_copy_template")
    create_table(cur, "t_copy_template", False)
    print("setup: loading both files into staging tables with COPY (untimed) ...", flush=True)
    refs = setup(cur)

    cur.execute("""SELECT name, setting, unit FROM pg_settings WHERE name IN
        ('server_version', 'shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'wal_buffers',
         'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'jit',
         'shared_preload_libraries', 'max_worker_processes') OR name LIKE 'ingest.%%'
        ORDER BY name""")
    settings = {n: (s + (" (" + u + ")" if u else "")) for n, s, u in cur.fetchall()}
    print("settings: " + ", ".join("%s=%s" % kv for kv in settings.items()))
    print("files: all=%s (%d bytes), tenant=%s (%d bytes); rows=%d; reps=%d; ingest options=%s"
          % (FILE_ALL, os.path.getsize(FILE_ALL), FILE_TENANT, os.path.getsize(FILE_TENANT),
             ROWS, REPS, json.dumps(INGEST_OPTIONS)), flush=True)

    times = {m: [] for m in methods}
    extras = {m: [] for m in methods}
    ok = {m: True for m in methods}
    cpus = {m: [] for m in methods}
    for rep in range(1, REPS + 1):
        for m in methods:
            cpu0 = cluster_cpu(cur)
            table, kind, elapsed, extra = run_method(cur, m)
            cpu = cluster_cpu(cur) - cpu0
            cpus[m].append(cpu)
            extra = dict(extra, cpu_s=round(cpu, 2),
                         loadavg=open("/proc/loadavg").read().split()[0])
            got = fingerprint(cur, table)
            want = refs[kind]
            status = "ok"
            if got[0] != want[0]:
                status = "WRONG COUNT"
                loud("%s rep %d: %s has %d rows, expected %d" % (m, rep, table, got[0], want[0]))
            elif got[1] != want[1]:
                status = "WRONG CONTENT"
                loud("%s rep %d: %s has the right count but different content than COPY loads"
                     % (m, rep, table))
            if status != "ok":
                ok[m] = False
                for line in show_diff(cur, "t_stage_" + kind, table):
                    print(line)
            times[m].append(elapsed)
            extras[m].append(extra)
            print("rep %d  %-18s %8.3f s  %10s rows/s  %s  %s"
                  % (rep, m, elapsed, fmt_rate(got[0] / elapsed if elapsed else 0), status,
                     json.dumps(extra) if extra else ""), flush=True)

    # summary
    med = {m: statistics.median(times[m]) for m in methods}
    best = {m: min(times[m]) for m in methods}
    print()
    print("Summary: %d rows per load, %d run(s) per method; seconds are wall-clock as the caller sees"
          " them (ingest: enqueue until ingest.wait returns); rows/s and ratio use the MEDIAN run,"
          " 'ratio best' uses each method's best run." % (ROWS, REPS))
    hdr = "%-18s %-51s %9s %9s %9s %12s %7s %7s  %-12s %s" % (
        "method", "what", "rows", "median s", "best s", "rows/s", "ratio", "r.best", "vs", "check")
    print(hdr)
    print("-" * len(hdr))
    summary = []
    for m in methods:
        desc, kind, table, rls, base = METHODS[m]
        valid = ok[m] and ok[base]
        rate = ROWS / med[m] if med[m] and ok[m] else 0
        ratio = med[base] / med[m] if med[m] and valid else 0
        ratio_best = best[base] / best[m] if best[m] and valid else 0
        check = "ok" if ok[m] else "WRONG ROWS (see above)"
        print("%-18s %-51s %9d %9.3f %9.3f %12s %7s %7s  %-12s %s" % (
            m, desc, ROWS, med[m], best[m], fmt_rate(rate),
            "%.2f" % ratio if valid else "-", "%.2f" % ratio_best if valid else "-",
            base if base != m else "-", check))
        summary.append({"method": m, "what": desc, "rows": ROWS, "runs": times[m],
                        "median_s": med[m], "best_s": best[m], "rows_per_s": rate,
                        "ratio_vs_baseline": ratio, "ratio_best": ratio_best, "baseline": base,
                        "verified": ok[m], "extra": extras[m]})
    print()
    print("CPU seconds (medians over the runs): the client process, the caller's backend, the ingest"
          " workers; 'server' = backend + workers; cpu ratio = the baseline's server CPU / this"
          " method's (server, and server + client)")
    hdr2 = "%-18s %8s %8s %8s %8s %10s %12s" % ("method", "client", "backend", "workers", "server",
                                                "cpu ratio", "incl client")
    print(hdr2)
    print("-" * len(hdr2))

    def cpu_med(m, key):
        v = [e[key] for e in extras[m] if key in e]
        return statistics.median(v) if v else float("nan")

    server = {m: cpu_med(m, "cpu_backend") + cpu_med(m, "cpu_workers") for m in methods}
    for m in methods:
        base = METHODS[m][4]
        cl = cpu_med(m, "cpu_client")
        def f(x, digits=3):
            return "-" if x != x else "%.*f" % (digits, x)     # NaN: not measured
        print("%-18s %8s %8s %8s %8s %10s %12s" % (
            m, f(cl), f(cpu_med(m, "cpu_backend")), f(cpu_med(m, "cpu_workers")), f(server[m]),
            f(server[base] / server[m] if server[m] else float("nan"), 2),
            f(server[base] / (server[m] + cl) if server[m] + cl else float("nan"), 2)))
        summary[methods.index(m)]["cpu_median"] = {
            "client": cl, "backend": cpu_med(m, "cpu_backend"),
            "workers": cpu_med(m, "cpu_workers"), "server": server[m]}
    for m in methods:
        if m in UPLOAD_METHODS:
            keys = ("send_s", "finish_s", "wait_s", "compress_s", "worker_s", "pickup_s", "bytes_sent")
            print("%s medians: %s" % (m, ", ".join(
                "%s %.3f" % (k, statistics.median([e[k] for e in extras[m] if e.get(k) is not None]))
                for k in keys if any(e.get(k) is not None for e in extras[m]))))
    print("load average: %s" % open("/proc/loadavg").read().strip())
    for m in methods:
        if m in INGEST_METHODS:
            ws = [e.get("worker_s") for e in extras[m] if e.get("worker_s") is not None]
            ps = [e.get("pickup_s") for e in extras[m] if e.get("pickup_s") is not None]
            if ws:
                print("%s: job finished_at - started_at median %.3f s; started_at - created_at median %.3f s"
                      " (created_at is the enqueuing transaction's start, so this includes the enqueue call)"
                      % (m, statistics.median(ws), statistics.median(ps) if ps else float("nan")))
    print()
    print("cluster CPU seconds (postmaster and all its processes, during each load), median and"
          " the ratio to the baseline's median (higher: less CPU than the baseline):")
    for m in methods:
        base = METHODS[m][4]
        mc = statistics.median(cpus[m])
        bc = statistics.median(cpus[base])
        print("%-22s cpu median %7.2f s  ratio %.2f  (wall median %.3f s, %d runs)"
              % (m, mc, bc / mc if mc else 0, med[m], len(cpus[m])))
    targets = {"ingest_plain": 0.70, "ingest_rls": 0.70, "ingest_data_rls": 0.70, "upload_gz_rls": 0.60,
               "upload_gzm_rls": 0.60, "upload_zst_rls": 0.60,
               "ingest_plain_parallel": 1.40, "ingest_rls_parallel": 1.40}
    for m, goal in targets.items():
        if m in methods:
            base = METHODS[m][4]
            if not (ok[m] and ok[base]):
                print("target %s >= %.2f x COPY: NOT MET (loads failed or were wrong)" % (m, goal))
            else:
                ratio = med[base] / med[m]
                print("target %s >= %.2f x COPY: %s (%.2f)" % (m, goal, "MET" if ratio >= goal else "NOT MET", ratio))
    if RESULTS:
        with open(RESULTS, "w") as f:
            json.dump({"rows": ROWS, "reps": REPS, "settings": settings,
                       "ingest_options": INGEST_OPTIONS, "methods": summary,
                       "problems": problems}, f, indent=2)
    if problems:
        print()
        print("!!! %d PROBLEM(S):" % len(problems))
        for p in problems:
            print("!!!   " + p)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
