"""Property tests: the pair -> file map is safe, symmetric and one-to-one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.core.errors import InvalidInput
from backend.storage.conversations import ConversationStore
from tests.support import Server, http

valid_names = st.from_regex(r"[A-Za-z0-9]{1,10}(-[A-Za-z0-9]{1,10}){0,2}", fullmatch=True)
any_text = st.text(min_size=0, max_size=60) | st.sampled_from(
    ["..", "../x", "/etc/passwd", "a_b", "a.b", "a/b", "-a", "a-", "a--b", "A" * 40, "\x00", "é"]
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ConversationStore:
    return ConversationStore(tmp_path_factory.mktemp("names") / "data")


@settings(max_examples=400)
@given(one=any_text, two=any_text)
def test_any_two_strings_map_inside_the_folder_or_are_refused(
    store: ConversationStore, one: str, two: str
) -> None:
    try:
        path = store.path_for(one, two)
    except InvalidInput:
        return
    assert path.parent == store.data_dir
    assert path.name.endswith(".db") and path.name.count("_") == 1


@settings(max_examples=300)
@given(a=valid_names, b=valid_names, c=valid_names, d=valid_names)
def test_mapping_is_symmetric_and_one_to_one(
    store: ConversationStore, a: str, b: str, c: str, d: str
) -> None:
    if a.lower() == b.lower() or c.lower() == d.lower():
        return
    assert store.path_for(a, b) == store.path_for(b, a) == store.path_for(a.upper(), b.lower())
    same_pair = {a.lower(), b.lower()} == {c.lower(), d.lower()}
    assert (store.path_for(a, b) == store.path_for(c, d)) == same_pair


@pytest.mark.both_tiers
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(one=any_text, two=any_text)
def test_over_http_bad_names_are_400_and_write_nothing(
    open_server: Server, one: str, two: str
) -> None:
    root: Path = open_server.data_dir.parent
    before = {p for p in root.rglob("*") if p.is_file()}
    replies = [
        http.post(
            f"{open_server.url}/send_message/{quote(two, safe='') or 'x'}",
            data={"author": one, "message": "hi"},
        ),
        http.post(
            f"{open_server.url}/create_conversation_db", json={"user_one": one, "user_two": two}
        ),
    ]
    for reply in replies:
        assert reply.status_code in (200, 400, 404), reply.text
        assert reply.headers["content-type"] == "application/json"
        if reply.status_code != 200:
            assert reply.json()["success"] is False
    after = {p for p in root.rglob("*") if p.is_file()}
    for created in after - before:
        assert created.parent == open_server.data_dir
