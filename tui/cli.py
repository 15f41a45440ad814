"""``pairchat``: the terminal client's entry point (flags, then the app).

``pairchat [--server URL] [--user NAME]`` runs the app; ``pairchat send|history|tail``
are for scripts (tui/scripting.py). Flags override ``PAIRCHAT_*``
environment variables, which override ``config.toml`` in the config folder.
"""

from __future__ import annotations

import argparse
import sys

from tui.config import DEFAULT_SERVER, load_config
from tui.scripting import add_commands, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pairchat",
        description="One-to-one chat in the terminal. Keys are listed in the footer.",
        epilog="Environment: PAIRCHAT_SERVER, PAIRCHAT_USER, PAIRCHAT_PASSWORD "
        "(signs in without the form), PAIRCHAT_CONFIG_DIR (where config.toml, the "
        "saved token and the outbox live).",
    )
    p.add_argument(
        "--server", metavar="URL", help=f"the pairchat server (default {DEFAULT_SERVER})"
    )
    p.add_argument("--user", metavar="NAME", help="the username to sign in as")
    add_commands(p, local_files=True)
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args, extra = command_line.parse_known_args(sys.argv[1:] if argv is None else argv)
    if extra and getattr(args, "text", "") is None and len(extra) == 1:
        # argparse matches an optional TEXT before an option that comes first
        # (send bob --file F "caption"): what is left over is the TEXT.
        args.text = extra.pop()
    if extra:
        command_line.error(f"unrecognized arguments: {' '.join(extra)}")
    config = load_config(server=args.server, user=args.user)
    if args.command is not None:  # a script's command: no Textual
        return run(args, config)
    from tui.app import make_app  # Textual loads only when the app runs

    make_app(config, signals=True).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
