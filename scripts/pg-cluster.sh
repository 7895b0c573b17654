#!/usr/bin/env bash
# The project-local PostgreSQL cluster: 127.0.0.1:54329, database "otel",
# user "postgres", trust on loopback, pg_cron preloaded and installed in the
# database "postgres" (its default; otel reaches it through dblink).
#
#   scripts/pg-cluster.sh start   create the cluster if missing, start it if stopped
#   scripts/pg-cluster.sh stop
#   scripts/pg-cluster.sh status
#
# OTEL_DB_PGPORT picks the port (54329), OTEL_DB_PGDATA the data directory
# (else OTEL_DB_PGDATA_NAME in the checkout: .pgdata), OTEL_DB_CRON_DATABASE
# the database pg_cron lives in (postgres) and OTEL_DB_PRELOAD the
# shared_preload_libraries (pg_cron) of a new cluster: the test suite starts
# a private cluster with them, scripts/citus-cluster.sh its three nodes.
#
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# "postgres" OS user. That user must be able to reach the data directory:
# when the checkout sits under a private directory (/root is mode 700) the
# files live under /var/tmp instead and .pgdata is a symlink to them.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
port=${OTEL_DB_PGPORT:-54329}
cron_database=${OTEL_DB_CRON_DATABASE:-postgres}
preload=${OTEL_DB_PRELOAD:-pg_cron}
name=${OTEL_DB_PGDATA_NAME:-.pgdata}
major=${OTEL_DB_PGMAJOR:-$("$repo/scripts/setup-system.sh")}
bin=/usr/lib/postgresql/$major/bin

say() { printf 'pg-cluster: %s\n' "$*"; }
die() { printf 'pg-cluster: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    as_owner() { runuser -u postgres -- "$@"; }
    owner=postgres
else
    as_owner() { "$@"; }
    owner=$(id -un)
fi

data_dir() {
    if [ -n "${OTEL_DB_PGDATA:-}" ]; then
        echo "$OTEL_DB_PGDATA"; return
    fi
    if [ -L "$repo/$name" ] || [ -d "$repo/$name" ]; then
        readlink -f "$repo/$name"; return
    fi
    if as_owner test -x "$repo" 2>/dev/null; then
        echo "$repo/$name"
    else
        local outside
        outside=/var/tmp/otel_db-${name#.}-$(printf '%s' "$repo" | sha1sum | cut -c1-12)
        say "$owner cannot reach $repo: keeping the cluster in $outside ($name links to it)" >&2
        ln -sfn "$outside" "$repo/$name"
        echo "$outside"
    fi
}

create() {
    local dir=$1
    say "creating the cluster in $dir"
    mkdir -p "$dir"
    chown "$owner" "$dir"
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir" -U postgres --auth-local=trust --auth-host=trust \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$dir/postgresql.conf" <<CONF

# otel_db project-local cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = '$preload'
cron.database_name = '$cron_database'
cron.use_background_workers = on
max_worker_processes = 16
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
checkpoint_timeout = 15min
autovacuum_naptime = 10s
logging_collector = off
CONF
}

start() {
    local dir
    dir=$(data_dir)
    [ -f "$dir/PG_VERSION" ] || create "$dir"
    if ! as_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null \
            || die "the server did not start; see $dir/server.log"
    fi
    local psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1)
    local cron_db
    cron_db=$("${psql[@]}" -d postgres -tAc "select current_setting('cron.database_name', true)")
    for db in otel $cron_db; do
        if [ "$("${psql[@]}" -d postgres -tAc "select 1 from pg_database where datname = '$db'")" != 1 ]; then
            "${psql[@]}" -d postgres -c "create database $db"
        fi
    done
    # otel_db registers its jobs in pg_cron's database, through dblink from others.
    if [ -n "$cron_db" ]; then
        "${psql[@]}" -d "$cron_db" -c "set client_min_messages = warning" -c "create extension if not exists pg_cron"
    fi
}

case ${1:-start} in
    start) start ;;
    stop) as_owner "$bin/pg_ctl" -D "$(data_dir)" -m fast -w stop ;;
    status) as_owner "$bin/pg_ctl" -D "$(data_dir)" status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
