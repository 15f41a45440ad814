"""``scp`` and ``sftp`` through the SSH door: the real OpenSSH 9.2 client (scp speaks
SFTP) against the real door and the real ``pairchat-server`` (docs/doors.md, "Files
over scp/SFTP").

One server and one door for the module (the API's per-file limit is its default,
``LIMIT``; this door's own is twice that, so the API's refusal is what scp shows);
alice's key is her account, bob signs in with a password. Sending is ``scp f HOST:bob/``,
fetching ``scp HOST:bob/NAME .``; nothing of the door's own file system is reachable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from tests.doors.conftest import DOOR_SECRET, Door, ssh_connect, ssh_options, wait_until
from tests.support import ServerProcess, bearer, http, register

pytestmark = pytest.mark.live

LIMIT = 25 * 1024 * 1024
"""The API's default per-file limit (PAIRCHAT_MAX_FILE_BYTES)."""
DOOR_LIMIT = 1024 * 1024
"""The spool limit of the second door (its own PAIRCHAT_MAX_FILE_BYTES)."""


@dataclass
class World:
    api: ServerProcess
    door: Door
    alice_key: Path
    alice: str
    """alice's token (from the door's own /door/session, as a key's session gets one)."""
    bob: str
    tmp: Path

    def options(self, key: Path | None = None) -> list[str]:
        return [*ssh_options(key or self.alice_key), "-o", "BatchMode=yes"]


def make_key(folder: Path, name: str) -> Path:
    path = folder / "keys" / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path


def key_session(url: str, key: Path) -> dict[str, object]:
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    reply = http.post(
        f"{url}/door/session", data={"public_key": public}, headers={"X-Pairchat-Door": DOOR_SECRET}
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()
    return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("scp")
    api = ServerProcess(
        tmp / "data",
        env={"PAIRCHAT_DOOR_SECRET": DOOR_SECRET, "PAIRCHAT_MAX_FILE_BYTES": ""},
    ).start()
    door: Door | None = None
    try:
        key = make_key(tmp, "alice")
        ticket = key_session(api.url, key)["ticket"]
        claimed = http.post(f"{api.url}/door/claim", data={"ticket": ticket, "username": "alice"})
        assert claimed.status_code in (200, 201), claimed.text
        alice = str(key_session(api.url, key)["token"])
        bob = register(api.url, "bob")
        added = http.post(f"{api.url}/add_friend", data={"username": "bob"}, headers=bearer(alice))
        assert added.status_code == 200, added.text
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PAIRCHAT_MAX_FILE_BYTES", str(2 * LIMIT))
            door = Door("ssh", tmp / "door", api.url).start()
        yield World(api, door, key, alice, bob, tmp)
    finally:
        if door is not None:
            door.stop()
        api.stop()


def scp(world: World, *args: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = ["scp", "-P", str(world.door.port), *world.options(key), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def sftp_batch(
    world: World, *commands: str, key: Path | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``sftp -b -`` with ``commands`` (a leading ``-`` lets the batch go on past a failure)."""
    command = ["sftp", "-P", str(world.door.port), *world.options(key), "-b", "-", "127.0.0.1"]
    return subprocess.run(
        command,
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def files_of(world: World, token: str, me: str, peer: str) -> list[dict[str, object]]:
    reply = http.get(
        f"{world.api.url}/files", params={"user_one": me, "user_two": peer}, headers=bearer(token)
    )
    assert reply.status_code == 200, reply.text
    found: list[dict[str, object]] = reply.json()["files"]
    return found


def bytes_of(world: World, token: str, me: str, peer: str, file_id: object) -> bytes:
    reply = http.get(
        f"{world.api.url}/file/{file_id}",
        params={"user_one": me, "user_two": peer},
        headers=bearer(token),
    )
    assert reply.status_code == 200, reply.text
    return reply.content


def bob_sends(world: World, name: str, data: bytes) -> int:
    reply = http.post(
        f"{world.api.url}/send_file/alice",
        data={"author": "bob"},
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(world.bob),
    )
    assert reply.status_code in (200, 201), reply.text
    file_id: int = reply.json()["id"]
    return file_id


def local_file(folder: Path, name: str, size: int) -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = folder / name
    path.write_bytes(data)
    return path, data


# -- sending and fetching -----------------------------------------------------------------
def test_scp_sends_a_file_to_bob(world: World, tmp_path: Path) -> None:
    path, data = local_file(tmp_path, "backup.tar", 3 * 1024 * 1024 + 17)
    done = scp(world, str(path), "127.0.0.1:bob/")
    assert done.returncode == 0, done.stderr
    listed = [f for f in files_of(world, world.bob, "bob", "alice") if f["name"] == "backup.tar"]
    assert len(listed) == 1 and listed[0]["size"] == len(data) and listed[0]["author"] == "alice"
    assert bytes_of(world, world.bob, "bob", "alice", listed[0]["id"]) == data
    # a name after the folder is the file's name; the folder without a slash works too
    assert scp(world, str(path), "127.0.0.1:bob/renamed.tar").returncode == 0
    assert scp(world, str(path), "127.0.0.1:bob").returncode == 0
    names = [f["name"] for f in files_of(world, world.bob, "bob", "alice")]
    assert names.count("renamed.tar") == 1 and names.count("backup.tar") == 2, names


def test_scp_fetches_a_file_bob_sent(world: World, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    bob_sends(world, "photo.raw", data)
    done = scp(world, "127.0.0.1:bob/photo.raw", str(tmp_path / "got.raw"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got.raw").read_bytes() == data
    # an empty file is a file too
    bob_sends(world, "empty.txt", b"")
    done = scp(world, "127.0.0.1:bob/empty.txt", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "empty.txt").read_bytes() == b""


def test_reads_anywhere_in_a_file_get_those_bytes(world: World) -> None:
    data = os.urandom(1_500_000)
    bob_sends(world, "random.bin", data)
    reads = [  # far ahead, back, on, a little ahead, past the end
        (1_400_000, 1000),
        (10, 20),
        (30, 5),
        (500_000, 100),
        (1_499_990, 100),
        (1_600_000, 10),
    ]

    async def read_around() -> list[bytes]:
        async with (
            await ssh_connect(world.door, world.alice_key) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open("bob/random.bin", "rb") as file,
        ):
            got = []
            for offset, size in reads:
                await file.seek(offset)
                got.append(await file.read(size))
            return got

    assert asyncio.run(read_around()) == [data[o : o + n] for o, n in reads]


def test_two_files_of_one_name_both_stay_reachable(world: World, tmp_path: Path) -> None:
    first = bob_sends(world, "notes.txt", b"the first notes\n")
    bob_sends(world, "notes.txt", b"the second notes\n")
    listing = sftp_batch(world, "ls -1 bob")
    assert listing.returncode == 0, listing.stderr
    names = {line.strip().rsplit("/", 1)[-1] for line in listing.stdout.splitlines()}
    assert {"notes.txt", f"notes~{first}.txt"} <= names, listing.stdout
    got = sftp_batch(
        world, "get bob/notes.txt new.txt", f"get bob/notes~{first}.txt old.txt", cwd=tmp_path
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "new.txt").read_bytes() == b"the second notes\n"
    assert (tmp_path / "old.txt").read_bytes() == b"the first notes\n"
    both = tmp_path / "both"
    both.mkdir()
    assert scp(world, "127.0.0.1:bob/notes*", str(both)).returncode == 0  # a remote glob
    assert sorted(p.name for p in both.iterdir()) == ["notes.txt", f"notes~{first}.txt"]


def test_a_file_named_like_another_files_id_name_cannot_take_it(
    world: World, tmp_path: Path
) -> None:
    plan = bob_sends(world, "plan.txt", b"the real plan\n")  # the only plan.txt
    impostor = bob_sends(world, f"plan~{plan}.txt", b"not the plan\n")
    listing = sftp_batch(world, "ls -1 bob")
    assert listing.returncode == 0, listing.stderr
    names = {line.strip().rsplit("/", 1)[-1] for line in listing.stdout.splitlines()}
    assert {"plan.txt", f"plan~{plan}~{impostor}.txt"} <= names, listing.stdout
    assert f"plan~{plan}.txt" not in names, listing.stdout
    got = sftp_batch(
        world,
        f"get bob/plan~{plan}.txt by-id.txt",
        f"get bob/plan~{plan}~{impostor}.txt impostor.txt",
        cwd=tmp_path,
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "by-id.txt").read_bytes() == b"the real plan\n"
    assert (tmp_path / "impostor.txt").read_bytes() == b"not the plan\n"


def door_idle(log: str) -> bool:
    """Every session the door opened has ended (its token revoked before that line)."""
    return log.count(" opened from ") == log.count(" ended after ")


def test_sftp_ls_lists_conversations_and_files(world: World) -> None:
    bob_sends(world, "listed.pdf", b"%PDF-1.4 a few bytes")
    # counted once the door is idle: the last test's session may still be logging out
    # (its logout landing after the count made it jump by two, and this wait time out)
    wait_until(lambda: door_idle(world.door.log()), "the door's earlier sessions ended")
    revoked = world.door.log().count("/logout")
    done = sftp_batch(world, "ls -1 /", "ls -l bob", "cd bob", "pwd")
    assert done.returncode == 0, done.stderr
    wait_until(  # the session's own token ends with it
        lambda: world.door.log().count("/logout") == revoked + 1, "the session's token revoked"
    )
    lines = done.stdout.splitlines()
    assert any(line.strip() in ("/bob", "bob") for line in lines), done.stdout
    long_line = next(line for line in lines if line.endswith("listed.pdf"))
    assert long_line.startswith("-r--r--r--") and " 20 " in long_line, long_line
    assert "Remote working directory: /bob" in done.stdout


def peak_memory_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_file_at_the_limit_goes_both_ways_without_the_door_holding_it(
    world: World, tmp_path: Path
) -> None:
    path, data = local_file(tmp_path, "limit.bin", LIMIT)
    before = peak_memory_kb(world.door.pid)
    assert scp(world, str(path), "127.0.0.1:bob/").returncode == 0
    back = tmp_path / "back.bin"
    assert scp(world, "127.0.0.1:bob/limit.bin", str(back)).returncode == 0
    assert back.read_bytes() == data
    grew = peak_memory_kb(world.door.pid) - before
    assert grew < 12 * 1024, f"the door's peak memory grew {grew} kB for a {LIMIT} byte file"


# -- refusals -----------------------------------------------------------------------------
def test_a_file_over_the_api_limit_is_refused_with_its_sentence(
    world: World, tmp_path: Path
) -> None:
    path, _ = local_file(tmp_path, "huge.bin", LIMIT + 1)
    done = scp(world, str(path), "127.0.0.1:bob/")
    assert done.returncode != 0
    assert f"pairchat: huge.bin not sent to bob: a file is at most {LIMIT} bytes" in done.stderr
    # well over the limit: the API reads and drops the body, then answers with its sentence
    path, _ = local_file(tmp_path, "huger.bin", LIMIT + 300_000)
    done = scp(world, str(path), "127.0.0.1:bob/")
    assert done.returncode != 0
    assert f"pairchat: huger.bin not sent to bob: a file is at most {LIMIT} bytes" in done.stderr, (
        done.stderr
    )
    assert not {"huge.bin", "huger.bin"} & {
        f["name"] for f in files_of(world, world.bob, "bob", "alice")
    }


def test_nothing_of_the_server_is_reachable(world: World, tmp_path: Path) -> None:
    bob_sends(world, "keep.txt", b"keep me\n")
    done = sftp_batch(
        world,
        "-get /etc/passwd",
        "-get ../../etc/passwd",
        "-get bob/../../etc/passwd",
        "-get /bob/../../../etc/hostname",
        "-ls /etc",
        "-ls /proc/self",
        "-rm bob/keep.txt",
        "-mkdir newfolder",
        "-mkdir bob/sub",
        "-rmdir bob",
        "-rename bob/keep.txt bob/moved.txt",
        "-symlink /etc/passwd bob/link",
        "-ln bob/keep.txt bob/hard",
        "-chmod 777 bob/keep.txt",
        "ls -1 /",
        cwd=tmp_path,
    )
    assert not list(tmp_path.iterdir()), "something was fetched"
    errors = done.stderr
    assert errors.count("not found") == 6, errors  # the four gets and the two ls
    for refused in ("delete", "mkdir", "rmdir", "rename", "symlink file", "link", "setstat"):
        assert f"remote {refused} " in errors, (refused, errors)
    assert errors.count(": Permission denied") == 8, errors
    root = [line.strip() for line in done.stdout.splitlines() if not line.startswith("sftp>")]
    assert root == ["/bob"], done.stdout
    names = {f["name"] for f in files_of(world, world.bob, "bob", "alice")}
    assert "keep.txt" in names and not {"moved.txt", "link", "hard"} & names


def test_a_key_without_an_account_and_other_subsystems_are_refused(
    world: World, tmp_path: Path
) -> None:
    stranger = make_key(tmp_path, "stranger")
    done = sftp_batch(world, "ls", key=stranger)
    assert done.returncode != 0
    assert "this key has no account yet: sign in once with ssh -t" in done.stderr, done.stderr
    other = subprocess.run(
        ["ssh", "-p", str(world.door.port), *world.options(), "-s", "127.0.0.1", "netconf"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode != 0
    legacy = scp(world, "-O", str(make_key(tmp_path, "a-file")), "127.0.0.1:bob/")
    assert legacy.returncode != 0 and "send, history, tail" in legacy.stderr, legacy.stderr
    for command in ("sh", "send bob; id", "id"):
        shell = subprocess.run(
            ["ssh", "-p", str(world.door.port), *world.options(), "127.0.0.1", command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shell.returncode == 1 and "uid=" not in shell.stdout + shell.stderr, shell


# -- the spool ------------------------------------------------------------------------------
def spool_fds(door: Door) -> list[str]:
    """What the door process holds open in its spool folder."""
    spool = str(door.data_dir / "doors" / "spool")
    held = []
    for fd in Path(f"/proc/{door.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(spool):
            held.append(target)
    return held


def test_a_client_gone_mid_upload_sends_nothing_and_leaves_no_spool(
    world: World, tmp_path: Path
) -> None:
    path, _ = local_file(tmp_path, "half.bin", 3 * 1024 * 1024)
    slow = subprocess.Popen(  # 800 kbit/s: about 30 s for the whole file
        [
            "scp",
            "-l",
            "800",
            "-P",
            str(world.door.port),
            *world.options(),
            str(path),
            "127.0.0.1:bob/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: spool_fds(world.door), "the upload spooled in the door")
        assert all(target.endswith("(deleted)") for target in spool_fds(world.door))
        assert not list((world.door.data_dir / "doors" / "spool").iterdir())
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=10)
    wait_until(lambda: not spool_fds(world.door), "the spool closed")
    assert "half.bin" not in {f["name"] for f in files_of(world, world.bob, "bob", "alice")}


# -- a door with its own limits ---------------------------------------------------------
@pytest.fixture
def strict_door(world: World, tmp_path: Path) -> Iterator[Door]:
    """A second door on the same API: one session per key, a 1 MiB spool limit."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAIRCHAT_MAX_FILE_BYTES", str(DOOR_LIMIT))
        door = Door("ssh", tmp_path / "door", world.api.url, ("--sessions-per-key", "1")).start()
    try:
        yield door
    finally:
        door.stop()


def test_the_door_refuses_past_its_own_limit_and_counts_sftp_sessions(
    world: World, strict_door: Door, tmp_path: Path
) -> None:
    on_strict = World(world.api, strict_door, world.alice_key, world.alice, world.bob, tmp_path)
    path, _ = local_file(tmp_path, "big.bin", DOOR_LIMIT + 1)
    done = scp(on_strict, str(path), "127.0.0.1:bob/")
    assert done.returncode != 0
    assert f"larger than pairchat's limit of 1 MiB ({DOOR_LIMIT} bytes)" in done.stderr, done.stderr
    assert "big.bin" not in {f["name"] for f in files_of(world, world.bob, "bob", "alice")}
    wait_until(lambda: not spool_fds(strict_door), "the refused spool closed")
    # an open SFTP session is this key's one session: a second is refused, with why

    async def hold_one_session() -> str:
        async with (
            await ssh_connect(strict_door, world.alice_key) as conn,
            conn.start_sftp_client() as sftp,
        ):
            assert await sftp.listdir("/") == [".", "..", "bob"]
            second = await asyncio.to_thread(sftp_batch, on_strict, "ls")
            assert second.returncode != 0
            return second.stderr

    assert "this key already has 1 pairchat sessions open" in asyncio.run(hold_one_session())
    wait_until(lambda: sftp_batch(on_strict, "ls").returncode == 0, "the session's place freed")


def test_a_client_gone_before_its_first_packet_frees_its_place(
    world: World, strict_door: Door, tmp_path: Path
) -> None:
    on_strict = World(world.api, strict_door, world.alice_key, world.alice, world.bob, tmp_path)

    async def open_and_go() -> None:
        async with await ssh_connect(strict_door, world.alice_key) as conn:
            await conn.create_session(asyncssh.SSHClientSession, subsystem="sftp")
            await asyncio.to_thread(
                wait_until,
                lambda: "already has 1" in sftp_batch(on_strict, "ls").stderr,
                "the waiting session holds the key's one place",
            )

    asyncio.run(open_and_go())
    wait_until(lambda: sftp_batch(on_strict, "ls").returncode == 0, "the session's place freed")


def test_an_api_gone_mid_session_is_said_and_the_door_still_stops(
    server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    api = server_process(env={"PAIRCHAT_DOOR_SECRET": DOOR_SECRET})
    key = make_key(tmp_path, "erin")
    ticket = key_session(api.url, key)["ticket"]
    assert http.post(
        f"{api.url}/door/claim", data={"ticket": ticket, "username": "erin"}
    ).is_success
    register(api.url, "bob")
    door = Door("ssh", tmp_path / "door", api.url).start()

    async def list_then_lose_the_api() -> tuple[str, int | None]:
        async with await ssh_connect(door, key) as conn, conn.start_sftp_client() as sftp:
            assert await sftp.listdir("bob") == [".", ".."]
            await asyncio.to_thread(api.stop)
            with pytest.raises(asyncssh.SFTPFailure) as failed:
                await sftp.listdir("bob")
            stopped = await asyncio.to_thread(door.stop)  # with this session still open
            return str(failed.value.reason), stopped

    try:
        said, stopped = asyncio.run(list_then_lose_the_api())
        assert "pairchat cannot reach its server right now" in said
        assert stopped == 0
    finally:
        door.stop()
