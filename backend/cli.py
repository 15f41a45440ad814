"""``pairchat-server``: serve the API, create demo data, back up, export, forget.

``pairchat-server`` alone (or ``serve``) runs the API under granian, a
production WSGI server; ``--dev`` uses Flask's development server instead.
Settings are read once: flags > ``PAIRCHAT_*`` environment > defaults
(``backend.settings``); the operator commands build their services with
``build_services`` directly, no Flask app in between.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import arrow
import click
from click.core import ParameterSource

from backend.app import create_app
from backend.errors import PairchatError
from backend.http import replies
from backend.services import build_services
from backend.settings import THREAD_RESERVE, Settings, SettingsError
from backend.storage.conversation import Conversation
from backend.usernames import Pair, canonical_pair

log = logging.getLogger("pairchat")
DEFAULTS = Settings()

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULTS.data_dir,
    show_default=True,
    help="Folder holding the conversation files and the accounts file [env PAIRCHAT_DATA_DIR].",
)


def settings_from(ctx: click.Context, environ: dict[str, str] | None = None) -> Settings:
    """Defaults < ``PAIRCHAT_*`` in ``environ`` < the flags given on the command line."""
    given = {
        name: value
        for name, value in ctx.params.items()
        if name in _SETTING_NAMES and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    try:
        return Settings.from_env(os.environ if environ is None else environ, **given)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


_SETTING_NAMES = set(Settings.__dataclass_fields__)


def _pair(user_one: str, user_two: str) -> Pair:
    try:
        return canonical_pair(user_one, user_two)
    except PairchatError as exc:
        raise click.UsageError(exc.message) from None


def _operator_settings(ctx: click.Context) -> Settings:
    # One-off commands: no watcher thread for other workers' sends.
    return settings_from(ctx).replace(watch_interval=0)


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
@click.option(
    "--host", default=DEFAULTS.host, show_default=True, help="Address [env PAIRCHAT_HOST]."
)
@click.option(
    "--port", default=DEFAULTS.port, show_default=True, type=int, help="[env PAIRCHAT_PORT]"
)
@data_dir_option
@click.option(
    "--open",
    "open_mode",
    is_flag=True,
    help="Seed mode: conversation routes need no token (logged loudly) [env PAIRCHAT_OPEN_MODE].",
)
@click.option("--dev", is_flag=True, help="Flask's development server (debugging only).")
@click.option(
    "--workers",
    default=DEFAULTS.workers,
    show_default=True,
    type=int,
    help="Worker processes (wake-ups cross processes through the accounts file) "
    "[env PAIRCHAT_WORKERS].",
)
@click.option(
    "--threads",
    default=DEFAULTS.threads,
    show_default=True,
    type=int,
    help=f"Blocking threads per worker; long-polls may hold all but {THREAD_RESERVE} of them "
    "[env PAIRCHAT_THREADS].",
)
@click.pass_context
def serve(ctx: click.Context, dev: bool, **_: Any) -> None:
    """Run the API server."""
    settings = settings_from(ctx)
    settings = settings.replace(data_dir=settings.data_dir.resolve())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.open_mode:
        log.warning("=" * 72)
        log.warning("OPEN MODE: no authentication on conversation routes. Local use only.")
        log.warning("=" * 72)
    log.info("pairchat serving %s on http://%s:%d", settings.data_dir, settings.host, settings.port)
    if dev:
        create_app(settings).run(host=settings.host, port=settings.port, threaded=True)
        return
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "backend.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.workers,
        blocking_threads=settings.threads,
        backpressure=settings.threads,
        backlog=2048,
        respawn_failed_workers=True,
        websockets=False,
    ).serve(target_loader=partial(create_app, settings), wrap_loader=False)


@cli.command("demo-data")
@data_dir_option
@click.pass_context
def demo_data(ctx: click.Context, data_dir: Path) -> None:
    """Create the demo accounts (alice, bob, carol) and a short conversation."""
    from backend.demo import create_demo_data

    with build_services(_operator_settings(ctx)) as services:
        for name, password in create_demo_data(services).items():
            click.echo(f"{name:6} password: {password}")


@cli.command()
@data_dir_option
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def backup(ctx: click.Context, data_dir: Path, dest: Path) -> None:
    """Consistent copy of every file into DEST, safe while the server runs."""
    with build_services(_operator_settings(ctx)) as services:
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
@click.pass_context
def export(ctx: click.Context, data_dir: Path, user_one: str, user_two: str, fmt: str) -> None:
    """Print one conversation as JSON lines or Markdown."""
    pair = _pair(user_one, user_two)
    with build_services(_operator_settings(ctx)) as services:
        conversation = services.conversations.get(pair.low, pair.high, create=False)
        messages = [] if conversation is None else conversation.get_history()
        if fmt == "md":
            click.echo(f"# {pair.low} and {pair.high}\n")
        for message in messages:
            if fmt == "jsonl":
                click.echo(json.dumps(replies.message(message), ensure_ascii=False))
            else:
                when = arrow.get(float(message.date_sent)).isoformat()
                click.echo(f"- **{message.author}** ({when}): {message.message}")


@cli.command()
@data_dir_option
@click.argument("user_one")
@click.argument("user_two")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(ctx: click.Context, data_dir: Path, user_one: str, user_two: str, yes: bool) -> None:
    """Erase one conversation (its file) for good."""
    a, b = _pair(user_one, user_two)
    with build_services(_operator_settings(ctx)) as services:
        if not yes:
            click.confirm(f"Erase the conversation of {a} and {b}?", abort=True)
        found = services.conversations.forget(a, b)
        click.echo(f"erased {a}_{b}.db" if found else f"no conversation between {a} and {b}")


if __name__ == "__main__":
    main()
