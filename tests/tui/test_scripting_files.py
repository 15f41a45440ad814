"""``pairchat send USER --file PATH [TEXT]``: the real program against a real server; the
file arrives byte for byte, a refusal is one line on stderr and a non-zero status, and
``history`` shows the file ("📎 name · size"; ``--json``: the attachment object)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import LiveServer, ServerProcess, bearer, http, register
from tui.client.models import Attachment, Message
from tui.scripting import formatter

from .test_scripting import pairchat

PAPERCLIP = "\U0001f4ce"


@pytest.fixture
def script_env(tmp_path: Path) -> dict[str, str]:
    """A config folder of its own, and no token from the test's environment."""
    return {"PAIRCHAT_CONFIG_DIR": str(tmp_path / "config"), "PAIRCHAT_TOKEN": ""}


def history(server: LiveServer, token: str) -> list[dict]:  # type: ignore[type-arg]
    reply = http.post(
        f"{server.url}/get_message_history",
        data={"user_one": "bob", "user_two": "alice"},
        headers=bearer(token),
    )
    messages: list[dict] = reply.json()["history"]  # type: ignore[type-arg]
    return messages


def test_send_file_round_trip_and_history_shows_it(
    server: LiveServer, users: dict[str, str], script_env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(200_000) + b"\x00\r\n"
    path = tmp_path / "dump.bin"
    path.write_bytes(data)
    env = {**script_env, "PAIRCHAT_TOKEN": users["alice"]}
    done = pairchat("send", "bob", "--file", str(path), "the dump", server=server.url, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    (message,) = history(server, users["bob"])
    assert message["message"] == "the dump"
    assert message["attachment"]["name"] == "dump.bin"
    assert message["attachment"]["size"] == len(data)
    got = http.get(
        f"{server.url}/file/{message['id']}",
        params={"user_one": "bob", "user_two": "alice"},
        headers=bearer(users["bob"]),
    )
    assert got.content == data
    bob = {**script_env, "PAIRCHAT_TOKEN": users["bob"]}
    as_json = pairchat("history", "alice", "--json", server=server.url, env=bob)
    assert as_json.returncode == 0, as_json.stderr
    (record,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["attachment"] == message["attachment"], "as the server sent it"
    plain = pairchat("history", "alice", server=server.url, env=bob)
    assert plain.stdout == f"alice: the dump  {PAPERCLIP} dump.bin \u00b7 195 KB\n"
    alone = pairchat("send", "bob", "--file", str(path), server=server.url, env=env)
    assert alone.returncode == 0, alone.stderr  # no TEXT: no caption
    assert history(server, users["bob"])[-1]["message"] == ""


def test_a_file_refused_is_one_line_and_a_status(
    app_server: object, script_env: dict[str, str], tmp_path: Path
) -> None:
    server = app_server(max_file_bytes=1024)  # type: ignore[operator]
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    big = tmp_path / "report.pdf"
    big.write_bytes(b"%" * 30_000)
    env = {**script_env, "PAIRCHAT_TOKEN": alice}
    refused = pairchat("send", "bob", "--file", str(big), server=server.url, env=env)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("pairchat send: report.pdf is 29.3 KB: ")
    missing = pairchat("send", "bob", "--file", str(tmp_path / "nope"), server=server.url, env=env)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "does not exist" in missing.stderr
    assert history(server, bob) == []


@pytest.mark.parametrize("as_json", [False, True])
def test_tail_lines_show_the_file(as_json: bool) -> None:
    message = Message(7, "alice", "", 1.0, attachment=Attachment("a\nb.txt", 2048, "text/plain"))
    line = formatter(as_json, to_terminal=False)("alice", message)
    if as_json:
        assert json.loads(line)["attachment"] == {
            "name": "a\nb.txt",
            "size": 2048,
            "type": "text/plain",
        }
    else:
        assert line == f"alice: {PAPERCLIP} a\u23ceb.txt \u00b7 2 KB", "one line, always"


def test_the_ssh_door_sends_no_file_of_its_own_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ssh HOST send bob --file=/etc/passwd`` runs on the door's machine: refused in one
    line that says how to send a file (scp), before any sign-in or request."""
    from tui.config import Config
    from tui.door import run_command

    config = Config(server="http://127.0.0.1:9", config_dir=tmp_path)
    for words in (["send", "--file=/etc/passwd", "bob"], ["send", "bob", "--file=/etc/hosts"]):
        assert run_command(json.dumps(words), config) == 2
        assert capsys.readouterr().err == (
            "pairchat send: --file is not available over SSH; use scp FILE HOST:bob/\n"
        )


def test_a_file_over_the_limit_of_the_real_server_is_a_refusal_not_an_outage(
    server_process: Callable[..., ServerProcess], script_env: dict[str, str], tmp_path: Path
) -> None:
    """Under granian a body declared over the limit is answered 413 at once and the rest
    of the upload resets the connection, which often loses the answer: the program says
    the file was refused (status 1, one line), not that the server is down (status 3)."""
    proc = server_process(env={"PAIRCHAT_MAX_FILE_BYTES": str(1024 * 1024)})
    alice, bob = register(proc.url, "alice"), register(proc.url, "bob")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    env = {**script_env, "PAIRCHAT_TOKEN": alice}
    refused = pairchat("send", "bob", "--file", str(big), server=proc.url, env=env)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("pairchat send: big.bin is 8 MB: "), refused.stderr
    assert "size limit" in refused.stderr or "at most 1048576 bytes" in refused.stderr
    assert history(proc, bob) == []  # type: ignore[arg-type]
