"""Unit tests of the client's plain modules: config, outbox, formatting, the HTTP client."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import arrow
import pytest

from tests.support import LiveServer, free_port
from tui.client.blocking import BlockingClient
from tui.client.http import ApiError, ServerUnreachable
from tui.config import DEFAULT_SERVER, Config, dump_toml, load_config
from tui.core.outbox import Outbox
from tui.formatting import clock_time, day_label, short_activity, to_local
from tui.text import display_text, one_line

from .conftest import PASSWORD, fixed_clock


def write_config(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(text, encoding="utf-8")


def test_config_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    write_config(
        tmp_path, 'server = "http://file:1"\nuser = "fileuser"\n[keymap]\n"main.search" = "f3"\n'
    )
    env = {"PAIRCHAT_CONFIG_DIR": str(tmp_path)}
    from_file = load_config(env=env)
    assert (from_file.server, from_file.user) == ("http://file:1", "fileuser")
    assert from_file.keymap == {"main.search": "f3"}
    env |= {"PAIRCHAT_SERVER": "http://env:2/", "PAIRCHAT_USER": "envuser"}
    from_env = load_config(env=env)
    assert (from_env.server, from_env.user) == ("http://env:2", "envuser")
    from_flags = load_config(server="http://flag:3", user="flaguser", env=env)
    assert (from_flags.server, from_flags.user) == ("http://flag:3", "flaguser")
    defaults = load_config(env={"PAIRCHAT_CONFIG_DIR": str(tmp_path / "empty")})
    assert (defaults.server, defaults.user, defaults.password) == (DEFAULT_SERVER, None, None)
    assert load_config(env={**env, "PAIRCHAT_PASSWORD": "pw"}).password == "pw"


def test_session_is_saved_owner_only_per_server(tmp_path: Path) -> None:
    config = Config(server="http://127.0.0.1:1", config_dir=tmp_path / "cfg")
    config.save_session("alice", 'tok"en\\x')
    mode = stat.S_IMODE(os.stat(config.session_path).st_mode)
    assert mode == 0o600
    assert config.saved_session() == ("alice", 'tok"en\\x')
    assert Config(server="http://127.0.0.1:2", config_dir=tmp_path / "cfg").saved_session() is None
    other_user = Config(server="http://127.0.0.1:1", user="bob", config_dir=tmp_path / "cfg")
    assert other_user.saved_session() is None
    config.forget_session()
    assert config.saved_session() is None


def test_toml_writer_round_trips() -> None:
    data = {"a": 'x\ny\t"q"\\', "n": 3, "t": {"http://h:1/": {"k": "v"}, "b": True}}
    assert tomllib.loads(dump_toml(data)) == data


def test_outbox_persists_in_order_and_writes_atomically(tmp_path: Path) -> None:
    path = tmp_path / "outbox-alice.json"
    box = Outbox(path)
    first = box.add("bob", "one")
    second = box.add("carol", "two [b]x[/b]")
    assert len(first.client_id) == 32 and first.client_id != second.client_id
    again = Outbox(path)
    assert [(i.to, i.text, i.client_id) for i in again.items] == [
        ("bob", "one", first.client_id),
        ("carol", "two [b]x[/b]", second.client_id),
    ]
    again.fail(second.client_id, "blocked")
    again.remove(first.client_id)
    third = Outbox(path)
    assert third.next_to_send() is None and len(third) == 1 and third.pending_count == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".lock"]
    assert json.loads(path.read_text())["items"][0]["error"] == "blocked"


def test_unreadable_outbox_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "outbox-alice.json"
    path.write_text("{not json")
    box = Outbox(path)
    assert len(box) == 0
    assert any(p.name.startswith("outbox-alice.corrupt") for p in tmp_path.iterdir())


def test_times_are_hh_mm_under_day_separators() -> None:
    now = fixed_clock()
    zone = now.tzinfo

    def local(seconds: object):  # type: ignore[no-untyped-def]
        return to_local(seconds, zone)

    today = now.datetime
    assert clock_time(local(now.shift(minutes=-5).int_timestamp)) == "15:04"
    assert clock_time(local(now.shift(hours=-5).int_timestamp)) == "10:09"
    assert clock_time(local(str(now.int_timestamp))) == "15:09"  # seed files may hold text
    assert clock_time(local("2026-03-14T08:00:00+00:00")) == "08:00"
    assert clock_time(local("not a date")) == "--:--"
    assert day_label(local(now.int_timestamp), today) == "Today"
    assert day_label(local(now.shift(days=-1).int_timestamp), today) == "Yesterday"
    assert day_label(local(now.shift(days=-3).int_timestamp), today) == "Wednesday 11 March 2026"
    assert short_activity(now.shift(minutes=-7).int_timestamp, fixed_clock) == "7m"
    five = now.to("+05:00")
    assert clock_time(to_local(now.int_timestamp, five.tzinfo)) == "20:09"


def test_user_text_is_never_terminal_control() -> None:
    assert display_text("a\x1b[2Jb\x07") == "a^[[2Jb^G"
    assert display_text("tab\tand\nnewline") == "tab    and\nnewline"
    assert one_line("two\nlines") == "two\u23celines"
    assert arrow.get(0)  # arrow is importable and sane


def test_client_raises_typed_errors(server: LiveServer, users: dict[str, str]) -> None:
    with BlockingClient(server.url) as client:
        with pytest.raises(ApiError) as wrong:
            client.login("alice", "not the password")
        assert (wrong.value.status, wrong.value.code) == (401, "bad_credentials")
        session = client.login("alice", PASSWORD)
        assert session.username == "alice" and session.token and client.token == session.token
        assert client.me().username == "alice"
        client.add_friend("bob")
        sent = client.send("bob", "hi", client_id="c1")
        assert client.send("bob", "hi", client_id="c1").id == sent.id
        page = client.history("bob", limit=10)
        assert [m.text for m in page.messages] == ["hi"] and not page.has_more
        assert [f.username for f in client.friends().friends] == ["bob"]
        assert client.updates().cursor
    url = f"http://127.0.0.1:{free_port()}"
    with BlockingClient(url) as client, pytest.raises(ServerUnreachable) as down:
        client.healthz()
    assert down.value.url == url and url in str(down.value)


def test_wrap_never_exceeds_the_width_and_keeps_every_character() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from rich.cells import cell_len

    from tui.text import wrap

    alphabet = st.sampled_from([*"ab cd\u4e2d\u6587 \U0001f44d-/\n", "https://x.org/"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(alphabet, max_size=60).map("".join), st.integers(1, 30))
    def check(text: str, width: int) -> None:
        lines = wrap(text, width)
        for start, end in lines:
            assert cell_len(text[start:end]) <= max(width, 2)  # a wide char on a 1-cell line
        kept = "".join(text[a:b] for a, b in lines)
        assert kept.replace(" ", "") == text.replace(" ", "").replace("\n", "")

    check()


def test_same_width_drawing_keeps_every_grapheme_width() -> None:
    from rich.cells import cell_len

    from tui.text import same_width

    for text in (
        "a\u2764\ufe0fb",
        "\U0001f44d\U0001f3fdx",
        "\U0001f468\u200d\U0001f469y",
        "a\u202eb",
    ):
        drawn = same_width(text)
        assert cell_len(drawn) == cell_len(text)
        assert not any(c in drawn for c in "\ufe0f\u200d\u202e\U0001f3fd")
    assert same_width("plain") == "plain"


@pytest.mark.anyio
async def test_a_folded_url_is_one_osc8_link_on_every_line() -> None:
    from textual.app import App, ComposeResult

    from tui.client.models import Message
    from tui.core.conversation import Conversation
    from tui.widgets.chat_log import ChatLog

    url = "https://example.org/a/really/long/path/that/does/not/fit/on/one/line"

    class Harness(App[None]):
        def compose(self) -> ComposeResult:
            yield ChatLog("alice", clock=fixed_clock)

    app = Harness()
    async with app.run_test(size=(40, 12)) as pilot:
        log = app.query_one(ChatLog)
        chat = Conversation("bob", "alice")
        chat.merge([Message(1, "bob", f"see {url} now", fixed_clock().int_timestamp)])
        chat.loaded = True
        log.show(chat)
        log.loaded()
        await pilot.pause()
        linked = [
            "".join(s.text for s in log.render_line(y) if s.style and s.style.link == url)
            for y in range(log.scrollable_content_region.height)
        ]
        parts = [part for part in linked if part]
        assert len(parts) >= 2 and "".join(parts) == url
