"""JSON bytes to and from the models: one encoder, one cached decoder per type."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class DecodeError(ValueError):
    """Bytes that are not JSON, or JSON that does not fit the model (says which field)."""


def encode(value: Any) -> bytes:
    """``value`` (models, lists, dicts, plain values) as compact UTF-8 JSON bytes."""
    try:
        return _encoder.encode(value)
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError):
        # a lone surrogate from an old seed file: the standard library escapes it
        return json.dumps(to_builtins(value), separators=(",", ":")).encode("utf-8")


def encode_list_items(values: list[Any]) -> bytes:
    """The items of ``values`` as JSON, comma-separated, without the brackets."""
    return encode(values)[1:-1]


def to_builtins(value: Any) -> Any:
    """``value`` as dicts, lists and plain values (what ``json.dumps`` takes)."""
    return msgspec.to_builtins(value)


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode(data: bytes | str, kind: type[T]) -> T:
    """``data`` read as a ``kind``; ``DecodeError`` if it is not one."""
    try:
        result: T = _decoder(kind).decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DecodeError(str(exc)) from None
    return result


def convert(value: Any, kind: type[T]) -> T:
    """Already-parsed JSON (dicts and lists) read as a ``kind``; ``DecodeError`` if not."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise DecodeError(str(exc)) from None
