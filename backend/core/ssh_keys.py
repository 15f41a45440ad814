"""SSH public keys in OpenSSH's one-line form, read strictly: the SSH door's identities.

``parse_public_key("ssh-ed25519 AAAAC3Nz… alice@laptop")`` returns a ``PublicKey``
or raises ``InvalidField`` saying what is wrong — never anything else, whatever the
input. The base64 blob is decoded strictly and walked field by field (RFC 4253
strings and mpints): its own key type must be the one the line names, each key
type must have exactly its fields (an Ed25519 key is 32 bytes, an ECDSA point is
uncompressed and of its curve's size, an RSA modulus has at least 1,024 bits),
and nothing may follow them. The fingerprint is OpenSSH's: ``SHA256:`` and the
unpadded base64 of the blob's SHA-256 (``ssh-keygen -l`` prints the same).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from backend.core.errors import InvalidField

MAX_LINE = 8192
MAX_COMMENT = 200
MIN_RSA_BITS = 1024
_CURVES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}  # uncompressed point sizes
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}\Z")


@dataclass(frozen=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.blob)

    @property
    def openssh(self) -> str:
        """The key without its comment: ``type base64``."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"


def fingerprint_of(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def parse_fingerprint(value: object) -> str:
    """A fingerprint as ``GET /keys`` lists it (``SHA256:`` + 43 base64 characters)."""
    if not isinstance(value, str) or not _FINGERPRINT.match(value.strip()):
        raise InvalidField("'fingerprint' is 'SHA256:' and 43 base64 characters, as ssh-keygen -l")
    return value.strip()


class _Reader:
    """The fields of a key blob, in order; any short or malformed field is ``InvalidField``."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.at = 0

    def string(self) -> bytes:
        if self.at + 4 > len(self.blob):
            raise _bad("the key data is cut short")
        size = int.from_bytes(self.blob[self.at : self.at + 4], "big")
        start, self.at = self.at + 4, self.at + 4 + size
        if self.at > len(self.blob):
            raise _bad("the key data is cut short")
        return self.blob[start : self.at]

    def mpint(self) -> int:
        raw = self.string()
        if not raw or raw[0] & 0x80:
            raise _bad("the key has an empty or negative number")
        if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
            raise _bad("the key has a number with a needless leading zero")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.at != len(self.blob):
            raise _bad("the key data has bytes after its last field")


def _bad(why: str) -> InvalidField:
    return InvalidField(f"'public_key' is not an OpenSSH public key: {why}")


def _check_fields(key_type: str, reader: _Reader) -> None:
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        if len(reader.string()) != 32:
            raise _bad("an Ed25519 key is 32 bytes")
    elif key_type == "ssh-rsa":
        exponent, modulus = reader.mpint(), reader.mpint()
        if exponent < 3 or exponent % 2 == 0 or modulus.bit_length() < MIN_RSA_BITS:
            raise _bad(f"an RSA key needs an odd exponent and at least {MIN_RSA_BITS} bits")
    elif key_type.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        curve = key_type.removeprefix("sk-").removeprefix("ecdsa-sha2-").split("@")[0]
        if curve not in _CURVES or reader.string() != curve.encode("ascii"):
            raise _bad("the ECDSA curve does not match the key type")
        point = reader.string()
        if len(point) != _CURVES[curve] or point[0] != 4:
            raise _bad("the ECDSA point is not an uncompressed point of its curve")
    else:
        raise _bad(f"unsupported key type {key_type!r}")
    if key_type.startswith("sk-"):
        application = reader.string()
        if not application.startswith(b"ssh:"):
            raise _bad("a security key's application must start with 'ssh:'")
    reader.end()


KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def parse_public_key(value: object) -> PublicKey:
    """``type base64 [comment]`` on one line, checked as the module docstring says."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("'public_key' is required: the key in OpenSSH's one-line form")
    if len(value) > MAX_LINE or "\n" in value.strip() or "\r" in value:
        raise _bad(f"one line of at most {MAX_LINE} characters")
    parts = value.strip().split(None, 2)
    if len(parts) < 2:
        raise _bad("expected 'type base64 [comment]'")
    key_type, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if key_type not in KEY_TYPES:
        raise _bad(f"unsupported key type (one of {', '.join(KEY_TYPES)})")
    try:
        blob = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _bad("the key data is not base64") from None
    reader = _Reader(blob)
    declared = reader.string()
    if declared != key_type.encode("ascii"):
        raise _bad("the key data is of another type than the line says")
    _check_fields(key_type, reader)
    if len(comment) > MAX_COMMENT or not comment.isprintable():
        raise _bad(f"the comment is at most {MAX_COMMENT} printable characters")
    return PublicKey(key_type, blob, comment)
