#!/usr/bin/env python3
"""Deterministic CSV generator for the ingest benchmark (stdlib only).

Writes N data rows plus a header line:

    device_id,ts,reading_id,value,temperature,status,tenant

    device_id    int               1..1000, round-robin
    ts           timestamptz       one reading per device per minute, with milliseconds, '+00' offset
    reading_id   uuid              random (seeded) version-4 UUIDs
    value        numeric(12,4)     -99999.9999..99999.9999; about 1 % unquoted empty (NULL)
    temperature  double precision  full-precision floats; about 0.5 % NULL
    status       text              mostly short words, some with embedded commas, doubled quotes,
                                   UTF-8, a tab, leading/trailing spaces, rarely an embedded newline;
                                   about 1 % NULL
    tenant       text              org_a 40 %, org_b 30 %, org_c 20 %, org_d 10 %
                                   (or a single tenant with --tenant)

(device_id, ts) is unique, so it can be the primary key. Quoting follows RFC 4180 / PostgreSQL
COPY CSV: a field is quoted when it contains the delimiter, a quote, CR or LF; quotes inside are
doubled. An unquoted empty field means NULL. The file contains no empty strings (""), because
Python's csv reader, which the psycopg client uses, cannot tell "" from an unquoted empty field.

The same --rows/--seed/--tenant always produce the same bytes.
"""

import argparse
import random
import os
import sys
import time
import uuid

NDEV = 1000
BASE_EPOCH = 1704067200  # 2024-01-01 00:00:00 UTC

TENANTS = ["org_a", "org_b", "org_c", "org_d"]
TENANT_WEIGHTS = [40, 30, 20, 10]

# (value, weight); None is NULL. Values needing quotes are quoted by quote().
STATUSES = [
    ("ok", 6000),
    ("idle", 1200),
    ("charging", 900),
    ("discharging", 700),
    ("warn: low voltage", 300),
    ("fault, code 17", 200),
    ('operator note: "check inverter"', 150),
    ('"quoted", with, commas', 100),
    ("température élevée", 100),
    ("Störung – Wechselrichter", 50),
    ("tab\tinside", 30),
    ("  padded with spaces  ", 30),
    ("multi-line\nnote", 10),
    ('end quote ""', 10),
    (None, 100),
]


def quote(s):
    """CSV-encode one field the way COPY ... (FORMAT csv) reads it."""
    if s is None:
        return ""
    if s == "":
        return '""'
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def minute_text(tick):
    """Minute `tick` since BASE_EPOCH as 'YYYY-MM-DD HH:MM:SS' in UTC."""
    t = time.gmtime(BASE_EPOCH + tick * 60)
    return "%04d-%02d-%02d %02d:%02d:%02d" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def generate(out, rows, seed, tenant=None):
    rng = random.Random(seed)
    status_pool = []
    for value, weight in STATUSES:
        status_pool.extend([quote(value)] * weight)
    tenant_pool = []
    for name, weight in zip(TENANTS, TENANT_WEIGHTS):
        tenant_pool.extend([name] * weight)

    write = out.write
    write("device_id,ts,reading_id,value,temperature,status,tenant\n")
    buf = []
    tick_prefix = None
    cur_tick = -1
    randbits = rng.getrandbits
    rand = rng.random
    randrange = rng.randrange
    choice = rng.choice
    for i in range(rows):
        device = i % NDEV + 1
        tick = i // NDEV
        if tick != cur_tick:
            cur_tick = tick
            # same second for the whole tick; only the millisecond part varies per device
            tick_prefix = minute_text(tick)
        ts = "%s.%03d+00" % (tick_prefix, (device * 7) % 1000)
        rid = str(uuid.UUID(int=randbits(128), version=4))
        r = rand()
        if r < 0.01:
            value = ""
        else:
            n = randrange(-999999999, 1000000000)
            sign = "-" if n < 0 else ""
            n = abs(n)
            value = "%s%d.%04d" % (sign, n // 10000, n % 10000)
        r = rand()
        if r < 0.005:
            temp = ""
        else:
            temp = repr(rng.uniform(-20.0, 80.0))
        status = choice(status_pool)
        ten = tenant if tenant is not None else choice(tenant_pool)
        buf.append("%d,%s,%s,%s,%s,%s,%s\n" % (device, ts, rid, value, temp, status, ten))
        if len(buf) >= 10000:
            write("".join(buf))
            buf.clear()
    write("".join(buf))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="data rows (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=20240101, help="random seed (default 20240101)")
    ap.add_argument("--tenant", default=None,
                    help="write this tenant in every row (default: a mix of org_a..org_d)")
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    args = ap.parse_args()
    if args.rows < 0:
        ap.error("--rows must be >= 0")
    if args.output == "-":
        out = sys.stdout
        generate(out, args.rows, args.seed, args.tenant)
        out.flush()
    else:
        tmp = args.output + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            generate(out, args.rows, args.seed, args.tenant)
        os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
