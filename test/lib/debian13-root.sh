#!/bin/bash
# test/lib/debian13-root.sh: a Debian 13 (trixie) root with PostgreSQL 17 and the packages of
# test/lib/setup.sh, in which test/run-tests.sh runs the suites on 17 on a Debian 12 machine
# (Debian 12 has no PostgreSQL 17 of its own; Debian 13's packages are what users install).
#
#   test/lib/debian13-root.sh create     build the root, unless a complete one is cached
#   test/lib/debian13-root.sh run [--tree DIR] [VAR=value ...] COMMAND [ARGS...]
#                                        build it if needed, then run COMMAND inside (chroot)
#                                        as root, with a clean environment plus the VAR=value
#                                        words; --tree DIR: copy DIR (built files and .git
#                                        left out) into the root's /tmp and run COMMAND there
#   test/lib/debian13-root.sh path       print where the root is
#
# Caching: the root lives in $INGEST_DEBIAN13_ROOT (default /var/cache/ingest/debian-13-root)
# and is reused by later runs on the machine. It is built in a temporary directory next to it
# and renamed only once debootstrap and the package install have succeeded, so that a half-made
# root (no network, an interrupted run) is never reused. A root whose stamp (/etc/ingest-root)
# is not ROOT_FORMAT below is rebuilt: bump ROOT_FORMAT when what a root must contain changes
# in a way that installing the missing packages (test/lib/setup.sh does that on every run)
# does not cover. Packages are installed when the root is built, so that a cached root needs
# no network; set-up inside installs only what was added to the list since.
#
# Mounts: the server needs /proc and a /dev with /dev/shm (POSIX shared memory, PostgreSQL's
# default dynamic_shared_memory_type); bash needs /dev/fd for process substitution. /dev is
# a fresh tmpfs with the few device nodes needed, never a bind mount of the host's /dev, so
# that no mistake here (or a test inside) can reach the host's devices. Everything mounted is
# unmounted on every exit path (EXIT trap: success, failure, interrupt, TERM), after the
# processes still running in the root (a server a failed test left behind) are stopped.
# A lock (flock on ROOT.lock) keeps two runs from sharing the root at once.
#
# Runs as root; re-runs itself through sudo otherwise. Environment: INGEST_DEBIAN13_ROOT (where
# the root is), INGEST_DEBIAN_MIRROR (default http://deb.debian.org/debian), http_proxy,
# https_proxy and no_proxy (passed to debootstrap and into the root).

set -uo pipefail

ROOT_FORMAT=1
SUITE=trixie
ROOT=${INGEST_DEBIAN13_ROOT:-/var/cache/ingest/debian-13-root}
MIRROR=${INGEST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf '[debian13-root] %s\n' "$*"; }
die() { printf '[debian13-root] ERROR: %s\n' "$*" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then
    # debootstrap, mount and chroot need root; the tests inside run their servers as postgres
    command -v sudo >/dev/null 2>&1 || die "needs root (or sudo)"
    exec sudo -- env INGEST_DEBIAN13_ROOT="$ROOT" INGEST_DEBIAN_MIRROR="$MIRROR" \
        http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" no_proxy="${no_proxy:-}" \
        bash "${BASH_SOURCE[0]}" "$@"
fi

# ---------------------------------------------------------------- mounts
MOUNTED=()          # mount points, in the order they were mounted
CLEAN_DIRS=()       # directories to remove on exit (a failed build, the copied tree)

_mount() {          # _mount DIR mount-args...: mount, and remember it for the unmount
    local dir=$1; shift
    mount "$@" "$dir" || return 1
    MOUNTED+=("$dir")
}

mount_root() {      # mount_root DIR: what the server and the tests need inside DIR
    local d=$1
    mkdir -p "$d/proc" "$d/dev" || return 1
    _mount "$d/proc" -t proc ingest-proc || return 1
    _mount "$d/dev" -t tmpfs -o mode=755,nosuid ingest-dev || return 1
    mknod -m 666 "$d/dev/null" c 1 3 && mknod -m 666 "$d/dev/zero" c 1 5 &&
        mknod -m 666 "$d/dev/full" c 1 7 && mknod -m 666 "$d/dev/random" c 1 8 &&
        mknod -m 666 "$d/dev/urandom" c 1 9 && mknod -m 666 "$d/dev/tty" c 5 0 || return 1
    ln -s /proc/self/fd "$d/dev/fd" && ln -s /proc/self/fd/0 "$d/dev/stdin" &&
        ln -s /proc/self/fd/1 "$d/dev/stdout" && ln -s /proc/self/fd/2 "$d/dev/stderr" || return 1
    mkdir "$d/dev/shm" "$d/dev/pts" || return 1
    _mount "$d/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev ingest-shm || return 1
    # a private devpts instance: IPC::Run's ptys, if a test ever asks for one
    if _mount "$d/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=620 ingest-devpts; then
        ln -s pts/ptmx "$d/dev/ptmx"
    fi
    return 0
}

# Pids of the processes whose root directory is DIR (what the command inside left running).
_pids_in() {
    local dir p r
    dir=$(readlink -f "$1")
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [ "$r" = "$dir" ] && echo "${p#/proc/}"
    done
}

stop_processes_in() {   # stop_processes_in DIR: TERM, then KILL after 10 s, what runs in DIR
    local dir=$1 pids i
    pids=$(_pids_in "$dir" | tr '\n' ' ')
    [ -n "${pids// /}" ] || return 0
    say "stopping processes left in the root: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for ((i = 0; i < 20; i++)); do
        pids=$(_pids_in "$dir" | tr '\n' ' ')
        [ -n "${pids// /}" ] || return 0
        sleep 0.5
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.5
}

unmount_all() {
    local i m
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        m=${MOUNTED[i]}
        umount "$m" 2>/dev/null || { sleep 1; umount "$m"; } || {
            say "$m is busy: detaching it (umount -l)"
            umount -l "$m"
        }
    done
    MOUNTED=()
}

# True when something is mounted at or under DIR (never rm -rf such a directory).
_mounted_under() {
    local dir
    dir=$(readlink -f "$1")
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts
}

_rm_tree() {
    if _mounted_under "$1"; then
        say "not removing $1: something is still mounted under it"
        return 1
    fi
    rm -rf "$1"
}

ACTIVE_ROOT=
on_exit() {
    local rc=$? d
    # whoever reads our output (tee) may be gone after a ^C: a write must not kill the cleanup
    trap '' PIPE INT TERM HUP
    if [ -n "$ACTIVE_ROOT" ]; then
        stop_processes_in "$ACTIVE_ROOT"
    fi
    unmount_all
    for d in "${CLEAN_DIRS[@]}"; do
        [ -e "$d" ] && _rm_tree "$d"
    done
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- the root
# Inside the root: apt needs a resolver, npm the host's added certificate authorities; no
# package may start a service (postgresql-17's postinst would start a "17 main" cluster that
# would keep running after we leave).
prepare_etc() {
    local d=$1
    if [ -e /etc/resolv.conf ]; then
        rm -f "$d/etc/resolv.conf"
        cp -L /etc/resolv.conf "$d/etc/resolv.conf"
    fi
    # the certificate authorities this machine's administrator added (Debian keeps them in
    # /usr/local/share/ca-certificates): HTTPS clients in the root (npm) then trust what the
    # host trusts, such as the CA of a proxy that inspects TLS. (apt, over http, needs none.)
    if [ -d /usr/local/share/ca-certificates ] &&
        ! diff -r /usr/local/share/ca-certificates "$d/usr/local/share/ca-certificates" >/dev/null 2>&1; then
        rm -rf "$d/usr/local/share/ca-certificates"
        mkdir -p "$d/usr/local/share"
        cp -a /usr/local/share/ca-certificates "$d/usr/local/share/"
        if [ -x "$d/usr/sbin/update-ca-certificates" ]; then     # else: its install will do it
            chroot "$d" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
                update-ca-certificates >/dev/null 2>&1 || say "update-ca-certificates failed in the root"
        fi
    fi
    printf '#!/bin/sh\n# written by ingest test/lib/debian13-root.sh: no services in this root\nexit 101\n' \
        > "$d/usr/sbin/policy-rc.d"
    chmod 755 "$d/usr/sbin/policy-rc.d"
}

in_root() {         # in_root DIR COMMAND...: as root inside DIR, clean environment
    local d=$1; shift
    chroot "$d" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive \
        http_proxy="${http_proxy:-}" https_proxy="${https_proxy:-}" no_proxy="${no_proxy:-}" \
        "$@"
}

root_is_complete() {
    [ -f "$ROOT/etc/ingest-root" ] && [ "$(cat "$ROOT/etc/ingest-root")" = "format $ROOT_FORMAT" ]
}

# The packages test/lib/setup.sh installs for PostgreSQL 17.
packages_17() {
    INGEST_PG_MAJOR=17 bash -c 'source "$1" && echo "${INGEST_PACKAGES[*]}"' _ "$HERE/setup.sh"
}

create_root() {
    local parent new t0 t1 pkgs old
    root_is_complete && return 0
    parent=$(dirname "$ROOT")
    mkdir -p "$parent" || die "cannot create $parent"
    # what earlier interrupted builds left (never reused: only a renamed root is complete)
    rm -f "$ROOT".new.*.log
    for old in "$ROOT".new.*; do
        [ -d "$old" ] && _rm_tree "$old"
    done
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on this machine"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 || {
            DEBIAN_FRONTEND=noninteractive apt-get update -q &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
        } || die "cannot install debootstrap"
    fi
    new=$(mktemp -d "$ROOT.new.XXXXXX") || die "mktemp in $parent failed"
    CLEAN_DIRS+=("$new")
    chmod 755 "$new"    # mktemp made it 0700: the postgres user inside must be able to walk /

    say "debootstrap --variant=minbase $SUITE $new $MIRROR"
    t0=$SECONDS
    debootstrap --variant=minbase "$SUITE" "$new" "$MIRROR" > "$new.debootstrap.log" 2>&1 || {
        tail -n 30 "$new.debootstrap.log"
        rm -f "$new.debootstrap.log"
        die "debootstrap failed (network? mirror $MIRROR)"
    }
    rm -f "$new.debootstrap.log"
    t1=$SECONDS
    say "debootstrap: $((t1 - t0)) s"

    prepare_etc "$new"
    mount_root "$new" || die "mounting /proc, /dev in $new failed"
    ACTIVE_ROOT=$new
    pkgs=$(packages_17) || die "cannot read the package list of test/lib/setup.sh"
    say "installing in the root: $pkgs"
    # shellcheck disable=SC2086
    { in_root "$new" apt-get update -q &&
        in_root "$new" apt-get install -y -q --no-install-recommends $pkgs; } > "$new.apt.log" 2>&1 || {
        tail -n 40 "$new.apt.log"
        rm -f "$new.apt.log"
        die "apt-get install in the root failed"
    }
    grep -E '^[0-9]+ upgraded, ' "$new.apt.log"
    rm -f "$new.apt.log"
    in_root "$new" apt-get clean
    say "package install: $((SECONDS - t1)) s"
    stop_processes_in "$new"
    unmount_all
    ACTIVE_ROOT=

    echo "format $ROOT_FORMAT" > "$new/etc/ingest-root"
    if [ -e "$ROOT" ]; then     # an older format: set it aside, then remove it
        old=$ROOT.old.$$
        mv "$ROOT" "$old" && CLEAN_DIRS+=("$old")
    fi
    mv "$new" "$ROOT" || die "cannot rename $new to $ROOT"
    CLEAN_DIRS=("${CLEAN_DIRS[@]/$new}")
    say "root ready: $ROOT ($((SECONDS - t0)) s)"
}

lock_root() {
    mkdir -p "$(dirname "$ROOT")" || die "cannot create $(dirname "$ROOT")"
    exec 9> "$ROOT.lock" || die "cannot open $ROOT.lock"
    if ! flock -n 9; then
        say "another run uses $ROOT: waiting for it"
        flock 9 || die "flock $ROOT.lock failed"
    fi
}

run_in_root() {
    local tree='' dest='' inner=/ rc
    local -a envs=()
    if [ "${1:-}" = --tree ]; then
        tree=$2; shift 2
        [ -d "$tree" ] || die "no such directory: $tree"
    fi
    while [ $# -gt 0 ] && [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
        envs+=("$1"); shift
    done
    [ $# -gt 0 ] || die "run: no command"

    lock_root
    create_root
    prepare_etc "$ROOT"
    mount_root "$ROOT" || die "mounting /proc, /dev in $ROOT failed"
    ACTIVE_ROOT=$ROOT
    if [ -n "$tree" ]; then
        # a copy, not a bind mount: the build inside writes objects for 17 into it, and the
        # host's objects (built for 15) must not be taken for up to date
        dest=$(mktemp -d "$ROOT/tmp/ingest-src.XXXXXX") || die "mktemp in $ROOT/tmp failed"
        CLEAN_DIRS+=("$dest")
        chmod 755 "$dest"
        tar -C "$tree" --exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
            --exclude=./tmp_check --exclude=./results --exclude=./log \
            --exclude=./regression.diffs --exclude=./regression.out \
            --exclude=./test/bench/data --exclude=./test/bench/results \
            -cf - . | tar -C "$dest" -xpf - || die "copying $tree into the root failed"
        inner=${dest#"$ROOT"}
    fi
    say "running in $ROOT (at $inner): $*"
    # In the background, and waited for: a TERM or INT reaches the trap at once (bash runs
    # traps only between foreground commands), and the trap stops what runs inside.
    in_root "$ROOT" "${envs[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$inner" "$@" &
    wait $!
    rc=$?
    say "(a path /tmp/... printed above is $ROOT/tmp/... on this machine)"
    return "$rc"
}

case ${1:-} in
    create) lock_root; create_root ;;
    run)    shift; run_in_root "$@" ;;
    path)   echo "$ROOT" ;;
    *)      echo "usage: $0 create | run [--tree DIR] [VAR=value ...] COMMAND [ARGS...] | path" >&2
            exit 2 ;;
esac
