#!/usr/bin/python3
"""The "do it yourself" client of the ingest benchmark: psycopg 3 batching INSERTs.

Reads a CSV written by gen_csv.py with Python's csv module and sends it in batches of
--batch rows (default 10,000), each as one

    INSERT INTO <table> (cols) SELECT * FROM unnest($1::int[], $2::timestamptz[], ...)

with the fields passed as text arrays (the server converts them, so the client does no
type conversion of its own). Everything goes in one transaction, like an ingest job with
commit_every 0. The session sets app.tenant (for the RLS policy) before the first batch.

Prints one JSON line: {"rows": N, "batches": B, "seconds": S}.
Needs Debian's python3-psycopg (run with /usr/bin/python3).
"""

import argparse
import csv
import json
import sys
import time

import psycopg

COLUMNS = ["device_id", "ts", "reading_id", "value", "temperature", "status", "tenant"]
TYPES = ["int", "timestamptz", "uuid", "numeric", "float8", "text", "text"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True, help="libpq connection string")
    ap.add_argument("--table", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--tenant", default=None, help="value for SET app.tenant")
    ap.add_argument("--batch", type=int, default=10000)
    args = ap.parse_args()

    cols = ", ".join(COLUMNS)
    params = ", ".join("%%s::%s[]" % t for t in TYPES)
    sql = "INSERT INTO %s (%s) SELECT * FROM unnest(%s)" % (args.table, cols, params)

    t0 = time.monotonic()
    total = 0
    batches = 0
    with psycopg.connect(args.conninfo) as conn:
        with conn.cursor() as cur:
            if args.tenant is not None:
                cur.execute("SELECT set_config('app.tenant', %s, false)", (args.tenant,))
            with open(args.file, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                header = next(reader)
                if header != COLUMNS:
                    sys.exit("unexpected header %r" % (header,))
                batch = []
                for rec in reader:
                    # csv gives '' for an unquoted empty field: that is NULL (the file has no "").
                    batch.append([v if v != "" else None for v in rec])
                    if len(batch) >= args.batch:
                        cur.execute(sql, [list(c) for c in zip(*batch)], prepare=True)
                        total += cur.rowcount
                        batches += 1
                        batch = []
                if batch:
                    cur.execute(sql, [list(c) for c in zip(*batch)], prepare=True)
                    total += cur.rowcount
                    batches += 1
        conn.commit()
    print(json.dumps({"rows": total, "batches": batches,
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
