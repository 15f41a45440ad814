"""Files in the TUI, against the real server: Ctrl+O attaches a path (Tab completes, a bad
path says why and stays), the file goes through the outbox like a message, a received
file shows "📎 name · size", ``s`` saves it into the download folder and says where, and a
refusal (over the server's limit) keeps the file, marked, with the reason.

Also the pieces without a server: path completion, safe names that never overwrite,
sizes for people, a file item of the outbox surviving on disk."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from tests.support import LiveServer, ServerProcess, http, register
from tui.client.downloads import filename_of, place, safe_file_name
from tui.client.models import Attachment, Message
from tui.core.conversation import Conversation
from tui.core.outbox import Outbox, OutboxItem
from tui.screens.attach import AttachDialog, complete_path
from tui.screens.help import HelpScreen
from tui.text import human_size
from tui.widgets.chat_log import ChatLog
from tui.widgets.composer import Composer

from .conftest import FIXED_NOW, api, app_for, befriend, fixed_clock, open_chat, settled, wait_for

pytestmark = pytest.mark.anyio

PAPERCLIP = "\U0001f4ce"


def shown(log: ChatLog, text: str) -> bool:
    return any(text in line for line in log.text_lines())


def file_bytes(server: LiveServer, token: str, me: str, other: str, message_id: int) -> bytes:
    reply = http.get(
        f"{server.url}/file/{message_id}",
        params={"user_one": me, "user_two": other},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status_code == 200, reply.text
    return reply.content


def toasts(app: object) -> list[str]:
    return [n.message for n in app._notifications]  # type: ignore[attr-defined]


# -- without a server -------------------------------------------------------------------------
def test_tab_completes_a_path_as_a_shell_does(tmp_path: Path) -> None:
    (tmp_path / "report-q3.pdf").write_bytes(b"%PDF")
    (tmp_path / "report-q4.pdf").write_bytes(b"%PDF")
    (tmp_path / "photos").mkdir()
    (tmp_path / ".hidden").write_text("x")
    base = f"{tmp_path}/"
    assert complete_path(base + "rep") == (
        base + "report-q",
        ["report-q3.pdf", "report-q4.pdf"],
    )
    assert complete_path(base + "report-q4") == (base + "report-q4.pdf", ["report-q4.pdf"])
    assert complete_path(base + "ph") == (base + "photos/", ["photos/"])
    assert complete_path(base + "zzz") == (base + "zzz", [])
    assert ".hidden" not in complete_path(base)[1] and ".hidden" in complete_path(base + ".")[1]
    home = Path(os.path.expanduser("~"))
    if home.is_dir():
        assert complete_path("~") == ("~/", [])  # ~ stays as typed, the home's files after it


def test_a_saved_file_takes_a_safe_name_and_never_overwrites(tmp_path: Path) -> None:
    header = "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%202026%22%3B.pdf"  # RFC 6266
    assert filename_of(header) == 'résumé 2026";.pdf'
    assert safe_file_name(filename_of(header), "f") == "résumé 2026_;.pdf"
    assert filename_of('attachment; filename="plain.txt"') == "plain.txt"
    assert filename_of("") is None
    assert safe_file_name("../../etc/passwd", "f") == "passwd"
    assert safe_file_name("..", "file-7") == "file-7"
    assert safe_file_name("a\x1b[31mb.txt", "f") == "a_[31mb.txt"
    assert safe_file_name(".bashrc", "f") == "bashrc"
    long = safe_file_name("x" * 400 + ".tar.gz", "f")
    assert long.endswith(".gz") and len(long.encode()) <= 200
    (tmp_path / "report.pdf").write_bytes(b"old")
    (tmp_path / "report (1).pdf").write_bytes(b"older")
    part = tmp_path / ".part"
    part.write_bytes(b"new")
    saved = place(part, tmp_path, "report.pdf")
    assert saved == tmp_path / "report (2).pdf" and saved.read_bytes() == b"new"
    assert (tmp_path / "report.pdf").read_bytes() == b"old" and not part.exists()


def test_sizes_read_as_people_write_them() -> None:
    assert [human_size(n) for n in (0, 999, 1536, 25 * 1024**2, 31_557_280, 250 * 1024**2)] == [
        "0 B",
        "999 B",
        "1.5 KB",
        "25 MB",
        "30.1 MB",
        "250 MB",
    ]


def test_a_file_waits_in_the_outbox_by_its_path_across_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.json")
    item = outbox.add("bob", "the notes", kind="file", path=str(tmp_path / "notes.txt"))
    again = Outbox(tmp_path / "outbox.json")
    assert again.for_peer("bob") == [item]
    assert again.items[0].file_name == "notes.txt" and again.items[0].text == "the notes"


# -- against a server ---------------------------------------------------------------------------
async def test_attach_sends_the_file_and_the_peer_gets_equal_bytes(
    server: LiveServer, users: dict[str, str], tmp_path: Path
) -> None:
    befriend(server, users, "alice", "bob")
    data = os.urandom(300_000)  # more than one chunk of the upload
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "capture-2026.bin").write_bytes(data)
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        composer = app.screen.query_one(Composer)
        await pilot.press(*"a draft")
        await pilot.press("ctrl+o")  # from the message box
        await wait_for(pilot, lambda: isinstance(app.screen, AttachDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, AttachDialog)
        dialog.field.value = f"{folder}/nothing-here.bin"
        await pilot.press("enter")  # a bad path: why, and what was typed stays
        await wait_for(pilot, lambda: "no file at" in error_text(dialog), "the reason")
        assert dialog.field.value == f"{folder}/nothing-here.bin"
        dialog.field.value = f"{folder}/cap"
        await pilot.press("tab")
        await wait_for(
            pilot, lambda: dialog.field.value == f"{folder}/capture-2026.bin", "completed"
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, AttachDialog), "closed")
        await wait_for(
            pilot, lambda: shown(log, f"{PAPERCLIP} capture-2026.bin \u00b7 293 KB"), "📎"
        )
        with api(server.url, "bob", users["bob"]) as bob:
            await wait_for(
                pilot,
                lambda: any(m.attachment for m in bob.history("alice").messages),
                "stored",
            )
            (message,) = bob.history("alice").messages
            (listed,) = bob.files("alice")
        assert (listed.id, listed.author, listed.attachment) == (
            message.id,
            "alice",
            message.attachment,
        )
        assert message.attachment is not None
        assert (message.attachment.name, message.attachment.size) == ("capture-2026.bin", 300_000)
        assert message.text == "" and composer.text == "a draft", "the draft stays a draft"
        assert file_bytes(server, users["bob"], "bob", "alice", message.id) == data
        assert not app.screen.core.outbox.items  # type: ignore[attr-defined]


def error_text(dialog: AttachDialog) -> str:
    return str(dialog.query_one(".dialog-error").render())


async def test_a_received_file_shows_and_s_saves_it_into_the_download_folder(
    server: LiveServer,
    users: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    downloads = tmp_path / "Downloads" / "pairchat"  # made when first needed
    monkeypatch.setenv("PAIRCHAT_DOWNLOAD_DIR", str(downloads))
    befriend(server, users, "alice", "bob")
    source = tmp_path / "plan.txt"
    source.write_bytes(b"step 1\nstep 2\n" * 100)
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send_file("alice", source, "the plan")
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: shown(log, f"{PAPERCLIP} plan.txt \u00b7 1.4 KB"), "📎")
        assert shown(log, "the plan")
        log.focus()
        await pilot.press("up", "s")
        saved = downloads / "plan.txt"
        await wait_for(pilot, lambda: any(str(saved) in t for t in toasts(app)), "says where")
        assert saved.read_bytes() == source.read_bytes()
        umask = os.umask(0o022)
        os.umask(umask)
        assert saved.stat().st_mode & 0o777 == 0o666 & ~umask, "a file like any other"
        await pilot.press("s")  # again: a new name, the first one untouched
        again = downloads / "plan (1).txt"
        await wait_for(pilot, lambda: any(str(again) in t for t in toasts(app)), "a second copy")
        assert again.read_bytes() == source.read_bytes()
        assert sorted(p.name for p in downloads.iterdir()) == ["plan (1).txt", "plan.txt"]
        await pilot.press("f1")  # Help lists both keys
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        help_text = app.screen.text()  # type: ignore[attr-defined]
        assert "ctrl+o" in help_text.lower() and "Send a file" in help_text
        assert "download folder" in help_text


async def test_a_file_over_the_limit_is_refused_with_the_reason_and_kept(
    app_server: object, tmp_path: Path
) -> None:
    server = app_server(max_file_bytes=1000)  # type: ignore[operator]
    users = {name: register(server.url, name) for name in ("alice", "bob")}
    befriend(server, users, "alice", "bob")
    big = tmp_path / "big.log"
    big.write_bytes(b"x" * 5000)
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, AttachDialog), "the dialog")
        app.screen.field.value = str(big)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: shown(log, "NOT SENT"), "refused, in the chat")
        assert shown(log, f"{PAPERCLIP} big.log \u00b7 4.9 KB")
        assert any("big.log not sent to bob" in t and "at most" in t for t in toasts(app))
        (item,) = app.screen.core.outbox.items  # type: ignore[attr-defined]
        assert item.failed and item.path == str(big), "the path is kept, to retry or discard"
    with api(server.url, "bob", users["bob"]) as bob:
        assert bob.history("alice").messages == ()


async def test_a_file_chosen_offline_waits_in_the_outbox_and_goes_once(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    proc = server_process()
    users = {name: register(proc.url, name) for name in ("alice", "bob")}
    befriend(proc, users, "alice", "bob")  # type: ignore[arg-type]
    notes = tmp_path / "notes.md"
    notes.write_bytes(b"# notes\n" * 50)
    config = tmp_path / "config"
    app = app_for(proc.url, config, user="alice", token=users["alice"])
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        proc.stop()
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, AttachDialog), "the dialog")
        app.screen.field.value = str(notes)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: log.pending, "pending")
        assert shown(log, "pending") and shown(log, f"{PAPERCLIP} notes.md \u00b7 400 B")
        saved = json.loads((config / "outbox-alice.json").read_text())["items"]
        assert [(i["kind"], i["path"]) for i in saved] == [("file", str(notes))]
        proc.start()
        await wait_for(pilot, lambda: not log.pending, "sent once the server is back", 40)
    with api(proc.url, "bob", users["bob"]) as bob:
        (message,) = bob.history("alice").messages
    assert message.attachment is not None and message.attachment.name == "notes.md"
    assert file_bytes(proc, users["bob"], "bob", "alice", message.id) == notes.read_bytes()  # type: ignore[arg-type]


# -- the look -------------------------------------------------------------------------------------
class FilesHarness(App[None]):
    """The chat log alone: files received and sent, with and without a caption, one
    pending and one refused (deterministic: fixed clock, fixed data)."""

    def __init__(self, folder: Path, compact: bool) -> None:
        super().__init__()
        self.folder = folder
        self.compact = compact

    def compose(self) -> ComposeResult:
        yield ChatLog("alice", clock=fixed_clock, compact=self.compact, id="log")

    def on_mount(self) -> None:
        now = FIXED_NOW.int_timestamp
        pdf = Attachment("Q3 report (final).pdf", 2_457_600, "application/pdf")
        photo = Attachment("IMG_2041.jpg", 3_354_214, "image/jpeg")
        chat = Conversation("bob", "alice")
        chat.merge(
            [
                Message(1, "bob", "the numbers, as promised", now - 600, attachment=pdf),
                Message(2, "alice", "", now - 300, attachment=photo),
                Message(3, "bob", "", now - 60, attachment=Attachment("a\x1b[2Jb.sh", 812)),
                Message(4, "bob", "nice light", now - 30, reply_to=2),
            ]
        )
        chat.loaded = True
        log = self.query_one(ChatLog)
        log.show(chat)
        log.loaded()
        waiting = self.folder / "slides.key"
        waiting.write_bytes(b"k" * 40_000)
        big = self.folder / "backup.tar"
        big.write_bytes(b"t" * 3000)
        pending = OutboxItem(
            to="bob", text="", client_id="c1", created=now, kind="file", path=str(waiting)
        )
        refused = OutboxItem(
            to="bob",
            text="and the backup",
            client_id="c2",
            created=now,
            kind="file",
            path=str(big),
            error="a file is at most 1024 bytes (1 KiB); nothing was stored",
        )
        log.set_pending([pending, refused])


@pytest.mark.parametrize("compact", [False, True])
def test_snapshot_files_in_the_chat_log(snap_compare: Any, tmp_path: Path, compact: bool) -> None:
    app = FilesHarness(tmp_path, compact)

    async def ready(pilot: Pilot[Any]) -> None:
        await settled(pilot.app)

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


async def test_a_reply_to_a_file_quotes_the_file(tmp_path: Path) -> None:
    app = FilesHarness(tmp_path, compact=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot.app)
        lines = app.query_one(ChatLog).text_lines()
        assert f"  \u21b3 me: {PAPERCLIP} IMG_2041.jpg \u00b7 3.2 MB" in lines


async def test_through_a_door_no_file_of_the_servers_machine_is_sent_or_written(
    server: LiveServer, users: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A door's TUI runs on the server's machine (tui/door.py: ``local_files`` off): Ctrl+O
    opens no dialog and ``s`` writes nothing there; each says why, and Ctrl+O is not shown."""
    downloads = tmp_path / "server-disk"
    monkeypatch.setenv("PAIRCHAT_DOWNLOAD_DIR", str(downloads))
    befriend(server, users, "alice", "bob")
    source = tmp_path / "plan.txt"
    source.write_text("plan")
    with api(server.url, "bob", users["bob"]) as bob:
        bob.send_file("alice", source)
    app = app_for(server.url, tmp_path / "config", user="alice", token=users["alice"])
    app.config.local_files = False
    async with app.run_test(size=(80, 24)) as pilot:
        log = await open_chat(pilot, app, "bob")
        await wait_for(pilot, lambda: shown(log, f"{PAPERCLIP} plan.txt"), "the file")
        assert "Attach" not in footer_text(app)
        await pilot.press("ctrl+o")  # from the message box
        await wait_for(pilot, lambda: any("through a door" in t for t in toasts(app)), "why")
        assert not isinstance(app.screen, AttachDialog)
        log.focus()
        await pilot.press("up", "s")
        await wait_for(pilot, lambda: len(toasts(app)) == 2, "why, again")
        assert not downloads.exists()


def footer_text(app: App[None]) -> str:
    return " ".join(strip.text for strip in app.screen._compositor.render_strips()[-1:])
