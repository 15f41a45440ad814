"""``pairchat send|history|tail``: the real program, from a pipe, against a real server."""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, LiveServer, bearer, free_port, http
from tui.config import Config
from tui.scripting import DOOR_USAGE, ScriptError, door_command


def pairchat(
    *args: str, server: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--server", server, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=60,
    )


@pytest.fixture
def script_env(tmp_path: Path) -> dict[str, str]:
    """A config folder of its own, and no token from the test's environment."""
    env = {"PAIRCHAT_CONFIG_DIR": str(tmp_path / "config"), "PAIRCHAT_TOKEN": ""}
    return env


def texts(server: LiveServer, token: str) -> list[str]:
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "alice", "user_two": "bob"},
        headers=bearer(token),
    )
    return [m["message"] for m in reply.json()["history"]]


def test_stdin_becomes_one_message_as_piped(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    piped = "FAILED test_x.py::test_y\n    assert 1 == 2\n\tE  tab kept\n"
    env = {**script_env, "PAIRCHAT_TOKEN": users["alice"]}
    done = pairchat("send", "bob", server=server.url, env=env, stdin=piped)
    assert done.returncode == 0, done.stderr
    assert texts(server, users["bob"]) == [piped[:-1]], "the final newline only is dropped"


def test_the_tuis_saved_session_signs_a_script_in(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    config = Config(server=server.url, config_dir=Path(script_env["PAIRCHAT_CONFIG_DIR"]))
    config.save_session("alice", users["alice"])
    done = pairchat("send", "bob", "the backup finished", server=server.url, env=script_env)
    assert done.returncode == 0, done.stderr
    assert texts(server, users["bob"]) == ["the backup finished"]


def test_refusals_are_one_line_and_a_status(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    no_session = pairchat("send", "bob", "hi", server=server.url, env=script_env)
    assert no_session.returncode == 2 and "no session" in no_session.stderr
    env = {**script_env, "PAIRCHAT_TOKEN": users["alice"]}
    too_long = pairchat("send", "bob", server=server.url, env=env, stdin="x" * 4001)
    assert too_long.returncode == 2 and "4,001 characters" in too_long.stderr
    empty = pairchat("send", "bob", server=server.url, env=env, stdin="\n")
    assert empty.returncode == 2
    unknown = pairchat("send", "nobody", "hi", server=server.url, env=env)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1, unknown.stderr
    down = pairchat("send", "bob", "hi", server=f"http://127.0.0.1:{free_port()}", env=env)
    assert down.returncode == 3 and "cannot reach" in down.stderr
    assert texts(server, users["bob"]) == []


def test_history_prints_the_newest_as_json_lines(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    for n in range(5):
        http.post(
            f"{server.url}/send_message/bob",
            data={"author": "alice", "message": f"m{n}"},
            headers=bearer(users["alice"]),
        )
    env = {**script_env, "PAIRCHAT_TOKEN": users["bob"]}
    done = pairchat("history", "alice", "--limit", "2", "--json", server=server.url, env=env)
    assert done.returncode == 0, done.stderr
    import json

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["author"], r["message"]) for r in lines] == [("alice", "m3"), ("alice", "m4")]
    plain = pairchat("history", "alice", "--limit", "1", server=server.url, env=env)
    assert plain.stdout == "alice: m4\n"


@pytest.fixture
def tail(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> Iterator[queue.Queue[str]]:
    env = {**os.environ, **script_env, "PAIRCHAT_TOKEN": users["bob"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--server", server.url, "tail", "alice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    yield lines
    proc.terminate()
    proc.wait(timeout=10)


def test_tail_prints_the_last_lines_then_follows_live(
    server: LiveServer, users: dict[str, str], tail: queue.Queue[str]
) -> None:
    def say(text: str) -> None:
        reply = http.post(
            f"{server.url}/send_message/bob",
            data={"author": "alice", "message": text},
            headers=bearer(users["alice"]),
        )
        assert reply.status_code == 200

    deadline = time.monotonic() + 20
    for text in ("live one", "live two"):
        # the stream may still be opening: send until the first live line shows
        while True:
            say(text)
            try:
                line = tail.get(timeout=2)
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "tail printed nothing"
        assert line == f"alice: {text}\n"
        while not tail.empty():  # a repeat sent while it was opening
            assert tail.get() == f"alice: {text}\n"


def test_a_script_token_signs_the_pipes_in_within_its_scopes(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    """``PAIRCHAT_TOKEN`` may be a script token (``POST /tokens``): ``read,send`` sends and
    reads; ``read`` reads, and its send is refused with the server's reason."""

    def script_token(scopes: str) -> str:
        made = http.post(
            f"{server.url}/tokens",
            data={"name": f"pipe {scopes}", "scopes": scopes},
            headers=bearer(users["alice"]),
        )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token

    both = {**script_env, "PAIRCHAT_TOKEN": script_token("read,send")}
    sent = pairchat("send", "bob", "from cron", server=server.url, env=both)
    assert sent.returncode == 0, sent.stderr
    shown = pairchat("history", "bob", server=server.url, env=both)
    assert shown.returncode == 0 and "from cron" in shown.stdout, shown.stderr
    reader = {**script_env, "PAIRCHAT_TOKEN": script_token("read")}
    refused = pairchat("send", "bob", "not allowed", server=server.url, env=reader)
    assert refused.returncode != 0 and "lacks the 'send' scope" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    read = pairchat("history", "bob", server=server.url, env=reader)
    assert read.returncode == 0 and "from cron" in read.stdout, read.stderr
    sender = {**script_env, "PAIRCHAT_TOKEN": script_token("send"), "PAIRCHAT_USER": "alice"}
    only_sends = pairchat("send", "bob", "send only", server=server.url, env=sender)
    assert only_sends.returncode == 0, only_sends.stderr
    assert texts(server, users["bob"]) == ["from cron", "send only"]


@pytest.mark.anyio
async def test_tail_prints_a_message_sent_from_the_tui_within_a_second(
    server: LiveServer, users: dict[str, str], tail: queue.Queue[str], tmp_path: Path
) -> None:
    """bob runs ``pairchat tail alice``; alice types in the TUI: the line is printed within a
    second of the server acknowledging her message (the event stream, not a poll)."""
    from tui.widgets.composer import Composer

    from .conftest import app_for, befriend, open_chat, wait_for

    befriend(server, users, "alice", "bob")
    deadline = time.monotonic() + 20
    while True:  # the tail's stream may still be opening: until it prints a first line
        reply = http.post(
            f"{server.url}/send_message/bob",
            data={"author": "alice", "message": "warm-up"},
            headers=bearer(users["alice"]),
        )
        assert reply.status_code == 200
        try:
            assert tail.get(timeout=1) == "alice: warm-up\n"
            break
        except queue.Empty:
            assert time.monotonic() < deadline, "tail printed nothing"
    while not tail.empty():
        assert tail.get() == "alice: warm-up\n"
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_chat(pilot, app, "bob")
        app.screen.query_one(Composer).focus()
        await pilot.press(*"typed in the TUI", "enter")
        outbox = app.screen.core.outbox  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: not outbox.items, "acknowledged by the server")
        assert tail.get(timeout=1.0) == "alice: typed in the TUI\n"


def test_a_history_limit_out_of_range_is_bad_usage_in_the_servers_words(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    http.post(
        f"{server.url}/send_message/bob",
        data={"author": "alice", "message": "m0"},
        headers=bearer(users["alice"]),
    )
    env = {**script_env, "PAIRCHAT_TOKEN": users["bob"]}
    for limit in ("0", "-5", "1001", "99999"):
        done = pairchat("history", "alice", "--limit", limit, server=server.url, env=env)
        assert (done.returncode, done.stdout) == (2, ""), limit
        assert done.stderr == "pairchat history: 'limit' must be between 1 and 1000\n", limit
    for limit in ("1", "1000"):
        done = pairchat("history", "alice", "--limit", limit, server=server.url, env=env)
        assert (done.returncode, done.stdout) == (0, "alice: m0\n"), done.stderr


MEASURE_CHILD = """
import resource, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
block = b"x" * (1 << 20)
for _ in range(100):
    child.stdin.write(block)
child.stdin.close()
err = child.stderr.read().decode()
print(child.wait(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, err, sep="|")
"""


def test_stdin_far_over_a_message_is_counted_not_held(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str]
) -> None:
    """100 MB piped to ``send``: refused with its exact length, and the program's memory
    stays far below the input's (it keeps one message's worth, then only counts)."""
    command = [sys.executable, "-m", "tui.cli", "--server", server.url, "send", "bob"]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_CHILD, *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **script_env, "PAIRCHAT_TOKEN": users["alice"]},
        timeout=120,
    )
    status, peak_mb, said = done.stdout.split("|", 2)
    assert (status, said) == (
        "2",
        "pairchat send: the text is 104,857,600 characters; a message holds 4,000\n\n",
    ), done.stderr
    assert int(peak_mb) < 100, f"{peak_mb} MB held for 100 MB of input"
    assert texts(server, users["bob"]) == []


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("send bob --help wanted on the build", "--help wanted on the build"),
        ("send bob -h is the flag", "-h is the flag"),
        ("send bob '-h is the flag'", "-h is the flag"),
        ("send bob hi --file x", "hi --file x"),
        ("send bob --", "--"),
    ],
)
def test_the_doors_send_takes_every_word_after_the_name_as_the_text(line: str, text: str) -> None:
    args = door_command(shlex.split(line))
    assert isinstance(args, argparse.Namespace), line
    assert (args.command, args.peer, args.text) == ("send", "bob", text)


DOOR_HELP_LINES = ["send -h", "send --help", "send bob --help", "send bob -h"]
DOOR_HELP_LINES += ["history --help", "history bob -h", "tail -h", "tail bob --help"]


@pytest.mark.parametrize("line", DOOR_HELP_LINES)
def test_the_doors_help_is_the_flag_alone_or_right_after_the_name(line: str) -> None:
    assert door_command(shlex.split(line)) == DOOR_USAGE


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("send bob --file x", "--file is not available over SSH; use scp FILE HOST:bob/"),
        ("send --file=x bob", "--file is not available over SSH; use scp FILE HOST:bob/"),
        ("send bob --help me", None),
        ("history bob --json --help", "unrecognized arguments: --help"),
        ("send -h bob", "the following arguments are required: USER"),
    ],
)
def test_the_doors_option_words_are_options_only_in_option_place(
    line: str, why: str | None
) -> None:
    if why is None:
        assert isinstance(door_command(shlex.split(line)), argparse.Namespace)
        return
    with pytest.raises(ScriptError) as refused:
        door_command(shlex.split(line))
    assert (refused.value.message, refused.value.status) == (why, 2)
