"""The SFTP tree's own rules (doors/sftp.py), without a server: what a file is called
in its folder, how a client's path is read, the door's upload limit, and a file being
sent (its spool file in a temp folder)."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from doors.file_api import RemoteFile
from doors.sftp import (
    DEFAULT_MAX_FILE_BYTES,
    SpoolBudget,
    WriteHandle,
    by_id_name,
    folder_names,
    human_size,
    max_file_bytes,
    shown_name,
    tree_path,
    with_id,
)


def sent(file_id: int, name: str) -> RemoteFile:
    return RemoteFile(file_id, "bob", 1_764_012_345, name, 3, "text/plain")


def id_name(found: RemoteFile) -> str:
    return with_id(shown_name(found.name, found.id), found.id)


def test_the_newest_of_a_name_keeps_it_and_older_ones_carry_their_id() -> None:
    names = folder_names([sent(5, "a.txt"), sent(10, "a.txt"), sent(11, "b"), sent(12, ".rc")])
    assert {name: f.id for name, f in names.items()} == {
        "a.txt": 10,
        "a~5.txt": 5,
        "b": 11,
        ".rc": 12,
    }
    assert by_id_name("a~10.txt", names) == sent(10, "a.txt")  # the newest, by its id
    assert by_id_name("a~11.txt", names) is None


def test_a_sender_cannot_take_another_files_id_name() -> None:
    names = folder_names([sent(5, "a.txt"), sent(7, "a~5.txt"), sent(10, "a.txt")])
    assert names["a~5.txt"].id == 5  # still message 5's file
    assert {f.id for f in names.values()} == {5, 7, 10} and len(names) == 3


def test_a_sender_cannot_take_the_id_name_of_the_only_file_of_its_name() -> None:
    # message 70 is the only a.txt; a peer sends a file named a~70.txt
    names = folder_names([sent(70, "a.txt"), sent(65, "a~70.txt")])
    assert {name: f.id for name, f in names.items()} == {"a.txt": 70, "a~70~65.txt": 65}
    assert by_id_name("a~70.txt", names) == sent(70, "a.txt")
    assert by_id_name("a~70~65.txt", names) == sent(65, "a~70.txt")


def test_an_id_name_means_its_file_whatever_the_order_and_the_newest_keeps_its_name() -> None:
    # the impostor newer than the file it imitates, and one imitating a file not listed
    files = [sent(70, "a.txt"), sent(80, "a~70.txt"), sent(81, "b~99.txt"), sent(82, "a.txt")]
    names = folder_names(files)
    assert {name: f.id for name, f in names.items()} == {
        "a.txt": 82,
        "a~70.txt": 70,
        "a~70~80.txt": 80,
        "b~99.txt": 81,
    }
    for found in files:  # every file is reachable by its own ~ID name, and only it
        assert by_id_name(id_name(found), names) == found
        assert names.get(id_name(found), found) == found


def test_names_that_cannot_be_a_path_segment_are_made_safe() -> None:
    names = folder_names([sent(1, "../etc/passwd"), sent(2, ".."), sent(3, "x\ny"), sent(4, "")])
    assert sorted(names) == [".._etc_passwd", "file-2", "file-4", "x_y"]


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        (b".", ()),
        (b"/", ()),
        (b"bob/", ("bob",)),
        (b"//bob//x.txt", ("bob", "x.txt")),
        (b"../../etc/passwd", ("etc", "passwd")),
        (b"/bob/../../../etc/hostname", ("etc", "hostname")),
    ],
)
def test_a_path_stays_inside_the_tree(path: bytes, parts: tuple[str, ...]) -> None:
    assert tree_path(path) == parts


def test_a_path_that_is_not_utf8_or_holds_nul_is_no_file() -> None:
    for path in (b"bob/\xff", b"bob/a\x00b"):
        with pytest.raises(asyncssh.SFTPNoSuchFile):
            tree_path(path)


def test_the_door_limit_is_the_apis_variable() -> None:
    assert max_file_bytes({}) == DEFAULT_MAX_FILE_BYTES == 25 * 1024 * 1024
    assert max_file_bytes({"PAIRCHAT_MAX_FILE_BYTES": "1048576"}) == 1048576
    assert max_file_bytes({"PAIRCHAT_MAX_FILE_BYTES": "lots"}) == DEFAULT_MAX_FILE_BYTES
    assert (human_size(25 * 1024 * 1024), human_size(1536), human_size(12)) == (
        "25 MiB",
        "1.5 KiB",
        "12 bytes",
    )


# -- a file being sent: its spool ---------------------------------------------------------
def test_a_spool_has_no_name_takes_bytes_in_order_and_within_the_limits(tmp_path: Path) -> None:
    budget = SpoolBudget(100)
    upload = WriteHandle(tmp_path, budget, "bob", "a.bin")
    assert list(tmp_path.iterdir()) == []  # unlinked at once: only the descriptor holds it
    assert upload.write(0, b"x" * 40, limit=60) == 40
    assert upload.write(40, b"y" * 10, limit=60) == 10
    assert (upload.size, budget.used) == (50, 50)
    upload.truncate(45)
    assert budget.used == 45
    with pytest.raises(asyncssh.SFTPFailure, match=r"larger than pairchat's limit of 60 bytes"):
        upload.write(45, b"z" * 20, limit=60)
    with pytest.raises(asyncssh.SFTPFailure):  # refused once: refused for good
        upload.write(45, b"z", limit=60)
    upload.discard()
    assert budget.used == 0


def test_a_gap_or_a_full_spool_is_refused(tmp_path: Path) -> None:
    budget = SpoolBudget(100)
    resumed = WriteHandle(tmp_path, budget, "bob", "a.bin")
    with pytest.raises(asyncssh.SFTPFailure, match="in order, from the start"):
        resumed.write(10, b"x", limit=1000)
    first = WriteHandle(tmp_path, budget, "bob", "b.bin")
    first.write(0, b"x" * 80, limit=1000)
    second = WriteHandle(tmp_path, budget, "bob", "c.bin")
    with pytest.raises(asyncssh.SFTPFailure, match="receiving too many files right now"):
        second.write(0, b"y" * 30, limit=1000)
    first.discard()  # its room is free again, for the next file
    third = WriteHandle(tmp_path, budget, "bob", "c.bin")
    assert third.write(0, b"y" * 30, limit=1000) == 30
    for upload in (resumed, second, third):
        upload.discard()
    assert budget.used == 0
