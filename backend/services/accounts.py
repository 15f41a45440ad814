"""The accounts service: registration, password checks, bearer tokens and their lifetime.

Passwords are hashed with argon2id (argon2-cffi), never more than a few at once
(``HashGate``: each computation holds 64 MiB). Tokens are 256-bit random
strings from ``secrets`` of which only the SHA-256 is stored — a token is
already high-entropy, so a fast hash is enough and lookups stay an index seek —
and a token unused for ``token_idle`` seconds expires. Registration follows the
server's mode (open, invite, closed) and a per-address rate (``admit``: the SSH
door's claims pass the same gate). An account the door made has no password
(its hash is empty, which no password verifies): it may set one with its
current password given as empty, and delete itself the same way.
``parse_password`` and ``parse_display_name`` are the field rules the HTTP edge
applies before calling in (docs/design.md, "Auth").

Script tokens (``create_script_token``) are tokens with a public id, a name and
scopes (``read``, ``send``): they never expire for idleness, only at their own
``expires_at`` if one was asked for; ``authenticate_grant`` says which scopes the
token it checked carries (None: a full session token), and the HTTP edge decides
what each scope allows (``backend/http/auth.py``). ``authenticate`` stays the
username alone.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from dataclasses import dataclass

import arrow
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.core.errors import (
    BadCredentials,
    DisplayNameTaken,
    InvalidField,
    InvalidInput,
    InvalidInvite,
    MissingField,
    RateLimited,
    RegistrationClosed,
    StorageUnavailable,
    TooManyTokens,
    Unauthenticated,
    UnknownToken,
    UnknownUser,
    UsernameTaken,
)
from backend.core.names import invisible, usernames_reading_as
from backend.core.usernames import Username, canonical_username, display_key
from backend.limits.disk import DiskFloor
from backend.limits.hash_gate import HashGate
from backend.limits.rate_limit import Limiter, in_words
from backend.storage.accounts import AccountStore, ScriptToken, User

log = logging.getLogger(__name__)
MIN_PASSWORD = 8
MAX_PASSWORD = 256
MAX_DISPLAY_NAME = 64
MAX_INVITE = 128
SCOPES = ("read", "send")
"""What a script token may carry, in this order on the wire."""
MAX_TOKEN_NAME = 64
MAX_EXPIRES_IN = 10 * 366 * 24 * 3600  # seconds: ten years
MAX_SCRIPT_TOKENS = 50  # per account


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def invite_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Grant:
    """Who a token is, and what it may do: ``scopes`` None for a full session token."""

    username: Username
    scopes: frozenset[str] | None = None


@dataclass(frozen=True)
class NewScriptToken:
    """A script token just made: the only time its secret is seen."""

    token: str
    token_id: str
    name: str
    scopes: tuple[str, ...]
    expires_at: int | None


@dataclass(frozen=True)
class AccountPolicy:
    """What registration and tokens allow (from ``Settings``)."""

    registration: str = "open"  # open | invite | closed
    register_rate: str = "10 per hour"  # per client address
    token_idle: int = 30 * 24 * 3600  # seconds; 0: tokens never expire


class Accounts:
    def __init__(
        self,
        store: AccountStore,
        hasher: PasswordHasher | None = None,
        *,
        gate: HashGate | None = None,
        disk: DiskFloor | None = None,
        policy: AccountPolicy | None = None,
    ) -> None:
        self.store = store
        self.hasher = hasher or PasswordHasher()
        self.gate = gate or HashGate(2)
        self.disk = disk
        self.policy = policy or AccountPolicy()
        self._registrations = Limiter(self.policy.register_rate)
        # Verifying against this keeps a login for an unknown name as slow as a real one.
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
        self._live: set[str] = set()
        self._known: set[str] = set()
        self._cache_lock = threading.Lock()

    # -- passwords -------------------------------------------------------------------
    def _hash(self, password: str, address: str | None) -> str:
        with self.gate.slot(address):
            return self.hasher.hash(password)

    def _verify(self, stored: str, password: str, address: str | None) -> bool:
        with self.gate.slot(address):
            try:
                return self.hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False

    def check_password(self, username: Username, password: str, address: str | None) -> User:
        """The live account if ``password`` is its password, else ``BadCredentials``."""
        user = self.store.user(username)
        # A deleted account, or one without a password (the SSH door's), is checked
        # against a dummy hash: as slow as a real check, and never right.
        live = user is not None and not user.deleted and user.password_hash != ""
        stored = user.password_hash if live and user is not None else self._dummy_hash
        if not (self._verify(stored, password, address) and live) or user is None:
            raise BadCredentials("wrong username or password")
        return user

    # -- registration and login --------------------------------------------------------
    def admit(self, username: Username, address: str | None, invite: str | None) -> str | None:
        """May ``username`` be registered now? The hash of the invite to use up, if any.

        The server's mode, the per-address rate, a free name and the free-disk floor;
        ``/register`` and the SSH door's ``/door/claim`` both pass here.
        """
        mode = self.policy.registration
        if mode == "closed":
            raise RegistrationClosed("this server takes no new accounts")
        if mode == "invite" and not invite:
            raise InvalidInvite("this server takes new accounts by invite: send 'invite'")
        key = address or "unknown"
        if not self._registrations.take(key):
            seconds = self._registrations.wait(key)
            raise RateLimited(
                f"too many new accounts from your address: try again in {in_words(seconds)}",
                retry_after=seconds,
            )
        if self.store.user(username) is not None:
            raise UsernameTaken(f"the username '{username}' is taken")
        if self.disk is not None:
            self.disk.check()
        return invite_hash(invite) if mode == "invite" and invite else None

    def check_display_name(self, display_name: str | None, username: Username) -> None:
        """``DisplayNameTaken`` when ``display_name`` reads like another user's username.

        The storage compares keys (``display_key``) with the other display names and
        with usernames equal to the key, in the registration's transaction; this adds
        the usernames that read as the key without being it (``m`` read as ``rn``,
        ``0`` as ``o``, ``1`` as ``l``). Names never change hands, so a look-up first is
        enough. One's own username is fine.
        """
        if display_name is None:
            return
        candidates = usernames_reading_as(display_key(display_name))
        if candidates is None:
            raise DisplayNameTaken("that display name reads like too many usernames")
        for name in candidates:
            if name != username and self.store.user(name) is not None:
                raise DisplayNameTaken("that display name reads like another user's name")

    def register(
        self,
        username: Username,
        password: str,
        display_name: str | None = None,
        *,
        address: str | None = None,
        invite: str | None = None,
    ) -> tuple[User, str]:
        """A new account and its first token; ``password`` passed ``parse_password``."""
        code = self.admit(username, address, invite)
        self.check_display_name(display_name, username)
        hashed = self._hash(password, address)
        if not self.store.add_user(username, display_name, hashed, _now(), invite_hash=code):
            raise UsernameTaken(f"the username '{username}' is taken")
        user = User(username, display_name, hashed)
        return user, self.issue_token(username)

    def login(self, username: str, password: str, address: str | None = None) -> tuple[User, str]:
        """A new token for the account; a malformed name is just a wrong login."""
        try:
            name = canonical_username(username)
        except InvalidInput:
            raise BadCredentials("wrong username or password") from None
        if not password:
            raise BadCredentials("wrong username or password")
        user = self.check_password(name, password, address)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.store.set_password_hash(name, self._hash(password, address))
        return user, self.issue_token(name)

    def issue_token(self, username: str, via_key: str | None = None) -> str:
        """A new bearer token (only its hash is kept); ``via_key``: the SSH key it came
        through, so removing that key revokes it."""
        token = secrets.token_urlsafe(32)
        self.store.add_token(token_hash(token), username, _now(), via_key)
        return token

    def make_invite(self, expires_in: int | None = None) -> str:
        """A one-time invite code (only its hash is stored)."""
        if self.disk is not None:
            self.disk.check()
        code = secrets.token_urlsafe(12)
        now = _now()
        self.store.add_invite(
            invite_hash(code), now, None if expires_in is None else now + expires_in
        )
        return code

    # -- tokens ------------------------------------------------------------------------
    def authenticate(self, token: str) -> Username:
        """The username a token belongs to, or ``Unauthenticated`` (unknown, revoked, idle,
        expired)."""
        return self.authenticate_grant(token).username

    def authenticate_grant(self, token: str) -> Grant:
        """``authenticate``, with the scopes the token carries (None: a session token)."""
        digest = token_hash(token)
        found = self.store.token(digest)
        if found is None:
            raise Unauthenticated("the token is unknown or revoked; log in again")
        now = _now()
        if found.scopes is not None:  # a script token: its own expiry, never idleness
            if found.expires_at is not None and now >= found.expires_at:
                raise Unauthenticated("the token expired; make a new one")
            scopes = frozenset(found.scopes.split(","))
            if now - found.last_used >= 3600:  # its list shows when it was last used
                self._touch(digest, now)
            return Grant(Username(found.username), scopes)
        idle = self.policy.token_idle
        if idle and now - found.last_used > idle:
            self.store.delete_token(digest)
            raise Unauthenticated("the session expired after a long time unused; log in again")
        if idle and now - found.last_used >= min(3600, max(1, idle // 8)):
            self._touch(digest, now)
        return Grant(Username(found.username))

    def _touch(self, digest: str, now: int) -> None:
        try:
            self.store.touch_token(digest, now)
        except StorageUnavailable:
            log.warning("could not record a token's use (storage unavailable)")

    def create_script_token(
        self, username: Username, name: str, scopes: tuple[str, ...], expires_in: int | None
    ) -> NewScriptToken:
        """A new script token (fields passed ``parse_token_name`` and ``parse_scopes``)."""
        if self.disk is not None:
            self.disk.check()
        token = secrets.token_urlsafe(32)
        token_id = secrets.token_hex(8)
        now = _now()
        expires_at = None if expires_in is None else now + expires_in
        added = self.store.add_script_token(
            token_hash(token),
            token_id,
            username,
            name,
            ",".join(scopes),
            now,
            expires_at,
            MAX_SCRIPT_TOKENS,
        )
        if not added:
            raise TooManyTokens(
                f"an account holds at most {MAX_SCRIPT_TOKENS} script tokens: revoke one first"
            )
        return NewScriptToken(token, token_id, name, scopes, expires_at)

    def script_tokens(self, username: Username) -> list[ScriptToken]:
        return self.store.script_tokens(username)

    def revoke_script_token(self, username: Username, token_id: str) -> None:
        """Revoke one of the user's script tokens (``UnknownToken`` if it has none by that
        id); its open event streams end, in every worker."""
        if not self.store.revoke_script_token(username, token_id):
            raise UnknownToken(f"there is no script token '{token_id}' on your account")

    def logout(self, token: str) -> None:
        self.store.delete_token(token_hash(token))

    def logout_everywhere(self, username: Username) -> int:
        return self.store.delete_tokens(username)

    def check_current(self, username: Username, password: str, address: str | None) -> None:
        """A signed-in user's current password, asked again: ``BadCredentials`` if wrong.

        An account without one (made by the SSH door) gives it as empty; a password
        given for it is wrong, and an empty one is wrong for any other account.
        """
        user = self.store.user(username)
        if user is not None and not user.deleted and user.password_hash == "":
            if password:
                raise BadCredentials("this account has no password: give it as empty")
            return
        self.check_password(username, password, address)

    def change_password(
        self, username: Username, password: str, new_password: str, token: str, address: str | None
    ) -> int:
        """Check ``password``, store ``new_password``; every other token is revoked (how many)."""
        self.check_current(username, password, address)
        hashed = self._hash(new_password, address)
        return self.store.change_password(username, hashed, keep_token=token_hash(token))

    def delete(self, username: Username, password: str, address: str | None) -> list[str]:
        """Check ``password``, then tombstone the account (``AccountStore.delete_user``).

        Returns the peers who had it in their contacts.
        """
        self.check_current(username, password, address)
        peers = self.store.delete_user(username, _now())
        self.forget_cached()
        return peers

    # -- who exists --------------------------------------------------------------------
    def require_user(self, username: Username) -> User:
        """The live account, or ``UnknownUser``."""
        user = self.store.user(username)
        if user is None or user.deleted:
            raise UnknownUser(f"there is no user '{username}'")
        return user

    def require_exists(self, username: Username) -> None:
        """Like ``require_user`` for the hot paths (every send): cached until a deletion."""
        if username in self._live:
            return
        self.require_user(username)
        with self._cache_lock:
            self._live.add(username)

    def require_known(self, username: Username) -> None:
        """A live or deleted account (reading a conversation with someone who left)."""
        if username in self._known or username in self._live:
            return
        if self.store.user(username) is None:
            raise UnknownUser(f"there is no user '{username}'")
        with self._cache_lock:
            self._known.add(username)  # names are never freed, so this stays true

    def forget_cached(self) -> None:
        """An account was deleted (here or in another worker): look names up again."""
        with self._cache_lock:
            self._live = set()


def parse_password(value: object, field: str = "password") -> str:
    if value is None or value == "":
        raise MissingField(f"'{field}' is required")
    if not isinstance(value, str):
        raise InvalidField(f"'{field}' must be a string")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD or "\x00" in value:
        raise InvalidField(f"a password is {MIN_PASSWORD}-{MAX_PASSWORD} characters, no NUL")
    return value


def parse_display_name(value: object) -> str | None:
    """Up to 64 printable characters, none invisible or blank but the plain space
    (``names.invisible``: fillers, zero-width, format and bidi controls); trimmed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_DISPLAY_NAME or not value.isprintable():
        raise InvalidField(f"'display_name' is up to {MAX_DISPLAY_NAME} printable characters")
    hidden = next(invisible(value), None)
    if hidden is not None:
        raise InvalidField(
            f"'display_name' may not hold invisible or blank characters "
            f"(U+{ord(hidden):04X}); spaces are plain ones"
        )
    return value.strip() or None


def parse_token_name(value: object) -> str:
    """A script token's name: 1-64 printable characters, trimmed."""
    if value is None or value == "":
        raise MissingField("'name' is required")
    if not isinstance(value, str) or not value.isprintable() or not value.strip():
        raise InvalidField(f"'name' is 1-{MAX_TOKEN_NAME} printable characters")
    name = value.strip()
    if len(name) > MAX_TOKEN_NAME:
        raise InvalidField(f"'name' is 1-{MAX_TOKEN_NAME} printable characters")
    return name


def parse_scopes(value: object) -> tuple[str, ...]:
    """``read``, ``send`` or both, comma-separated; in ``SCOPES`` order, each once."""
    if value is None or value == "":
        raise MissingField("'scopes' is required: read, send, or read,send")
    if not isinstance(value, str):
        raise InvalidField("'scopes' is read, send, or read,send (comma-separated)")
    parts = [part.strip() for part in value.split(",")]
    unknown = [part for part in parts if part not in SCOPES]
    if unknown:
        raise InvalidField(
            f"'scopes' may hold only {', '.join(SCOPES)} (comma-separated), not {unknown[0]!r}"
        )
    return tuple(scope for scope in SCOPES if scope in parts)


def parse_invite(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_INVITE or not value.isascii():
        raise InvalidInvite("the invite code is unknown, used or expired")
    return value.strip()


def _now() -> int:
    return int(arrow.utcnow().timestamp())
