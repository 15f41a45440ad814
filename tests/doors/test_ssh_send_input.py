"""``… | ssh HOST send bob``: every byte piped in reaches the command, in order, or the
command says no (docs/doors.md). With the real OpenSSH client, door and API.

The door starts the command only after asking the API who the key is, so what the
client sends first arrives before there is a process to give it to; it must wait
for it (the channel paused), never be dropped."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import Callable
from pathlib import Path

import pytest

from doors.command_input import CommandInput
from doors.pty import Size, open_pty
from tests.doors import test_ssh_commands as commands
from tests.doors.conftest import Door, wait_until
from tests.support import ServerProcess, register

alice_key = commands.alice_key
MESSAGE_LIMIT = 4000
"""Characters in one message: the server's limit (docs/api.md, "Limits")."""


def piped(door: Door, key: Path, data: bytes, *command: str) -> subprocess.CompletedProcess[bytes]:
    """``command`` over ssh with ``data`` on its stdin (one write, then EOF)."""
    return subprocess.run(
        commands.ssh_command(door, key, *command), input=data, capture_output=True, timeout=60
    )


def test_six_thousand_bytes_in_one_write_arrive_whole(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    bob = register(api.url, "bob")
    text = "漢" * 2000  # 6,000 bytes: more than the door once kept before the command started
    for _ in range(3):
        done = piped(ssh_door, alice_key, text.encode(), "send", "bob")
        assert done.returncode == 0, done.stderr.decode()
    assert commands.history_of(api, bob) == [text] * 3


def test_a_slow_producer_s_chunks_arrive_in_order(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    bob = register(api.url, "bob")
    producer = subprocess.Popen(
        commands.ssh_command(ssh_door, alice_key, "send", "bob"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert producer.stdin is not None
    try:
        producer.stdin.write(b"START-")
        producer.stdin.flush()
        producer.stdin.write(("漢" * 1500).encode())  # before the command exists
        producer.stdin.flush()
        wait_until(lambda: "command send started" in ssh_door.log(), "the send command started")
        _, err = producer.communicate(b"-END", timeout=60)  # after it does, then EOF
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err.decode()
    assert commands.history_of(api, bob) == ["START-" + "漢" * 1500 + "-END"]


def test_the_message_limit_is_counted_on_every_byte_sent(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    bob = register(api.url, "bob")
    at_limit = "漢" * MESSAGE_LIMIT
    done = piped(ssh_door, alice_key, at_limit.encode(), "send", "bob")
    assert done.returncode == 0, done.stderr.decode()
    assert commands.history_of(api, bob) == [at_limit]

    for over in (MESSAGE_LIMIT + 1, 100_000):  # 100,000: far past the channel's buffers
        done = piped(ssh_door, alice_key, ("é" * over).encode(), "send", "bob")
        assert done.returncode == 2
        said = done.stderr.decode().strip().splitlines()
        assert said == [
            f"pairchat send: the text is {over:,} characters; a message holds {MESSAGE_LIMIT:,}"
        ]
    assert commands.history_of(api, bob) == [at_limit], "nothing over the limit is stored"

    # a command that does not read its stdin is not held up by what is piped to it
    shown = piped(ssh_door, alice_key, b"x" * 300_000, "history", "bob", "--limit", "1")
    assert (shown.returncode, shown.stdout.decode()) == (0, f"alice: {at_limit}\n")


# -- the queue itself, with a real child process ------------------------------------------
READ_ALL = (
    "import sys, hashlib; d = sys.stdin.buffer.read(); print(len(d), hashlib.sha1(d).hexdigest())"
)


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_input_before_the_command_exists_pauses_the_client_and_is_all_written() -> None:
    said: list[str] = []
    stdin = CommandInput(pause=lambda: said.append("pause"), resume=lambda: said.append("resume"))
    sent = b"".join(bytes([65 + i]) * 32_768 for i in range(8))  # 256 KiB, 4 x INPUT_HIGH
    for start in range(0, len(sent), 32_768):
        stdin.feed(sent[start : start + 32_768])
    stdin.end()
    assert said == ["pause"], "past INPUT_HIGH the client is asked to wait, once"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READ_ALL, stdin=PIPE, stdout=PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    stdin.start(child.stdin)
    out = await child.stdout.read()
    assert await child.wait() == 0
    assert out.decode().split() == [str(len(sent)), hashlib.sha1(sent).hexdigest()]
    assert (said, stdin.waiting) == (["pause", "resume"], 0)


@pytest.mark.anyio
async def test_a_command_that_does_not_read_lets_the_client_go_on() -> None:
    said: list[str] = []
    stdin = CommandInput(pause=lambda: said.append("pause"), resume=lambda: said.append("resume"))
    for _ in range(8):
        stdin.feed(b"x" * 32_768)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; os.close(0)", stdin=PIPE
    )
    assert child.stdin is not None
    stdin.start(child.stdin)
    assert await child.wait() == 0
    await _until(lambda: said == ["pause", "resume"], "the client let go on")
    stdin.feed(b"more")  # nobody reads it now: not kept
    assert stdin.waiting == 0
    stdin.close()


def test_what_the_door_cannot_do_is_refused_in_one_line(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    bob = register(api.url, "bob")
    ssh = commands.ssh_command
    refused = subprocess.run(
        ssh(ssh_door, alice_key, "send", "bob", "--file", "/etc/passwd"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (refused.returncode, refused.stderr) == (
        2,
        "pairchat send: --file is not available over SSH; use scp FILE HOST:bob/\n",
    )
    for limit in ("0", "-5", "99999"):
        done = subprocess.run(
            ssh(ssh_door, alice_key, "history", "bob", "--limit", limit),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout) == (2, ""), limit
        assert done.stderr == "pairchat history: 'limit' must be between 1 and 1000\n"
    assert commands.history_of(api, bob) == []

    for command in (("send", "--help"), ("send", "bob", "-h"), ("history", "--help")):
        helped = subprocess.run(
            ssh(ssh_door, alice_key, *command), capture_output=True, text=True, timeout=60
        )
        assert (helped.returncode, helped.stderr) == (0, ""), command
        usage = helped.stdout.splitlines()
        assert usage[0].startswith("usage: ssh HOST send USER [TEXT ...]"), helped.stdout
        assert [line.split("ssh HOST ")[1].split()[0] for line in usage if "ssh HOST" in line] == [
            "send",
            "history",
            "tail",
        ]
        assert "scp FILE HOST:USER/" in helped.stdout
    assert commands.history_of(api, bob) == []


def test_keys_sent_before_the_tui_starts_wait_for_it_whole_and_unechoed() -> None:
    """The door writes what the client sent early into a pty nobody reads yet: all of it
    must reach the TUI as sent. A cooked pty kept 4,095 bytes of an unfinished line,
    made Enter a newline (Ctrl+J) and echoed everything back to the client."""
    keys = b"\x1b[200~" + b"a" * 3000 + b"b" * 3000 + b"\x1b[201~\r"
    master, slave = open_pty(Size(80, 24))
    try:
        os.set_blocking(slave, False)
        written = 0
        while written < len(keys):  # all of it before the TUI (here: us) reads any
            written += os.write(master, keys[written:])
        got = bytearray()

        def all_read() -> bool:
            with contextlib.suppress(BlockingIOError):
                got.extend(os.read(slave, 65536))
            return len(got) >= len(keys)

        wait_until(all_read, f"{len(keys)} bytes from the pty", timeout=5)
        assert bytes(got) == keys
        with pytest.raises(BlockingIOError):  # nothing echoed back to the client
            os.read(master, 65536)
    finally:
        os.close(master)
        os.close(slave)


def test_a_message_that_looks_like_an_option_is_sent_as_typed(
    api: ServerProcess, alice_key: Path, ssh_door: Door
) -> None:
    """Only ``-h``/``--help`` alone after USER asks for help and only ``--file`` right
    after USER is refused: any other words after the name are the message."""
    bob = register(api.url, "bob")
    sent = [
        (("--help", "wanted", "on", "the", "build"), "--help wanted on the build"),
        (("'-h is the flag'",), "-h is the flag"),  # one word on the door's side
        (("-h", "is", "short", "for", "--help"), "-h is short for --help"),
        (("use", "--file", "PATH", "with", "pairchat"), "use --file PATH with pairchat"),
    ]
    for words, _ in sent:
        done = subprocess.run(
            commands.ssh_command(ssh_door, alice_key, "send", "bob", *words),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), words
    assert commands.history_of(api, bob) == [text for _, text in sent]
