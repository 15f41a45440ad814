"""``pairchat send|tail|history``: the chat from a pipe, a cron job or a script.

    make test 2>&1 | tail -20 | pairchat send bob      # stdin becomes one message
    pairchat send bob "the backup finished"            # or the words given
    pairchat send bob --file report.pdf "Q3, final"    # a file (TEXT: its caption)
    pairchat history bob --limit 5 --json              # one JSON object per line
    pairchat tail bob                                  # the last 10, then follow live

Sign-in comes from ``PAIRCHAT_TOKEN`` (with ``PAIRCHAT_SERVER``, and ``PAIRCHAT_USER`` for
a token without the ``read`` scope, which may not ask who it is), else from the session
the TUI saved for the server (``session.toml``): a script never asks for a password.
Nothing here imports Textual; output to a terminal shows control characters as
visible marks (tui.text), output to a pipe or file is the text as sent. A message
with a file prints "📎 name · size" after its text, on its line; ``--json`` carries the
``attachment`` object as the server sent it (``null`` for text only).

``send --file`` streams the file from disk (never whole into memory), with a
``client_id`` so a retry after a dropped connection stores it once; without TEXT it
has no caption and does not read stdin.

Over the SSH door the same commands run without ``--file`` (refused: a path there is
the server's), and ``--help`` prints the door's usage (:func:`run_door_command`).

Exit status: 0 done, 1 the server refused (its message on stderr), 2 bad usage or no
session, 3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO

from tui.client.events import Retry, StreamEnd
from tui.client.http import UPLOAD_CUT, ApiError, PairchatClient, ServerUnreachable
from tui.client.models import Feed, Message, Sent
from tui.config import Config
from tui.text import attachment_label, display_text, human_size

MAX_MESSAGE = 4000
"""Characters in one message (the server's limit: docs/api.md, "Limits")."""
MAX_HISTORY = 1000
"""Messages ``history --limit`` may ask for (the server's page: 'limit' 1 to 1000)."""
TAIL_LINES = 10
SEND_TRIES = 3
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class ScriptError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def client_for(
    config: Config,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> PairchatClient:
    """A client signed in from ``PAIRCHAT_TOKEN`` or the TUI's saved session (``headers``:
    a door's word for who its visitor is)."""
    environ = os.environ if env is None else env
    token = environ.get("PAIRCHAT_TOKEN", "").strip()
    if token:  # PAIRCHAT_USER spares asking /me (a send-only script token may not read)
        return PairchatClient(config.server, token, username=config.user or None, headers=headers)
    saved = config.saved_session()
    if saved is None:
        raise ScriptError(
            f"no session for {config.server}: sign in once with `pairchat`, or set PAIRCHAT_TOKEN",
            EXIT_USAGE,
        )
    username, token = saved
    return PairchatClient(config.server, token, username=username)


async def _signed_in(client: PairchatClient) -> PairchatClient:
    if client.username is None:
        await client.me()
    return client


# -- send ----------------------------------------------------------------------------
async def send(client: PairchatClient, to: str, text: str) -> int:
    """Send ``text`` to ``to`` once (retried with the same client_id if the connection
    fails); the message's id."""
    if text.strip() == "":
        raise ScriptError("nothing to send (the text is empty)", EXIT_USAGE)
    if len(text) > MAX_MESSAGE:
        raise ScriptError(too_long("text", len(text)), EXIT_USAGE)
    await _signed_in(client)
    return await _once(lambda client_id: client.send(to, text, client_id=client_id))


async def _once(send: Callable[[str], Awaitable[Sent]]) -> int:
    """``send(client_id)``, tried again with the same client_id (so it is stored once)
    while the server cannot be reached, up to ``SEND_TRIES`` times; the message's id."""
    client_id = "pipe-" + secrets.token_hex(8)
    for attempt in range(SEND_TRIES):
        try:
            return (await send(client_id)).id
        except ServerUnreachable:
            if attempt == SEND_TRIES - 1:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def send_file(client: PairchatClient, to: str, path: str, caption: str = "") -> int:
    """Send the file at ``path`` to ``to`` once (retried with the same client_id if the
    connection fails); the message's id."""
    found = Path(path).expanduser()
    if not found.is_file():
        why = "is a folder" if found.is_dir() else "is not a file" if found.exists() else ""
        raise ScriptError(f"{path} {why or 'does not exist'}", EXIT_USAGE)
    if len(caption) > MAX_MESSAGE:
        raise ScriptError(too_long("caption", len(caption)), EXIT_USAGE)
    await _signed_in(client)
    try:
        return await _once(
            lambda client_id: client.send_file(to, found, caption, client_id=client_id)
        )
    except OSError as exc:
        raise ScriptError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    except ApiError as exc:
        if exc.status == 413 or exc.code == UPLOAD_CUT:
            size = human_size(found.stat().st_size)
            raise ScriptError(f"{found.name} is {size}: {exc.message}", EXIT_REFUSED) from None
        raise


STDIN_CHUNK = 64 * 1024
"""Characters read from stdin at a time."""


def read_stdin(stream: TextIO) -> str:
    """What was piped in, without the one final newline a command prints.

    Only the first ``MAX_MESSAGE`` + 1 characters are kept: input longer than a message
    is read to its end (and counted), never held whole, and refused in :func:`too_long`'s
    words (``cat /dev/zero | pairchat send bob`` cannot fill the memory)."""
    kept: list[str] = []
    count = 0
    last = ""
    while chunk := stream.read(STDIN_CHUNK):
        if count <= MAX_MESSAGE:
            kept.append(chunk[: MAX_MESSAGE + 1 - count])
        count += len(chunk)
        last = chunk[-1]
    if last == "\n":
        count -= 1
    if count > MAX_MESSAGE:
        raise ScriptError(too_long("text", count), EXIT_USAGE)
    text = "".join(kept)
    return text[:-1] if last == "\n" else text


def too_long(what: str, count: int) -> str:
    """The refusal of a text or caption of ``count`` characters (over ``MAX_MESSAGE``)."""
    return f"the {what} is {count:,} characters; a message holds {MAX_MESSAGE:,}"


# -- history and tail -------------------------------------------------------------------
def formatter(as_json: bool, to_terminal: bool) -> Callable[[str, Message], str]:
    def line(peer: str, message: Message) -> str:
        if as_json:
            record = {
                "with": peer,
                "id": message.id,
                "author": message.author,
                "message": message.text,
                "date_sent": message.date_sent,
                "deleted": message.deleted,
                "attachment": message.attachment.as_json() if message.attachment else None,
            }
            return json.dumps(record, ensure_ascii=True)
        text = "(deleted)" if message.deleted else message.text
        if to_terminal:
            text = display_text(text)
        if message.attachment is not None and not message.deleted:
            label = attachment_label(message.attachment)  # one line, its controls visible
            text = f"{text}  {label}" if text else label
        return f"{message.author}: {text}"

    return line


async def history(client: PairchatClient, peer: str, limit: int) -> list[Message]:
    """The newest ``limit`` messages with ``peer``, oldest first (``limit`` out of
    1..``MAX_HISTORY``: bad usage, in the server's words)."""
    if not 1 <= limit <= MAX_HISTORY:
        raise ScriptError(f"'limit' must be between 1 and {MAX_HISTORY}", EXIT_USAGE)
    await _signed_in(client)
    page = await client.history(peer, limit=limit)
    return list(page.messages)[-limit:]


async def follow(client: PairchatClient, peer: str | None) -> AsyncIterator[tuple[str, Message]]:
    """Every new message (of ``peer``, or of everyone), as the event stream tells of it."""
    await _signed_in(client)
    seen: dict[str, int] = {}
    cursor: str | None = None
    while True:
        try:
            async with contextlib.aclosing(client.events(cursor)) as stream:
                async for item in stream:
                    if isinstance(item, Retry):
                        continue
                    if isinstance(item, StreamEnd):
                        break
                    assert isinstance(item, Feed)
                    first = cursor is None
                    cursor = item.cursor
                    for change in item.changes:
                        name = change.username
                        if peer is not None and name != peer.lower():
                            continue
                        if first:
                            seen.setdefault(name, change.last_id)
                            continue
                        while change.last_id > seen.get(name, 0):
                            page = await client.history(name, after_id=seen.get(name, 0))
                            for message in page.messages:
                                seen[name] = max(seen.get(name, 0), message.id)
                                yield name, message
                            if not page.messages:
                                break
        except ServerUnreachable:
            pass
        await asyncio.sleep(1.0)


async def tail(
    client: PairchatClient,
    peer: str | None,
    write: Callable[[str], None],
    line: Callable[[str, Message], str],
) -> None:
    if peer is not None:
        for message in await history(client, peer, TAIL_LINES):
            write(line(peer, message))
    async for name, message in follow(client, peer):
        write(line(name, message))


# -- the command line ---------------------------------------------------------------------
def run(args: argparse.Namespace, config: Config, headers: Mapping[str, str] | None = None) -> int:
    """Run the command ``args.command``; its exit status."""
    command = args.command
    out = sys.stdout
    to_terminal = out.isatty()

    def write(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    async def main() -> int:
        client = client_for(config, headers=headers)
        async with client:
            if command == "send" and getattr(args, "file", None) is not None:
                await send_file(client, args.peer, args.file, args.text or "")
                return 0
            if command == "send":
                text = args.text if args.text is not None else read_stdin(sys.stdin)
                await send(client, args.peer, text)
                return 0
            line = formatter(args.json, to_terminal)
            if command == "history":
                for message in await history(client, args.peer, args.limit):
                    write(line(args.peer, message))
                return 0
            await tail(client, args.peer, write, line)
            return 0

    try:
        return asyncio.run(main())
    except ScriptError as exc:
        print(f"pairchat {command}: {exc.message}", file=sys.stderr)
        return exc.status
    except ApiError as exc:
        print(f"pairchat {command}: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except ServerUnreachable:
        print(f"pairchat {command}: cannot reach {config.server}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 0


def add_commands(
    parser: argparse.ArgumentParser, *, local_files: bool = False, help_flags: bool = True
) -> None:
    """``send``, ``history`` and ``tail`` as sub-commands of ``pairchat``.

    ``local_files``: ``send`` takes ``--file PATH``, a file of the machine this runs on.
    Only the ``pairchat`` program on the user's own machine offers it: the SSH door runs
    these commands on the server's machine, where a path would read the door's files.
    ``help_flags``: each takes ``-h``/``--help`` (the door decides on help itself)."""
    commands = parser.add_subparsers(dest="command", metavar="{send,history,tail}")
    send_p = commands.add_parser(
        "send", help="send TEXT (or what comes on stdin) to USER", add_help=help_flags
    )
    send_p.add_argument("peer", metavar="USER")
    send_p.add_argument(
        "text", metavar="TEXT", nargs="?", help="default: stdin (with --file: no caption)"
    )
    if local_files:
        send_p.add_argument(
            "--file", metavar="PATH", help="send this file (TEXT, if given, is its caption)"
        )
    history_p = commands.add_parser(
        "history", help="print the newest messages with USER", add_help=help_flags
    )
    history_p.add_argument("peer", metavar="USER")
    history_p.add_argument("--limit", type=int, default=20, metavar="N")
    history_p.add_argument("--json", action="store_true", help="one JSON object per line")
    tail_p = commands.add_parser(
        "tail", help="print new messages as they come (Ctrl+C ends)", add_help=help_flags
    )
    tail_p.add_argument("peer", metavar="USER", nargs="?", help="default: everyone")
    tail_p.add_argument("--json", action="store_true", help="one JSON object per line")


# -- over SSH ---------------------------------------------------------------------------
DOOR_USAGE = """\
usage: ssh HOST send USER [TEXT ...]    send TEXT (default: stdin until EOF) to USER
       ssh HOST history USER [--limit N] [--json]
                                        the newest N (default 20, at most 1000) messages
       ssh HOST tail [USER] [--json]    the last 10, then new messages as they come
       scp FILE HOST:USER/              send a file (send --file is for pairchat itself)"""
"""What ``ssh HOST send|history|tail --help`` prints: the door's commands."""
HELP = ("-h", "--help")
SCRIPT_COMMANDS = ("send", "history", "tail")


def door_command(words: list[str]) -> argparse.Namespace | str:
    """The SSH door's command line as :func:`run` takes it, or ``DOOR_USAGE`` when help
    is asked for; bad usage is a :class:`ScriptError` (one line, status 2).

    Help is ``-h``/``--help`` alone or right after USER, with nothing after it
    (``send --help``, ``send bob -h``, ``history bob --help``). ssh joins the words after
    ``ssh HOST`` into one line, so ``send``'s words after the name are the message, as
    they were typed, whatever they are: ``send bob --help wanted on the build`` and
    ``send bob -h is the flag`` send those words. ``--file`` in option position (before
    the text) would read a file of the server's machine: refused, with the way to send
    one (scp); later in the message it is a word of the text."""
    command = words[0] if words else ""
    rest = words[1:]
    if command in SCRIPT_COMMANDS and _asks_for_help(rest):
        return DOOR_USAGE
    if command != "send":
        return _parsed(words)
    if any(_is_file_option(word) for word in rest[:2]):
        names = [
            word
            for at, word in enumerate(rest)
            if not word.startswith("-") and (at == 0 or rest[at - 1] != "--file")
        ]
        peer = names[0] if names else "USER"
        raise ScriptError(
            f"--file is not available over SSH; use scp FILE HOST:{peer}/", EXIT_USAGE
        )
    args = _parsed(words[:2])  # the name; what follows is the text, never options
    args.text = " ".join(rest[1:]) if len(rest) > 1 else None
    return args


def _asks_for_help(rest: list[str]) -> bool:
    """``-h``/``--help`` alone, or after a name, with nothing after it."""
    if not rest or rest[-1] not in HELP:
        return False
    return len(rest) == 1 or (len(rest) == 2 and not rest[0].startswith("-"))


def _is_file_option(word: str) -> bool:
    return word == "--file" or word.startswith("--file=")


def _parsed(words: list[str]) -> argparse.Namespace:
    """``words`` through the commands' parser; its complaint as a :class:`ScriptError`."""
    import io

    command = words[0] if words else ""
    parser = argparse.ArgumentParser(prog="ssh HOST", add_help=False)
    add_commands(parser, help_flags=False)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            return parser.parse_args(words)
    except SystemExit:
        lines = said.getvalue().strip().splitlines() or ["bad command"]
        why = lines[-1].removeprefix("ssh HOST: error: ")
        raise ScriptError(why.removeprefix(f"ssh HOST {command}: error: "), EXIT_USAGE) from None


def run_door_command(
    words: list[str], config: Config, headers: Mapping[str, str] | None = None
) -> int:
    """``words`` (``send``, ``history`` or ``tail`` and theirs) run as the door's user; bad
    usage is one line on stderr and status 2, ``--help`` the usage on stdout."""
    try:
        args = door_command(words)
    except ScriptError as exc:
        name = f"pairchat {words[0]}" if words else "pairchat"
        print(f"{name}: {exc.message}", file=sys.stderr)
        return exc.status
    if isinstance(args, str):
        print(args)
        return 0
    return run(args, config, headers=headers)
