#!/bin/bash
# test/fuzz/run.sh: build the parser fuzzer (fuzz_parser.c) and run it; the "fuzz" suite of
# test/run-tests.sh.
#
#   test/fuzz/run.sh [SECONDS]     SECONDS: how long to fuzz (default $FUZZ_SECONDS, else 30)
#   test/fuzz/run.sh --replay      no libFuzzer: only replay the seed corpus
#
# Steps, each printed as a TAP line ("ok N - ..." / "not ok N - ...") that run-tests.sh counts:
#   1. build fuzz_parser.c with src/parser.c: clang -fsanitize=fuzzer,address,undefined
#      -fno-sanitize-recover=all; only parser.c gets libFuzzer's coverage instrumentation,
#      so that the fuzzer goes after its branches and not the
#      harness's (with --replay: -DFUZZ_REPLAY and its own main(), ASan and UBSan, with $CC or
#      cc, so gcc does);
#   2. replay every input of test/fuzz/corpus/ once: the seeds include every input that once
#      found a bug, so this is the regression test;
#   3. fuzz for SECONDS on a copy of the corpus (the repository's copy is never written); 0 skips.
# A crash, a sanitizer report, a leak, a timeout (-timeout=10 s per input) or a failed invariant
# (the harness aborts) fails the step; the path of the input that did it is printed, with its
# first bytes. To keep it as a regression seed: cp PATH test/fuzz/corpus/regress-WHAT.
#
# Environment: FUZZ_WORK=DIR builds and fuzzes there (default: a new temporary directory, removed
# when everything passed, kept otherwise); FUZZ_MAX_LEN (default 4096) caps an input's size;
# FUZZ_CC picks the compiler (default clang, else clang-14). Exit status: 0 all passed, 1 a step failed, 2 could not build.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../src" && pwd)
corpus=$here/corpus

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
bin=$work/fuzz_parser
objs=("$work/parser.o" "$work/fuzz_parser.o")
build() {
    "$cc" "${cflags[@]}" "${covered[@]}" -c -o "$work/parser.o" "$src/parser.c" &&
    "$cc" "${cflags[@]}" "${harness[@]}" -c -o "$work/fuzz_parser.o" "$here/fuzz_parser.c" || return 1
    "$cc" "${link[@]}" -o "$bin" "${objs[@]}"
}
if ! build > "$work/build.log" 2>&1; then
    cat "$work/build.log"
    echo "not ok 1 - build fuzz_parser with $cc"
    echo "fuzz work directory kept: $work"
    exit 2
fi
report OK "build fuzz_parser with $cc ${link[*]}"

# ------------------------------------------------------------------ 2. replay the seeds
seeds=("$corpus"/*)
if [ ! -f "${seeds[0]}" ]; then
    report FAIL "replay: no seed corpus in $corpus"
    finish
fi
if [ "$replay_only" = 1 ]; then
    "$bin" "${seeds[@]}" > "$work/replay.log" 2>&1
else
    # files given as arguments: libFuzzer runs each once and does not fuzz
    mkdir -p "$work/replay-artifacts"
    "$bin" -timeout=10 -artifact_prefix="$work/replay-artifacts/" "${seeds[@]}" > "$work/replay.log" 2>&1
fi
rc=$?
if [ "$rc" -eq 0 ]; then
    report OK "replay of the ${#seeds[@]} seed inputs in test/fuzz/corpus"
else
    tail -n 80 "$work/replay.log"
    # the last input started is the one that failed
    last=$(grep -E '^(Running: |running )' "$work/replay.log" | tail -n 1 | sed -E 's/^(Running: |running )//; s/ \([0-9]+ bytes\)$//')
    echo "failing input: ${last:-unknown}"
    report FAIL "replay of the seed corpus (exit $rc, failing input ${last:-unknown}; log $work/replay.log)"
fi

# ------------------------------------------------------------------ 3. fuzz
if [ "$replay_only" = 1 ] || [ "$seconds" -eq 0 ]; then
    finish
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp "${seeds[@]}" "$work/corpus/"
echo "fuzzing for $seconds s (max_len $max_len) in $work"
"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" > "$work/fuzz.log" 2>&1
rc=$?
grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|#[0-9]+ +DONE)' "$work/fuzz.log"
if [ "$rc" -eq 0 ] && ! show_artifacts "$work/artifacts" >/dev/null; then
    report OK "fuzzing for $seconds s"
else
    tail -n 80 "$work/fuzz.log"
    show_artifacts "$work/artifacts" || echo "(libFuzzer exited $rc without saving an input)"
    report FAIL "fuzzing for $seconds s (exit $rc; inputs above; log $work/fuzz.log)"
fi
finish
