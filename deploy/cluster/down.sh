#!/usr/bin/env bash
# Stop everything up.sh started in DIR: down.sh DIR
#
# The router first (no new requests), then the nodes (SIGTERM: held long-polls are
# answered, then each node's litestream makes its last sync), Redis, and PostgreSQL
# with `pg_ctl stop -m fast`. By the PIDs in DIR/pids only. The data stays: up.sh
# on the same DIR starts the same cluster again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 ]] || die "usage: $0 DIR"
DIR=$(cluster_dir "$1")
load_env "$DIR"

stop_pid "$DIR" haproxy TERM
for ((n = 1; n <= NODES; n++)); do
    stop_pid "$DIR" "node$n" TERM &
done
wait
for ((n = 1; n <= NODES; n++)); do
    stop_pid "$DIR" "litestream$n" TERM &
done
wait
stop_pid "$DIR" redis TERM
pg_data="$(readlink -f "$DIR/postgres")/data" # DIR/postgres may be a link to /tmp
if [[ -f "$pg_data/postmaster.pid" ]]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_data" -m fast -w stop >>"$DIR/logs/pg_ctl.log" 2>&1 ||
        say "pg_ctl stop failed (see $DIR/logs/pg_ctl.log)"
fi
rm -f "$(pid_file "$DIR" postgres)"
say "the cluster in $DIR is down"
