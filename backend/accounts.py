"""The accounts service: registration, password checks, bearer tokens.

Passwords are hashed with argon2id (argon2-cffi); tokens are 256-bit random
strings from ``secrets`` of which only the SHA-256 is stored — a token is
already high-entropy, so a fast hash is enough and lookups stay an index seek.
``parse_password`` and ``parse_display_name`` are the field rules the HTTP edge
applies before calling in (docs/design.md, "Auth").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import arrow
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.errors import (
    BadCredentials,
    InvalidField,
    InvalidInput,
    MissingField,
    Unauthenticated,
    UnknownUser,
    UsernameTaken,
)
from backend.storage.accounts import AccountStore, User
from backend.usernames import Username, canonical_username

MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_DISPLAY_NAME = 64


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    def __init__(self, store: AccountStore, hasher: PasswordHasher | None = None) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        # Verifying against this keeps a login for an unknown name as slow as a real one.
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self._known: set[str] = set()

    def register(
        self, username: Username, password: str, display_name: str | None = None
    ) -> tuple[User, str]:
        """A new account and its first token; ``password`` passed ``parse_password``."""
        hashed = self.hasher.hash(password)
        if not self.store.add_user(username, display_name, hashed, _now()):
            raise UsernameTaken(f"the username '{username}' is taken")
        user = User(username, display_name, hashed)
        return user, self._issue_token(username)

    def login(self, username: str, password: str) -> tuple[User, str]:
        """A new token for the account; a malformed name is just a wrong login."""
        failure = BadCredentials("wrong username or password")
        try:
            name = canonical_username(username)
        except InvalidInput:
            raise failure from None
        if not password:
            raise failure
        user = self.store.user(name)
        stored = user.password_hash if user is not None else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise failure from None
        assert user is not None
        if self.hasher.check_needs_rehash(stored):
            self.store.set_password_hash(name, self.hasher.hash(password))
        return user, self._issue_token(name)

    def _issue_token(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        self.store.add_token(token_hash(token), username, _now())
        return token

    def authenticate(self, token: str) -> Username:
        """The username a token belongs to, or ``Unauthenticated``."""
        digest = token_hash(token)
        found = self.store.token_user(digest)
        if found is None or not hmac.compare_digest(found[0], digest):
            raise Unauthenticated("the token is unknown or revoked; log in again")
        return Username(found[1])

    def logout(self, token: str) -> None:
        self.store.delete_token(token_hash(token))

    def require_user(self, username: Username) -> User:
        user = self.store.user(username)
        if user is None:
            raise UnknownUser(f"there is no user '{username}'")
        return user

    def require_exists(self, username: Username) -> None:
        """Like ``require_user`` for the hot paths (every send and poll).

        Accounts are never deleted, so a name once found is remembered for good.
        """
        if username in self._known:
            return
        self.require_user(username)
        self._known.add(username)


def parse_password(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise MissingField("'password' is required")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD or "\x00" in value:
        raise InvalidField(f"a password is {MIN_PASSWORD}-{MAX_PASSWORD} characters, no NUL")
    return value


def parse_display_name(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_DISPLAY_NAME or not value.isprintable():
        raise InvalidField(f"'display_name' is up to {MAX_DISPLAY_NAME} printable characters")
    return value.strip() or None


def _now() -> int:
    return int(arrow.utcnow().timestamp())
