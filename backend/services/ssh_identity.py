"""The SSH door's identities: an SSH key is an account (docs/doors.md, "Identity").

- ``session(key)``, for the door only (it shows the door's secret): a key that
  signs in as an account gets a fresh token, issued through that key; an unknown
  key gets a one-time *ticket* (10 minutes, bound to that key).
- ``claim(ticket, username, …)``: a new account without a password whose key is the
  ticket's — the rules, mode and limits of a registration (``Accounts.admit``).
- ``link(ticket, code)``: the ticket's key joins the account that made the one-time
  *code* (``link_code``, 10 minutes; a new one replaces the last). A wrong code
  counts against the ticket: after 5 it is used up, so codes cannot be guessed
  with one ticket (a code has 40 bits; a ticket needs a new SSH session).
- ``keys``, ``remove_key``: an account's keys; removing one revokes the tokens
  issued through it. The only way an account signs in (no password, no other
  key) cannot be removed (``LastKey``).

One account per key. Tickets and codes are random, kept as their SHA-256 only, in
the accounts file (so any worker process can take them), and used once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from backend.core.clock import now_ms
from backend.core.errors import (
    DoorRefused,
    InvalidCode,
    InvalidTicket,
    KeyTaken,
    LastKey,
    Unauthenticated,
    UnknownKey,
)
from backend.core.ssh_keys import PublicKey
from backend.core.usernames import Username
from backend.services.accounts import Accounts
from backend.storage.accounts import User
from backend.storage.door_keys import KeyRecord
from backend.storage.door_secret import door_secret
from backend.wakeups.notify import Notifier, user_key

TICKET_SECONDS = 600
CODE_SECONDS = 600
CODE_TRIES = 5
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U
_CODE_READS = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAX_TICKET = 512


@dataclass(frozen=True)
class DoorSession:
    """``/door/session``: a known key's account and fresh token, or a ticket."""

    user: User | None = None
    token: str | None = None
    ticket: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_ticket(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TICKET:
        raise InvalidTicket("the ticket is unknown, used or expired: start a new SSH session")
    return value.strip()


def parse_code(value: object) -> str:
    """A link code as typed (``7K2Q-9XWD``, any case, with or without the dash)."""
    text = value.upper().replace("-", "").replace(" ", "") if isinstance(value, str) else ""
    text = text.translate(_CODE_READS)
    if len(text) != 8 or any(c not in _CODE_ALPHABET for c in text):
        raise InvalidCode("a link code is 8 letters and digits, like 7K2Q-9XWD")
    return text


class SshIdentity:
    def __init__(
        self, accounts: Accounts, notifier: Notifier, data_dir: Path, secret: str = ""
    ) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.notifier = notifier
        self.data_dir = data_dir
        self._given_secret = secret

    # -- the door ----------------------------------------------------------------------
    def secret(self) -> str:
        """The door secret (the setting, else ``door.secret``, made now if absent)."""
        return door_secret(self.data_dir, self._given_secret)

    def check_secret(self, shown: str | None) -> None:
        if not shown:
            raise Unauthenticated("this route is the SSH door's: it needs X-Pairchat-Door")
        if not hmac.compare_digest(shown.encode("utf-8", "replace"), self.secret().encode()):
            raise DoorRefused("that is not this server's door secret")

    def session(self, key: PublicKey) -> DoorSession:
        """Who ``key`` is: its account and a new token, else a ticket for it."""
        now = _now()
        owner = self.store.key_owner(key.fingerprint)
        if owner is not None:
            user = self.accounts.require_user(Username(owner))
            return DoorSession(user, self.accounts.issue_token(owner, key.fingerprint))
        ticket = secrets.token_urlsafe(32)
        record = KeyRecord(key.fingerprint, key.openssh, key.comment)
        self.store.add_ticket(_digest(ticket), record, now, now + TICKET_SECONDS)
        return DoorSession(ticket=ticket)

    # -- what the claim screen calls -----------------------------------------------------
    def claim(
        self,
        ticket: str,
        username: Username,
        display_name: str | None,
        *,
        address: str | None = None,
        invite: str | None = None,
    ) -> tuple[User, str]:
        """A passwordless account for the ticket's key, and its first token."""
        digest = _digest(ticket)
        if self.store.ticket(digest, _now()) is None:
            raise InvalidTicket("the ticket is unknown, used or expired: start a new SSH session")
        code = self.accounts.admit(username, address, invite)
        self.accounts.check_display_name(display_name, username)
        key = self.store.claim(digest, username, display_name, _now(), invite_hash=code)
        if key is None:
            raise InvalidTicket("the ticket is unknown, used or expired: start a new SSH session")
        return User(username, display_name, ""), self.accounts.issue_token(
            username, key.fingerprint
        )

    def link(self, ticket: str, code: str) -> tuple[User, str]:
        """The ticket's key joins the account that made ``code``; that account's new token."""
        outcome, owner, key = self.store.link(_digest(ticket), _digest(code), _now(), CODE_TRIES)
        if outcome == "bad_ticket":
            raise InvalidTicket("the ticket is unknown, used or expired: start a new SSH session")
        if outcome == "bad_code":
            raise InvalidCode("the link code is unknown, used or expired: make a new one")
        if outcome == "key_taken" or owner is None or key is None:
            raise KeyTaken("this SSH key already signs in as an account")
        user = self.accounts.require_user(Username(owner))
        return user, self.accounts.issue_token(owner, key.fingerprint)

    # -- a signed-in account's keys ------------------------------------------------------
    def link_code(self, me: Username) -> tuple[str, int]:
        """A one-time code (``XXXX-XXXX``) that adds a key to ``me``; seconds it lasts."""
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        self.store.add_link_code(_digest(raw), me, _now() + CODE_SECONDS)
        return f"{raw[:4]}-{raw[4:]}", CODE_SECONDS

    def keys(self, me: Username) -> list[KeyRecord]:
        return self.store.keys(me)

    def remove_key(self, me: Username, fingerprint: str) -> None:
        """Remove one of my keys; the sessions signed in through it end (their tokens go)."""
        result = self.store.remove_key(me, fingerprint)
        if result == "unknown":
            raise UnknownKey(f"no key {fingerprint} on this account")
        if result == "last":
            raise LastKey(
                "it is the only way this account signs in: set a password or link another key first"
            )
        self.notifier.notify([user_key(me)])  # held requests of revoked tokens answer now


def _now() -> int:
    return now_ms() // 1000
