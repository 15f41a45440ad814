#!/usr/bin/env bash
# Move one conversation to another node: move.sh DIR PAIR TO_N   (PAIR like alice_bob)
#
# The steps (docs/cluster.md, "Moving a pair"):
#   1. `placement move PAIR --to node<TO> --begin`: the pair answers 503 everywhere
#      (after a settle time no node serves it from a cached answer); prints its owner;
#   2. copy the owner's file to node<TO>'s data folder: SQLite's online backup from the
#      owner's file (consistent even with a WAL), or, when the owner's process is
#      gone, `litestream restore` from the owner's replica;
#   3. `placement move PAIR --to node<TO> --finish`: PostgreSQL places it on node<TO>;
#   4. HAProxy map entry PAIR -> node<TO> (admin socket `del map`/`add map`, and the
#      file DIR/haproxy/pairs.map so a restarted router keeps it);
#   5. the old owner's file and replica are set aside under DIR/moved/ (not deleted).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 3 ]] || die "usage: $0 DIR PAIR TO_N"
DIR=$(cluster_dir "$1")
TO=$3
load_env "$DIR"
check_node "$TO"
live_pid "$DIR" "node$TO" >/dev/null || die "node$TO is not running: start it first (node.sh $DIR $TO start)"

# The canonical pair: both names lowercase, sorted, joined by "_".
IFS=_ read -r one two rest <<<"${2%.db}"
[[ -n "$one" && -n "$two" && -z "$rest" ]] || die "a pair is two usernames joined by _, e.g. alice_bob"
one=${one,,}
two=${two,,}
[[ "$one" != "$two" ]] || die "a pair is two different users"
if [[ "$one" > "$two" ]]; then
    PAIR="${two}_$one"
else
    PAIR="${one}_$two"
fi
file="$PAIR.db"
placement() { pairchat_server placement "$@" --database-url "$DATABASE_URL" --redis-url "$REDIS_URL"; }
stamp=$(date +%Y%m%d-%H%M%S)

# 1. stop serving it; who owns it now
say "1/5 placement move $PAIR --to node$TO --begin"
began=$(placement move "$PAIR" --to "node$TO" --begin)
src=""
if [[ "$began" =~ ^node([0-9]+)$ ]]; then
    src=${BASH_REMATCH[1]}
else
    say "  $began" # never placed: no file to copy
fi

# 2. the file
dest="$DIR/node$TO/data/$file"
if [[ -n "$src" && "$src" != "$TO" ]]; then
    from="$DIR/node$src/data/$file"
    tmp="$DIR/node$TO/data/.move.$file.tmp" # not matched by Litestream's *_*.db until renamed
    rm -f "$tmp"
    [[ ! -e "$dest" ]] || die "node$TO already has $file: look before moving (nothing changed but the 503; run --finish by hand to end it)"
    if live_pid "$DIR" "node$src" >/dev/null && [[ -f "$from" ]]; then
        say "2/5 copying $file from node$src (SQLite online backup)"
        "$PY" - "$from" "$tmp" <<'EOF'
import os, sqlite3, sys
source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
target = sqlite3.connect(sys.argv[2])
source.backup(target)
target.execute("PRAGMA journal_mode = WAL")
target.close()
source.close()
fd = os.open(sys.argv[2], os.O_RDONLY)
os.fsync(fd)
os.close(fd)
EOF
    else
        say "2/5 node$src is down: restoring $file from its replica"
        "$LITESTREAM" restore -integrity-check quick -o "$tmp" "file://$DIR/replica/node$src/$file" \
            >>"$DIR/logs/restore.log" 2>&1 || die "litestream restore of $PAIR failed (see $DIR/logs/restore.log)"
    fi
    chmod 600 "$tmp"
    mv "$tmp" "$dest"
elif [[ "$src" == "$TO" ]]; then
    say "2/5 $PAIR is already on node$TO: nothing to copy"
else
    say "2/5 nothing to copy"
fi

# 3. place it
say "3/5 placement move $PAIR --to node$TO --finish"
placement move "$PAIR" --to "node$TO" --finish >&2

# 4. the router
say "4/5 router: $PAIR -> node$TO"
map="$DIR/haproxy/pairs.map"
haproxy_cmd "$DIR" "del map $map $PAIR" >/dev/null || true
haproxy_cmd "$DIR" "add map $map $PAIR node$TO" >&2
{
    grep -v "^$PAIR " "$map" || true
    echo "$PAIR node$TO"
} >"$map.new"
mv "$map.new" "$map"

# 5. the old copy, set aside
if [[ -n "$src" && "$src" != "$TO" ]]; then
    aside="$DIR/moved/$PAIR.$stamp.from-node$src"
    mkdir -p "$aside"
    for f in "$DIR/node$src/data/$file" "$DIR/node$src/data/$file-wal" "$DIR/node$src/data/$file-shm"; do
        if [[ -e "$f" ]]; then mv "$f" "$aside/"; fi
    done
    if [[ -d "$DIR/replica/node$src/$file" ]]; then mv "$DIR/replica/node$src/$file" "$aside/replica"; fi
    say "5/5 node$src's old copy is in $aside"
fi
say "$PAIR is on node$TO"
