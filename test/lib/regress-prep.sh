#!/bin/bash
# test/lib/regress-prep.sh: files the pg_regress suites need before they start (run by
# `make installcheck` through the Makefile's regress-prep target, as the OS user that runs
# the temporary server).
#
#   /tmp/ingest_regress_files          ingest.allowed_dirs of test/regress.conf; the suites
#                                      write their CSV files here with COPY ... TO
#   .../escape.csv  -> outside file    a symlink that leaves the allowed directory
#   .../escape_dir  -> outside dir     a symlinked directory that leaves it
#   .../inside_link.csv -> sub/inside.csv  a symlink that stays inside (allowed)
#   /tmp/ingest_regress_outside/secret.csv   a readable file outside every allowed dir
#   /tmp/ingest_regress_files_evil/x.csv     a sibling whose name merely starts like the
#                                      allowed directory (a prefix check must not accept it)
#   .../drop                           21_enqueue_dir's drop folder, emptied at each run, with
#                                      a subdirectory, a FIFO and symlinks (out of the allowed
#                                      directory, and inside it) that enqueue_dir passes over;
#                                      the suite writes its CSV files there itself
set -eu
allowed=/tmp/ingest_regress_files
outside=/tmp/ingest_regress_outside
evil=/tmp/ingest_regress_files_evil

for d in "$allowed" "$allowed/sub" "$outside" "$evil"; do
    mkdir -p "$d"
    chmod 0777 "$d" 2>/dev/null || true
    if [ ! -w "$d" ]; then
        echo "regress-prep: $d exists but is not writable by $(id -un)" >&2
        exit 1
    fi
done

rm -f "$outside/secret.csv" "$evil/x.csv" "$outside/in_dir.csv"
printf 'a,b\n1,secret\n' > "$outside/secret.csv"
printf 'a,b\n1,evil\n' > "$evil/x.csv"
chmod 0644 "$outside/secret.csv" "$evil/x.csv" 2>/dev/null || true
printf 'a,b\n1,outside-dir\n' > "$outside/in_dir.csv"

ln -sfn "$outside/secret.csv" "$allowed/escape.csv"
ln -sfn "$outside" "$allowed/escape_dir"
ln -sfn "$allowed/sub/inside.csv" "$allowed/inside_link.csv"
drop=$allowed/drop
rm -rf "$drop"
mkdir -p "$drop/sub"
chmod 0777 "$drop" "$drop/sub" 2>/dev/null || true
ln -sfn "$outside/secret.csv" "$drop/escape.csv"
ln -sfn "$allowed/sub/inside.csv" "$drop/inner.csv"
mkfifo "$drop/fifo.csv"

echo "regress-prep: $allowed ready"
