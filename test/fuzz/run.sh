#!/bin/bash
# test/fuzz/run.sh: build the fuzzers and run them; the "fuzz" suite of test/run-tests.sh.
#   fuzz_parser.c   src/parser.c and tokenize.c (CSV to records), seeds in test/fuzz/corpus/
#   fuzz_decode.c   src/transcode.c (gzip and zstd members, UTF-16, magic bytes, markers;
#                   linked with zlib and libzstd), seeds in test/fuzz/corpus-decode/
#   fuzz_split.c    src/split.c with parser.c (cut points of a file loaded in parts: the parts
#                   parse to the whole file's records), seeds in test/fuzz/corpus-split/
#
#   test/fuzz/run.sh [SECONDS]     SECONDS: how long to fuzz (default $FUZZ_SECONDS, else 30)
#   test/fuzz/run.sh --replay      no libFuzzer: only replay the seed corpus
#
# Steps for each fuzzer, each printed as a TAP line ("ok N - ..." / "not ok N - ...") that
# run-tests.sh counts:
#   1. build the harness with its source file: clang -fsanitize=fuzzer,address,undefined
#      -fno-sanitize-recover=all; only the source under test gets libFuzzer's coverage
#      instrumentation, so that the fuzzer goes after its branches and not the
#      harness's (with --replay: -DFUZZ_REPLAY and its own main(), ASan and UBSan, with $CC or
#      cc, so gcc does);
#   2. replay every input of its seed corpus once: the seeds include every input that once
#      found a bug, so this is the regression test;
#   3. fuzz for SECONDS on a copy of the corpus (the repository's copy is never written); 0 skips.
# A crash, a sanitizer report, a leak, a timeout (-timeout=10 s per input) or a failed invariant
# (the harness aborts) fails the step; the path of the input that did it is printed, with its
# first bytes. To keep it as a regression seed: cp PATH test/fuzz/corpus/regress-WHAT (or
# corpus-decode/ for fuzz_decode).
#
# Environment: FUZZ_TARGETS picks fuzzers (default "parser decode split"); FUZZ_WORK=DIR builds and fuzzes there (default: a new temporary directory, removed
# when everything passed, kept otherwise); FUZZ_MAX_LEN (default 4096) caps an input's size;
# FUZZ_CC picks the compiler (default clang, else clang-14). Exit status: 0 all passed, 1 a step failed (a build too), 2 no clang.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../src" && pwd)

replay_only=0
if [ "${1:-}" = --replay ]; then
    replay_only=1
    shift
fi
seconds=${1:-${FUZZ_SECONDS:-30}}
max_len=${FUZZ_MAX_LEN:-4096}
case $seconds in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS | --replay]" >&2; exit 2 ;;
esac

if [ -n "${FUZZ_WORK:-}" ]; then
    work=$FUZZ_WORK
    mkdir -p "$work" || exit 2
    remove_work=0
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/ingest-fuzz.XXXXXX") || exit 2
    remove_work=1
fi
failed=0
step=0

report() {  # report OK|FAIL DESCRIPTION
    step=$((step + 1))
    if [ "$1" = OK ]; then
        echo "ok $step - $2"
    else
        echo "not ok $step - $2"
        failed=1
    fi
}

finish() {
    if [ "$failed" != 0 ]; then
        echo "fuzz work directory kept: $work"
    elif [ "$remove_work" = 1 ]; then
        rm -rf "$work"
    fi
    exit "$failed"
}

# Print the inputs libFuzzer saved (crash-*, leak-*, timeout-*, oom-*) in dir $1.
show_artifacts() {
    local f found=1
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        found=0
        echo "failing input: $f ($(wc -c < "$f") bytes), first bytes:"
        od -A d -t x1z -N 256 "$f" | sed 's/^/    /'
    done
    return $found
}

# Symbolized stacks in the reports, when a symbolizer is around.
for s in llvm-symbolizer /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$s" >/dev/null 2>&1; then
        export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$s")}
        break
    fi
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ------------------------------------------------------------------ 1. build
if [ "$replay_only" = 1 ]; then
    cc=${FUZZ_CC:-${CC:-cc}}
    sanitize=('-fsanitize=address,undefined' -fno-sanitize-recover=all)
    covered=("${sanitize[@]}")
    harness=("${sanitize[@]}" -DFUZZ_REPLAY)
    link=("${sanitize[@]}")
else
    cc=${FUZZ_CC:-}
    if [ -z "$cc" ]; then
        for c in clang clang-14; do
            command -v "$c" >/dev/null 2>&1 && { cc=$c; break; }
        done
    fi
    if [ -z "$cc" ]; then
        echo "not ok 1 - build: clang not found (apt-get install clang libclang-rt-14-dev, or use --replay)"
        exit 2
    fi
    sanitize=('-fsanitize=address,undefined' -fno-sanitize-recover=all)
    covered=(-fsanitize=fuzzer-no-link "${sanitize[@]}")
    harness=("${sanitize[@]}")
    link=(-fsanitize=fuzzer "${sanitize[@]}")
fi
cflags=(-g -O1 -fno-omit-frame-pointer -Wall -I"$src")

# One target: build it (step 1), replay its seeds (step 2), fuzz it (step 3).
#   run_target NAME SOURCE CORPUS [LIBS...]
run_target() {
    local name=$1 source=$2 corpus=$3
    shift 3
    local libs=("$@")
    local bin=$work/fuzz_$name
    local t=$work/$name
    local rc seeds last
    mkdir -p "$t"
    # only the code under test gets libFuzzer's coverage instrumentation
    # SOURCE may name several files, separated by spaces
    local objs=() f
    for f in $source; do
        objs+=("$t/${f%.c}.o")
    done
    if ! { ( for f in $source; do "$cc" "${cflags[@]}" "${covered[@]}" -c -o "$t/${f%.c}.o" "$src/$f" || exit 1; done ) &&
           "$cc" "${cflags[@]}" "${harness[@]}" -c -o "$t/harness.o" "$here/fuzz_$name.c" &&
           "$cc" "${link[@]}" -o "$bin" "${objs[@]}" "$t/harness.o" "${libs[@]}"; } > "$t/build.log" 2>&1; then
        cat "$t/build.log"
        report FAIL "build fuzz_$name with $cc"
        return
    fi
    report OK "build fuzz_$name ($source) with $cc ${link[*]}"

    seeds=("$corpus"/*)
    if [ ! -f "${seeds[0]}" ]; then
        report FAIL "replay: no seed corpus in $corpus"
        return
    fi
    if [ "$replay_only" = 1 ]; then
        "$bin" "${seeds[@]}" > "$t/replay.log" 2>&1
    else
        # files given as arguments: libFuzzer runs each once and does not fuzz
        mkdir -p "$t/replay-artifacts"
        "$bin" -timeout=10 -artifact_prefix="$t/replay-artifacts/" "${seeds[@]}" > "$t/replay.log" 2>&1
    fi
    rc=$?
    if [ "$rc" -eq 0 ]; then
        report OK "fuzz_$name: replay of the ${#seeds[@]} seed inputs in test/fuzz/$(basename "$corpus")"
    else
        tail -n 80 "$t/replay.log"
        # the last input started is the one that failed
        last=$(grep -E '^(Running: |running )' "$t/replay.log" | tail -n 1 | sed -E 's/^(Running: |running )//; s/ \([0-9]+ bytes\)$//')
        echo "failing input: ${last:-unknown}"
        report FAIL "fuzz_$name: replay of the seed corpus (exit $rc, failing input ${last:-unknown}; log $t/replay.log)"
    fi

    if [ "$replay_only" = 1 ] || [ "$seconds" -eq 0 ]; then
        return
    fi
    mkdir -p "$t/corpus" "$t/artifacts"
    cp "${seeds[@]}" "$t/corpus/"
    echo "fuzz_$name: fuzzing for $seconds s (max_len $max_len) in $t"
    "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$t/artifacts/" "$t/corpus" > "$t/fuzz.log" 2>&1
    rc=$?
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|#[0-9]+ +DONE)' "$t/fuzz.log"
    if [ "$rc" -eq 0 ] && ! show_artifacts "$t/artifacts" >/dev/null; then
        report OK "fuzz_$name: fuzzing for $seconds s"
    else
        tail -n 80 "$t/fuzz.log"
        show_artifacts "$t/artifacts" || echo "(libFuzzer exited $rc without saving an input)"
        report FAIL "fuzz_$name: fuzzing for $seconds s (exit $rc; inputs above; log $t/fuzz.log)"
    fi
}

for target in ${FUZZ_TARGETS:-parser decode split}; do
    case $target in
        parser) run_target parser "parser.c tokenize.c" "$here/corpus" ;;
        decode) run_target decode transcode.c "$here/corpus-decode" -lz -lzstd ;;
        split) run_target split "split.c parser.c tokenize.c" "$here/corpus-split" ;;
        *) report FAIL "unknown fuzz target $target (parser, decode, split)" ;;
    esac
done
finish
