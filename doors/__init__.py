"""The doors: ways in to pairchat that need nothing installed on the user's side.

- the SSH door (``python -m doors ssh``): an SSH server whose every session is the
  pairchat TUI in its own pseudo-terminal; the SSH key is the account;
- the browser door (``python -m doors web``): the same TUI in a browser page
  (textual-serve), one process per tab.

The doors run the TUI as a separate program (``python -m tui.door``) and talk to
the API over HTTP only: this package imports neither ``tui`` nor ``backend``
(``lint-imports`` checks it), so a door can run on another machine than the API.
How they are built and run: docs/doors.md.
"""
