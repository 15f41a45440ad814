#!/usr/bin/env bash
# Start a pairchat cluster on this machine: up.sh DIR [NODES]   (NODES defaults to 3)
#
# On 127.0.0.1 only, every process its own, all state under DIR:
#   PostgreSQL 15   DIR/postgres/data (initdb as the postgres user), database "pairchat"
#   redis-server    no persistence (--save '' --appendonly no)
#   HAProxy         DIR/haproxy/haproxy.cfg, admin socket DIR/haproxy/admin.sock
#   node<n>         `python -m backend.server.cli serve --node node<n> …`, data DIR/node<n>/data
#   litestream<n>   replicates node<n>'s pair files to DIR/replica/node<n>/
# Ports and URLs are kept in DIR/cluster.env, PIDs in DIR/pids, logs in DIR/logs.
#
# When the router answers /healthz, prints on stdout (and nothing else):
#   ROUTER_URL=http://127.0.0.1:PORT
#   NODE<n>_PID=<pid>          (one line per node)
# Run again on the same DIR: starts whatever is not running (saying so), or says
# the cluster is already up, and prints the same lines. down.sh stops it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(cluster_dir "${1:-}")
WANT=${2:-}
[[ -z "$WANT" || "$WANT" =~ ^[1-9][0-9]?$ ]] || die "NODES must be a number from 1 to 99"
chmod 711 "$DIR" # the postgres user must reach DIR/postgres
mkdir -p "$DIR/pids" "$DIR/logs"
exec 9>"$DIR/.up.lock"
flock 9 # one up.sh at a time per cluster

ensure_tools

# --- ports and URLs: chosen once, kept in cluster.env ---------------------------
if [[ -f "$DIR/cluster.env" ]]; then
    load_env "$DIR"
    [[ -z "$WANT" || "$WANT" == "$NODES" ]] || die "$DIR holds a cluster of $NODES nodes, not $WANT"
else
    NODES=${WANT:-3}
    PG_PORT=$(free_port)
    REDIS_PORT=$(free_port)
    ROUTER_PORT=$(free_port)
    {
        echo "# written by deploy/cluster/up.sh; sourced by the other scripts"
        echo "CLUSTER_DIR=$DIR"
        echo "NODES=$NODES"
        echo "PG_PORT=$PG_PORT"
        echo "REDIS_PORT=$REDIS_PORT"
        echo "ROUTER_PORT=$ROUTER_PORT"
        echo "DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/pairchat"
        echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
        echo "ROUTER_URL=http://127.0.0.1:$ROUTER_PORT"
        for ((n = 1; n <= NODES; n++)); do
            port=$(free_port)
            echo "NODE${n}_PORT=$port"
            echo "SLOT${n}_PORT=$port" # where hash slot n points (failover.sh moves it)
        done
    } >"$DIR/cluster.env"
    load_env "$DIR"
fi
started=0

# --- PostgreSQL -----------------------------------------------------------------
pg_home="$DIR/postgres"
if [[ ! -e "$pg_home" ]]; then
    if runuser -u postgres -- test -x "$DIR"; then
        mkdir -p "$pg_home"
    else
        # a parent of DIR is closed to other users (pytest's tmp_path is 0700):
        # the files live in a folder of /tmp, DIR/postgres links to it
        target=$(mktemp -d /tmp/pairchat-pg.XXXXXX)
        chmod 700 "$target"
        ln -s "$target" "$pg_home"
        say "the postgres user cannot reach $DIR: PostgreSQL's files are in $target"
    fi
    chown postgres: "$(readlink -f "$pg_home")"
fi
pg_home=$(readlink -f "$pg_home") # the postgres user may not reach DIR itself
pg_data="$pg_home/data"
pg_log="$pg_home/postgres.log"
as_pg() { runuser -u postgres -- "$@"; }
if [[ ! -f "$pg_data/PG_VERSION" ]]; then
    say "initdb $pg_data"
    as_pg "$PG_BIN/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C >>"$DIR/logs/initdb.log" 2>&1 ||
        die "initdb failed: see $DIR/logs/initdb.log"
fi
if ! as_pg "$PG_BIN/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    sock_dir="$pg_home/run"
    as_pg mkdir -p "$sock_dir"
    if ((${#sock_dir} > 90)); then sock_dir=""; fi # a socket path is at most 107 bytes: TCP only then
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$sock_dir'" \
        start >>"$DIR/logs/pg_ctl.log" 2>&1 9>&- || {
        tail -n 20 "$pg_log" >&2 || true
        die "PostgreSQL did not start (see $pg_log)"
    }
    head -n 1 "$pg_data/postmaster.pid" >"$(pid_file "$DIR" postgres)"
    started=1
fi
if ! as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'pairchat'" | grep -q 1; then
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres pairchat
    say "created database pairchat"
fi

# --- Redis ----------------------------------------------------------------------
if ! live_pid "$DIR" redis >/dev/null; then
    mkdir -p "$DIR/redis"
    say "starting redis-server on 127.0.0.1:$REDIS_PORT"
    spawn "$DIR" redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
        --appendonly no --daemonize no --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" \
        --logfile "$DIR/logs/redis.log" >/dev/null
    wait_port "$REDIS_PORT" 20 || die "redis-server did not start (see $DIR/logs/redis.log)"
    started=1
fi

# --- the nodes and their Litestream -----------------------------------------------
declare -A node_pid
for ((n = 1; n <= NODES; n++)); do
    live_pid "$DIR" "node$n" >/dev/null || started=1
    node_pid[$n]=$(launch_node "$DIR" "$n")
done
for ((n = 1; n <= NODES; n++)); do
    wait_node "$DIR" "$n" || die "node$n did not start"
done

# --- HAProxy ----------------------------------------------------------------------
if ! live_pid "$DIR" haproxy >/dev/null; then
    write_haproxy_cfg "$DIR"
    say "starting HAProxy on 127.0.0.1:$ROUTER_PORT"
    spawn "$DIR" haproxy haproxy -db -f "$DIR/haproxy/haproxy.cfg" >/dev/null
    started=1
fi
wait_http "$ROUTER_URL/healthz" 30 || die "the router does not answer $ROUTER_URL/healthz (see $DIR/logs/haproxy.log)"

((started)) || say "the cluster in $DIR is already up"
echo "ROUTER_URL=$ROUTER_URL"
for ((n = 1; n <= NODES; n++)); do
    echo "NODE${n}_PID=${node_pid[$n]}"
done
