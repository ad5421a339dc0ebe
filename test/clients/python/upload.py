#!/usr/bin/env python3
"""upload.py: upload a CSV file to ingest in chunks with psycopg 3, one tenant at a time.

An example to copy. It shows, through a connection pool that may sit behind PgBouncer in
transaction mode:
  - every call in its own short transaction that first sets the role and the tenant
    (SET LOCAL ROLE, set_config(..., true)): nothing relies on session state, so any server
    connection of the pool may run it;
  - an upload in chunks (ingest.begin_upload, upload_chunk, finish_upload), a chunk that
    fails on a lost connection sent again (upload_chunk is idempotent), the job id printed;
  - progress, polled from ingest.upload_jobs;
  - waiting with LISTEN ingest on a DIRECT connection to the server (--listen-dsn): LISTEN
    does not work through PgBouncer in transaction mode, whose server connections change
    between transactions; without --listen-dsn it polls through the pool;
  - the rejected rows (ingest.job_errors, with line numbers), cancel and retry.

Run (Debian: apt install python3-psycopg python3-psycopg-pool):
    export INGEST_DSN="host=127.0.0.1 port=6432 dbname=app user=web"    # PgBouncer
    python3 upload.py --tenant acme upload invoices march.csv --options '{"max_errors": 100}'
    python3 upload.py --tenant acme --listen-dsn "host=/run/postgresql dbname=app user=web" \\
        upload invoices march.csv
    python3 upload.py --tenant acme errors 42
    python3 upload.py --tenant acme cancel 42
    python3 upload.py --tenant acme retry 42
It expects ingest.tenant_key = 'app.tenant' and a role (default: authenticated) granted to
the login role; see README.md, "Tenants that share one role". Exit status: 0 when the job
succeeded (or a cancel/retry was accepted), 1 when it ended otherwise, 2 on an error.
test/t/025_clients.pl runs it through PgBouncer.
"""

import argparse
import json
import os
import select
import sys
import time
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

UNFINISHED = ("uploading", "queued", "running")
CHUNK_TRIES = 3


def transient(e):
    """A lost connection (no SQLSTATE, or class 08 or 57) or a transient error (class 40,
    53, lock timeout): worth sending the same chunk again. Anything else (a chunk over
    ingest.max_file_size, an upload cancelled meanwhile) would fail again."""
    code = e.sqlstate or ""
    return code == "" or code[:2] in ("08", "40", "53", "57") or code == "55P03"


class App:
    def __init__(self, args):
        self.args = args
        # prepare_threshold=None: no server-side prepared statements, which PgBouncer
        # (before 1.21) cannot follow from one server connection to the next
        self.pool = ConnectionPool(args.dsn, min_size=1, max_size=4, open=True,
                                   kwargs={"autocommit": True, "prepare_threshold": None})

    @contextmanager
    def tenant_tx(self):
        """A connection of the pool, in a transaction acting as the role and the tenant."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(self.args.role)))
            conn.execute("SELECT set_config('app.tenant', %s, true)", (self.args.tenant,))
            yield conn

    def one(self, query, params=()):
        with self.tenant_tx() as conn:
            return conn.execute(query, params).fetchone()

    def upload(self, table, path, options):
        size = os.path.getsize(path)
        (job,) = self.one("SELECT ingest.begin_upload(%s, %s)", (table, options))
        print(f"job {job}: uploading {path} ({size} bytes) into {table}", flush=True)
        chunk_size = self.args.chunk_size
        chunks = max(1, -(-size // chunk_size))
        with open(path, "rb") as f:
            for seq in range(chunks):
                self.send_chunk(job, seq, f.read(chunk_size))
                print(f"job {job}: sent chunk {seq + 1}/{chunks}", flush=True)
        self.one("SELECT ingest.finish_upload(%s, %s)", (job, size))
        print(f"job {job}: upload complete, queued for loading", flush=True)
        return job

    def send_chunk(self, job, seq, data):
        """Send one chunk, again after a lost connection (upload_chunk is idempotent)."""
        for attempt in range(1, CHUNK_TRIES + 1):
            try:
                self.one("SELECT ingest.upload_chunk(%s, %s, %s)", (job, seq, data))
                return
            except psycopg.Error as e:
                if attempt == CHUNK_TRIES or not transient(e):
                    raise
                reason = (str(e).splitlines() or [type(e).__name__])[0]
                print(f"job {job}: chunk {seq} failed ({reason}); sending it again",
                      file=sys.stderr, flush=True)
                time.sleep(attempt)

    def status(self, job):
        row = self.one("SELECT state, rows_inserted, rows_rejected, bytes_done, bytes_total, "
                       "last_error FROM ingest.upload_jobs WHERE id = %s", (job,))
        if row is None:
            raise LookupError(f"job {job}: no such job (for tenant {self.args.tenant})")
        return row

    def wait(self, job):
        """Print progress until the job ends; returns its final state."""
        listener, ended = None, set()
        if self.args.listen_dsn:
            # LISTEN before the first look at the job, so that its end cannot fall between.
            # The payload names only the job and its state (any role may LISTEN): the job
            # itself is read through the pool, as the tenant.
            listener = psycopg.connect(self.args.listen_dsn, autocommit=True)
            listener.add_notify_handler(lambda n: ended.add(json.loads(n.payload)["job_id"]))
            listener.execute("LISTEN ingest")
        last = None
        try:
            while True:
                state, inserted, rejected, done, total, error = self.status(job)
                pct = 100 * done // total if total else 0
                line = f"job {job}: {state}, {pct}% of {total} bytes, {inserted} rows loaded"
                if line != last:
                    print(line, flush=True)
                    last = line
                if state not in UNFINISHED:
                    print(f"job {job}: {state}: {inserted} rows inserted, {rejected} rejected"
                          + (f" ({error})" if error else ""), flush=True)
                    return state
                if listener is None:
                    time.sleep(self.args.poll)
                elif select.select([listener.fileno()], [], [], self.args.poll)[0]:
                    # psycopg 3.1 has no timeout on notifies(): an empty query reads what
                    # arrived and calls the handler
                    listener.execute("SELECT 1")
                    if job in ended:
                        print(f"job {job}: notified", flush=True)
        finally:
            if listener is not None:
                listener.close()

    def errors(self, job, limit=20):
        with self.tenant_tx() as conn:
            rows = conn.execute("SELECT line_number, sqlstate, message, raw_line "
                                "FROM ingest.job_errors WHERE job_id = %s "
                                "ORDER BY line_number LIMIT %s", (job, limit)).fetchall()
        for line, code, message, raw in rows:
            print(f"job {job}: line {line}: [{code}] {message}: {raw}", flush=True)
        return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", default=os.environ.get("INGEST_DSN", ""),
                    help="libpq connection string, PgBouncer's in transaction mode is fine")
    ap.add_argument("--listen-dsn", help="a direct connection to the server, for LISTEN")
    ap.add_argument("--role", default="authenticated", help="the role that owns the jobs")
    ap.add_argument("--tenant", required=True, help="set as app.tenant in every transaction")
    ap.add_argument("--chunk-size", type=int, default=8 * 1024 * 1024)
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    sub = ap.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="upload FILE into TABLE, then wait for the load")
    up.add_argument("table")
    up.add_argument("file")
    up.add_argument("--options", default="{}", help="ingest options, JSON")
    up.add_argument("--no-wait", action="store_true", help="print the job id and return")
    for name in ("wait", "errors", "cancel", "retry"):
        p = sub.add_parser(name)
        p.add_argument("job", type=int)
        if name == "retry":
            p.add_argument("--no-wait", action="store_true")
    args = ap.parse_args()

    app = App(args)
    try:
        if args.command == "cancel":
            (ok,) = app.one("SELECT ingest.cancel(%s)", (args.job,))
            print(f"job {args.job}: " + ("cancelled" if ok else "had already ended"))
            return 0 if ok else 1
        if args.command == "errors":
            app.errors(args.job)
            return 0
        if args.command == "upload":
            job = app.upload(args.table, args.file, args.options)
        else:
            job = args.job
        if args.command == "retry":
            (ok,) = app.one("SELECT ingest.retry(%s)", (job,))
            if not ok:
                print(f"job {job}: not retried (neither failed nor cancelled)")
                return 1
            print(f"job {job}: queued again")
        if getattr(args, "no_wait", False):
            return 0
        state = app.wait(job)
        app.errors(job)
        return 0 if state == "succeeded" else 1
    except (psycopg.Error, LookupError) as e:
        print(f"error: {str(e).strip()}", file=sys.stderr)
        return 2
    finally:
        app.pool.close()


if __name__ == "__main__":
    sys.exit(main())
