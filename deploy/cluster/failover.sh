#!/usr/bin/env bash
# Fail over a dead node: failover.sh DIR DEAD_N TO_N
#
# Node DEAD_N's pairs go to node TO_N, from DEAD_N's Litestream replica (its disk is
# taken as lost). The steps (docs/cluster.md, "Failover"):
#   1. fence node<DEAD> in PostgreSQL (it serves no conversation even if it comes
#      back) and make sure its process is gone (SIGKILL; its litestream gets SIGTERM
#      first so whatever reached its disk is synced);
#   2. restore each pair file of node<DEAD>'s replica that PostgreSQL places on
#      node<DEAD> (or nowhere) into node<TO>'s data folder (`litestream restore`);
#   3. `placement assign --from node<DEAD> --to node<TO>`: the placement rows move;
#   4. HAProxy, through its admin socket: the hash slot(s) pointing at node<DEAD>
#      now point at node<TO> (`set server pairs/node<k> addr …`), map entries naming
#      node<DEAD> name node<TO>, node<DEAD> leaves backend "any" (maint). cluster.env
#      and pairs.map keep this for a restart of the router.
# Node<DEAD>'s replica and data folder are then renamed *.failed-<time> (its disk
# counts as lost); `placement unfence node<DEAD>` lets it serve pairs again later.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 3 ]] || die "usage: $0 DIR DEAD_N TO_N"
DIR=$(cluster_dir "$1")
DEAD=$2
TO=$3
load_env "$DIR"
for n in "$DEAD" "$TO"; do
    check_node "$n"
done
[[ "$DEAD" != "$TO" ]] || die "DEAD_N and TO_N must differ"
live_pid "$DIR" "node$TO" >/dev/null || die "node$TO is not running: start it first (node.sh $DIR $TO start)"
dead_port=$(node_port "$DEAD")
to_port=$(node_port "$TO")
placement() { pairchat_server placement "$@" --database-url "$DATABASE_URL"; }
stamp=$(date +%Y%m%d-%H%M%S)

# 1. fence, and no process of node<DEAD> left
say "1/4 fencing node$DEAD"
stop_pid "$DIR" "node$DEAD" KILL
stop_pid "$DIR" "litestream$DEAD" TERM
placement fence "node$DEAD" --redis-url "$REDIS_URL" >&2

# 2. restore node<DEAD>'s pair files from its replica into node<TO>'s data folder
say "2/4 restoring node$DEAD's pair files into node$TO"
replica="$DIR/replica/node$DEAD"
dest_dir="$DIR/node$TO/data"
restored=0
skipped=0
shopt -s nullglob
for src in "$replica"/*_*.db; do
    file=$(basename "$src")
    pair=${file%.db}
    owner=$(placement owner "$pair")
    if [[ -n "$owner" && "${owner%% *}" != "node$DEAD" ]]; then
        say "  $pair: placed on $owner, not node$DEAD: left alone"
        skipped=$((skipped + 1))
        continue
    fi
    if [[ -e "$dest_dir/$file" ]]; then
        mkdir -p "$DIR/node$TO/displaced"
        say "  $pair: node$TO already had a $file: moved to $DIR/node$TO/displaced/"
        for f in "$dest_dir/$file" "$dest_dir/$file-wal" "$dest_dir/$file-shm"; do
            [[ -e "$f" ]] && mv "$f" "$DIR/node$TO/displaced/$(basename "$f").$stamp"
        done
    fi
    # restored under a name Litestream's pattern (*_*.db) does not match, then renamed
    tmp="$dest_dir/.restore.$file.tmp"
    rm -f "$tmp"
    "$LITESTREAM" restore -integrity-check quick -o "$tmp" "file://$src" >>"$DIR/logs/restore.log" 2>&1 ||
        die "litestream restore of $pair failed (see $DIR/logs/restore.log)"
    chmod 600 "$tmp"
    mv "$tmp" "$dest_dir/$file"
    restored=$((restored + 1))
done
sync
say "  $restored pair files restored, $skipped left alone"

# 3. the placement rows
say "3/4 placement assign --from node$DEAD --to node$TO"
placement assign --from "node$DEAD" --to "node$TO" --redis-url "$REDIS_URL" >&2

# 4. the router: hash slots, map entries, backend "any"
say "4/4 router: node$DEAD's hash slots and map entries now reach node$TO"
for ((k = 1; k <= NODES; k++)); do
    slot="SLOT${k}_PORT"
    if [[ "${!slot}" == "$dead_port" ]]; then
        haproxy_cmd "$DIR" "set server pairs/node$k addr 127.0.0.1 port $to_port" >&2
        set_env "$DIR" "$slot" "$to_port"
    fi
done
map="$DIR/haproxy/pairs.map"
while read -r pair node; do
    if [[ "$node" == "node$DEAD" ]]; then
        haproxy_cmd "$DIR" "set map $map $pair node$TO" >/dev/null
    fi
done < <(grep -v '^#' "$map" || true)
sed -i "s/ node$DEAD\$/ node$TO/" "$map"
haproxy_cmd "$DIR" "set server any/node$DEAD state maint" >/dev/null

# node<DEAD>'s disk counts as lost: a node<DEAD> started again comes up empty (and
# fenced), its litestream does not write its old files back into a replica
[[ -d "$replica" ]] && mv "$replica" "$DIR/replica/node$DEAD.failed-$stamp"
[[ -d "$DIR/node$DEAD/data" ]] && mv "$DIR/node$DEAD/data" "$DIR/node$DEAD/data.failed-$stamp"
say "node$DEAD's pairs are served by node$TO"
