"""The file routes: send a file as a message, download a message's file, list a pair's files.

``POST /send_file/<username>`` reads its multipart body as a stream
(``backend/http/uploads.py``: the file part spooled to disk, never whole in
memory), then follows ``/send_message``: the same fields (``message`` is an
optional caption here), auth, idempotency and reply, plus the stored
``attachment``; ``author`` may also be in the query (``?author=``), which the
multi-node router reads to find the pair's node. A body declared larger than a
file may be is refused before it is read. ``GET /file/<id>`` streams the bytes
back a stored chunk at a time; ``GET /files`` lists the pair's files, newest
first. Both are for the two people of the pair only, as every conversation route.
"""

from __future__ import annotations

import re

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from backend.core.errors import UnknownMessage
from backend.core.usernames import canonical_username
from backend.http import auth, replies, uploads
from backend.http import request_data as data
from backend.http.context import services
from backend.services.files import media_type, parse_caption, parse_file_name
from backend.storage.attachments import Upload

bp = Blueprint("files", __name__)
_ID_RE = re.compile(r"[1-9][0-9]{0,18}\Z")
_RANGE_RE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})\Z")


@bp.post("/send_file/<username>")
@auth.conversation
def send_file(username: str) -> ResponseReturnValue:
    settings = services().settings
    files = services().files
    declared = request.content_length
    if declared is not None and declared > settings.upload_body_limit:
        raise files.too_large()
    request.max_content_length = settings.upload_body_limit
    fields, received = uploads.read_upload(
        "file", settings.max_file_bytes, settings.data_dir, files.too_large()
    )
    if "author" not in fields and "author" in request.args:
        # multi-node mode: the router reads the pair from the path and ?author= (it cannot
        # read a multipart body), so a client there names the author in the query
        fields["author"] = request.args["author"]
    try:
        client_id = data.client_id()
        reply_to = data.integer("reply_to", minimum=1)
        author = data.username("author")
        signed_in = auth.allow_author(author)
        recipient = canonical_username(username, "username")  # from the path
        caption = data.parsed("message", parse_caption)
        name = parse_file_name(received.filename)
        upload = Upload(
            name, media_type(received.content_type, name), received.size, received.spool.read
        )
        stored = files.send(
            author,
            recipient,
            upload,
            caption,
            client_id,
            require_accounts=signed_in,
            reply_to=reply_to,
        )
    finally:
        received.close()
    return replies.sent(stored)


@bp.get("/file/<message_id>")
@auth.conversation
def get_file(message_id: str) -> ResponseReturnValue:
    if not _ID_RE.match(message_id) or int(message_id) > data.MAX_INT:
        raise UnknownMessage(f"there is no message {message_id[:40]!r}: an id is a whole number")
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    download = services().files.attachment(pair, int(message_id), require_accounts=signed_in)
    size = download.attachment.size
    asked = _byte_range(request.headers.get("Range"), size)
    start, end = asked or (0, size - 1)
    return replies.file_download(download.attachment, download.chunks(start, end), asked)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one satisfiable byte range a ``Range`` header asks for (RFC 9110 14.2: ``bytes=
    first-last``, ``first-`` or ``-suffix``), as (first, last); None for the whole file.
    Any other ``Range`` (several ranges, other units, past the end) is ignored, as a
    server may: the reply is then the whole file, 200."""
    found = _RANGE_RE.match((header or "").strip())
    if found is None or size == 0:
        return None
    first, last = found.groups()
    if first == "":
        suffix = int(last or 0)
        return (max(0, size - suffix), size - 1) if suffix else None
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    return (start, end) if start <= end else None


@bp.get("/files")
@auth.conversation
def list_files() -> ResponseReturnValue:
    pair = data.pair()
    signed_in = auth.allow_pair(pair)
    return replies.files(services().files.files(pair, require_accounts=signed_in))
