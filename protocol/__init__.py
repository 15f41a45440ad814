"""The wire format of the pairchat API, written once.

``protocol.models`` holds every reply (and the request fields the backend reads) as
typed msgspec Structs; the backend encodes its replies with them, the TUI's client
decodes with them, and ``python -m protocol.openapi`` writes docs/openapi.yaml from
them and from the route table in ``protocol.routes``. This package imports msgspec
only: no Flask, no Textual, no httpx, nothing of ``backend`` or ``tui``.

One rule carries the contract: a field typed ``X | UnsetType = UNSET`` may be absent
from a reply (it is left out, not sent as ``null``); every other field is always
sent by the server. Defaults on those other fields only let the client read older
servers that did not send them yet.
"""

from protocol.codec import DecodeError, decode, encode, encode_list_items, to_builtins

__all__ = ["DecodeError", "decode", "encode", "encode_list_items", "to_builtins"]
