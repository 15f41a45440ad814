"""The cluster's router (HAProxy, ``deploy/cluster/haproxy_cfg.sh``) against stand-in nodes.

Three tiny HTTP servers answer with their node name, the path, the
``X-Pairchat-Pair`` header and the body they got; a real ``haproxy`` runs the
config that ``up.sh`` writes. So the routing rule of docs/cluster.md is checked
without PostgreSQL or pairchat: one pair reaches one node whatever the spelling
(case, order, form, JSON, query string, ``/send_message/<recipient>`` with its
author); pairs spread; a dead owner answers 503 at once and its pairs never
reach another node; a map entry moves one pair, ``set server … addr`` a whole
hash slot; pairless routes go round robin to healthy nodes.

HAProxy must be installed (Debian's ``haproxy``; ``deploy/cluster/up.sh`` or CI
installs it): without it these tests fail, they are not skipped.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, free_port

pytestmark = pytest.mark.live
SCRIPTS = REPO / "deploy" / "cluster"
NODES = 3

# A stand-in node: answers every GET/POST with what it saw, /healthz with 200;
# /mark_read?owner=<node> with 503 unless it is that node.
ECHO_NODE = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])

class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        size = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(size).decode() if size else ""
        if self.path.startswith("/mark_read?owner=") and not self.path.endswith("=" + NAME):
            self.send_response(503)  # like a node asked about a pair it does not own
            self.send_header("content-length", "0")
            self.end_headers()
            return
        out = json.dumps({
            "node": NAME, "path": self.path, "body": body,
            "pair": self.headers.get("x-pairchat-pair"),
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", PORT), Echo).serve_forever()
"""


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Router:
    dir: Path
    url: str
    ports: dict[str, int]
    nodes: dict[str, subprocess.Popen[bytes]]
    client: httpx.Client
    haproxy: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start HAProxy on the config haproxy_cfg.sh wrote (its log: DIR/haproxy.log)."""
        with (self.dir / "haproxy.log").open("ab") as log:
            self.haproxy = subprocess.Popen(
                [_require_haproxy(), "-db", "-f", str(self.dir / "haproxy" / "haproxy.cfg")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_listening(int(self.url.rsplit(":", 1)[1]))
        _wait_healthy(self)

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.kill()
            self.haproxy.wait()
            self.haproxy = None

    def restart(self) -> None:
        self.stop()
        self.client.close()
        self.client = httpx.Client(timeout=10)
        self.start()

    @property
    def map_file(self) -> Path:
        return self.dir / "haproxy" / "pairs.map"

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.post(self.url + path, **kwargs)  # type: ignore[arg-type]

    def node_of(self, one: str, two: str) -> str:
        """The node that answers the pair's history request (a form, the TUI's way)."""
        answer = self.post("/get_message_history", data={"user_one": one, "user_two": two})
        assert answer.status_code == 200, answer.text
        node: str = answer.json()["node"]
        return node

    def kill(self, node: str) -> None:
        self.nodes[node].kill()
        self.nodes[node].wait()

    def admin(self, command: str) -> str:
        """One command to HAProxy's runtime API (the admin socket)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.dir / "haproxy" / "admin.sock"))
            sock.sendall(command.encode() + b"\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer.decode()


def _require_haproxy() -> str:
    found = shutil.which("haproxy")
    if found is None:
        pytest.fail("haproxy is not installed (apt-get install haproxy; up.sh installs it)")
    return found


@pytest.fixture
def router(tmp_path: Path) -> Iterator[Router]:
    _require_haproxy()
    ports = {f"node{n}": free_port() for n in range(1, NODES + 1)}
    router_port = free_port()
    nodes: dict[str, subprocess.Popen[bytes]] = {}
    router = Router(tmp_path, f"http://127.0.0.1:{router_port}", ports, nodes, httpx.Client())
    try:
        for name, port in ports.items():
            nodes[name] = subprocess.Popen([sys.executable, "-c", ECHO_NODE, name, str(port)])
        subprocess.run(
            ["bash", str(SCRIPTS / "haproxy_cfg.sh"), str(tmp_path), str(router_port)]
            + [str(port) for port in ports.values()],
            check=True,
            timeout=30,
        )
        for port in ports.values():
            wait_listening(port)
        router.restart()
        yield router
    finally:
        router.stop()
        router.client.close()
        for process in nodes.values():
            process.kill()
            process.wait()


def _wait_healthy(router: Router) -> None:
    """Until backend "any" has checked every node (rise 2, every second)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = router.admin("show servers state any")
        if state.count(" 2 0 ") >= NODES:  # srv_op_state 2 (running), srv_admin_state 0
            return
        time.sleep(0.2)
    raise AssertionError(f"the nodes never became healthy: {state}")


def test_every_spelling_of_a_pair_reaches_one_node(router: Router) -> None:
    json_type = {"content-type": "application/json; charset=utf-8"}
    answers = [
        router.post("/get_message_history", data={"user_one": "alice", "user_two": "bob"}),
        router.post("/get_message_history", data={"user_one": "Bob", "user_two": "ALICE"}),
        router.post("/create_conversation_db", json={"user_one": "bob", "user_two": "Alice"}),
        router.post(
            "/edit_message",
            content=b'{"id": 1, "user_one": "alice", "user_two": "bob"}',
            headers=json_type,
        ),
        router.post("/delete_message", data={"id": "1", "user_two": "alice", "user_one": "bob"}),
        router.post("/search_messages", json={"q": "hi", "user_one": "BOB", "user_two": "alice"}),
        router.post("/get_message_history?user_one=alice&user_two=Bob"),
        router.client.get(router.url + "/get_message_history?user_two=alice&user_one=bob"),
        router.post("/send_message/bob", data={"author": "alice", "message": "hi"}),
        router.post("/send_message/Alice", json={"author": "Bob", "message": "hi"}),
        router.post("/send_message/alice?author=bob", data={"message": "hi"}),
        router.post("/send_file/Bob?author=alice", files={"file": ("a.txt", b"hi")}),
        router.client.get(router.url + "/files?user_one=alice&user_two=BOB"),
        router.client.get(router.url + "/file/7?user_one=bob&user_two=alice"),
    ]
    assert [a.status_code for a in answers] == [200] * len(answers)
    seen = {(a.json()["node"], a.json()["pair"]) for a in answers}
    assert len(seen) == 1, seen
    assert next(iter(seen))[1] == "alice_bob"
    # the node gets the body untouched
    assert answers[5].json()["body"] == '{"q":"hi","user_one":"BOB","user_two":"alice"}'


def test_pairs_spread_over_the_nodes(router: Router) -> None:
    owners = {router.node_of(f"user{n}", f"friend{n}") for n in range(40)}
    assert owners == set(router.ports)


def test_pairless_routes_go_round_robin_and_carry_no_pair(router: Router) -> None:
    seen = set()
    for _ in range(2 * NODES):
        answer = router.client.get(router.url + "/friends", headers={"X-Pairchat-Pair": "x_y"})
        assert answer.status_code == 200
        assert answer.json()["pair"] is None  # a client cannot choose the node
        seen.add(answer.json()["node"])
    assert seen == set(router.ports)
    # a pair route without a valid pair is answered by some node (its 400), not by the hash
    same = router.post("/get_message_history", data={"user_one": "alice", "user_two": "Alice"})
    assert same.status_code == 200 and same.json()["pair"] is None


def test_a_dead_owner_answers_503_at_once_and_other_pairs_still_work(router: Router) -> None:
    pairs = [(f"user{n}", f"friend{n}") for n in range(30)]
    owner = {pair: router.node_of(*pair) for pair in pairs}
    router.kill("node2")
    for pair in pairs:
        started = time.monotonic()
        answer = router.post(
            "/get_message_history", data={"user_one": pair[0], "user_two": pair[1]}
        )
        elapsed = time.monotonic() - started
        if owner[pair] == "node2":
            assert answer.status_code == 503, answer.text  # never re-hashed to a live node
            assert elapsed < 1.5
        else:
            assert answer.status_code == 200
            assert answer.json()["node"] == owner[pair]
    # pairless routes skip the dead node
    nodes = {router.client.get(router.url + "/friends").json()["node"] for _ in range(6)}
    assert nodes <= {"node1", "node3"}


def test_a_map_entry_moves_one_pair(router: Router) -> None:
    home = router.node_of("alice", "bob")
    other = next(name for name in router.ports if name != home)
    neighbour = next(
        (f"user{n}", "bob") for n in range(50) if router.node_of(f"user{n}", "bob") == home
    )
    router.admin(f"add map {router.map_file} alice_bob {other}")
    assert router.node_of("Bob", "alice") == other
    assert router.post("/send_message/bob", data={"author": "alice"}).json()["node"] == other
    assert router.node_of(*neighbour) == home  # only that pair moved
    router.admin(f"del map {router.map_file} alice_bob")
    assert router.node_of("alice", "bob") == home


def test_the_map_file_is_read_when_the_router_starts(router: Router) -> None:
    home = router.node_of("alice", "bob")
    other = next(name for name in router.ports if name != home)
    router.map_file.write_text(f"alice_bob {other}\n")  # what move.sh writes beside `add map`
    assert router.node_of("alice", "bob") == home  # the file alone changes nothing live
    router.restart()
    assert router.node_of("alice", "bob") == other


def test_set_server_addr_moves_a_hash_slot(router: Router) -> None:
    pairs = [(f"user{n}", f"friend{n}") for n in range(30)]
    owner = {pair: router.node_of(*pair) for pair in pairs}
    router.kill("node2")
    answer = router.admin(f"set server pairs/node2 addr 127.0.0.1 port {router.ports['node3']}")
    assert "port changed" in answer
    for pair in pairs:
        expected = "node3" if owner[pair] in ("node2", "node3") else owner[pair]
        assert router.node_of(*pair) == expected


def test_mark_read_finds_the_owner_of_its_pair(router: Router) -> None:
    """/mark_read names one user, the token the other: the router asks node after node."""
    for _ in range(2 * NODES):
        answer = router.post("/mark_read?owner=node3", data={"username": "alice"})
        assert answer.status_code == 200
        assert answer.json()["node"] == "node3"
    router.kill("node3")  # the owner is dead: 503 after asking the others, quickly
    started = time.monotonic()
    assert router.post("/mark_read?owner=node3").status_code == 503
    assert time.monotonic() - started < 2


def test_the_pair_routes_are_every_route_that_names_a_pair() -> None:
    """A new route reading ``data.pair()`` must be added to haproxy_cfg.sh's pair_routes."""
    in_config = re.search(r'^pair_routes="([^"]*)"', (SCRIPTS / "haproxy_cfg.sh").read_text(), re.M)
    assert in_config is not None
    routes = set()
    for source in (REPO / "backend" / "http").glob("*.py"):
        views = re.split(r"\n(?=@bp\.)", source.read_text())
        for view in views:
            route = re.match(r'@bp\.(?:get|post)\("([^"<]+)"\)', view)
            if route and "data.pair(" in view:
                routes.add(route.group(1))
    assert routes == set(in_config.group(1).split())
