"""The SSH door's host key: ed25519, made once in the data folder, never replaced.

``ssh_host_ed25519_key`` (0600) and ``ssh_host_ed25519_key.pub`` live in the
door's data folder. Users compare the SHA256 fingerprint the door prints at start
(and docs/doors.md shows how to read it) with what their ``ssh`` shows on the
first connection; a key that changed would make every client refuse the server.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from doors.files import create_once, read_private

KEY_FILE = "ssh_host_ed25519_key"


def load_host_key(folder: Path) -> asyncssh.SSHKey:
    """The folder's host key, created (with its ``.pub``) on the first call."""
    path = folder / KEY_FILE
    created: list[asyncssh.SSHKey] = []

    def make() -> bytes:
        key = asyncssh.generate_private_key("ssh-ed25519", comment="pairchat door")
        created.append(key)
        return bytes(key.export_private_key("openssh"))

    create_once(path, make)
    key = asyncssh.import_private_key(read_private(path))
    public = folder / f"{KEY_FILE}.pub"
    if not public.exists() or created:
        public.write_bytes(bytes(key.export_public_key("openssh")))
    return key


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:…`` as ``ssh`` and ``ssh-keygen -lf`` show it."""
    return str(key.get_fingerprint("sha256"))
