"""The SFTP tree's pure rules (doors/sftp.py), without a server: what a file is called
in its folder, how a client's path is read, the door's upload limit."""

from __future__ import annotations

import asyncssh
import pytest

from doors.file_api import RemoteFile
from doors.sftp import (
    DEFAULT_MAX_FILE_BYTES,
    by_id_name,
    folder_names,
    human_size,
    max_file_bytes,
    tree_path,
)


def sent(file_id: int, name: str) -> RemoteFile:
    return RemoteFile(file_id, "bob", 1_764_012_345, name, 3, "text/plain")


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
