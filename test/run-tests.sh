#!/bin/bash
# test/run-tests.sh: what `make test` (and so .ci/run) runs.
#
#   test/run-tests.sh            every version of PG_VERSIONS (default "15 17"), one after the
#                                other, each as `test/run-tests.sh --pg N`: 15 on this Debian 12
#                                machine, 17 inside a Debian 13 root (test/lib/debian13-root.sh:
#                                built once, then cached; the tree is copied into it). The
#                                counts of every version are added up; each version's own
#                                closing line is reported as "PG N: ..." in the summary.
#   test/run-tests.sh --pg N     version N only, here (inside the root for 17): what follows.
#
# Installs what is missing, builds and installs ingest, copies the tree to a temporary
# directory owned by the user that runs the servers (postgres when we are root), then runs
#   1. the pg_regress suites sql/*.sql (make installcheck: a temporary instance with
#      ingest preloaded, see REGRESS_OPTS and test/regress.conf);
#   2. the TAP tests test/t/*.pl (PostgreSQL::Test::Cluster, each starts its own clusters);
#   3. the fuzzers test/fuzz/run.sh (libFuzzer, ASan, UBSan; no server): the parser's, the
#      decoder's (transcode.c) and the cut points' (split.c); each replays its seed corpus
#      (test/fuzz/corpus, corpus-decode, corpus-split), then fuzzes for FUZZ_SECONDS on a copy
#      of it. On 15 only:
#      neither touches the server, and 17's root has no clang.
#
# Counting, for the closing line "N passed, N failed":
#   - each pg_regress test (one per sql/*.sql file) counts once;
#   - each TAP assertion (a top-level "ok N" / "not ok N" line) counts once, and so does
#     each step of the fuzzer (build, replay, fuzzing);
#   - a suite that breaks without a counted failure (pg_regress cannot start its server,
#     a TAP file dies or exits non-zero with every assertion ok) adds one failure.
# Exits non-zero when anything failed, after printing regression.diffs, the server log and
# the TAP logs of what failed.
#
# Environment: PG_VERSIONS="15 17" (default; PG_VERSIONS=15 skips 17, PG_VERSIONS=17 runs
# only 17); KEEP_TMP=1 keeps the staged copy (it is also kept when something failed);
# TAP_ONLY=1 / REGRESS_ONLY=1 run one half (and no fuzzing); TESTS="t/001_pickup.pl ..." picks
# TAP files; FUZZ_SECONDS=N fuzzes N seconds (default 30; 0: only replay the seed corpus);
# INGEST_DEBIAN13_ROOT: where 17's root is cached (default /var/cache/ingest/debian-13-root);
# INGEST_PORTS=LO-HI: the ports the test servers (pg_regress's, the TAP tests' clusters and
# PgBouncers) take, e.g. 5450-5459 (10 is enough: a TAP file needs at most 4 at once); unset,
# pg_regress takes its default port and the TAP tests any free one in 10200-32767.
# All but PG_VERSIONS and FUZZ_SECONDS are passed into 17's root.

set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

passed=0
failed=0
failures=()
summary_done=0

# ---------------------------------------------------------------- every version
if [ "${1:-}" != --pg ]; then
    # shellcheck source=lib/setup.sh
    source test/lib/setup.sh
    version_lines=()
    outs=()
    on_exit_all() {
        rm -f "${outs[@]}"
        if [ "$summary_done" = 0 ]; then
            echo "$passed passed, $((failed > 0 ? failed : 1)) failed"
        fi
    }
    trap on_exit_all EXIT
    # ^C or TERM: the version being run gets it too and cleans up (unmounts); then stop
    # here instead of starting the next version. (bash runs the trap once the pipeline ends.)
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ingest_port_range ''    # a malformed INGEST_PORTS: said now, not once per version
    # the caller's choices that the run inside 17's root must see (its environment is clean)
    pass_env=()
    for var in KEEP_TMP TAP_ONLY REGRESS_ONLY TESTS PG_TEST_TIMEOUT_DEFAULT INGEST_PORTS; do
        [ -n "${!var+set}" ] && pass_env+=("$var=${!var}")
    done
    for v in ${PG_VERSIONS:-15 17}; do
        log "PostgreSQL $v"
        out=$(mktemp "/tmp/ingest-run-pg$v.XXXXXX") || die "mktemp failed"
        outs+=("$out")
        t0=$SECONDS
        case $v in
            # tee -i: after a ^C it still shows what the run prints while it cleans up
            15) bash test/run-tests.sh --pg 15 2>&1 | tee -i "$out"
                rc=${PIPESTATUS[0]} ;;
            17) # no network for a root not cached yet, a failed debootstrap: failures, not skips
                bash test/lib/debian13-root.sh run --tree "$PWD" "${pass_env[@]}" \
                    bash test/run-tests.sh --pg 17 2>&1 | tee -i "$out"
                rc=${PIPESTATUS[0]} ;;
            *)  echo "PostgreSQL $v is not supported here (PG_VERSIONS: 15 and/or 17)" | tee "$out"
                rc=2 ;;
        esac
        # that run's own closing line; none (it could not start): one failure
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
        v_ok=0 v_fail=0
        if [ -n "$line" ]; then
            v_ok=${line%% passed*}
            v_fail=${line#* passed, }; v_fail=${v_fail%% failed}
        fi
        if [ "$rc" -ne 0 ] && [ "$v_fail" -eq 0 ]; then
            v_fail=1
            echo "PG $v: the run exited $rc without a failed test: counted as one failure"
            failures+=("PG $v: exited $rc")
        fi
        while IFS= read -r f; do
            failures+=("${f#failed: }")
        done < <(grep -E '^failed: ' "$out")
        passed=$((passed + v_ok))
        failed=$((failed + v_fail))
        version_lines+=("PG $v: $v_ok passed, $v_fail failed ($((SECONDS - t0)) s)")
    done
    summary_done=1
    log "summary"
    printf '%s\n' "${version_lines[@]}"
    if [ ${#failures[@]} -gt 0 ]; then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# ---------------------------------------------------------------- one version (--pg N)
export INGEST_PG_MAJOR=${2:?"usage: $0 [--pg 15|17]"}
# shellcheck source=lib/setup.sh
source test/lib/setup.sh

# When the set-up itself fails (a package, the build, the install), the run still ends
# with the closing line.
on_exit() {
    cleanup
    if [ "$summary_done" = 0 ]; then
        echo "$passed passed, $((failed > 0 ? failed : 1)) failed"
    fi
}
trap on_exit EXIT

cleanup() {
    if [ -n "$INGEST_STAGE" ] && [ -d "$INGEST_STAGE" ]; then
        if [ "${KEEP_TMP:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
            echo "kept the test tree: $INGEST_STAGE"
        else
            rm -rf "$INGEST_STAGE"
        fi
    fi
}

ingest_port_range ''
ingest_setup ingest-test
# the example apps' modules, for test/t/025_clients.pl
[ "${REGRESS_ONLY:-0}" = 1 ] || ingest_install_clients

# count_results LABEL RC FILE OK_RE FAIL_RE: add a suite's results (lines of FILE matching
# OK_RE / FAIL_RE) to the totals; a non-zero exit without a failed line counts as one
# failure. Leaves the suite's counts in s_ok and s_fail.
count_results() {
    local label=$1 rc=$2 file=$3
    s_ok=$(grep -cE "$4" "$file")
    s_fail=$(grep -cE "$5" "$file")
    if [ "$rc" -ne 0 ] && [ "$s_fail" -eq 0 ]; then
        s_fail=1
        echo "$label exited $rc without a failed test: counted as one failure"
    fi
    passed=$((passed + s_ok))
    failed=$((failed + s_fail))
}

show_file() {   # show_file FILE [MAX_LINES]: print a log, cut to its last MAX_LINES lines
    local f=$1 max=${2:-400} n
    [ -f "$f" ] || return 0
    n=$(wc -l < "$f")
    echo "----- $f ($n lines$([ "$n" -gt "$max" ] && echo ", last $max shown")) -----"
    tail -n "$max" "$f"
    echo "----- end of $f -----"
}

# ---------------------------------------------------------------- pg_regress suites
if [ "${TAP_ONLY:-0}" != 1 ]; then
    log "PG $PG_MAJOR: pg_regress suites (make installcheck)"
    regress_log=$INGEST_STAGE/installcheck.log
    # the suites' fixed directories (test/lib/regress-prep.sh) may be left over from a run
    # by another user: hand them to the user that runs this one
    if [ "$(id -u)" -eq 0 ]; then
        for d in /tmp/ingest_regress_files /tmp/ingest_regress_outside /tmp/ingest_regress_files_evil; do
            [ -d "$d" ] && ! [ -L "$d" ] && chown -hR "$INGEST_RUNAS": "$d"
        done
    fi
    # with INGEST_PORTS, the temporary instance's port: the first free one of the range
    regress_port=()
    if [ -n "$INGEST_PORT_LO" ]; then
        p=$(ingest_free_port "$INGEST_PORT_LO" "$INGEST_PORT_HI") ||
            die "no free port in INGEST_PORTS=$INGEST_PORT_LO-$INGEST_PORT_HI"
        regress_port=("EXTRA_REGRESS_OPTS=--port=$p")
        echo "pg_regress's temporary instance: port $p"
    fi
    run_as make -C "$INGEST_STAGE" PG_CONFIG="$PG_CONFIG" installcheck "${regress_port[@]}" 2>&1 |
        tee "$regress_log"
    rc=${PIPESTATUS[0]}
    # PG 15 prints "test NAME ... ok|FAILED|failed (ignored)"; later versions print TAP lines.
    count_results "PG $PG_MAJOR make installcheck" "$rc" "$regress_log" \
        '^(test +[^ ]+ +\.\.\. +ok|ok [0-9]+ +[-+] )' '^(test +[^ ]+ +\.\.\. +(FAILED|failed)|not ok [0-9]+ )'
    if [ "$s_fail" -gt 0 ]; then
        failures+=("PG $PG_MAJOR pg_regress: $s_fail")
        show_file "$INGEST_STAGE/regression.diffs" 3000
        show_file "$INGEST_STAGE/log/postmaster.log" 300
    fi
    echo "PG $PG_MAJOR pg_regress: $s_ok passed, $s_fail failed"
fi

# ---------------------------------------------------------------- TAP tests
if [ "${REGRESS_ONLY:-0}" != 1 ]; then
    log "PG $PG_MAJOR: TAP tests (prove)"
    if [ -n "${TESTS:-}" ]; then
        read -r -a tap_files <<< "$TESTS"
    else
        tap_files=()
        for f in "$INGEST_STAGE"/test/t/*.pl; do
            [ -e "$f" ] && tap_files+=("test/t/$(basename "$f")")
        done
    fi
    for tf in "${tap_files[@]}"; do
        name=$(basename "$tf" .pl)
        tap_out=$INGEST_STAGE/test/tap_$name.out
        # Cluster.pm keeps its data and logs in $TESTDIR/tmp_check (15) or in $TESTDATADIR and
        # $TESTLOGDIR (17; unset: "tmp_check" and "log" relative to the working directory, so
        # tempdir() would hand the tests relative paths). Set all three, absolute, to the same
        # place; each file gets its own so that the logs of a failed file are easy to find.
        tap_dir=$INGEST_STAGE/test/tap/$name
        # (IngestTest.pm gives the clusters and PgBouncers ports of INGEST_PORTS)
        run_as TESTDIR="$tap_dir" TESTDATADIR="$tap_dir/tmp_check" TESTLOGDIR="$tap_dir/tmp_check/log" \
            PG_TEST_TIMEOUT_DEFAULT=${PG_TEST_TIMEOUT_DEFAULT:-180} INGEST_PORTS="${INGEST_PORTS:-}" \
            bash -c 'mkdir -p "$TESTDIR" && cd "$0" && exec prove -v -I "$1" -I test/lib "$2"' \
            "$INGEST_STAGE" "$PG_PERL_LIB" "$tf" 2>&1 | tee "$tap_out"
        rc=${PIPESTATUS[0]}
        count_results "PG $PG_MAJOR $tf" "$rc" "$tap_out" '^ok [0-9]+' '^not ok [0-9]+'
        echo "PG $PG_MAJOR $tf: $s_ok passed, $s_fail failed"
        if [ "$s_fail" -gt 0 ]; then
            failures+=("PG $PG_MAJOR $tf: $s_fail")
            for lf in "$INGEST_STAGE/test/tap/$name"/tmp_check/log/*; do
                show_file "$lf" 300
            done
        fi
    done
fi

# ---------------------------------------------------------------- fuzzers
# Builds and works in the staged copy, so that a failing input is kept with it.
if [ "$PG_MAJOR" = 15 ] && [ "${TAP_ONLY:-0}" != 1 ] && [ "${REGRESS_ONLY:-0}" != 1 ]; then
    log "PG $PG_MAJOR: fuzzers (test/fuzz/run.sh, ${FUZZ_SECONDS:-30} s each)"
    fuzz_out=$INGEST_STAGE/test/fuzz.out
    FUZZ_WORK=$INGEST_STAGE/test/fuzz-work bash "$INGEST_STAGE/test/fuzz/run.sh" "${FUZZ_SECONDS:-30}" \
        2>&1 | tee "$fuzz_out"
    rc=${PIPESTATUS[0]}
    count_results "PG $PG_MAJOR test/fuzz/run.sh" "$rc" "$fuzz_out" '^ok [0-9]+' '^not ok [0-9]+'
    if [ "$s_fail" -gt 0 ]; then
        failures+=("PG $PG_MAJOR fuzz: $s_fail (failing input above, kept under $INGEST_STAGE/test/fuzz-work)")
    fi
    echo "PG $PG_MAJOR fuzz: $s_ok passed, $s_fail failed"
fi

trap - EXIT
cleanup
summary_done=1
log "summary"
if [ ${#failures[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
