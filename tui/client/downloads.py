"""Where a downloaded file lands: a safe name from the server's, never over an existing file.

No network and no Textual: :meth:`tui.client.http.PairchatClient.download_file`
streams the bytes into a temporary file in the destination folder, then
:func:`place` gives it its name. The name is the sender's file name made safe
(:func:`safe_file_name`: no folder parts, no control characters, not empty, not
too long); when a file of that name exists, ``name (1).ext``, ``name (2).ext``, …
is taken instead. The final name is claimed with a hard link, which fails instead
of replacing a file that appeared meanwhile, so nothing already there is ever
overwritten, even by two downloads at once.
"""

from __future__ import annotations

import contextlib
import email.message
import os
import re
from pathlib import Path

MAX_NAME_BYTES = 200
"""UTF-8 bytes of a saved file's name at most (file systems take 255; room for " (12)")."""
MAX_COPIES = 10_000
"""``name (N)`` stops here: past it the folder is not a place to save into."""
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
"""Controls, folder separators and what Windows and macOS refuse in a name."""


def filename_of(content_disposition: str) -> str | None:
    """The file name a ``Content-Disposition`` header gives (``filename*`` first), or None."""
    if not content_disposition:
        return None
    header = email.message.Message()
    header["content-disposition"] = content_disposition
    try:
        name = header.get_filename()
    except (ValueError, LookupError):  # a broken RFC 2231 value or an unknown charset
        return None
    return name or None


def safe_file_name(name: str | None, fallback: str) -> str:
    """``name`` fit to save as one file in a folder, or ``fallback`` if nothing is left.

    Only its last path part is kept; controls and characters file systems refuse become
    ``_``; leading dots and spaces go (no hidden file, no ``..``); it is cut to
    :data:`MAX_NAME_BYTES`, keeping the extension."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".").strip()
    if not base:
        return fallback
    stem, suffix = _split(base)
    if len(suffix.encode()) > 20:
        stem, suffix = base, ""
    while len((stem + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return (stem + suffix) or fallback


def _split(name: str) -> tuple[str, str]:
    """``report.pdf`` → (``report``, ``.pdf``); a name without a dot has no extension."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if dot > 0 else (name, "")


def candidates(name: str) -> list[str]:
    """``name``, then ``name (1)``, ``name (2)``, … (before the extension)."""
    stem, suffix = _split(name)
    return [name, *(f"{stem} ({n}){suffix}" for n in range(1, MAX_COPIES))]


def _file_mode() -> int:
    """The mode a new file gets here (0o666 less the umask): a temporary file is 0o600."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def place(temporary: Path, folder: Path, name: str) -> Path:
    """Give the finished download ``temporary`` (in ``folder``) the first free name of
    :func:`candidates`, with the mode any new file gets; its path. Raises
    ``FileExistsError`` if none is free."""
    with contextlib.suppress(OSError):
        os.chmod(temporary, _file_mode())
    for candidate in candidates(name):
        target = folder / candidate
        try:
            os.link(temporary, target)
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: check, then rename
            if target.exists():
                continue
            os.replace(temporary, target)
            return target
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return target
    raise FileExistsError(f"{folder} already holds {MAX_COPIES} files named like {name}")
