"""docs/api.md's "Writing a bot", run as written against a server killed and restarted under it.

The echo bot is the page's own code block, saved to a file and started as a program.
Three people write to it while the server is SIGKILLed, SIGTERMed and restarted, and
the bot itself is SIGKILLed and restarted; their clients send with ``client_id`` and
retry until acknowledged, as a real client does. At the end every acknowledged message
has exactly one echo: none missed, none doubled (counted once each person's last message,
sent after all the others, has its echo: the bot answers in order).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, ServerProcess, bearer, register

pytestmark = pytest.mark.live  # real server processes, killed and restarted
PAGE = (REPO / "docs" / "api.md").read_text()
BOT = re.search(r"## Writing a bot\n.*?```python\n(.*?)```", PAGE, re.S)
PEOPLE = ("ann", "ben", "cat")
ROUNDS = 24  # messages per person


class Bot:
    def __init__(self, folder: Path, url: str) -> None:
        assert BOT is not None, "docs/api.md has no 'Writing a bot' program"
        self.program = folder / "echo_bot.py"
        self.program.write_text(BOT.group(1))
        self.state = folder / "echo_bot.json"
        self.log = folder / "echo_bot.log"
        self.env = {
            **os.environ,
            "PAIRCHAT_URL": url,
            "BOT_USER": "echobot",
            "BOT_PASSWORD": "correct horse",
            "BOT_STATE": str(self.state),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.program)], env=self.env, stdout=log, stderr=log
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[tuple[Bot, list[ServerProcess]]]:
    servers = [ServerProcess(tmp_path / "data").start()]
    register(servers[0].url, "echobot")
    running = Bot(tmp_path, servers[0].url)
    yield running, servers
    if running.proc is not None and running.proc.poll() is None:
        running.kill()
    for server in servers:
        server.stop()


def send_until_acknowledged(url: str, token: str, author: str, text: str) -> None:
    """A client's send: retried with the same client_id until the server answers it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            reply = httpx.post(
                f"{url}/send_message/echobot",
                data={"author": author, "message": text, "client_id": text.replace(" ", "-")},
                headers=bearer(token),
                timeout=5,
            )
            if reply.status_code == 200:
                return
            assert reply.status_code >= 500, reply.text  # a refusal would never pass
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{text} was never acknowledged"
        time.sleep(0.1)


def echoes(url: str, token: str, person: str) -> Counter[str]:
    reply = httpx.post(
        f"{url}/get_message_history",
        data={"user_one": person, "user_two": "echobot"},
        headers=bearer(token),
        timeout=10,
    )
    return Counter(m["message"] for m in reply.json()["history"] if m["author"] == "echobot")


def test_the_documented_bot_answers_everything_once_through_kills_and_restarts(
    bot: tuple[Bot, list[ServerProcess]],
) -> None:
    running, servers = bot
    url = servers[0].url
    tokens = {person: register(url, person) for person in PEOPLE}
    # one message before the bot ever ran: its first start leaves the backlog alone
    send_until_acknowledged(url, tokens["ann"], "ann", "before the bot")
    running.start()
    deadline = time.monotonic() + 30
    while not running.state.exists() or '"cursor": null' in running.state.read_text():
        assert time.monotonic() < deadline, running.log.read_text()
        time.sleep(0.05)

    def restart_server(how: str) -> None:
        old = servers[-1]
        if how == "kill":
            old.kill()
        else:
            old.stop()
        servers.append(ServerProcess(old.data_dir, port=old.port).start())

    disruptions = {
        6: lambda: restart_server("kill"),
        12: lambda: restart_server("term"),
        16: running.kill,
        17: running.start,
        20: lambda: restart_server("kill"),
    }
    sent = []
    for n in range(ROUNDS):
        if n in disruptions:
            disruptions[n]()
        for person in PEOPLE:
            text = f"{person}-{n}"
            send_until_acknowledged(url, tokens[person], person, text)
            sent.append((person, text))
    # each person's last word, a marker: the bot answers a person's messages in order, so
    # once the marker's echo is stored every echo of what came before it is too - a
    # doubled one included. "None doubled" is then proven by order, not by a quiet while.
    for person in PEOPLE:
        send_until_acknowledged(url, tokens[person], person, f"{person}-last")
    deadline = time.monotonic() + 60
    while True:
        counts = {person: echoes(url, tokens[person], person) for person in PEOPLE}
        if all(counts[person][f"echo: {person}-last"] for person in PEOPLE):
            break
        assert time.monotonic() < deadline, (counts, running.log.read_text()[-2000:])
        time.sleep(0.2)
    answered = sum(1 for person, text in sent if counts[person][f"echo: {text}"] >= 1)
    doubled = [text for person, text in sent if counts[person][f"echo: {text}"] > 1]
    missed = [text for person, text in sent if counts[person][f"echo: {text}"] == 0]
    print(
        f"\nbot: {len(sent)} messages, {answered} answered, {len(missed)} missed, "
        f"{len(doubled)} doubled; {len(servers) - 1} server restarts, 1 bot kill"
    )
    assert missed == [] and doubled == [], running.log.read_text()[-2000:]
    assert counts["ann"]["echo: before the bot"] == 0, "the backlog is left alone"
