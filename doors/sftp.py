"""SFTP (and so ``scp``) through the SSH door: one account's files as a virtual tree.

    /              one folder per conversation: my friends, then message requests
    /bob/          the files of the pair with bob (size; time = when it was sent)
    /bob/NAME      get: that file's bytes, streamed from the API (``GET /file/<id>``);
                   put: a new file sent to bob when the client closes it
                   (``POST /send_file/bob``)

Nothing of the door's own file system is reachable: a path is only ever a name in
this tree, resolved against ``/`` (``..`` stops at the root; there are no links),
and the only file the door writes is its spool (below). Reading, listing and sending
a new file are all there is: remove, rename, mkdir, rmdir, links, and setstat beyond
the times and modes ``scp -p`` sets (accepted and ignored) are refused with
"permission denied". A folder not in the list (someone I never wrote with) exists
when the API will list that pair's files, so ``scp f HOST:carol/`` can start a
conversation; an unknown user is "no such file".

Names: a file keeps its own name while no other file in its folder has it; when
several do, the newest has the plain name and each older one is ``stem~ID.ext``
(``report~57.pdf``), which always names that message's file (and may be used for
the newest too): every file's ``~ID`` name is reserved for it, so a file the sender
named like another's ``~ID`` name is listed by its own ``~ID`` name. A name the sender
chose that cannot be a path segment (``/``, control characters, ``..``) is shown
with ``_`` for the bad characters.

Reading: an open file holds one streaming reply and serves the client's reads in
order from it (asyncssh answers a session's requests one at a time, so a pipelining
client's reads arrive in order); a read a little ahead reads on and drops the gap,
and one anywhere else restarts the reply at that offset (``Range``; an API that
ignores it answers from the start, and the door skips to the offset). No file is
ever held whole in memory.

Writing: the bytes go to a spool file in the door's private folder, unlinked as
soon as it is made (only the open descriptor holds it, so it is gone however the
session ends), up to ``max_file_bytes`` (and ``SPOOL_BYTES`` for all of a door's
uploads at once); a write past that, or out of order, is refused with a failure
that says why. On close the spool is sent to the API, streamed; the API's refusal
(too large, quota, unknown user, blocked) becomes the close's status with the API's
sentence. OpenSSH's scp and sftp print only a status code's own text ("Failure"),
so each refusal's sentence is also written to the channel's stderr, which they
show. A client that goes before closing sends nothing.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import stat
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

import asyncssh
from asyncssh.constants import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_READ, FXF_TRUNC, FXF_WRITE

from doors.file_api import Download, FileApi, FileRefused, RemoteFile

DEFAULT_MAX_FILE_BYTES = 25 * 1024 * 1024
"""The API's own default per-file limit (``PAIRCHAT_MAX_FILE_BYTES``)."""
MAX_FILE_BYTES_VARIABLE = "PAIRCHAT_MAX_FILE_BYTES"
OPEN_UPLOADS = 4
"""Files one SFTP session may be writing at once (each may take max_file_bytes of disk)."""
SPOOL_BYTES = 1024**3
"""Bytes all files being sent through one door may take on its disk at once (at least
one file of the limit): past it a write is refused with "try again in a minute"."""
SKIP_AHEAD = 1024 * 1024
"""A read this far past the last one reads on and drops the gap; farther, or back, restarts."""
LISTING_SECONDS = 2.0
"""How long a folder list is reused (scp asks stat, then opens, then stats again)."""
SPOOL_PREFIX = "upload-"
ROOT_MODE = stat.S_IFDIR | 0o555
FOLDER_MODE = stat.S_IFDIR | 0o755
FILE_MODE = stat.S_IFREG | 0o444
READ_ONLY = "pairchat's files are read-only: the only change is sending a new file to a folder"
_USERNAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def max_file_bytes(environ: Mapping[str, str]) -> int:
    """The door's spool limit: ``PAIRCHAT_MAX_FILE_BYTES`` as the API reads it (a door
    started by ``pairchat-server`` has the server's environment), else the default."""
    raw = environ.get(MAX_FILE_BYTES_VARIABLE, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_FILE_BYTES
    except ValueError:
        return DEFAULT_MAX_FILE_BYTES
    return value if value > 0 else DEFAULT_MAX_FILE_BYTES


def human_size(size: int) -> str:
    """``25 MiB``, ``300 KiB``, ``12 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            amount = size / scale
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{size} bytes"


# -- names --------------------------------------------------------------------------------
def shown_name(name: str, file_id: int) -> str:
    """A sender's file name as one safe path segment."""
    safe = _UNSAFE.sub("_", name).strip()
    return safe if safe not in ("", ".", "..") else f"file-{file_id}"


def with_id(name: str, file_id: int) -> str:
    """``report.pdf``, 57 -> ``report~57.pdf`` (the name that always means message 57's file)."""
    path = PurePosixPath(name)
    suffix = path.suffix if path.stem else ""
    return f"{name[: len(name) - len(suffix)]}~{file_id}{suffix}"


def id_name(found: RemoteFile) -> str:
    """The ``stem~ID.ext`` name reserved for this file: it never means any other."""
    return with_id(shown_name(found.name, found.id), found.id)


def folder_names(files: Sequence[RemoteFile]) -> dict[str, RemoteFile]:
    """Name in the folder -> file: the newest file of a name has it, each older one
    its ``stem~ID.ext``. Every name is unique, and a ``~ID`` name only ever means that
    file: every file's ``~ID`` name is reserved first, so a sender's own name that
    equals one (``a~70.txt`` sent beside message 70's ``a.txt``) yields to it and the
    sender's file is listed by its own ``~ID`` name instead."""
    reserved: dict[str, RemoteFile] = {}
    for found in files:
        reserved.setdefault(id_name(found), found)
    names: dict[str, RemoteFile] = {}
    for found in sorted(files, key=lambda f: f.id, reverse=True):
        plain = shown_name(found.name, found.id)
        if plain in names or plain in reserved:
            names[id_name(found)] = found
        else:
            names[plain] = found
    return names


def by_id_name(name: str, files: Mapping[str, RemoteFile]) -> RemoteFile | None:
    """The file a ``stem~ID.ext`` name means even when it is listed by its plain name
    (the newest of its name): what a script that knows the message's id can ask for."""
    for found in files.values():
        if id_name(found) == name:
            return found
    return None


def tree_path(path: bytes) -> tuple[str, ...]:
    """The client's path as segments of the tree (relative paths start at ``/``)."""
    try:
        text = path.decode("utf-8")
    except UnicodeDecodeError:
        raise asyncssh.SFTPNoSuchFile("no such file (names are UTF-8)") from None
    if "\x00" in text:
        raise asyncssh.SFTPNoSuchFile("no such file")
    normal = posixpath.normpath(posixpath.join("/", text))
    return tuple(part for part in normal.split("/") if part)


def sftp_error(refused: FileRefused) -> asyncssh.SFTPError:
    """The API's refusal as an SFTP status with the API's sentence."""
    if refused.status == 404:
        return asyncssh.SFTPNoSuchFile(refused.message)
    if refused.status in (401, 403):
        return asyncssh.SFTPPermissionDenied(refused.message)
    return asyncssh.SFTPFailure(refused.message)


def _attrs(mode: int, size: int | None = None, mtime: int | None = None) -> asyncssh.SFTPAttrs:
    return asyncssh.SFTPAttrs(permissions=mode, size=size, atime=mtime, mtime=mtime)


def file_attrs(found: RemoteFile) -> asyncssh.SFTPAttrs:
    return _attrs(FILE_MODE, found.size, found.date_sent)


# -- open files ---------------------------------------------------------------------------
class ReadHandle:
    """A file open for reading: one streaming reply, read in order."""

    def __init__(self, api: FileApi, peer: str, found: RemoteFile) -> None:
        self.api = api
        self.peer = peer
        self.found = found
        self.download: Download | None = None
        self.position = 0
        """The file offset of ``buffer[0]``."""
        self.buffer = bytearray()
        self.at_end = False

    async def read(self, offset: int, size: int) -> bytes:
        if offset >= self.found.size:
            return b""
        ahead = offset - self.position
        if self.download is None or not 0 <= ahead <= SKIP_AHEAD:
            await self._restart(offset)
            ahead = 0
        while len(self.buffer) < ahead + size and not self.at_end:
            chunk = await self.download.next_chunk() if self.download is not None else b""
            if chunk:
                self.buffer += chunk
            else:
                self.at_end = True
        data = bytes(self.buffer[ahead : ahead + size])
        del self.buffer[: ahead + len(data)]
        self.position = offset + len(data)
        return data

    async def _restart(self, offset: int) -> None:
        await self.close()
        self.download = await self.api.open_download(self.peer, self.found.id, offset)
        self.position, self.at_end = offset, False
        self.buffer.clear()

    async def close(self) -> None:
        if self.download is not None:
            download, self.download = self.download, None
            await download.close()


class SpoolBudget:
    """Bytes all of a door's files being sent may take on its disk at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used = max(0, self.used - size)


class WriteHandle:
    """A file being written: a spool file that no name points to, sent on close."""

    def __init__(self, spool_dir: Path, budget: SpoolBudget, peer: str, name: str) -> None:
        self.budget = budget
        self.peer = peer
        self.name = name
        self.client_id = uuid.uuid4().hex
        fd, path = tempfile.mkstemp(dir=spool_dir, prefix=SPOOL_PREFIX)
        with contextlib.suppress(OSError):
            os.unlink(path)
        self.file = os.fdopen(fd, "w+b", buffering=0)
        self.size = 0
        self.refused: str | None = None
        """Why this file will not be sent (said once; later writes get the same)."""

    def write(self, offset: int, data: bytes, limit: int) -> int:
        if self.refused is not None:
            raise asyncssh.SFTPFailure(self.refused)
        if offset > self.size:
            self.refused = "pairchat takes a file's bytes in order, from the start: not sent"
            raise asyncssh.SFTPFailure(self.refused)
        if offset + len(data) > limit:
            self.refused = (
                f"{self.name} is larger than pairchat's limit of {human_size(limit)} "
                f"({limit} bytes) for one file: not sent"
            )
            raise asyncssh.SFTPFailure(self.refused)
        growth = max(0, offset + len(data) - self.size)
        if not self.budget.take(growth):
            self.refused = (
                f"pairchat is receiving too many files right now: {self.name} not sent; "
                "try again in a minute"
            )
            raise asyncssh.SFTPFailure(self.refused)
        try:
            written = os.pwrite(self.file.fileno(), data, offset)
        except OSError as exc:
            self.budget.give(growth)
            self.refused = f"pairchat has no room for {self.name} right now ({exc.strerror})"
            raise asyncssh.SFTPFailure(self.refused) from None
        self.budget.give(growth - max(0, offset + written - self.size))
        self.size = max(self.size, offset + written)
        return written

    def truncate(self, size: int) -> None:
        """The file ends at ``size`` (no longer than written: nothing is made up)."""
        if size > self.size:
            raise asyncssh.SFTPPermissionDenied(
                "pairchat takes only the bytes written: a file cannot be made longer"
            )
        self.file.truncate(size)
        self.budget.give(self.size - size)
        self.size = size

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
            self.budget.give(self.size)


# -- the tree -----------------------------------------------------------------------------
class PairchatSftp(asyncssh.SFTPServer):
    """The virtual tree of one account's conversations and their files (see module)."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        api: FileApi,
        *,
        spool_dir: Path,
        budget: SpoolBudget,
        max_file_bytes: int,
        client_gone: Callable[[], bool],
        on_exit: Callable[[], None],
    ) -> None:
        super().__init__(chan)
        self.api = api
        self.spool_dir = spool_dir
        self.budget = budget
        self.max_file_bytes = max_file_bytes
        self.client_gone = client_gone
        self.on_exit = on_exit
        self.reads: set[ReadHandle] = set()
        self.writes: set[WriteHandle] = set()
        self.sending = 0
        """Files being sent to the API now."""
        self._peers: tuple[float, list[str]] | None = None
        self._listings: dict[str, tuple[float, dict[str, RemoteFile]]] = {}
        self._known: set[str] = set()
        """Folders not in the friend list that the API did list (found by name)."""

    # what is where ---------------------------------------------------------------------
    async def peer_list(self) -> list[str]:
        if self._peers is None or time.monotonic() - self._peers[0] > LISTING_SECONDS:
            with self.api_errors():
                self._peers = (time.monotonic(), await self.api.peers())
        return self._peers[1]

    async def listing(self, peer: str, *, fresh: bool = False) -> dict[str, RemoteFile]:
        cached = self._listings.get(peer)
        if fresh or cached is None or time.monotonic() - cached[0] > LISTING_SECONDS:
            with self.api_errors():
                cached = (time.monotonic(), folder_names(await self.api.files(peer)))
            self._listings[peer] = cached
        return cached[1]

    async def folder(self, name: str) -> str:
        """The peer a top-level name is a folder for, or no such file."""
        peer = name.lower()
        if not _USERNAME.match(peer):
            raise asyncssh.SFTPNoSuchFile(f"no such folder: {name}")
        if peer in self._known or peer in await self.peer_list():
            return peer
        await self.listing(peer)  # the API says whether there is such a pair
        self._known.add(peer)
        return peer

    async def file(self, folder: str, name: str) -> tuple[str, RemoteFile]:
        peer = await self.folder(folder)
        listed = await self.listing(peer)
        # A ``~ID`` name means message ID's file before any listed name.
        found = by_id_name(name, listed) or listed.get(name)
        if found is None:  # maybe sent since the list was read
            listed = await self.listing(peer, fresh=True)
            found = by_id_name(name, listed) or listed.get(name)
        if found is None:
            raise asyncssh.SFTPNoSuchFile(f"no file {name} with {peer}")
        return peer, found

    async def attrs_of(self, parts: tuple[str, ...]) -> asyncssh.SFTPAttrs:
        if not parts:
            return _attrs(ROOT_MODE)
        if len(parts) == 1:
            await self.folder(parts[0])
            return _attrs(FOLDER_MODE)
        if len(parts) == 2:
            return file_attrs((await self.file(*parts))[1])
        raise asyncssh.SFTPNoSuchFile("no such file")

    @contextlib.contextmanager
    def api_errors(self) -> Iterator[None]:
        """The API's refusal as the SFTP status; when the API is down or failing, its
        sentence on stderr too (OpenSSH shows only "Failure")."""
        try:
            yield
        except FileRefused as refused:
            if refused.status >= 500:
                self.say(refused.message)
            raise sftp_error(refused) from None

    def say(self, sentence: str) -> None:
        """One line on the channel's stderr: what OpenSSH's scp and sftp show of a refusal."""
        with contextlib.suppress(Exception):
            self.channel.write_stderr(f"pairchat: {sentence}\n".encode())

    # SFTP: looking -----------------------------------------------------------------------
    def realpath(self, path: bytes) -> bytes:
        return ("/" + "/".join(tree_path(path))).encode()

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.attrs_of(tree_path(path))

    async def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return await self.attrs_of(tree_path(path))

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        parts = tree_path(path)
        if len(parts) > 1:
            await self.attrs_of(parts)  # no such file, or:
            raise asyncssh.SFTPNotADirectory(f"{'/'.join(parts)} is a file, not a folder")
        here = _attrs(ROOT_MODE if not parts else FOLDER_MODE)
        yield asyncssh.SFTPName(b".", attrs=here)
        yield asyncssh.SFTPName(b"..", attrs=_attrs(ROOT_MODE))
        if not parts:
            for peer in await self.peer_list():
                yield asyncssh.SFTPName(peer.encode(), attrs=_attrs(FOLDER_MODE))
            return
        peer = await self.folder(parts[0])
        listed = await self.listing(peer, fresh=True)
        for name, found in sorted(listed.items(), key=lambda item: -item[1].id):  # newest first
            yield asyncssh.SFTPName(name.encode(), attrs=file_attrs(found))

    # SFTP: files -------------------------------------------------------------------------
    async def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        parts = tree_path(path)
        if not pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC):
            if len(parts) < 2:
                await self.attrs_of(parts)
                raise asyncssh.SFTPFailure(f"/{'/'.join(parts)} is a folder")
            peer, found = await self.file(*parts)
            handle = ReadHandle(self.api, peer, found)
            self.reads.add(handle)
            return handle
        if pflags & (FXF_READ | FXF_APPEND) or len(parts) != 2:
            raise asyncssh.SFTPPermissionDenied(READ_ONLY)
        peer = await self.folder(parts[0])
        name = parts[1]
        if pflags & FXF_EXCL and name in await self.listing(peer, fresh=True):
            raise asyncssh.SFTPFailure(f"{peer} already has a file named {name}")
        if len(self.writes) >= OPEN_UPLOADS:
            raise asyncssh.SFTPFailure(
                f"pairchat sends at most {OPEN_UPLOADS} files at once per session"
            )
        upload = WriteHandle(self.spool_dir, self.budget, peer, name)
        self.writes.add(upload)
        return upload

    def open56(
        self, path: bytes, desired_access: int, flags: int, attrs: asyncssh.SFTPAttrs
    ) -> object:
        raise asyncssh.SFTPOpUnsupported("pairchat speaks SFTP version 3")

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        if not isinstance(file_obj, ReadHandle):
            raise asyncssh.SFTPPermissionDenied("this file is open for sending, not reading")
        with self.api_errors():
            return await file_obj.read(offset, size)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if not isinstance(file_obj, WriteHandle):
            raise asyncssh.SFTPPermissionDenied(READ_ONLY)
        said = file_obj.refused
        try:
            return file_obj.write(offset, data, self.max_file_bytes)
        except asyncssh.SFTPError:
            if said is None and file_obj.refused is not None:
                self.say(file_obj.refused)
            raise

    async def close(self, file_obj: object) -> None:
        if isinstance(file_obj, ReadHandle):
            self.reads.discard(file_obj)
            with contextlib.suppress(Exception):
                await file_obj.close()
        elif isinstance(file_obj, WriteHandle):
            self.writes.discard(file_obj)
            try:
                if file_obj.refused is None and not self.client_gone():
                    await self._send(file_obj)
            finally:
                file_obj.discard()

    async def _send(self, upload: WriteHandle) -> None:
        self.sending += 1
        try:
            await self.api.send_file(upload.peer, upload.name, upload.file, upload.client_id)
        except FileRefused as refused:
            self.say(f"{upload.name} not sent to {upload.peer}: {refused.message}")
            raise sftp_error(refused) from None
        finally:
            self.sending -= 1
            self._listings.pop(upload.peer, None)
            self._peers = None

    async def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        if isinstance(file_obj, ReadHandle):
            return file_attrs(file_obj.found)
        if isinstance(file_obj, WriteHandle):
            return _attrs(stat.S_IFREG | 0o644, file_obj.size)
        raise asyncssh.SFTPFailure("not an open file")

    # SFTP: a file being sent takes times and modes (ignored); nothing else changes ----------
    async def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        await self.attrs_of(tree_path(path))  # no such file, or:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    async def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        await self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        """scp -p sets a new file's times and mode (ignored: a file's time is when it
        was sent); OpenSSH 9 truncates it to the length it wrote."""
        if not isinstance(file_obj, WriteHandle):
            raise asyncssh.SFTPPermissionDenied(READ_ONLY)
        if attrs.size is not None:
            file_obj.truncate(attrs.size)

    def fsync(self, file_obj: object) -> None:
        return None

    def remove(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def rmdir(self, path: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied(READ_ONLY)

    def readlink(self, path: bytes) -> bytes:
        raise asyncssh.SFTPPermissionDenied("there are no links here")

    def lock(self, file_obj: object, offset: int, length: int, flags: int) -> None:
        raise asyncssh.SFTPOpUnsupported("no locks here")

    def unlock(self, file_obj: object, offset: int, length: int) -> None:
        raise asyncssh.SFTPOpUnsupported("no locks here")

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("no file system here")

    def fstatvfs(self, file_obj: object) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("no file system here")

    async def exit(self) -> None:
        """The session ended: drop what is open (unsent files are not sent)."""
        for upload in list(self.writes):
            upload.discard()
        self.writes.clear()
        for handle in list(self.reads):
            with contextlib.suppress(Exception):
                await handle.close()
        self.reads.clear()
        self.on_exit()


def clear_spool(spool_dir: Path) -> None:
    """Make the door's private spool folder (0700), without what a crash left in it."""
    spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(spool_dir, 0o700)
    for left in spool_dir.glob(f"{SPOOL_PREFIX}*"):
        with contextlib.suppress(OSError):
            left.unlink()
