"""``pairchat-server serve --ssh-port N --web-port M``: the doors beside the API.

The server starts each door as a child process on its own data folder (one
folder: the host key and the door secret live beside the accounts file, so no
secret is given here), stops them when it stops, and they do not outlive it
even when it is killed outright. A busy door port is a one-line refusal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import asyncssh
import httpx

from tests.support import REPO, TEST_ENV, ServerProcess, alive, children, free_port
from tests.test_status import status

from .conftest import FIRST_SCREEN, open_tui, ssh_connect, wait_until


def door_processes(server: ServerProcess) -> dict[str, int]:
    """kind ("ssh" | "web") -> pid of the server's door children."""
    found = {}
    for pid in children(server.pid):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"doors" in argv:
            found[argv[argv.index(b"doors") + 1].decode()] = pid
    return found


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_server_runs_both_doors_on_its_folder_and_stops_them(
    server_process: Callable[..., ServerProcess], new_key: Callable[[str], Path]
) -> None:
    ssh_port, web_port = free_port(), free_port()
    server = server_process("--ssh-port", str(ssh_port), "--web-port", str(web_port))
    wait_until(lambda: set(door_processes(server)) == {"ssh", "web"}, "both doors started")
    doors = door_processes(server)
    wait_until(lambda: listening(ssh_port), "the SSH door listening")
    assert (server.data_dir / "ssh_host_ed25519_key").exists(), "its host key in the folder"

    async def claim() -> str:
        async with await ssh_connect(ssh_port, new_key("dora")) as conn:
            chan, screen = await open_tui(conn)
            for _ in range(600):
                if FIRST_SCREEN in screen.text():
                    break
                await asyncio.sleep(0.05)
            chan.write(b"dora\r")  # the key claims a name: the door asked the API who it is
            for _ in range(600):
                if "connected" in screen.text():
                    break
                await asyncio.sleep(0.05)
            chan.write(b"\x11")  # Ctrl+Q
            return screen.text()

    assert "dora · ● connected" in asyncio.run(claim())
    wait_until(lambda: answers(f"http://127.0.0.1:{web_port}/"), "the web door's page")

    server.stop()
    for kind, pid in doors.items():
        wait_until(lambda pid=pid: not alive(pid), f"the {kind} door stopped with the server")


def test_a_door_does_not_outlive_a_killed_server(
    server_process: Callable[..., ServerProcess],
) -> None:
    server = server_process("--ssh-port", str(free_port()))
    wait_until(lambda: "ssh" in door_processes(server), "the SSH door started")
    door = door_processes(server)["ssh"]
    os.kill(server.pid, signal.SIGKILL)  # the main process only: no chance to stop it
    wait_until(lambda: not alive(door), "the door gone with its server")
    server.kill()  # whatever else of its process group is left


def test_a_busy_door_port_is_a_one_line_refusal(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        serve = [sys.executable, "-m", "backend.server.cli", "serve", "--port", str(free_port())]
        done = subprocess.run(
            [*serve, "--data-dir", str(tmp_path / "data"), "--ssh-port", str(busy)],
            cwd=REPO,
            env={**os.environ, **TEST_ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1].endswith(
        f"port {busy} on 127.0.0.1 is busy (another server?); choose one with --ssh-port"
    )
    assert not [line for line in lines if "Traceback" in line]


def test_a_web_door_on_every_address_needs_its_public_url(tmp_path: Path) -> None:
    """With --host 0.0.0.0 the browser door once guessed its URL from the host name and
    then refused every browser that opened another name; now the server says what to set."""
    serve = [sys.executable, "-m", "backend.server.cli", "serve", "--port", str(free_port())]
    everywhere = ["--host", "0.0.0.0", "--web-port", str(free_port())]
    done = subprocess.run(
        [*serve, *everywhere, "--data-dir", str(tmp_path / "data")],
        cwd=REPO,
        env={**os.environ, **TEST_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "--web-port on every address needs --web-public-url (the URL browsers open, e.g. "
            "https://chat.example.org): the browser door accepts only its own pages"
        )
    )


def test_the_server_hands_its_web_door_the_public_url(
    server_process: Callable[..., ServerProcess],
) -> None:
    web_port = free_port()
    public = f"http://chat.example.test:{web_port}"
    server = server_process("--web-port", str(web_port), "--web-public-url", public)
    wait_until(lambda: answers(f"http://127.0.0.1:{web_port}/"), "the web door's page")
    page = httpx.get(f"http://127.0.0.1:{web_port}/", timeout=5).text
    assert "ws://chat.example.test" in page, "the page's websocket is the public URL's"
    assert "127.0.0.1" not in page.split("ws://", 1)[1].split('"', 1)[0]
    server.stop()


def test_the_server_hands_its_doors_their_caps_proxy_and_idle_times(
    server_process: Callable[..., ServerProcess], new_key: Callable[[str], Path]
) -> None:
    """``serve --web-tabs-per-address 1 --web-trusted-proxy … --ssh-signin-idle 1 …``
    reach the doors it starts (before: there were no such flags, so a door started by
    the server always ran with its defaults: no trusted proxy behind TLS, 10 tabs)."""
    ssh_port, web_port = free_port(), free_port()
    server = server_process(
        *("--ssh-port", str(ssh_port), "--web-port", str(web_port)),
        *("--ssh-max-sessions", "7", "--ssh-signin-idle", "1", "--ssh-idle", "3600"),
        *("--web-max-sessions", "9", "--web-tabs-per-address", "1"),
        *("--web-trusted-proxy", "127.0.0.1", "--web-trusted-proxy", "::1"),
        *("--web-signin-idle", "120", "--web-idle", "7200"),
    )
    wait_until(lambda: set(door_processes(server)) == {"ssh", "web"}, "both doors started")
    argv = {
        kind: Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        for kind, pid in door_processes(server).items()
    }
    ssh_flags = ["--max-sessions", "7", "--signin-idle", "1.0", "--idle", "3600.0"]
    assert " ".join(ssh_flags) in " ".join(argv["ssh"])
    web_flags = ["--max-sessions", "9", "--tabs-per-address", "1"]
    web_flags += ["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "::1"]
    web_flags += ["--signin-idle", "120.0", "--idle", "7200.0"]
    assert " ".join(web_flags) in " ".join(argv["web"])
    wait_until(lambda: answers(f"http://127.0.0.1:{web_port}/"), "the web door's page")
    wait_until(lambda: listening(ssh_port), "the SSH door listening")

    async def two_tabs() -> str:
        origin = f"http://127.0.0.1:{web_port}"
        async with aiohttp.ClientSession() as session:
            url = f"{origin}/ws?width=80&height=24"
            first = await session.ws_connect(url, origin=origin)
            async with first, session.ws_connect(url, origin=origin) as second:
                return str((await second.receive(timeout=30)).data)

    assert "too many pairchat tabs are open from your address" in asyncio.run(two_tabs())

    async def idle_claim() -> str:
        async with await asyncssh.connect(
            "127.0.0.1",
            ssh_port,
            username="anyone",
            client_keys=[str(new_key("idler"))],
            known_hosts=None,
            agent_path=None,
            config=None,
        ) as conn:
            chan, screen = await open_tui(conn)
            await asyncio.wait_for(chan.wait_closed(), timeout=60)
            return screen.text()

    assert "without a key pressed" in asyncio.run(idle_claim())
    server.stop()


def test_bad_door_flags_are_one_line_refusals(tmp_path: Path) -> None:
    serve = [sys.executable, "-m", "backend.server.cli", "serve", "--port", str(free_port())]
    serve += ["--data-dir", str(tmp_path / "data")]
    web = ["--web-port", str(free_port())]
    for flags, refusal in [
        (
            [*web, "--web-trusted-proxy", "proxy.example"],
            "Invalid value for '--web-trusted-proxy': 'proxy.example' is not an IP address",
        ),
        ([*web, "--web-tabs-per-address", "0"], "Invalid value for '--web-tabs-per-address'"),
        (
            ["--web-trusted-proxy", "127.0.0.1"],
            "the web door's flags need --web-port (the door they are for)",
        ),
    ]:
        done = subprocess.run(
            [*serve, *flags],
            cwd=REPO,
            env={**os.environ, **TEST_ENV},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, flags
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and refusal in lines[0], lines


def test_a_doors_own_errors_are_among_the_servers_last_errors(
    server_process: Callable[..., ServerProcess], new_key: Callable[[str], Path]
) -> None:
    """An operator replaced door.secret while the server ran: the API (which reads it at
    the first door request) refuses the door's old one, so the SSH door cannot ask who
    a key is. The visitor is told to come back later; the operator sees why in `status`,
    a line from the door's own process."""
    ssh_port, metrics_port = free_port(), free_port()
    server = server_process("--ssh-port", str(ssh_port), "--metrics-port", str(metrics_port))
    wait_until(lambda: "ssh" in door_processes(server), "the SSH door started")
    wait_until(lambda: listening(ssh_port), "the SSH door listening")
    door = door_processes(server)["ssh"]
    (server.data_dir / "door.secret").write_text("replaced-by-the-operator-" + "x" * 40 + "\n")

    async def visit() -> str:
        async with await ssh_connect(ssh_port, new_key("dora")) as conn:
            done = await conn.run("", term_type="xterm", term_size=(80, 24), timeout=60)
            return str(done.stderr)

    told = asyncio.run(visit())
    assert "cannot reach its server" in told, told

    def door_lines() -> list[dict[str, object]]:
        done = status(server.data_dir, "--json")
        assert done.returncode == 0, done.stderr
        return [line for line in json.loads(done.stdout)["last_errors"] if line["pid"] == door]

    wait_until(lambda: bool(door_lines()), "the door's error in status")
    [line] = door_lines()
    assert line["logger"] == "pairchat.door.ssh"
    assert "refused the door's secret" in str(line["message"]), line
    screen = status(server.data_dir)
    assert "refused the door's secret" in screen.stdout, screen.stdout
