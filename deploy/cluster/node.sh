#!/usr/bin/env bash
# One node of a cluster started by up.sh: node.sh DIR N start|stop|kill
#
#   start  starts node N and its litestream (the same command as up.sh, the same
#          port), waits for its /healthz, prints NODE<N>_PID=<pid>
#   stop   SIGTERM to the node (then its litestream, which syncs last), waits until gone
#   kill   SIGKILL to the node and its litestream: a crash (nothing flushed, nothing synced)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 3 ]] || die "usage: $0 DIR N start|stop|kill"
DIR=$(cluster_dir "$1")
N=$2
load_env "$DIR"
check_node "$N"

case $3 in
start)
    pid=$(launch_node "$DIR" "$N")
    wait_node "$DIR" "$N" || die "node$N did not start"
    echo "NODE${N}_PID=$pid"
    ;;
stop) stop_node "$DIR" "$N" TERM ;;
kill) stop_node "$DIR" "$N" KILL ;;
*) die "usage: $0 DIR N start|stop|kill" ;;
esac
