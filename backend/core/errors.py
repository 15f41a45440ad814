"""Domain errors: what storage and the services refuse, with no HTTP in them.

Each class names one kind of refusal and carries a message for people. Which
HTTP status and which wire ``error`` code a class becomes is decided at the
edge, in one table (``backend/http/errors.py``); the reply's shape is in
docs/design.md ("Errors"). A new refusal is a class here plus a row there.
"""

from __future__ import annotations


class PairchatError(Exception):
    """Base class: a refusal the caller can act on; nothing was changed."""

    retry_after: float | None = None
    """Seconds after which trying again may succeed (sent as ``Retry-After``), if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retry_after is not None:
            self.retry_after = retry_after


# -- bad input -------------------------------------------------------------------
class InvalidInput(PairchatError):
    """The request itself is wrong (sent again unchanged, it fails again)."""


class MissingField(InvalidInput):
    pass


class InvalidField(InvalidInput):
    pass


class InvalidUsername(InvalidInput):
    pass


class SameUser(InvalidInput):
    """A conversation (or a friendship) needs two different users."""


class EmptyMessage(InvalidInput):
    pass


class MessageTooLong(InvalidInput):
    pass


# -- who is asking ---------------------------------------------------------------
class Unauthenticated(PairchatError):
    """No token, or one that is unknown or revoked."""


class BadCredentials(Unauthenticated):
    """A login with a wrong username or password (never says which)."""


class Forbidden(PairchatError):
    """Not this user's conversation, or not their name to send as."""


class Blocked(Forbidden):
    """The recipient blocked the sender."""


class NotYourMessage(Forbidden):
    """Only a message's author may edit or delete it."""


class RateLimited(PairchatError):
    """Too many of something (failed logins, registrations, sends, password checks at once)."""


class InsufficientScope(Forbidden):
    """A script token (``POST /tokens``) without the scope this route needs; routes that
    manage the account need a full session token."""


class WrongPassword(Forbidden):
    """A signed-in user's current password, asked again (change password, delete account), is wrong.

    Not a 401: the session itself is fine, and clients treat 401 as signed out.
    """


class RegistrationClosed(Forbidden):
    """The server takes no new accounts (``--registration closed``)."""


class InvalidInvite(Forbidden):
    """Registration needs an invite (``--registration invite``) and this one is not valid."""


class InvalidTicket(InvalidInput):
    """An SSH door ticket that is unknown, used or expired (ask the door for a new one)."""


class InvalidCode(InvalidInput):
    """A link code that is unknown, used or expired."""


class DoorRefused(Forbidden):
    """A request to the door's route without the door's secret."""


class RequestTimeout(InvalidInput):
    """The client sent its request too slowly (headers or body)."""


# -- what exists -----------------------------------------------------------------
class UnknownUser(PairchatError):
    pass


class UnknownMessage(PairchatError):
    """No message with that id in this conversation."""


class NoAttachment(PairchatError):
    """The message carries no file (it never had one, or it was deleted)."""


class UnknownKey(PairchatError):
    """No SSH key with that fingerprint on this account."""


class UnknownToken(PairchatError):
    """No script token with that id on this account."""


class Conflict(PairchatError):
    """The request clashes with what is stored."""


class UsernameTaken(Conflict):
    pass


class DisplayNameTaken(Conflict):
    """A display name that reads like another user's display name or username."""


class ClientIdConflict(Conflict):
    """A ``client_id`` already used by this author for a different text."""


class MessageDeleted(Conflict):
    """The message was deleted: it stays deleted (it cannot be edited back)."""


class KeyTaken(Conflict):
    """The SSH key already signs in as an account (one account per key)."""


class LastKey(Conflict):
    """The only way an account signs in (no password, no other key) cannot be removed."""


class TooManyTokens(Conflict):
    """The account holds as many script tokens as it may: revoke one first."""


class FileTooLarge(PairchatError):
    """A file over ``max_file_bytes``."""


class FilesQuotaExceeded(PairchatError):
    """A file that would take a pair's or a user's files past their quota."""


class StorageUnavailable(PairchatError):
    """Storage cannot be read or written (disk full, read-only, damaged): nothing was stored."""

    damaged: bool = False
    """The file itself is damaged (not a database, malformed): trying again will not help.
    Otherwise the trouble may pass (busy, locked, folder full, out of file handles)."""


class DiskAlmostFull(StorageUnavailable):
    """Free space in the data folder is below the configured floor: writes are refused."""


class PairElsewhere(StorageUnavailable):
    """Multi-node mode: the pair is owned by another node, or is being moved (try again)."""


class NodeFenced(StorageUnavailable):
    """Multi-node mode: this node was fenced (failed over); it serves no conversation."""


class ServerFull(PairchatError):
    """Every slot for a held request or event stream is taken: come back later."""
