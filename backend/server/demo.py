"""Demo data: alice, bob and carol, their friendships and a short conversation."""

from __future__ import annotations

import contextlib

from backend.core.errors import BadCredentials, Conflict, UsernameTaken
from backend.core.usernames import Username
from backend.services.wiring import Services

DEMO_USERS = {
    Username("alice"): "Alice Liddell",
    Username("bob"): "Bob Builder",
    Username("carol"): "Carol Danvers",
}
DEMO_CONVERSATION = [
    (Username("bob"), Username("alice"), "hey alice, pairchat is up"),
    (Username("alice"), Username("bob"), "nice! one SQLite file per pair, right?"),
    (Username("bob"), Username("alice"), "yes: alice_bob.db. try PageUp for older messages"),
    (Username("carol"), Username("alice"), "ping me when you're free"),
]


def demo_password(username: str) -> str:
    return f"{username}-pairchat"


def check_demo_folder(services: Services) -> None:
    """``Conflict`` unless the folder is new or holds only the demo's own accounts.

    Demo rows never go into real data: an account that is not the demo's, or a demo
    name whose password is not the demo's (a real ``alice``), refuses the folder.
    """
    found = services.account_store.some_usernames(len(DEMO_USERS) + 1)
    strangers = [name for name in found if name not in DEMO_USERS]
    if strangers:
        raise Conflict(
            f"the folder holds real accounts ('{strangers[0]}'): "
            "demo data goes only into a new folder (--data-dir)"
        )
    for name in found:
        try:
            services.accounts.check_password(Username(name), demo_password(name), None)
        except BadCredentials:
            raise Conflict(
                f"'{name}' here is a real account (not the demo's password): "
                "demo data goes only into a new folder (--data-dir)"
            ) from None


def create_demo_data(services: Services) -> dict[str, str]:
    """Idempotent on a demo folder: existing demo accounts are kept, the conversation is
    added once. A folder with real accounts is refused (``check_demo_folder``)."""
    check_demo_folder(services)
    for name, shown in DEMO_USERS.items():
        with contextlib.suppress(UsernameTaken):
            services.accounts.register(name, demo_password(name), shown)
    chat = services.chat
    for owner in DEMO_USERS:
        for peer in DEMO_USERS:
            if owner != peer:
                chat.set_friend(owner, peer, added=1, hidden=0)
    for number, (author, recipient, text) in enumerate(DEMO_CONVERSATION):
        chat.send(author, recipient, text, client_id=f"demo-{number}")
    return {name: demo_password(name) for name in DEMO_USERS}
