#!/usr/bin/env bash
# Installs the system packages otel_db needs: PostgreSQL with pg_cron and
# pgvector. Debian 13 ships all three as binary packages; Debian 12 ships
# PostgreSQL 15 and pg_cron 1.4, and pgvector is built from Debian's source
# package for trixie. With --browser: Chromium and chromium-driver instead,
# for the web page's tests. With --citus: Citus (and its citus_columnar),
# built from the source in ../shared/vendor/citus when that directory is
# there (OTEL_DB_CITUS_SOURCE overrides it), else nothing. Idempotent: does
# nothing when everything is present.
set -euo pipefail

PGVECTOR_VERSION=0.8.0-1
CITUS_VERSION=13.2.2
build_dir=${OTEL_DB_BUILD_DIR:-/var/tmp/otel_db-build}
citus_source=${OTEL_DB_CITUS_SOURCE:-$(realpath -m "$(dirname "$0")/../../shared/vendor/citus")}

say() { printf 'setup-system: %s\n' "$*"; }
die() { printf 'setup-system: error: %s\n' "$*" >&2; exit 1; }

apt_updated=no
apt_update_once() {
    [ "$apt_updated" = yes ] && return
    [ "$(id -u)" -eq 0 ] || die "packages are missing: run as root, or install them (see README)"
    apt-get update -qq
    apt_updated=yes
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

pick_pg_major() {
    # The newest server that Debian offers with pg_cron packaged beside it.
    for major in 17 16 15; do
        if have_pkg "postgresql-$major" && have_pkg "postgresql-$major-cron"; then
            echo "$major"; return
        fi
    done
    apt_update_once
    for major in 17 15; do
        if apt-cache show "postgresql-$major-cron" >/dev/null 2>&1; then
            echo "$major"; return
        fi
    done
    die "no postgresql-NN-cron package is available from apt"
}

apt_install() {
    local missing=()
    for pkg in "$@"; do have_pkg "$pkg" || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The control file of extension $2 for PostgreSQL $1 (fails when that server is not installed).
extension_control() {
    local sharedir
    sharedir=$("/usr/lib/postgresql/$1/bin/pg_config" --sharedir 2>/dev/null) || return 1
    echo "$sharedir/extension/$2.control"
}

vector_installed() {
    local control
    control=$(extension_control "$1" vector) && [ -f "$control" ]
}

build_pgvector() {
    local major=$1 pg_config="/usr/lib/postgresql/$1/bin/pg_config"
    apt_install "postgresql-server-dev-$major" build-essential
    say "building pgvector $PGVECTOR_VERSION from Debian's source package"
    mkdir -p "$build_dir/apt/lists/partial" "$build_dir/src"
    # A private apt configuration, so the machine's own sources stay untouched.
    echo "deb-src http://deb.debian.org/debian trixie main" > "$build_dir/apt/sources.list"
    local opts=(-o "Dir::Etc::sourcelist=$build_dir/apt/sources.list"
                -o "Dir::Etc::sourceparts=/dev/null"
                -o "Dir::State::Lists=$build_dir/apt/lists")
    apt-get "${opts[@]}" update -qq
    (cd "$build_dir/src" && apt-get "${opts[@]}" source --download-only "pgvector=$PGVECTOR_VERSION" >/dev/null 2>&1) \
        || die "could not fetch the source of pgvector $PGVECTOR_VERSION from Debian trixie"
    local upstream=${PGVECTOR_VERSION%-*}
    rm -rf "$build_dir/src/pgvector-$upstream"
    tar -C "$build_dir/src" -xzf "$build_dir/src/pgvector_$upstream.orig.tar.gz"
    # OPTFLAGS="" as Debian builds it: no -march=native, so the build runs on any x86-64.
    make -s -C "$build_dir/src/pgvector-$upstream" PG_CONFIG="$pg_config" OPTFLAGS="" >/dev/null
    make -s -C "$build_dir/src/pgvector-$upstream" PG_CONFIG="$pg_config" OPTFLAGS="" install >/dev/null
}

citus_installed() {
    local citus columnar
    citus=$(extension_control "$1" citus) && columnar=$(extension_control "$1" citus_columnar) || return 1
    # Citus 13.2.x installs extension version 13.2-1.
    grep -qs "default_version = '${CITUS_VERSION%.*}-1'" "$citus" && [ -f "$columnar" ]
}

build_citus() {
    local major=$1 pg_config="/usr/lib/postgresql/$1/bin/pg_config"
    local archive="$citus_source/citus-$CITUS_VERSION.tar.gz" patch="$citus_source/pg15-have-createdb-privilege.patch"
    citus_installed "$major" && return
    if [ ! -f "$archive" ]; then
        say "no Citus source at $citus_source: Citus and citus_columnar are not installed"
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        # Not fatal: what needs Citus skips and says so.
        say "Citus is not installed: run make citus as root to build it from $citus_source"
        return
    fi
    [ -f "$patch" ] || die "$patch is missing beside $archive"
    # The build dependencies that Citus's README names for Debian, and ICU's
    # headers, which PostgreSQL 17's server headers include.
    apt_install "postgresql-server-dev-$major" build-essential libcurl4-openssl-dev liblz4-dev libzstd-dev \
        libkrb5-dev libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev libicu-dev \
        autoconf flex bison
    say "building Citus $CITUS_VERSION from $archive (about a minute)"
    mkdir -p "$build_dir/src"
    rm -rf "$build_dir/src/citus-$CITUS_VERSION"
    tar -C "$build_dir/src" -xzf "$archive"
    # PostgreSQL 15.20 exports have_createdb_privilege(), which Citus's
    # compatibility header defines too; the patch renames Citus's copy.
    patch -s -d "$build_dir/src/citus-$CITUS_VERSION" -p1 < "$patch"
    local log="$build_dir/citus-build.log"
    (cd "$build_dir/src/citus-$CITUS_VERSION" \
        && ./configure --without-libcurl PG_CONFIG="$pg_config" \
        && make -j"$(nproc)" \
        && make install) > "$log" 2>&1 || die "the Citus build failed: see $log"
    citus_installed "$major" || die "Citus is still missing for PostgreSQL $major after its build"
}

main() {
    command -v dpkg-query >/dev/null || die "this set-up needs a Debian system (dpkg and apt)"
    if [ "${1:-}" = --browser ]; then
        # Debian's Chromium and its WebDriver: the browser tests drive them through Selenium.
        apt_install chromium chromium-driver fonts-dejavu-core
        return
    fi
    local major
    major=$(pick_pg_major)
    if [ "${1:-}" = --citus ]; then
        build_citus "$major"
        return
    fi
    apt_install "postgresql-$major" "postgresql-$major-cron" "postgresql-client-$major"
    if ! vector_installed "$major"; then
        apt_update_once
        if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
            apt_install "postgresql-$major-pgvector"
        else
            build_pgvector "$major"
        fi
    fi
    vector_installed "$major" || die "pgvector is still missing for PostgreSQL $major"
    echo "$major"
}

main "$@"
