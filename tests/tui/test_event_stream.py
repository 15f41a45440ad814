"""Live updates over one event stream (``GET /events``), and the long-poll where it cannot be.

The first tests read the framing (tui/client/events.py) without a server. The
others run the real app against a real server on 127.0.0.1: the stream delivers
another user's message to the friend list and the open chat with no long-poll;
a restart of the ``pairchat-server`` program is resumed from the last cursor with
nothing missed and nothing loaded again; a proxy that buffers replies
(tests/tui/buffering_proxy.py) or a server without ``/events`` makes the app fall
back to the long-poll, which still delivers, and F1 says which and why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from tests.support import LiveServer, ServerProcess, register
from tui.app import PairchatApp, make_app
from tui.client.events import EventParser, Retry, ServerEvent, StreamEnd, read_item
from tui.client.http import ApiError, PairchatClient, retry_after
from tui.client.models import Feed
from tui.config import Config
from tui.core import feed as feed_module
from tui.core.connection import Connection
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen
from tui.screens.signin import SignInScreen
from tui.widgets.friend_list import FriendList
from tui.widgets.status_bar import StatusBar

from .buffering_proxy import BufferingProxy
from .conftest import api, befriend, open_chat, wait_for

# -- the framing ----------------------------------------------------------------------------
STREAM = (
    "\ufeffretry: 2000\r\n\r\n"
    ": keep-alive\n\n"
    'id: 7\nevent: feed\ndata: {"cursor": "7", "changed": []}\n\n'
    "data: first line\rdata: second \u2028 line\r\r"
    "event: end\r\n"
    'data: {"reason": "replaced", "message": "a newer stream"}\r\n\r\n'
).encode()
EXPECTED: list[ServerEvent | Retry] = [
    Retry(2000),
    ServerEvent("feed", '{"cursor": "7", "changed": []}', "7"),
    ServerEvent("message", "first line\nsecond \u2028 line", "7"),
    ServerEvent("end", '{"reason": "replaced", "message": "a newer stream"}', "7"),
]


def parse_in_pieces(data: bytes, cuts: list[int]) -> list[ServerEvent | Retry]:
    parser = EventParser()
    found: list[ServerEvent | Retry] = []
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        found += parser.feed(data[start:end])
    return found


def test_the_parser_reads_crlf_cr_lf_comments_retry_and_multi_line_data() -> None:
    assert parse_in_pieces(STREAM, []) == EXPECTED


def test_the_parser_gives_the_same_events_however_the_bytes_are_cut() -> None:
    # every cut in two, and every cut in three around the CR LF pairs and the BOM
    for cut in range(1, len(STREAM)):
        assert parse_in_pieces(STREAM, [cut]) == EXPECTED, cut
    tricky = [i for i in range(len(STREAM)) if STREAM[i : i + 1] in (b"\r", b"\n", b"\xbb")]
    for first in tricky:
        for second in tricky:
            if first < second:
                assert parse_in_pieces(STREAM, [first, second]) == EXPECTED, (first, second)
    assert parse_in_pieces(STREAM, list(range(1, len(STREAM)))) == EXPECTED  # byte by byte


def test_an_unfinished_event_and_an_unknown_type_are_left_out() -> None:
    parser = EventParser()
    assert parser.feed(b"event: later\ndata: {}\n\nretry: soon\nid: 3\ndata: cut off") == [
        ServerEvent("later", "{}", None)
    ]
    assert read_item(ServerEvent("later", "{}")) is None
    assert parser.retry is None  # "soon" is no number


def test_a_feed_event_is_a_feed_and_an_end_event_says_why() -> None:
    change = '{"username": "bob", "last_id": 4, "unread": 1}'
    feed = read_item(ServerEvent("feed", f'{{"cursor": "9", "changed": [{change}]}}', "9"))
    assert isinstance(feed, Feed) and feed.cursor == "9"
    assert [(c.username, c.last_id, c.unread) for c in feed.changes] == [("bob", 4, 1)]
    end = read_item(ServerEvent("end", '{"reason": "shutdown", "message": "bye", "extra": 1}'))
    assert end == StreamEnd("shutdown", "bye")


def test_retry_after_reads_seconds_and_dates_and_is_bounded() -> None:
    def reply(value: str) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": value})

    assert retry_after(reply("17")) == 17
    assert retry_after(reply("Wed, 21 Oct 2015 07:28:30 GMT"), now=1445412480.0) == 30
    assert retry_after(reply("Wed, 21 Oct 2015 07:28:00 GMT"), now=1445412480.0 + 60) == 0
    assert retry_after(reply("99999999")) == 600
    assert retry_after(reply("soon")) is None
    assert retry_after(httpx.Response(200)) is None


# -- the app against a real server ---------------------------------------------------------
class Recorder(httpx.AsyncHTTPTransport):
    """httpx's real transport, noting each request; ``/events`` requests wait while the
    gate is shut (so a test can act before the app reconnects, instead of racing it)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0
        """``/events`` requests waiting at the gate now."""

    def seen(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/events" and not self.gate.is_set():
            self.held += 1
            try:
                await self.gate.wait()
            finally:
                self.held -= 1
        self.requests.append(request)
        return await super().handle_async_request(request)


def app_through(
    url: str,
    config_dir: Path,
    user: str,
    token: str,
    transport: httpx.AsyncBaseTransport | None = None,
    **settings: float,
) -> PairchatApp:
    """The real app signed in as ``user`` on ``url``, its requests through ``transport``."""
    config = Config(server=url, user=user, config_dir=config_dir, **settings)  # type: ignore[arg-type]
    config.save_session(user, token)
    return make_app(config, PairchatClient(url, transport=transport))


def main_of(app: PairchatApp) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def help_text(pilot: Pilot[None], app: PairchatApp) -> str:
    """What F1 shows, then closed again."""
    await pilot.press("f1")
    await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    text = screen.text()
    await pilot.press("escape")
    await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "help closed")
    return text


def unread_from(app: PairchatApp, peer: str) -> int:
    friend = main_of(app).query_one(FriendList).friends.get(peer)
    return friend.unread if friend is not None else 0


@pytest.mark.anyio
async def test_the_stream_brings_a_message_to_the_friend_list_and_the_open_chat(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob", "carol")
    recorder = Recorder()
    app = app_through(server.url, tmp_path, "alice", users["alice"], recorder)
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: recorder.seen("/events"), "the stream asked for")
        core = main_of(app).core
        await wait_for(pilot, lambda: core.live_updates == "event stream", "on the stream")
        with api(server.url, "carol", users["carol"]) as carol:
            carol.send("alice", "to the list")
        await wait_for(pilot, lambda: unread_from(app, "carol") == 1, "carol's unread count")
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "to the open chat")
        await wait_for(
            pilot, lambda: any("to the open chat" in line for line in log.text_lines()), "shown"
        )
        assert "Connection: live updates event stream" in await help_text(pilot, app)
        assert len(recorder.seen("/events")) == 1, "one stream, held all along"
        held = [r for r in recorder.seen("/updates") if "wait" in r.url.params]
        assert held == [], "no long-poll beside the stream"


@pytest.mark.anyio
async def test_a_restart_is_resumed_from_the_last_cursor_with_nothing_missed_or_loaded_again(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    recorder = Recorder()
    # generous: while the gate holds the reconnection, the first event must not be missed
    app = app_through(
        proc.url, tmp_path, "alice", users["alice"], recorder, first_event_timeout=60.0
    )
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        core = main_of(app).core
        status = main_of(app).query_one(StatusBar)
        await wait_for(pilot, lambda: recorder.seen("/events"), "the stream asked for")
        with api(proc.url, "bob", users["bob"]) as bob:
            bob.send("alice", "before the restart")
        await wait_for(
            pilot, lambda: any("before the restart" in t for t in log.text_lines()), "shown"
        )
        loads = len([r for r in recorder.seen("/updates") if "since" not in r.url.params])
        recorder.gate.clear()  # the app reconnects only once bob has sent more
        proc.stop()
        await wait_for(pilot, lambda: recorder.held, "the app reconnecting")
        cursor = core.feed.cursor  # the last the stream brought
        proc.start()
        with api(proc.url, "bob", users["bob"]) as bob:
            bob.send("alice", "while it was away")
            bob.send("alice", "and once more")
        asked = len(recorder.seen("/events"))
        recorder.gate.set()
        await wait_for(
            pilot, lambda: any("and once more" in t for t in log.text_lines()), "caught up"
        )
        await wait_for(pilot, lambda: status.state == "connected", "connected again")
        with api(proc.url, "bob", users["bob"]) as bob:
            bob.send("alice", "after the restart")
        await wait_for(
            pilot, lambda: any("after the restart" in t for t in log.text_lines()), "live again"
        )
        texts = [m.text for m in log.conversation.messages] if log.conversation else []
        assert texts == [
            "before the restart",
            "while it was away",
            "and once more",
            "after the restart",
        ]
        resumed = recorder.seen("/events")[asked]
        assert resumed.headers.get("Last-Event-ID") == cursor, "resumed from the last cursor"
        reloads = [r for r in recorder.seen("/updates") if "since" not in r.url.params]
        assert len(reloads) == loads, "nothing loaded from the start again"
        assert core.live_updates == "event stream"


@pytest.mark.anyio
async def test_behind_a_buffering_proxy_the_app_falls_back_to_the_long_poll_and_says_so(
    live_server: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_server(max_wait=5.0)
    users = {name: register(server.url, name) for name in ("alice", "bob")}
    befriend(server, users, "alice", "bob")
    with BufferingProxy(server.port) as proxy:
        app = app_through(proxy.url, tmp_path, "alice", users["alice"], first_event_timeout=1.0)
        async with app.run_test(size=(80, 24)) as pilot:
            log = await open_chat(pilot, app, "bob")
            core = main_of(app).core
            started = time.monotonic()
            await wait_for(pilot, lambda: core.live_updates.startswith("long-poll"), "the fallback")
            assert time.monotonic() - started < 10
            assert "/events" in proxy.paths()
            with api(server.url, "bob", users["bob"]) as bob:
                bob.send("alice", "through the proxy")
            await wait_for(
                pilot, lambda: any("through the proxy" in t for t in log.text_lines()), "shown"
            )
            text = await help_text(pilot, app)
            assert "live updates long-poll (a proxy buffers the event stream)" in text, text
            streams = proxy.paths().count("/events")
            with api(server.url, "bob", users["bob"]) as bob:
                bob.send("alice", "and again")
            await wait_for(
                pilot, lambda: any("and again" in t for t in log.text_lines()), "shown too"
            )
            assert proxy.paths().count("/events") == streams == 1, "stays on the long-poll"
            assert main_of(app).query_one(StatusBar).state == "connected"


@pytest.mark.anyio
async def test_a_token_revoked_elsewhere_ends_the_session_within_seconds(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    recorder = Recorder()
    app = app_through(server.url, tmp_path, "alice", users["alice"], recorder)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        core = main_of(app).core
        await wait_for(pilot, lambda: recorder.seen("/events"), "the stream asked for")
        await wait_for(pilot, lambda: core.feed.cursor is not None, "loaded")
        await wait_for(pilot, lambda: server.services.notifier.waiting() == 1, "stream held")
        with api(server.url, "alice", users["alice"]) as elsewhere:
            elsewhere.logout_all()  # "sign out everywhere" on another device
        started = time.monotonic()
        await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen), "signed out here")
        assert time.monotonic() - started < 5, "the stream's end said so, no long-poll to wait"
        notice = str(app.screen.query_one("#signin-error", Static).render())
        assert "session has ended" in notice, notice


class Slow(Recorder):
    """Every request waits ``delay`` seconds before it goes out: a slow server, not a proxy."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay)
        return await httpx.AsyncHTTPTransport.handle_async_request(self, request)


@pytest.mark.anyio
async def test_a_slow_server_is_not_taken_for_a_buffering_proxy(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    slow = Slow(0.8)  # the stream's first event late, and a plain /updates as late
    app = app_through(server.url, tmp_path, "alice", users["alice"], slow, first_event_timeout=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        core = main_of(app).core
        await wait_for(pilot, lambda: len(slow.seen("/events")) >= 2, "two tries of the stream")
        await wait_for(pilot, lambda: len(slow.seen("/updates")) >= 3, "each checked by /updates")
        assert core.feed.mode == "stream", "a slow server is no reason to give up the stream"
        slow.delay = 0.0
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "quick again")
        await wait_for(pilot, lambda: unread_from(app, "bob") == 1, "bob's message")
        streams = len(slow.seen("/events"))
        with api(server.url, "bob", users["bob"]) as bob:
            bob.send("alice", "on the stream")
        await wait_for(pilot, lambda: unread_from(app, "bob") == 2, "bob's second message")
        assert len(slow.seen("/events")) == streams, "delivered by the stream it held"
        assert core.live_updates == "event stream"


@pytest.mark.anyio
async def test_a_stream_replaced_by_a_newer_one_of_the_same_user_does_not_fight_back(
    server_process: Callable[..., ServerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "QUIET_POLL", 0.2)  # the pause's quick looks, sooner
    proc = server_process(env={"PAIRCHAT_MAX_WAITS_PER_USER": "2"})
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    with api(proc.url, "alice", users["alice"]) as alice:
        alice.add_friend("bob")
    recorder = Recorder()
    app = app_through(proc.url, tmp_path, "alice", users["alice"], recorder)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
        core = main_of(app).core
        await wait_for(pilot, lambda: recorder.seen("/events"), "the stream asked for")
        await wait_for(pilot, lambda: core.feed.cursor is not None, "loaded")
        async with (  # alice's two other devices: two streams per user, the app's is oldest
            PairchatClient(proc.url, users["alice"], username="alice") as second,
            PairchatClient(proc.url, users["alice"], username="alice") as third,
        ):
            _, one = await first_feed(second)
            _, other = await first_feed(third)
            await wait_for(pilot, lambda: core.feed.mode == "replaced", "the app stood back")
            text = await help_text(pilot, app)
            assert "more live connections than the server allows" in text, text
            with api(proc.url, "bob", users["bob"]) as bob:
                bob.send("alice", "still arrives")
            await wait_for(pilot, lambda: unread_from(app, "bob") == 1, "bob's message")
            for newer in (one, other):
                assert isinstance(await next_feed(newer), Feed), "not replaced back"
                await newer.aclose()  # type: ignore[attr-defined]
            assert len(recorder.seen("/events")) == 1, "no new stream during the pause"
            assert main_of(app).query_one(StatusBar).state == "connected"


@pytest.mark.anyio
async def test_a_server_without_the_event_stream_gets_the_long_poll_and_f1_says_so(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    with BufferingProxy(server.port, buffer=False, no_events=True) as proxy:
        app = app_through(proxy.url, tmp_path, "alice", users["alice"])
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), "the main screen")
            core = main_of(app).core
            await wait_for(pilot, lambda: core.feed.mode == "no-stream", "the fallback")
            await wait_for(
                pilot,
                lambda: any("wait=" in r for r in proxy.requests if "/updates" in r),
                "the long-poll held",
            )
            with api(server.url, "bob", users["bob"]) as bob:
                bob.send("alice", "no stream here")
            await wait_for(pilot, lambda: unread_from(app, "bob") == 1, "bob's unread count")
            text = await help_text(pilot, app)
            assert "live updates long-poll (this server has no event stream)" in text, text


async def first_feed(client: PairchatClient) -> tuple[Feed, object]:
    """Open ``client``'s stream and read up to its first feed event; the stream stays open."""
    stream = client.events()
    async for item in stream:
        if isinstance(item, Feed):
            return item, stream
    raise AssertionError("the stream ended before its first event")


async def next_feed(stream: object) -> Feed | StreamEnd:
    """The next feed or end event of an open stream."""
    while True:
        item = await anext(stream)  # type: ignore[call-overload]
        if isinstance(item, Feed | StreamEnd):
            return item


@pytest.mark.anyio
async def test_a_full_server_refuses_a_stream_with_a_retry_after_the_client_reads(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(max_waiters=1)
    alice, bob = register(server.url, "alice"), register(server.url, "bob")
    notifier = server.services.notifier
    async with (
        PairchatClient(server.url, bob, username="bob") as first,
        PairchatClient(server.url, alice, username="alice") as second,
    ):
        _, held = await first_feed(first)
        deadline = time.monotonic() + 10
        while notifier.waiting() < 1:  # the one slot taken by bob's stream
            assert time.monotonic() < deadline, "bob's stream never held its slot"
            await asyncio.sleep(0.02)
        with pytest.raises(ApiError) as refused:
            await first_feed(second)
        await held.aclose()  # type: ignore[attr-defined]
    assert refused.value.status == 503
    assert refused.value.retry_after is not None and refused.value.retry_after >= 1


@pytest.mark.anyio
async def test_a_long_poll_answered_early_by_a_full_server_carries_its_retry_after(
    server_process: Callable[..., ServerProcess],
) -> None:
    proc = server_process(env={"PAIRCHAT_MAX_WAITERS": "1"})
    alice, bob = register(proc.url, "alice"), register(proc.url, "bob")
    async with (
        PairchatClient(proc.url, bob, username="bob") as first,
        PairchatClient(proc.url, alice, username="alice") as second,
    ):
        _, held = await first_feed(first)  # the server's one slot
        cursor = (await second.updates()).cursor
        started = time.monotonic()
        reply = await second.updates(since=cursor, wait=20)
        await held.aclose()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 10, "answered early: no room to hold it"
    assert reply.retry_after is not None and reply.retry_after >= 1


@pytest.mark.anyio
async def test_a_retry_after_is_waited_out_even_when_another_loop_gets_through() -> None:
    changes: list[str] = []
    connection = Connection(lambda state: changes.append(state.state))
    full = ApiError(503, "unavailable", "full", retry_after=0.5)
    started = time.monotonic()
    waiting = asyncio.create_task(connection.recover(full))
    await asyncio.sleep(0)
    connection.ok()  # the sender got through: a plain failure would retry now
    await waiting
    assert time.monotonic() - started >= 0.5
    assert changes == ["trouble", "connected"]
