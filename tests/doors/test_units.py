"""The doors' small parts, alone: limits, a session's environment, the identity reply,
the files made once (host key, door secret), the command line's refusals."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from multiprocessing.pool import ThreadPool
from pathlib import Path

import pytest

from doors.files import create_once, read_private
from doors.hostkey import KEY_FILE, fingerprint, load_host_key
from doors.identity import SIGN_IN, parse_session
from doors.limits import Counts, Limits
from doors.secret import SECRET_FILE, door_secret
from doors.session_env import NO_EDITOR, Identity, session_env, wants_truecolor
from tests.support import REPO


# -- limits -------------------------------------------------------------------------------
def test_counts_take_all_or_nothing_and_give_back_once() -> None:
    counts = Counts()
    first = counts.take({"key:a": 1, "all": 2})
    assert first is not None
    assert counts.take({"key:a": 1, "all": 2}) is None, "key a is full"
    assert counts.count("all") == 1, "a refused take leaves nothing behind"
    second = counts.take({"key:b": 1, "all": 2})
    assert second is not None
    assert counts.take({"key:c": 1, "all": 2}) is None, "all is full"
    first.release()
    first.release()  # twice is once
    assert counts.count("all") == 1 and counts.count("key:a") == 0
    assert counts.take({"key:a": 1, "all": 2}) is not None


@pytest.mark.parametrize(
    "bad",
    [{"sessions_per_key": 0}, {"sessions": -1}, {"login_timeout": 0}, {"keepalive_interval": -1}],
)
def test_limits_refuse_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**bad)  # type: ignore[arg-type]


# -- a session's environment ------------------------------------------------------------------
def test_a_session_gets_only_what_the_door_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIRCHAT_DOOR_SECRET", "must not leak")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent")
    env = session_env(api="http://api", config_dir=tmp_path, term="xterm-256color")
    assert env["TERM"] == "xterm-256color" and "COLORTERM" not in env
    assert env["PAIRCHAT_SERVER"] == "http://api" and env["PAIRCHAT_REMOTE"] == "1"
    assert env["PAIRCHAT_CONFIG_DIR"] == str(tmp_path)
    assert env["VISUAL"] == env["EDITOR"] == NO_EDITOR, "Ctrl+E must not run an editor"
    assert not {"PAIRCHAT_DOOR_SECRET", "SSH_AUTH_SOCK", "DISPLAY", "PAIRCHAT_TOKEN"} & set(env)


def test_a_known_key_signs_in_and_a_new_key_brings_its_ticket(tmp_path: Path) -> None:
    known = session_env(
        api="a", config_dir=tmp_path, identity=Identity(username="alice", token="t0ken-abc")
    )
    assert (known["PAIRCHAT_USER"], known["PAIRCHAT_TOKEN"]) == ("alice", "t0ken-abc")
    assert "PAIRCHAT_DOOR_TICKET" not in known
    new = session_env(api="a", config_dir=tmp_path, identity=Identity(ticket="tick-et-123"))
    assert new["PAIRCHAT_DOOR_TICKET"] == "tick-et-123" and "PAIRCHAT_TOKEN" not in new
    plain = session_env(api="a", config_dir=tmp_path, identity=SIGN_IN)
    assert not {"PAIRCHAT_USER", "PAIRCHAT_TOKEN", "PAIRCHAT_DOOR_TICKET"} & set(plain)


@pytest.mark.parametrize(
    ("term", "env", "expected"),
    [
        ("xterm-256color", {}, False),
        ("xterm-256color", {"COLORTERM": "truecolor"}, True),
        ("xterm-256color", {"COLORTERM": "24bit"}, True),
        ("xterm-direct", {}, True),
        ("xterm-truecolor", {}, True),
        ("screen", {"COLORTERM": "yes"}, False),
    ],
)
def test_truecolor_when_the_client_says_so(term: str, env: dict[str, str], expected: bool) -> None:
    assert wants_truecolor(term, env) is expected


@pytest.mark.parametrize("term", ["../../etc/x", "x" * 65, "xterm\x1b[31m", ""])
def test_a_strange_term_becomes_a_plain_one(term: str, tmp_path: Path) -> None:
    assert session_env(api="a", config_dir=tmp_path, term=term)["TERM"] == "xterm-256color"


# -- the identity reply -------------------------------------------------------------------
def test_the_identity_reply_is_checked() -> None:
    known = {"known": True, "username": "Alice", "display_name": "A", "token": "abcdefgh12"}
    assert parse_session(known) == Identity(username="alice", token="abcdefgh12")
    assert parse_session({"known": False, "ticket": "t-123456789"}) == Identity(
        ticket="t-123456789"
    )
    bad: object
    for bad in (
        [],
        {},
        {"known": True, "username": "../root", "token": "abcdefgh12"},
        {"known": True, "username": "alice", "token": "has space in it"},
        {"known": True, "username": "alice"},
        {"known": False, "ticket": "x\ny-123456789"},
        {"known": "yes", "ticket": "t-123456789"},
    ):
        with pytest.raises(ValueError):
            parse_session(bad)


# -- files made once ----------------------------------------------------------------------
def test_a_file_is_made_once_even_by_racing_writers(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret"
    with ThreadPool(8) as pool:
        made = pool.map(
            lambda n: create_once(path, lambda: f"writer {n}\n".encode() * 1000), range(8)
        )
    assert made.count(True) == 1
    text = read_private(path).decode()
    assert len(set(text.splitlines())) == 1, "one writer's whole content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"], "no temporary files left"


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    create_once(path, lambda: b"s")
    path.chmod(0o640)
    with pytest.raises(PermissionError, match="chmod 600"):
        read_private(path)


def test_the_door_secret_is_shared_and_the_environment_wins(tmp_path: Path) -> None:
    first = door_secret(tmp_path, env={})
    assert len(first) >= 40 and door_secret(tmp_path, env={}) == first
    assert (tmp_path / SECRET_FILE).read_text().strip() == first
    assert door_secret(tmp_path, env={"PAIRCHAT_DOOR_SECRET": "given"}) == "given"


def test_the_host_key_is_ed25519_made_once(tmp_path: Path) -> None:
    key = load_host_key(tmp_path)
    again = load_host_key(tmp_path)
    assert key.algorithm == b"ssh-ed25519"
    assert fingerprint(key) == fingerprint(again) and fingerprint(key).startswith("SHA256:")
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    public = (tmp_path / f"{KEY_FILE}.pub").read_text()
    assert public.startswith("ssh-ed25519 ")


# -- the command line -------------------------------------------------------------------------
def doors(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doors", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["ssh", "web"])
def test_a_busy_port_is_one_line_and_status_2(kind: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = doors(kind, "--port", port, "--data-dir", str(tmp_path / "d"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"python -m doors {kind}: port {port} on 127.0.0.1 is busy (another server?); "
        "choose one with --port"
    )
    assert "Traceback" not in done.stderr


def test_a_missing_data_folder_parent_is_refused(tmp_path: Path) -> None:
    done = doors("ssh", "--data-dir", str(tmp_path / "no" / "such"))
    assert done.returncode == 2
    assert "is missing, and so is its parent" in done.stderr
    assert "Traceback" not in done.stderr


def test_silly_limits_are_refused(tmp_path: Path) -> None:
    done = doors("ssh", "--data-dir", str(tmp_path), "--sessions-per-key", "0")
    assert done.returncode == 2 and "sessions_per_key must be at least 1" in done.stderr
