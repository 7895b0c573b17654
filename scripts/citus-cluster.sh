#!/usr/bin/env bash
# A local Citus cluster for scale-out: a coordinator and two workers, each a
# PostgreSQL cluster made by scripts/pg-cluster.sh on 127.0.0.1 with citus,
# pg_cron and pgvector, as ../shared/vendor/citus/README.md describes them.
#
#   scripts/citus-cluster.sh start          build Citus if needed (make citus), create the three
#                                           clusters if missing, start them
#   scripts/citus-cluster.sh createdb NAME  database NAME on all three, with citus and vector, the
#                                           coordinator and both workers registered in it
#   scripts/citus-cluster.sh dropdb NAME
#   scripts/citus-cluster.sh stop
#   scripts/citus-cluster.sh status
#
# OTEL_DB_CITUS_PORT picks the coordinator's port (54340), OTEL_DB_CITUS_WORKER_PORTS the workers'
# ("54341 54342"), OTEL_DB_CITUS_DATA a directory for the three data directories (else .citus-coordinator,
# .citus-worker1 and .citus-worker2 in the checkout). Without Citus's source beside the checkout
# (../shared/vendor/citus) and no Citus installed, start says so and fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
coordinator_port=${OTEL_DB_CITUS_PORT:-54340}
read -r -a worker_ports <<< "${OTEL_DB_CITUS_WORKER_PORTS:-$((coordinator_port + 1)) $((coordinator_port + 2))}"
nodes=(coordinator worker1 worker2)
ports=("$coordinator_port" "${worker_ports[@]}")
major=${OTEL_DB_PGMAJOR:-$("$repo/scripts/setup-system.sh")}
bin=/usr/lib/postgresql/$major/bin

say() { printf 'citus-cluster: %s\n' "$*"; }
die() { printf 'citus-cluster: error: %s\n' "$*" >&2; exit 1; }

[ ${#worker_ports[@]} -eq 2 ] || die "OTEL_DB_CITUS_WORKER_PORTS must name two ports, got '${worker_ports[*]}'"

# pg-cluster.sh for node i: its port, its data directory, Citus preloaded before pg_cron.
node() {
    local i=$1 action=$2
    local place=(OTEL_DB_PGDATA_NAME=".citus-${nodes[$i]}")
    [ -n "${OTEL_DB_CITUS_DATA:-}" ] && place=(OTEL_DB_PGDATA="$OTEL_DB_CITUS_DATA/${nodes[$i]}")
    # The project cluster's settings, when the caller has them, are not this node's.
    env -u OTEL_DB_PGDATA -u OTEL_DB_PGDATA_NAME -u OTEL_DB_CRON_DATABASE "${place[@]}" \
        OTEL_DB_PGPORT="${ports[$i]}" OTEL_DB_PGMAJOR="$major" OTEL_DB_PRELOAD=citus,pg_cron \
        "$repo/scripts/pg-cluster.sh" "$action"
}

psql_at() {
    local port=$1 database=$2; shift 2
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$database" -X -q -v ON_ERROR_STOP=1 "$@"
}

start() {
    "$repo/scripts/setup-system.sh" --citus >&2
    [ -f "$("$bin/pg_config" --sharedir)/extension/citus.control" ] \
        || die "Citus is not installed for PostgreSQL $major and its source is not in ../shared/vendor/citus"
    if [ -n "${OTEL_DB_CITUS_DATA:-}" ]; then
        mkdir -p "$OTEL_DB_CITUS_DATA"
        [ "$(id -u)" -eq 0 ] && chown postgres "$OTEL_DB_CITUS_DATA"
    fi
    for i in 0 1 2; do
        node "$i" start
    done
    say "coordinator on 127.0.0.1:${ports[0]}, workers on ${ports[1]} and ${ports[2]}"
}

createdb() {
    local database=$1
    [[ $database =~ ^[a-z_][a-z0-9_]*$ ]] || die "a database name of lowercase letters, digits and _, got '$database'"
    for port in "${ports[@]}"; do
        if [ "$(psql_at "$port" postgres -tAc "select 1 from pg_database where datname = '$database'")" != 1 ]; then
            psql_at "$port" postgres -c "create database $database"
        fi
        psql_at "$port" "$database" -c "set client_min_messages = warning" \
            -c "create extension if not exists citus" -c "create extension if not exists vector"
    done
    psql_at "${ports[0]}" "$database" -c "set client_min_messages = warning" \
        -c "select citus_set_coordinator_host('127.0.0.1', ${ports[0]})" \
        -c "select citus_add_node('127.0.0.1', ${ports[1]})" \
        -c "select citus_add_node('127.0.0.1', ${ports[2]})" >/dev/null
    # A session keeps four connections to each worker rather than one: a read of every shard then runs its
    # tasks over them instead of opening new ones (docs/scale-out.md, "Settings").
    psql_at "${ports[0]}" postgres -c "alter database $database set citus.max_cached_conns_per_worker = 4"
}

dropdb() {
    local database=$1
    [[ $database =~ ^[a-z_][a-z0-9_]*$ ]] || die "a database name of lowercase letters, digits and _, got '$database'"
    for port in "${ports[@]}"; do
        psql_at "$port" postgres -c "drop database if exists $database with (force)"
    done
}

case ${1:-start} in
    start) start ;;
    createdb) createdb "${2:?usage: $0 createdb NAME}" ;;
    dropdb) dropdb "${2:?usage: $0 dropdb NAME}" ;;
    stop) for i in 2 1 0; do node "$i" stop || true; done ;;
    status) for i in 0 1 2; do printf '%s: ' "${nodes[$i]}"; { node "$i" status || true; } | head -1; done ;;
    *) die "usage: $0 start|createdb NAME|dropdb NAME|stop|status" ;;
esac
