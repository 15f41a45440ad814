"""Reading a multipart/form-data upload as a stream: one file part spooled to disk, the
text fields beside it read as ``request_data`` reads fields.

The body is read ``READ_BYTES`` at a time through Werkzeug's sans-IO multipart
decoder. The file part's bytes go straight into an unnamed temporary file in the
data folder (on the data's disk, so the free-disk floor sees it; gone when closed,
or when the process dies), so no upload is ever held in memory whole. The other
parts are text fields, each strict UTF-8 and at most ``MAX_FIELD_BYTES``; they are
handed to ``request_data`` (``use_fields``), so the view reads ``author``,
``client_id`` and the rest with the usual getters.

A file past ``max_bytes`` is not stored anywhere: the rest of the body is read and
dropped (so the client, still sending, gets the 413 rather than a reset
connection) and ``too_large`` is raised at the end. A body whose first boundary, or a
part's blank line after its headers, does not come within ``MAX_PENDING_BYTES`` is
refused as malformed, rather than held in memory while the decoder waits for it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
    State,
)

from backend.core.errors import MissingField, PairchatError
from backend.http.errors import MalformedBody, UnsupportedBody
from backend.http.request_data import MAX_FIELDS

UPLOAD_PREFIX = "/send_file/"
"""The one route whose body may be a file (up to ``Settings.upload_body_limit``): the
front and the chunked-body guard give it its own limit."""

READ_BYTES = 64 * 1024  # bytes of the body read (and decoded) at a time
MAX_FIELD_BYTES = 64 * 1024  # bytes of one text field beside the file
# Bytes the decoder may hold undecoded once it has handed out every event it could:
# the text before the first boundary, or a part's headers before their blank line.
# Past this the body is refused, so a body without its boundary is never held whole.
MAX_PENDING_BYTES = MAX_FIELD_BYTES + READ_BYTES


@dataclass
class ReceivedFile:
    """The file part: the name and type the client gave, its size, its bytes (at 0)."""

    filename: str
    content_type: str | None
    size: int
    spool: IO[bytes]

    def close(self) -> None:
        self.spool.close()


def read_upload(
    file_field: str, max_bytes: int, spool_dir: Path, too_large: PairchatError
) -> tuple[dict[str, str], ReceivedFile]:
    """The text fields and the file part ``file_field`` of this request's multipart body.

    ``MissingField`` without that part; ``too_large`` when it is over ``max_bytes``.
    The caller closes the file (``ReceivedFile.close``).
    """
    if request.mimetype != "multipart/form-data":
        raise UnsupportedBody(
            f"send the file as multipart/form-data, in a part named '{file_field}'"
        )
    boundary = request.mimetype_params.get("boundary", "")
    if not boundary or not boundary.isascii():
        raise MalformedBody("a multipart body needs a boundary")
    decoder = MultipartDecoder(boundary.encode("ascii"))
    stream = request.stream
    fields: dict[str, str] = {}
    received: ReceivedFile | None = None
    spool: IO[bytes] | None = None  # the file part now being read
    over = False
    name: str | None = None  # the text field now being read
    chunks: list[bytes] = []
    field_bytes = 0
    try:
        while True:
            data = stream.read(READ_BYTES)
            decoder.receive_data(data or None)
            while True:
                event = decoder.next_event()
                if isinstance(event, (NeedData, Epilogue)):
                    break
                if isinstance(event, (File, Field)) and (
                    isinstance(event, File) or event.name == file_field
                ):
                    if event.name != file_field or received is not None:
                        raise MalformedBody(f"send one file, in the part named '{file_field}'")
                    spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 (the caller closes it)
                    filename = event.filename if isinstance(event, File) else ""
                    received = ReceivedFile(filename, event.headers.get("Content-Type"), 0, spool)
                elif isinstance(event, Field):
                    name, chunks, field_bytes = event.name, [], 0
                elif isinstance(event, Data):
                    if spool is not None and received is not None:
                        received.size += len(event.data)
                        over = over or received.size > max_bytes
                        if not over:
                            spool.write(event.data)
                        if not event.more_data:
                            spool = None
                    elif name is not None:
                        field_bytes += len(event.data)
                        if field_bytes > MAX_FIELD_BYTES:
                            raise MalformedBody(
                                f"a field beside the file is at most {MAX_FIELD_BYTES} bytes"
                            )
                        chunks.append(event.data)
                        if not event.more_data:
                            fields.setdefault(name, b"".join(chunks).decode("utf-8"))
                            name = None
                            if len(fields) > MAX_FIELDS:
                                raise MalformedBody(f"at most {MAX_FIELDS} fields")
            _check_pending(decoder)
            if not data:
                break
    except RequestEntityTooLarge:  # a chunked body past the request's limit
        _close(received)
        raise too_large from None
    except UnicodeDecodeError:
        _close(received)
        raise MalformedBody("a multipart field is not valid UTF-8") from None
    except ValueError:
        _close(received)
        raise MalformedBody("the multipart body is malformed") from None
    except BaseException:
        _close(received)
        raise
    if received is None:
        raise MissingField(f"'{file_field}' is required: the file, as a multipart part")
    if over:
        received.close()
        raise too_large
    received.spool.seek(0)
    g.pairchat_fields = fields  # request_data's getters read these (its per-request cache)
    return fields, received


def _check_pending(decoder: MultipartDecoder) -> None:
    """Refuse a body whose undecoded rest has grown past ``MAX_PENDING_BYTES``.

    Werkzeug's decoder keeps all it has received until it finds the first boundary or
    the blank line that ends a part's headers; inside a part's data it keeps only a
    possible partial boundary, and after the last boundary only the ignored epilogue
    (dropped here).
    """
    if decoder.state == State.EPILOGUE:
        del decoder.buffer[:]
    elif len(decoder.buffer) > MAX_PENDING_BYTES:
        raise MalformedBody("a part's headers, or the text before the first part, are too long")


def _close(received: ReceivedFile | None) -> None:
    if received is not None:
        received.close()
