"""``python -m tui.door``: the TUI as a door starts it for one session (SSH or browser).

The same program as ``pairchat``, configured by the door through the environment
instead of flags and a config file the user could edit:

- ``PAIRCHAT_SERVER``: the API the session talks to (usually http://127.0.0.1:PORT);
- ``PAIRCHAT_CONFIG_DIR``: where this user's outbox, drafts and preferences live
  (a folder the door keeps per user, inside its data folder);
- ``PAIRCHAT_USER`` and ``PAIRCHAT_TOKEN``: the account the door signed in (a known
  SSH key); without them the session starts on the sign-in screen;
- ``PAIRCHAT_DOOR_TICKET``: an unknown SSH key's one-time ticket, for the "claim a
  username" screen;
- ``PAIRCHAT_REMOTE=1``: links are copied, not opened (a browser here would open on
  the server).

The token is never written to disk here: the session keeps it in memory only.

``python -m tui.door --factory SOCKET`` is the SSH door's session factory: it
loads the TUI once and forks this same ``main()`` for each session the door
sends it (doors/factory.py), so sessions share the loaded code's memory.
"""

from __future__ import annotations

import os
import sys

from tui.config import load_config


def main() -> int:
    config = load_config()
    config.remember_session = False
    token = os.environ.get("PAIRCHAT_TOKEN") or None
    user = os.environ.get("PAIRCHAT_USER") or None
    from tui.app import make_app  # Textual loads only when the app runs

    ticket = os.environ.get("PAIRCHAT_DOOR_TICKET") or None
    given = (user, token) if user and token else None
    app = make_app(config, signals=True, token=given, ticket=ticket)
    app.run()
    return 0


def factory(path: str) -> int:
    """Load the TUI and what a running session imports, then serve sessions on ``path``."""
    import textual.drivers.linux_driver
    import textual.layouts.horizontal
    import textual.scrollbar  # noqa: F401

    import tui.app  # noqa: F401
    from doors.factory import serve

    return serve(path, main)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--factory":
        sys.exit(factory(sys.argv[2]))
    sys.exit(main())
