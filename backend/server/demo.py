"""Demo data: alice, bob and carol, their friendships and a short conversation."""

from __future__ import annotations

import contextlib

from backend.core.errors import UsernameTaken
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


def create_demo_data(services: Services) -> dict[str, str]:
    """Idempotent: existing demo accounts are kept, the conversation is added once."""
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
