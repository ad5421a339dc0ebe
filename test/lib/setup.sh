# test/lib/setup.sh: set-up shared by test/run-tests.sh (`make test`) and test/demo.sh (`make demo`).
#
# Source it, then call `ingest_setup`. Works on a fresh Debian 12 machine:
#   1. installs the packages that are missing (apt-get update only if something is missing);
#   2. builds the extension in the source tree and installs it (as root, or through sudo);
#   3. copies the tree to a temporary directory owned by the user that runs the servers
#      (the `postgres` OS user when we are root: PostgreSQL refuses to run as root, and a
#      fresh clone may sit under a directory that user cannot read).
# After it: $INGEST_SRC (the source tree), $INGEST_STAGE (the copy), $INGEST_RUNAS (the OS
# user that runs servers, pg_regress and TAP tests) and the helpers run_as / as_root.

# The PostgreSQL major version to build and test against: 15 on this Debian 12 machine (the
# default), 17 inside the Debian 13 root of test/lib/debian13-root.sh (test/run-tests.sh sets it).
PG_MAJOR=${INGEST_PG_MAJOR:-15}
PG_BINDIR=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BINDIR/pg_config
PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
PG_REGRESS_BIN=$PGXS_DIR/src/test/regress/pg_regress
PG_PERL_LIB=$PGXS_DIR/src/test/perl

# The same on every version: the TAP tests run pgbouncer (IngestTest.pm), python3 with psycopg
# (013, 020, 025) and its pool (025), Node.js (025: the example app test/clients/node, whose pg
# module ingest_install_clients installs with npm) and IPC::Run; zstd makes the zstd test
# files. The fuzzers (test/fuzz/run.sh: clang, libFuzzer) run on 15 only, where their packages
# are installed: the parser and the decoder's byte work never touch the server. npm is not in 15's list: a Node.js from elsewhere (such as
# NodeSource's, which brings its own npm) would conflict with Debian's npm package, so
# ingest_install_clients installs Debian's npm only when there is no npm command.
case $PG_MAJOR in
    15) INGEST_PACKAGES=(build-essential postgresql-15 postgresql-server-dev-15 zlib1g-dev
                         libzstd-dev zstd
                         postgresql-15-cron pgbouncer libipc-run-perl python3-psycopg
                         python3-psycopg-pool nodejs
                         clang libclang-rt-14-dev llvm) ;;
    17) INGEST_PACKAGES=(build-essential postgresql-17 postgresql-server-dev-17 zlib1g-dev
                         libzstd-dev zstd
                         postgresql-17-cron pgbouncer libipc-run-perl python3-psycopg
                         python3-psycopg-pool nodejs npm) ;;
    *)  echo "test/lib/setup.sh: PostgreSQL $PG_MAJOR is not supported (15 or 17)" >&2
        return 2 2>/dev/null || exit 2 ;;
esac

INGEST_SRC=${INGEST_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
INGEST_STAGE=
INGEST_RUNAS=

log() { printf '\n=== %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 2; }

# Run a command as root: directly, or through sudo when we are not root.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# The environment every server-side command runs with: fixed, so that the caller's
# locale, PGHOST, PGPORT and the like cannot change what the tests see.
_run_env() {
    local home
    home=$(getent passwd "$INGEST_RUNAS" | cut -d: -f6)
    printf '%s\n' \
        "PATH=$PG_BINDIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        "HOME=${home:-/tmp}" "USER=$INGEST_RUNAS" "LOGNAME=$INGEST_RUNAS" \
        "LANG=C.UTF-8" "TZ=UTC" "PG_CONFIG=$PG_CONFIG" "PG_REGRESS=$PG_REGRESS_BIN" \
        "TMPDIR=/tmp"
}

# Run a command as $INGEST_RUNAS (the postgres OS user when we are root), with a clean
# environment plus any VAR=value words given before the command:
#   run_as [VAR=value ...] command args...
run_as() {
    local -a envs
    mapfile -t envs < <(_run_env)
    while [ $# -gt 0 ] && [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
        envs+=("$1"); shift
    done
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$INGEST_RUNAS" -- env -i "${envs[@]}" "$@"
    else
        env -i "${envs[@]}" "$@"
    fi
}

_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

ingest_install_packages() {
    local -a missing=()
    local p
    command -v dpkg-query >/dev/null 2>&1 || die "this set-up expects Debian (dpkg-query not found)"
    for p in "${INGEST_PACKAGES[@]}"; do
        _pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "packages: all present"
        return 0
    fi
    log "installing missing packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" || die "apt-get install failed"
}

ingest_build_install() {
    log "building ingest in $INGEST_SRC"
    make -C "$INGEST_SRC" PG_CONFIG="$PG_CONFIG" -j"$(nproc 2>/dev/null || echo 2)" ||
        die "build failed"
    if [ "$(id -u)" -ne 0 ] && _installed_is_current; then
        echo "installed ingest is identical to this build: no install needed"
        return 0
    fi
    log "installing ingest (make install)"
    as_root make -C "$INGEST_SRC" PG_CONFIG="$PG_CONFIG" install >/dev/null || die "make install failed"
}

# True when the installed library, control file and scripts are those of this build (lets
# a user without root or sudo run the tests after someone else installed the same build).
_installed_is_current() {
    local libdir sharedir f
    libdir=$("$PG_CONFIG" --pkglibdir) && sharedir=$("$PG_CONFIG" --sharedir) || return 1
    cmp -s "$INGEST_SRC/ingest.so" "$libdir/ingest.so" || return 1
    for f in "$INGEST_SRC"/ingest.control "$INGEST_SRC"/ingest--*.sql; do
        cmp -s "$f" "$sharedir/extension/$(basename "$f")" || return 1
    done
}

# Copy the tree (built objects included, timestamps kept) to a fresh temporary directory
# that $INGEST_RUNAS owns.
ingest_stage() {
    local prefix=${1:-ingest-test}
    INGEST_STAGE=$(mktemp -d "/tmp/$prefix.XXXXXX") || die "mktemp failed"
    chmod 755 "$INGEST_STAGE"
    tar -C "$INGEST_SRC" --exclude=./.git --exclude=./tmp_check --exclude=./results \
        --exclude=./test/clients/node/node_modules \
        --exclude=./log --exclude=./regression.diffs --exclude=./regression.out \
        --exclude=./test/bench/data --exclude=./test/bench/results \
        -cf - . | tar -C "$INGEST_STAGE" -xpf - || die "copying the tree to $INGEST_STAGE failed"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R "$INGEST_RUNAS": "$INGEST_STAGE"
    fi
    echo "staged copy: $INGEST_STAGE (runs as $INGEST_RUNAS)"
}

ingest_setup() {
    ingest_install_packages
    if [ "$(id -u)" -eq 0 ]; then
        INGEST_RUNAS=postgres
        getent passwd postgres >/dev/null || die "the postgres OS user does not exist (is postgresql-$PG_MAJOR installed?)"
    else
        INGEST_RUNAS=$(id -un)
    fi
    [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found"
    ingest_build_install
    ingest_stage "${1:-ingest-test}"
}

# The example Node.js app's dependencies (test/clients/node: package.json and its lock file),
# installed with `npm ci` into the staged copy, as the user that runs the tests (npm keeps
# its cache in that user's home, so later runs need the registry only for what changed).
# A failure is reported here and left for test/t/025_clients.pl to fail on, so that the
# other suites still run.
ingest_install_clients() {
    local dir=$INGEST_STAGE/test/clients/node
    if ! command -v npm >/dev/null 2>&1; then
        log "installing npm (Debian's)"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm ||
            { echo "WARNING: npm could not be installed: test/t/025_clients.pl will fail" >&2; return 0; }
    fi
    log "installing the Node.js example app's modules (npm ci in test/clients/node)"
    run_as bash -c 'cd "$1" && npm ci --prefer-offline --no-audit --no-fund --no-update-notifier' _ "$dir" ||
        echo "WARNING: npm ci in $dir failed: test/t/025_clients.pl will fail" >&2
    return 0
}

# INGEST_PORTS=LO-HI: the ports `make demo` and `make test` may give their servers. Sets
# INGEST_PORT_LO and INGEST_PORT_HI from it or, when it is unset or empty, from the default
# $1 (empty: no range, and both stay empty). Checks it before anything is installed or built.
ingest_port_range() {
    local spec=${INGEST_PORTS:-${1:-}}
    INGEST_PORT_LO= INGEST_PORT_HI=
    [ -n "$spec" ] || return 0
    if [[ "$spec" =~ ^([0-9]{1,5})-([0-9]{1,5})$ ]] &&
        ((10#${BASH_REMATCH[1]} >= 1024 && 10#${BASH_REMATCH[1]} <= 10#${BASH_REMATCH[2]} &&
          10#${BASH_REMATCH[2]} <= 65535)); then
        INGEST_PORT_LO=$((10#${BASH_REMATCH[1]}))
        INGEST_PORT_HI=$((10#${BASH_REMATCH[2]}))
    else
        die "INGEST_PORTS must be LO-HI with 1024 <= LO <= HI <= 65535, e.g. 5450-5459 (got \"$spec\")"
    fi
}

# First port in [lo, hi] that nothing listens on (TCP or a socket in /tmp).
ingest_free_port() {
    local lo=$1 hi=$2 p
    for ((p = lo; p <= hi; p++)); do
        [ -e "/tmp/.s.PGSQL.$p" ] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p"; return 0
    done
    return 1
}
