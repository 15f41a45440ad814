"""The files service: sending a file as a message, reading it back, listing a pair's files.

A file is a message with an attachment, sent through the chat service's own send
path (``Chat.send``): the same refusals (block, send rate, new conversations),
the same feed, unread counts, requests and wake-ups as a text message. Its bytes
go into the pair's own file in the message's transaction
(``backend/storage/attachments.py``). Before anything is written a file is held
to its limits (``FileLimits``, from ``Settings``): its size, the free-disk floor
(the file must fit above it), the pair's quota (checked inside the write
transaction) and the sender's quota across all pairs (a tally in the accounts
store, taken before the write and given back when the write fails or is a
repeat of an earlier ``client_id``).

The tally is always the bytes of the files charged to the user: every file whose
author has an account is charged, in open mode too (where anyone may name any
author), and the file's row records whom (``charged_to``), so a deletion or
``forget`` gives back exactly that; an open-mode author with no account has no
tally, and their files are charged to nobody.

``parse_file_name`` and ``media_type`` are the rules of a file's name and type.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from backend.core.errors import DiskAlmostFull, FilesQuotaExceeded, FileTooLarge, UnknownMessage
from backend.core.usernames import Pair, Username
from backend.limits.disk import MIB, DiskFloor
from backend.services.accounts import Accounts
from backend.services.chat import Chat, parse_message
from backend.storage.attachments import Attachment, FileEntry, Upload
from backend.storage.conversation import Stored
from backend.storage.conversations import ConversationStore

MAX_NAME_BYTES = 255  # a file name's UTF-8 bytes, as most file systems allow
DEFAULT_NAME = "file"
DEFAULT_TYPE = "application/octet-stream"
# type "/" subtype, each an RFC 9110 token; parameters (";charset=…") are dropped
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})")


@dataclass(frozen=True)
class FileLimits:
    """What files may take (from ``Settings``)."""

    max_file_bytes: int = 25 * MIB
    pair_files_quota: int = 1024 * MIB
    user_files_quota: int = 2048 * MIB


@dataclass(frozen=True)
class Download:
    """A file to send: what it is, and its bytes from ``start`` to ``end`` (inclusive;
    None: to its last), a stored chunk at a time."""

    attachment: Attachment
    chunks: Callable[[int, int | None], Iterator[bytes]]


class Files:
    def __init__(
        self,
        chat: Chat,
        conversations: ConversationStore,
        accounts: Accounts,
        limits: FileLimits | None = None,
        disk: DiskFloor | None = None,
    ) -> None:
        self.chat = chat
        self.conversations = conversations
        self.accounts = accounts
        self.store = accounts.store
        self.limits = limits or FileLimits()
        self.disk = disk

    def too_large(self) -> FileTooLarge:
        limit = self.limits.max_file_bytes
        return FileTooLarge(f"a file is at most {limit} bytes ({_size(limit)}); nothing was stored")

    def send(
        self,
        author: Username,
        recipient: Username,
        upload: Upload,
        caption: str = "",
        client_id: str | None = None,
        *,
        require_accounts: bool = True,
        reply_to: int | None = None,
    ) -> Stored:
        """Store ``upload`` as a message from ``author`` to ``recipient`` with ``caption``
        (``""`` or a text ``parse_message`` accepts); a repeat of ``client_id`` returns
        the first message and stores nothing."""
        if upload.size > self.limits.max_file_bytes:
            raise self.too_large()
        payer = author if require_accounts or self.store.user(author) is not None else None
        upload = upload._replace(charged_to=payer)
        charged: list[str] = []

        def before_store() -> None:
            if client_id is not None and self._stored_before(author, recipient, client_id):
                return  # a retry: it stores nothing, so it is held to nothing
            self._check_disk(upload.size)
            if payer is not None:
                self._charge(payer, upload.size)
                charged.append(payer)

        try:
            stored = self.chat.send(
                author,
                recipient,
                caption,
                client_id,
                require_accounts=require_accounts,
                reply_to=reply_to,
                upload=upload,
                pair_quota=self.limits.pair_files_quota,
                before_store=before_store,
            )
        except BaseException:
            for who in charged:
                self.store.refund_files(who, upload.size)
            raise
        if stored.duplicate:
            for who in charged:
                self.store.refund_files(who, upload.size)  # stored once, counted once
        return stored

    def _stored_before(self, author: Username, recipient: Username, client_id: str) -> bool:
        conversation = self.conversations.get(author, recipient, create=False)
        return conversation is not None and conversation.has_client_id(author, client_id)

    def _check_disk(self, size: int) -> None:
        """The file must fit above the free-disk floor (``DiskFloor.check`` is the rest)."""
        if self.disk is None or self.disk.floor_bytes <= 0:
            return
        try:
            free = self.disk.free_bytes()
        except OSError:
            return  # the write itself will say what is wrong
        if free - size < self.disk.floor_bytes:
            raise DiskAlmostFull(
                f"the server's disk is almost full (this file would leave under "
                f"{self.disk.floor_bytes // MIB} MiB free); nothing was stored, try again later"
            )

    def _charge(self, author: Username, size: int) -> None:
        quota = self.limits.user_files_quota
        if not self.store.charge_files(author, size, quota):
            raise FilesQuotaExceeded(
                f"your files would pass your quota of {quota} bytes ({_size(quota)}) across "
                "all conversations; delete some files first"
            )

    def attachment(self, pair: Pair, message_id: int, *, require_accounts: bool = True) -> Download:
        """A file message's attachment, and a way to read its bytes."""
        if require_accounts:
            self.accounts.require_known(pair.low)
            self.accounts.require_known(pair.high)
        conversation = self.conversations.get(pair.low, pair.high, create=False)
        if conversation is None:
            raise UnknownMessage(f"there is no message {message_id} in this conversation")
        found = conversation.attachment(message_id)
        return Download(found, partial(conversation.file_chunks, message_id))

    def files(self, pair: Pair, *, require_accounts: bool = True) -> list[FileEntry]:
        """Every file of the pair, newest first."""
        if require_accounts:
            self.accounts.require_known(pair.low)
            self.accounts.require_known(pair.high)
        conversation = self.conversations.get(pair.low, pair.high, create=False)
        return [] if conversation is None else conversation.files()


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def parse_caption(text: object) -> str:
    """A file's caption: none (absent or ``""``) or a text ``parse_message`` accepts."""
    if text is None or text == "":
        return ""
    return parse_message(text)


def parse_file_name(raw: str | None) -> str:
    """A file's name as stored and served: its base name only (the part after the last
    ``/`` or ``\\``), without control characters (NUL included), not ``.`` or ``..``, at
    most ``MAX_NAME_BYTES`` bytes of UTF-8 (cut at a character, keeping the extension
    when it is short); ``"file"`` when nothing is left."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = unicodedata.normalize("NFC", name).strip()
    if name in ("", ".", ".."):
        return DEFAULT_NAME
    return fit_name(name, MAX_NAME_BYTES)


def fit_name(name: str, max_bytes: int) -> str:
    """``name`` cut to at most ``max_bytes`` bytes of UTF-8, at a character, keeping the
    extension when it is short; ``"file"`` when nothing is left."""
    if len(name.encode("utf-8")) > max_bytes:
        stem, dot, extension = name.rpartition(".")
        suffix = f".{extension}" if dot and stem and len(extension.encode()) <= 16 else ""
        head = name[: len(name) - len(suffix)] if suffix else name
        room = max_bytes - len(suffix.encode("utf-8"))
        head = head.encode("utf-8")[:room].decode("utf-8", errors="ignore")
        name = (head + suffix).strip() or DEFAULT_NAME
    return name


def media_type(declared: str | None, name: str) -> str:
    """The type a file is stored and served with: the sender's, when it is a well-formed
    ``type/subtype`` (lower-cased, parameters dropped); else a guess from the name's
    extension; else ``application/octet-stream``."""
    essence = (declared or "").split(";", 1)[0].strip()
    if _MEDIA_TYPE.fullmatch(essence):
        return essence.lower()
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or DEFAULT_TYPE
