#!/usr/bin/python3
"""One client upload of the benchmark: a file sent in chunks (begin_upload, upload_chunk,
finish_upload), plain or gzip-compressed on the fly, or in one enqueue_data call; then
ingest.wait. bench.py runs it as a subprocess so that its CPU time is its own.

Prints one JSON line: the job id, its state, the seconds from begin_upload (or enqueue_data)
to the end of ingest.wait and of each phase, the client's CPU seconds (user + system,
this process and its threads) and the backend's (from /proc/<pid>/stat: the benchmark
runs the client on the server's machine, as root).

The chunks go as binary bytea parameters (psycopg's %b with bytes): text parameters would
be hex, twice the bytes, encoded in Python and decoded by the server. With --pipeline a
thread reads and compresses the next chunk while the current one is sent and stored
(zlib releases the GIL while it compresses).
"""

import argparse
import concurrent.futures
import json
import os
import queue
import resource
import threading
import time
import zlib

import psycopg

CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """user + system CPU seconds of process pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def chunks(path, chunk_bytes, level, stats, zstd_level=-1):
    """The bytes to send, chunk_bytes at a time: the file's, or one gzip (level >= 0) or zstd
    (zstd_level >= 0) stream."""
    if zstd_level >= 0:
        import zstandard        # Debian's python3-zstandard
        comp = zstandard.ZstdCompressor(level=zstd_level).compressobj()
    elif level >= 0:
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    else:
        comp = None
    pending = []
    npending = 0
    read_size = chunk_bytes if comp is None else min(chunk_bytes, 1 << 20)
    with open(path, "rb") as f:
        while True:
            block = f.read(read_size)
            if not block:
                break
            if comp is None:
                yield block
                continue
            t = time.monotonic()
            out = comp.compress(block)
            stats["compress_s"] += time.monotonic() - t
            if out:
                pending.append(out)
                npending += len(out)
            while npending >= chunk_bytes:
                buf = b"".join(pending)
                yield buf[:chunk_bytes]
                rest = buf[chunk_bytes:]
                pending = [rest] if rest else []
                npending = len(rest)
    if comp is not None:
        t = time.monotonic()
        pending.append(comp.flush())
        stats["compress_s"] += time.monotonic() - t
        buf = b"".join(pending)
        for i in range(0, len(buf), chunk_bytes):
            yield buf[i:i + chunk_bytes]


def member_chunks(path, plain_bytes, level, threads, stats):
    """The file cut into plain_bytes pieces, each compressed as a gzip member of its own by
    a pool of threads, in order: the chunks concatenated are one multi-member gzip file,
    which ingest decompresses as gzip(1) does."""
    def work(block):
        t = time.monotonic()
        out = zlib.compress(block, level, 31)
        return out, time.monotonic() - t

    with concurrent.futures.ThreadPoolExecutor(threads) as pool, open(path, "rb") as f:
        running = []
        while True:
            while len(running) < threads + 1:
                block = f.read(plain_bytes)
                if not block:
                    break
                running.append(pool.submit(work, block))
            if not running:
                break
            out, secs = running.pop(0).result()
            stats["compress_s"] += secs
            yield out


def ahead(gen, depth=2):
    """gen's items, produced by a thread up to depth items ahead of the consumer."""
    q = queue.Queue(depth)
    done = object()
    err = []

    def run():
        try:
            for item in gen:
                q.put(item)
        except BaseException as e:     # re-raised in the consumer
            err.append(e)
        q.put(done)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    while True:
        item = q.get()
        if item is done:
            break
        yield item
    th.join()
    if err:
        raise err[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--mode", choices=("chunks", "data"), default="chunks")
    ap.add_argument("--chunk-mb", type=float, default=4)
    ap.add_argument("--gzip-level", type=int, default=-1, help="-1: send the file as it is")
    ap.add_argument("--zstd-level", type=int, default=-1, help="-1: no zstd")
    ap.add_argument("--pipeline", action="store_true")
    ap.add_argument("--threads", type=int, default=0,
                    help="compress each chunk-mb of the file as its own gzip member, in this many threads")
    ap.add_argument("--options", default="{}")
    ap.add_argument("--send-only", action="store_true",
                    help="time the upload alone: cancel the upload instead of finishing it")
    a = ap.parse_args()

    stats = {"compress_s": 0.0}
    with psycopg.connect(a.conninfo, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT set_config('app.tenant', %s, false)", (a.tenant,))
        backend = conn.info.backend_pid
        be0 = proc_cpu(backend)
        cpu0 = self_cpu()
        t0 = time.monotonic()
        sent = 0
        nchunks = 0
        if a.mode == "data":
            level = a.gzip_level
            with open(a.file, "rb") as f:
                data = f.read()
            if level >= 0:
                t = time.monotonic()
                data = zlib.compress(data, level, 31)
                stats["compress_s"] += time.monotonic() - t
            sent = len(data)
            job = conn.execute("SELECT ingest.enqueue_data(%s::regclass, %b, %s::jsonb)",
                               (a.table, data, a.options)).fetchone()[0]
            del data
            t_sent = t_fin = time.monotonic()
        else:
            job = conn.execute("SELECT ingest.begin_upload(%s::regclass, %s::jsonb)",
                               (a.table, a.options)).fetchone()[0]
            if a.threads > 0 and a.gzip_level >= 0:
                gen = member_chunks(a.file, int(a.chunk_mb * 1024 * 1024), a.gzip_level,
                                    a.threads, stats)
            else:
                gen = chunks(a.file, int(a.chunk_mb * 1024 * 1024), a.gzip_level, stats,
                             a.zstd_level)
            if a.pipeline:
                gen = ahead(gen)
            for seq, chunk in enumerate(gen):
                conn.execute("SELECT ingest.upload_chunk(%s, %s, %b)", (job, seq, chunk))
                sent += len(chunk)
                nchunks += 1
            t_sent = time.monotonic()
            if a.send_only:
                conn.execute("SELECT ingest.cancel(%s)", (job,))
                print(json.dumps({"job": job, "send_s": t_sent - t0, "compress_s": stats["compress_s"],
                                  "bytes_sent": sent, "chunks": nchunks,
                                  "client_cpu_s": self_cpu() - cpu0,
                                  "backend_cpu_s": proc_cpu(backend) - be0}))
                return
            conn.execute("SELECT ingest.finish_upload(%s, %s)", (job, sent))
            t_fin = time.monotonic()
        state = conn.execute("SELECT ingest.wait(%s, '60 min')", (job,)).fetchone()[0]
        t_end = time.monotonic()
        cpu1 = self_cpu()
        be1 = proc_cpu(backend)
    print(json.dumps({
        "job": job, "state": state, "elapsed_s": t_end - t0, "backend_pid": backend,
        "send_s": t_sent - t0, "finish_s": t_fin - t_sent, "wait_s": t_end - t_fin,
        "compress_s": stats["compress_s"], "bytes_sent": sent, "chunks": nchunks,
        "client_cpu_s": cpu1 - cpu0, "backend_cpu_s": be1 - be0}))


if __name__ == "__main__":
    main()
