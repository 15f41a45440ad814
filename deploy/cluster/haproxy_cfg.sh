#!/usr/bin/env bash
# Write the router's HAProxy config: haproxy_cfg.sh DIR ROUTER_PORT NODE1 [NODE2 …]
#
# Each NODEn is a port, or PAIRS_PORT:ANY_PORT when hash slot n was moved to another
# node by a failover. Writes DIR/haproxy/haproxy.cfg (and an empty
# DIR/haproxy/pairs.map if there is none). Node n is the server "node<n>" (id n) at
# 127.0.0.1:<port> of backends "pairs" and "any". The
# routing rule (docs/cluster.md, "Routing"):
#   - a pair route (the names in user_one/user_two, or /send_message/<recipient>
#     with author, or /send_file/<recipient>?author=) goes to backend "pairs": the pair's owner, from the override
#     map pairs.map (pair -> node name) or else the consistent hash of the pair.
#     No health checks, no redispatch, no retry: a dead owner answers 503 at once,
#     its pairs are never re-hashed to a node that does not hold their files.
#   - /mark_read names one user, the other is behind the token: the router cannot
#     tell the pair, so backend "ask_owner" tries the nodes in turn until one does not
#     answer 503 (a node refuses a pair it does not own with a 503; mark_read is
#     idempotent, so asking again is safe).
#   - everything else goes to backend "any": round robin over healthy nodes.
# The names are lowercased and sorted, joined with "_" (the pair file's name
# without ".db"), and sent to the node as the header X-Pairchat-Pair.
set -euo pipefail

[[ $# -ge 3 ]] || {
    echo "usage: $0 DIR ROUTER_PORT NODE1_PORT [NODE2_PORT …]" >&2
    exit 2
}
dir=$(cd "$1" && pwd)
router_port=$2
shift 2
mkdir -p "$dir/haproxy"
map="$dir/haproxy/pairs.map"
[[ -f "$map" ]] || : >"$map"

# The routes whose request names a pair in user_one/user_two (grep backend/http for data.pair());
# GET /file/<id> names it in its query too (the acl below).
pair_routes="/create_conversation_db /get_message_history /edit_message /delete_message /react /search_messages /files"

use_servers=""
pair_servers=""
any_servers=""
ask_servers=""
n=0
for spec in "$@"; do
    n=$((n + 1))
    use_servers+="    use-server node$n if { var(txn.owner) -m str node$n }"$'\n'
    pair_servers+="    server node$n 127.0.0.1:${spec%%:*} id $n weight 100"$'\n'
    any_servers+="    server node$n 127.0.0.1:${spec##*:} id $n check"$'\n'
    ask_servers+="    server node$n 127.0.0.1:${spec##*:} id $n track any/node$n"$'\n'
done

cat >"$dir/haproxy/haproxy.cfg" <<EOF
# Written by deploy/cluster/haproxy_cfg.sh for the cluster in $dir ($n nodes).
# The routing rule is explained in docs/cluster.md ("Routing").

global
    stats socket $dir/haproxy/admin.sock mode 600 level admin
    stats timeout 30s
    # a whole request body (pairchat takes up to 64 KiB) fits in one buffer
    tune.bufsize 81920
    log stdout format raw local0 info

defaults
    mode http
    log global
    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %{+Q}r pair=%[var(txn.pair)]"
    option http-keep-alive
    option forwardfor
    # a dead node refuses or times out within a second: its pairs answer 503 then
    timeout connect 1s
    # long-polls (/updates, get_message_history with wait) hold up to 30 s
    timeout client 90s
    timeout server 90s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 1s
    retries 0

frontend api
    bind 127.0.0.1:$router_port
    # wait for the body: the pair's names may be in it
    option http-buffer-request
    http-request del-header X-Pairchat-Pair

    acl pair_route path $pair_routes
    acl pair_route path_beg /file/
    acl send_route path_reg ^/send_(message|file)/[^/]+$
    acl has_type req.hdr(content-type) -m found
    acl form_body req.hdr(content-type) -m beg -i application/x-www-form-urlencoded
    acl json_body req.hdr(content-type),lower,word(1,;) -m reg ^application/([a-z0-9.-]+\+)?json$

    # The two names, lowercased: the query string, then the body (form or JSON) if it has them.
    http-request set-var(txn.one) url_param(user_one),url_dec,lower if pair_route
    http-request set-var(txn.two) url_param(user_two),url_dec,lower if pair_route
    http-request set-var(txn.one) req.body_param(user_one),url_dec,lower if pair_route form_body || pair_route !has_type
    http-request set-var(txn.two) req.body_param(user_two),url_dec,lower if pair_route form_body || pair_route !has_type
    http-request set-var(txn.one) req.body,json_query('\$.user_one'),lower if pair_route json_body
    http-request set-var(txn.two) req.body,json_query('\$.user_two'),lower if pair_route json_body
    # /send_message/<recipient>: the recipient from the path, the author from the query or body
    # (/send_file/<recipient>: a multipart body, so the author from the query: ?author=)
    http-request set-var(txn.one) path,field(3,/),url_dec,lower if send_route
    http-request set-var(txn.two) url_param(author),url_dec,lower if send_route
    http-request set-var(txn.two) req.body_param(author),url_dec,lower if send_route form_body || send_route !has_type
    http-request set-var(txn.two) req.body,json_query('\$.author'),lower if send_route json_body

    # Sorted and joined: "alice_bob" for Bob and alice (two equal names are no pair).
    http-request set-var(txn.pair) var(txn.one),concat(_,txn.two,) if { var(txn.one),strcmp(txn.two) lt 0 }
    http-request set-var(txn.pair) var(txn.two),concat(_,txn.one,) if { var(txn.one),strcmp(txn.two) gt 0 }
    http-request set-header X-Pairchat-Pair %[var(txn.pair)] if { var(txn.pair) -m found }

    use_backend pairs if { var(txn.pair) -m found }
    use_backend ask_owner if { path /mark_read }
    default_backend any

backend pairs
    # The owner of the pair: the override map first (failover.sh/move.sh write it),
    # else the consistent hash of the pair. Never a health check, never another node.
    balance hdr(X-Pairchat-Pair)
    hash-type consistent sdbm avalanche
    no option redispatch
    retries 0
    http-request set-var(txn.owner) var(txn.pair),map($map)
$use_servers$pair_servers
backend any
    # pairless routes: any healthy node (accounts and the feed live in PostgreSQL)
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 1s fall 1 rise 2
    option redispatch
    retries 2
$any_servers
backend ask_owner
    # /mark_read: the pair is half in the token; ask each healthy node until its owner answers
    balance roundrobin
    option redispatch 1
    retry-on conn-failure empty-response 503
    retries $((2 * n))
$ask_servers
EOF

haproxy -c -q -f "$dir/haproxy/haproxy.cfg" >&2 || {
    haproxy -c -f "$dir/haproxy/haproxy.cfg" >&2
    exit 1
}
