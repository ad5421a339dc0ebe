#!/usr/bin/env python3
"""pgbouncer_upload.py: many clients upload CSV files in chunks through PgBouncer.

Driver of test/t/013_pgbouncer.pl, usable on its own. Starts --clients threads, each with
its own connection to PgBouncer (transaction pooling). Once all are connected, each one
uploads its own generated CSV file:

    ingest.begin_upload   one statement, in one implicit transaction with
                          SET LOCAL app.client = '<n>' (a setting the job must capture:
                          in transaction pooling the next statement may run on another
                          server connection, so nothing may rely on session state)
    ingest.upload_chunk   one statement (its own transaction) per chunk
    ingest.finish_upload  one statement

then polls ingest.upload_jobs (short statements; ingest.wait would hold a server
connection of the pool for the whole load) until its job has finished, and checks that
it succeeded with exactly its rows. With --mode data a client sends its file with one
ingest.enqueue_data call instead (the harness's fallback while uploads in chunks were
being written).

Meanwhile a sampler thread, on a direct connection to the server, counts backends in
pg_stat_activity. The latency of every call (as the client sees it, PgBouncer's queue
included) is measured; p50 and p99 per kind of call are reported, not asserted.

Prints one JSON object on stdout (the summary); progress and failures go to stderr.
Exits 0 when every client's job succeeded with its rows and the backend bound held.

Needs psycopg 3 (Debian: python3-psycopg). Statements are never prepared
(prepare_threshold=None): server-side prepared statements do not survive transaction
pooling in PgBouncer before 1.21.
"""

import argparse
import json
import math
import sys
import threading
import time

import psycopg

# Backends that are always there and hold no client's work.
AUXILIARY = ("autovacuum launcher", "background writer", "checkpointer", "walwriter",
             "logical replication launcher", "archiver", "startup", "walreceiver",
             "walsender")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def csv_for(client, rows):
    """The file of one client: a header and `rows` records, each naming the client."""
    lines = ["client,n,payload"]
    for n in range(1, rows + 1):
        # quoted field with a comma and a doubled quote: the parser's work is real
        lines.append('%d,%d,"row %d of client %d, said ""hello"""' % (client, n, n, client))
    return ("\n".join(lines) + "\n").encode("utf-8")


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(math.ceil(p / 100.0 * len(s))) - 1))
    return s[k]


class Client(threading.Thread):
    def __init__(self, n, args, barrier, lat, lat_lock):
        super().__init__(name="client-%d" % n, daemon=True)
        self.n = n
        self.args = args
        self.barrier = barrier
        self.lat = lat
        self.lat_lock = lat_lock
        self.rows = args.rows + (n * 37) % args.rows_spread  # every file differs
        self.job = None
        self.state = None
        self.rows_inserted = None
        self.rows_rejected = None
        self.chunks = 0
        self.error = None

    def timed(self, kind, cur, sql, params=None):
        t0 = time.perf_counter()
        cur.execute(sql, params)
        while cur.nextset():    # several statements: the last one's result
            pass
        row = cur.fetchone()
        dt = time.perf_counter() - t0
        with self.lat_lock:
            self.lat.setdefault(kind, []).append(dt)
        return row

    def run(self):
        conn = None
        try:
            conn = psycopg.connect(self.args.bouncer, autocommit=True, prepare_threshold=None,
                                   connect_timeout=30)
        except Exception as e:
            self.error = "connect: %s" % e
        try:
            self.barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            self.error = self.error or "not every client could connect"
        if self.error:
            if conn:
                conn.close()
            return
        try:
            self.upload(conn)
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()

    def upload(self, conn):
        data = csv_for(self.n, self.rows)
        cur = conn.cursor()
        opts = '{}'
        if self.args.mode == "chunks":
            # No parameters: psycopg sends it with the simple query protocol, as one
            # implicit transaction, so SET LOCAL and begin_upload share it (and one
            # server connection) whatever PgBouncer does between statements.
            (self.job,) = self.timed(
                "begin_upload", cur,
                "SET LOCAL app.client = '%d'; "
                "SELECT ingest.begin_upload('public.uploads', '%s')" % (self.n, opts))
            size = self.args.chunk_size
            for seq, off in enumerate(range(0, len(data), size)):
                self.timed("upload_chunk", cur, "SELECT ingest.upload_chunk(%s, %s, %s)",
                           (self.job, seq, data[off:off + size]))
                self.chunks += 1
            self.timed("finish_upload", cur, "SELECT ingest.finish_upload(%s, %s)",
                       (self.job, len(data)))
        else:
            # parameters need the extended protocol: an explicit transaction then
            t0 = time.perf_counter()
            with conn.transaction():
                cur.execute("SELECT set_config('app.client', %s, true)", (str(self.n),))
                cur.execute("SELECT ingest.enqueue_data('public.uploads', %s, %s)", (data, opts))
                (self.job,) = cur.fetchone()
            with self.lat_lock:
                self.lat.setdefault("enqueue_data", []).append(time.perf_counter() - t0)

        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            cur.execute("SELECT state, rows_inserted, rows_rejected, last_error "
                        "FROM ingest.upload_jobs WHERE id = %s", (self.job,))
            self.state, self.rows_inserted, self.rows_rejected, last_error = cur.fetchone()
            if self.state in ("succeeded", "failed", "cancelled"):
                if self.state != "succeeded":
                    self.error = "job %d %s: %s" % (self.job, self.state, last_error)
                elif self.rows_inserted != self.rows or self.rows_rejected != 0:
                    self.error = "job %d: %d rows inserted, %d rejected, %d sent" % (
                        self.job, self.rows_inserted, self.rows_rejected, self.rows)
                return
            time.sleep(self.args.poll)
        self.error = "job %d still %s after %ds" % (self.job, self.state, self.args.timeout)


class Sampler(threading.Thread):
    """Counts backends on a direct connection until told to stop."""

    SQL = """
        SELECT count(*) FILTER (WHERE backend_type <> ALL (%s)),
               count(*) FILTER (WHERE backend_type = 'client backend'),
               count(*) FILTER (WHERE backend_type = 'client backend' AND usename = %s),
               count(*) FILTER (WHERE backend_type ILIKE '%%ingest%%'
                                  AND backend_type NOT ILIKE '%%launcher%%')
          FROM pg_stat_activity"""

    def __init__(self, args):
        super().__init__(name="sampler", daemon=True)
        self.args = args
        self.stop = threading.Event()
        self.samples = 0
        self.most = {"backends": 0, "client_backends": 0, "pool_backends": 0, "ingest_workers": 0}
        self.error = None

    def run(self):
        try:
            with psycopg.connect(self.args.direct, autocommit=True) as conn:
                cur = conn.cursor()
                while not self.stop.is_set():
                    cur.execute(self.SQL, (list(AUXILIARY), self.args.user))
                    row = cur.fetchone()
                    self.samples += 1
                    for key, v in zip(("backends", "client_backends", "pool_backends",
                                       "ingest_workers"), row):
                        self.most[key] = max(self.most[key], v)
                    self.stop.wait(self.args.sample_every)
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bouncer", required=True, help="libpq connection string to PgBouncer")
    ap.add_argument("--direct", required=True, help="libpq connection string to the server, as a superuser")
    ap.add_argument("--user", required=True, help="the role the clients log in as (its pool is counted)")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rows", type=int, default=2000, help="rows of the smallest file")
    ap.add_argument("--rows-spread", type=int, default=500, help="files have rows .. rows + spread - 1 rows")
    ap.add_argument("--chunk-size", type=int, default=16384)
    ap.add_argument("--mode", choices=("chunks", "data"), default="chunks")
    ap.add_argument("--backend-limit", type=int, required=True,
                    help="most backends (client backends and background workers) allowed at once")
    ap.add_argument("--timeout", type=int, default=300, help="seconds a client waits for its job")
    ap.add_argument("--poll", type=float, default=0.25)
    ap.add_argument("--sample-every", type=float, default=0.02)
    args = ap.parse_args()

    lat = {}
    lat_lock = threading.Lock()
    barrier = threading.Barrier(args.clients)
    clients = [Client(n, args, barrier, lat, lat_lock) for n in range(1, args.clients + 1)]
    sampler = Sampler(args)
    sampler.start()
    t0 = time.perf_counter()
    for c in clients:
        c.start()
    for c in clients:
        c.join(args.timeout + 180)
    elapsed = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join(30)

    failures = [(c.n, c.error or "did not finish") for c in clients if c.error or c.is_alive()]
    ok_jobs = sum(1 for c in clients if c.state == "succeeded" and c.error is None)
    summary = {
        "mode": args.mode,
        "clients": args.clients,
        "jobs_succeeded_exact": ok_jobs,
        "rows_sent": sum(c.rows for c in clients),
        "chunks_sent": sum(c.chunks for c in clients),
        "failures": ["client %d: %s" % f for f in failures[:20]],
        "jobs": {str(c.n): c.job for c in clients},
        "rows": {str(c.n): c.rows for c in clients},
        "samples": sampler.samples,
        "sampler_error": sampler.error,
        "most": sampler.most,
        "backend_limit": args.backend_limit,
        "elapsed_s": round(elapsed, 3),
        "latency_ms": {
            kind: {"n": len(v),
                   "p50": round(percentile(v, 50) * 1000, 2),
                   "p99": round(percentile(v, 99) * 1000, 2)}
            for kind, v in sorted(lat.items())
        },
    }
    for kind, s in summary["latency_ms"].items():
        log("%-14s n=%-5d p50 %8.2f ms  p99 %8.2f ms" % (kind, s["n"], s["p50"], s["p99"]))
    log("most at once: %s (limit %d); %d samples; %d/%d jobs exact; %.1f s"
        % (sampler.most, args.backend_limit, sampler.samples, ok_jobs, args.clients, elapsed))
    for f in summary["failures"]:
        log("FAILED", f)
    print(json.dumps(summary, sort_keys=True))
    good = (ok_jobs == args.clients and not failures and sampler.error is None
            and sampler.samples > 0 and sampler.most["backends"] <= args.backend_limit)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
