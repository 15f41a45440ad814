"""``pairchat-server``: serve the API, create demo data, back up, export, forget.

``pairchat-server`` alone (or ``serve``) runs the API under granian, a
production WSGI server; ``--dev`` uses Flask's development server instead.
Options may also come from ``PAIRCHAT_*`` environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import arrow
import click

from backend.app import DEFAULT_DATA_DIR, create_app
from backend.errors import ApiError
from backend.http.services import Services
from backend.storage.conversation import Conversation
from backend.usernames import canonical_pair

log = logging.getLogger("pairchat")
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    envvar="PAIRCHAT_DATA_DIR",
    help="Folder holding the conversation files and the accounts file.",
)


def _pair(user_one: str, user_two: str) -> tuple[str, str]:
    try:
        return canonical_pair(user_one, user_two)
    except ApiError as exc:
        raise click.UsageError(exc.message) from None


@contextmanager
def _services(data_dir: Path) -> Iterator[Services]:
    """The app's services over ``data_dir`` for one operator command, closed after."""
    app = create_app({"DATA_DIR": str(data_dir), "WATCH_INTERVAL": 0})
    services: Services = app.extensions["pairchat"]
    try:
        yield services
    finally:
        services.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pairchat API server and operator tools.

    Without a command, runs `serve` with the options given:
    `pairchat-server --open` is `pairchat-server serve --open`.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``serve`` is the default command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in cli.commands and args[0] not in ("-h", "--help")):
        args = ["serve", *args]
    cli.main(args=args, prog_name="pairchat-server")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="PAIRCHAT_HOST")
@click.option("--port", default=5000, show_default=True, type=int, envvar="PAIRCHAT_PORT")
@data_dir_option
@click.option(
    "--open",
    "open_mode",
    is_flag=True,
    envvar="PAIRCHAT_OPEN_MODE",
    help="Seed mode: conversation routes need no token (logged loudly).",
)
@click.option("--dev", is_flag=True, help="Flask's development server (debugging only).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    envvar="PAIRCHAT_WORKERS",
    help="Worker processes (wake-ups cross processes through the accounts file).",
)
@click.option(
    "--threads",
    default=1100,
    show_default=True,
    type=int,
    envvar="PAIRCHAT_THREADS",
    help="Blocking threads per worker; long-polls may hold all but 64 of them.",
)
def serve(
    host: str, port: int, data_dir: Path, open_mode: bool, dev: bool, workers: int, threads: int
) -> None:
    """Run the API server."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    reserve = 64
    if threads <= reserve:
        raise click.BadParameter(f"--threads must be more than {reserve}")
    os.environ["PAIRCHAT_DATA_DIR"] = str(data_dir)
    os.environ["PAIRCHAT_OPEN_MODE"] = "true" if open_mode else "false"
    os.environ["PAIRCHAT_MAX_WAITERS"] = str(threads - reserve)
    if open_mode:
        log.warning("=" * 72)
        log.warning("OPEN MODE: no authentication on conversation routes. Local use only.")
        log.warning("=" * 72)
    log.info("pairchat serving %s on http://%s:%d", data_dir, host, port)
    if dev:
        create_app().run(host=host, port=port, threaded=True)
        return
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "backend.app:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        backpressure=threads,
        backlog=2048,
        respawn_failed_workers=True,
        websockets=False,
    ).serve()


@cli.command("demo-data")
@data_dir_option
def demo_data(data_dir: Path) -> None:
    """Create the demo accounts (alice, bob, carol) and a short conversation."""
    from backend.demo import create_demo_data

    with _services(data_dir) as services:
        for name, password in create_demo_data(services).items():
            click.echo(f"{name:6} password: {password}")


@cli.command()
@data_dir_option
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(data_dir: Path, dest: Path) -> None:
    """Consistent copy of every file into DEST, safe while the server runs."""
    with _services(data_dir) as services:
        dest.mkdir(parents=True, exist_ok=True)
        services.account_store.backup_to(dest / services.account_store.path.name)
        count = 0
        for path in services.conversations.files():
            conversation = Conversation(path)
            try:
                conversation.backup_to(dest / path.name)
            finally:
                conversation.close()
            count += 1
        click.echo(f"backed up the accounts file and {count} conversation(s) to {dest}")


@cli.command()
@data_dir_option
@click.argument("user_one")
@click.argument("user_two")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "md"]), default="jsonl", show_default=True
)
def export(data_dir: Path, user_one: str, user_two: str, fmt: str) -> None:
    """Print one conversation as JSON lines or Markdown."""
    with _services(data_dir) as services:
        a, b = _pair(user_one, user_two)
        conversation = services.conversations.get(a, b, create=False)
        messages: list[dict[str, Any]] = [] if conversation is None else conversation.get_history()
        if fmt == "md":
            click.echo(f"# {a} and {b}\n")
        for message in messages:
            if fmt == "jsonl":
                click.echo(json.dumps(message, ensure_ascii=False))
            else:
                when = arrow.get(float(message["date_sent"])).isoformat()
                click.echo(f"- **{message['author']}** ({when}): {message['message']}")


@cli.command()
@data_dir_option
@click.argument("user_one")
@click.argument("user_two")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(data_dir: Path, user_one: str, user_two: str, yes: bool) -> None:
    """Erase one conversation (its file) for good."""
    with _services(data_dir) as services:
        a, b = _pair(user_one, user_two)
        if not yes:
            click.confirm(f"Erase the conversation of {a} and {b}?", abort=True)
        found = services.conversations.forget(a, b)
        click.echo(f"erased {a}_{b}.db" if found else f"no conversation between {a} and {b}")


if __name__ == "__main__":
    main()
