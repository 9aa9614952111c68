# Shell functions shared by scripts/run and scripts/test. Sourced, not run.
#
# They assume Debian 12 (bookworm): packages come from apt, PostgreSQL's
# server programs from /usr/lib/postgresql/<major>/bin.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and running need; the tests add theirs in scripts/test.
BUILD_PACKAGES=(cmake make gcc pkg-config libevent-dev libpq-dev libjansson-dev libinih-dev
                libssl-dev libsystemd-dev libcmocka-dev libcurl4-openssl-dev libcsv-dev)
RUNTIME_PACKAGES=(postgresql postgresql-contrib tzdata ca-certificates)

say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { say "$*"; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# Installs the packages of the list that are not installed yet. apt-get
# update runs only when something is missing, so a ready machine is not
# touched.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]}, and no apt-get to install them"
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# Configures and builds in a directory, warnings as errors; extra arguments go to cmake.
build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$dir" -DINCUBATORD_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

# The newest PostgreSQL server installed: its bin directory.
pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -x "$d/initdb" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
    printf '%s\n' "$d"
}

# PostgreSQL refuses to run as root: as root, server commands run as postgres
# (from /, since the postgres user may not be allowed into the current directory).
as_pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Stops the cluster in a data directory if it runs (mode: fast, the default,
# or immediate for a throwaway cluster).
pg_stop() {
    local data=$1 mode=${2:-fast}
    [ -f "$data/postmaster.pid" ] || return 0
    as_pg_owner "$(pg_bindir)/pg_ctl" -D "$data" -m "$mode" -w stop >/dev/null 2>&1 || true
}
