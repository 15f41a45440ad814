"""msgspec or pydantic for the wire models (protocol/): the send and history reply paths.

A page of 100 messages is built from storage rows, encoded to JSON bytes and decoded
back into typed objects, three ways: the hand-written dicts + orjson + the client's
hand-written parsers (what pairchat did before protocol/), msgspec Structs, and
pydantic v2 models. Run ``python -m bench.wire_models`` (pydantic is no dependency of
pairchat; the dev install has it through openapi-spec-validator, and its rows are
skipped where it is missing). Numbers are microseconds per reply, best of 5 runs.
"""

from __future__ import annotations

import timeit
from typing import Any

import msgspec
import orjson

N = 100
ROW = (
    "alice",
    "a message of ordinary length, with some words in it — and one ü",
    1_764_012_345,
    "c-0001",
)


def rows() -> list[tuple[Any, ...]]:
    return [(i, *ROW[:3], ROW[3], i, None, False, None) for i in range(1, N + 1)]


# -- msgspec ---------------------------------------------------------------------------
class MMessage(msgspec.Struct, frozen=True):
    id: int
    author: str
    message: str
    date_sent: int | float | str | None
    rev: int = 0
    edited_at: int | float | None = None
    deleted: bool = False
    reply_to: int | None = None
    client_id: str | msgspec.UnsetType = msgspec.UNSET


class MHistory(msgspec.Struct, frozen=True):
    history: list[MMessage]
    has_more: bool = False
    rev: int = 0
    has_more_after: bool | msgspec.UnsetType = msgspec.UNSET


class MSent(msgspec.Struct, frozen=True):
    id: int
    date_sent: int | float | str | None
    duplicate: bool = False
    rev: int = 0
    success: bool = True


def main() -> None:
    data = rows()
    results: list[tuple[str, str, float]] = []

    def measure(name: str, what: str, fn: Any) -> None:
        loops = 2000
        best = min(timeit.repeat(fn, number=loops, repeat=5)) / loops
        results.append((name, what, best * 1e6))

    # before: dicts + orjson, hand-written parse
    def dict_message(r: tuple[Any, ...]) -> dict[str, Any]:
        body = {
            "id": r[0],
            "author": r[1],
            "message": r[2],
            "date_sent": r[3],
            "rev": r[5],
            "edited_at": r[6],
            "deleted": r[7],
            "reply_to": r[8],
        }
        if r[4] is not None:
            body["client_id"] = r[4]
        return body

    def dict_encode() -> bytes:
        body = {"history": [dict_message(r) for r in data], "has_more": False, "rev": N}
        return orjson.dumps(body)

    page_bytes = dict_encode()

    def dict_decode() -> Any:
        body = orjson.loads(page_bytes)
        out = []
        for m in body["history"]:
            if not isinstance(m, dict):
                raise ValueError
            out.append(
                (
                    int(m["id"]),
                    str(m.get("author") or "?"),
                    str(m.get("message") or ""),
                    m.get("date_sent"),
                    m.get("client_id") or None,
                    int(m.get("rev") or 0),
                    m.get("edited_at"),
                    bool(m.get("deleted", False)),
                    m.get("reply_to"),
                )
            )
        return out

    sent_bytes = orjson.dumps({"success": True, "id": 1, "date_sent": 1, "duplicate": False})
    measure("dicts + orjson (before)", "history encode", dict_encode)
    measure("dicts + orjson (before)", "history decode", dict_decode)
    measure(
        "dicts + orjson (before)",
        "send encode",
        lambda: orjson.dumps(
            {"success": True, "id": 12, "date_sent": 1_764_012_345, "duplicate": False, "rev": 3}
        ),
    )
    measure("dicts + orjson (before)", "send decode", lambda: orjson.loads(sent_bytes))

    encoder = msgspec.json.Encoder()
    history_decoder = msgspec.json.Decoder(MHistory)
    sent_decoder = msgspec.json.Decoder(MSent)

    def m_encode() -> bytes:
        msgs = [
            MMessage(r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8], r[4] or msgspec.UNSET)
            for r in data
        ]
        return encoder.encode(MHistory(msgs, False, N))

    assert orjson.loads(m_encode()) == orjson.loads(page_bytes)
    measure(f"msgspec {msgspec.__version__}", "history encode", m_encode)
    measure(
        f"msgspec {msgspec.__version__}",
        "history decode",
        lambda: history_decoder.decode(page_bytes),
    )
    measure(
        f"msgspec {msgspec.__version__}",
        "send encode",
        lambda: encoder.encode(MSent(12, 1_764_012_345, False, 3)),
    )
    measure(
        f"msgspec {msgspec.__version__}", "send decode", lambda: sent_decoder.decode(sent_bytes)
    )

    try:
        import pydantic
    except ImportError:
        pydantic = None  # type: ignore[assignment]
    if pydantic is not None:

        class PMessage(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(frozen=True)
            id: int
            author: str
            message: str
            date_sent: int | float | str | None
            rev: int = 0
            edited_at: int | float | None = None
            deleted: bool = False
            reply_to: int | None = None
            client_id: str | None = None

        class PHistory(pydantic.BaseModel):
            history: list[PMessage]
            has_more: bool = False
            rev: int = 0
            has_more_after: bool | None = None

        class PSent(pydantic.BaseModel):
            success: bool = True
            id: int
            date_sent: int | float | str | None
            duplicate: bool = False
            rev: int = 0

        def p_encode() -> bytes:
            msgs = [
                PMessage(
                    id=r[0], author=r[1], message=r[2], date_sent=r[3], rev=r[5],
                    edited_at=r[6], deleted=r[7], reply_to=r[8], client_id=r[4],
                )
                for r in data
            ]  # fmt: skip
            return (
                PHistory(history=msgs, has_more=False, rev=N)
                .model_dump_json(exclude_none=False)
                .encode()
            )

        name = f"pydantic {pydantic.__version__}"
        measure(name, "history encode", p_encode)
        measure(name, "history decode", lambda: PHistory.model_validate_json(page_bytes))
        measure(
            name,
            "send encode",
            lambda: (
                PSent(id=12, date_sent=1_764_012_345, duplicate=False, rev=3)
                .model_dump_json()
                .encode()
            ),
        )
        measure(name, "send decode", lambda: PSent.model_validate_json(sent_bytes))

    print(f"{'library':28} {'reply':16} {'µs':>8}")
    for name, what, micros in results:
        print(f"{name:28} {what:16} {micros:8.1f}")


if __name__ == "__main__":
    main()
