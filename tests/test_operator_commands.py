"""Operator commands that cannot hurt, and a block that holds before the first message.

``demo-data`` refuses a folder with real accounts (it would mix demo messages into
real conversations and print passwords that do not work); ``backup`` takes the doors'
secret and the SSH host key along (0600) and refuses a destination inside the data
folder; a user who was blocked cannot make the pair's file with
``create_conversation_db`` (the same 403 ``blocked`` as a send).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import Server, bearer, http, register
from tests.test_server_cli import run_cli


def test_demo_data_refuses_a_folder_with_real_accounts(
    app_server: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = app_server(data_dir=data)
    register(server.url, "dave")
    made = run_cli("demo-data", "--data-dir", str(data))
    assert made.returncode != 0
    assert "real accounts" in made.stderr and len(made.stderr.strip().splitlines()) == 1
    assert "password" not in made.stdout
    assert not list(data.glob("alice_*.db"))


def test_demo_data_refuses_a_real_account_with_a_demo_name(
    app_server: Callable[..., Server], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = app_server(data_dir=data)
    register(server.url, "alice", "alice's own password")
    made = run_cli("demo-data", "--data-dir", str(data))
    assert made.returncode != 0 and "'alice' here is a real account" in made.stderr
    assert not (data / "alice_bob.db").exists()


def test_demo_data_again_on_a_demo_folder_is_fine(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("demo-data", "--data-dir", str(data)).returncode == 0
    again = run_cli("demo-data", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr


def test_backup_takes_the_door_secret_and_host_key_and_stays_out_of_the_folder(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    assert run_cli("demo-data", "--data-dir", str(data)).returncode == 0
    secrets = {"door.secret": b"s" * 43, "ssh_host_ed25519_key": b"-----BEGIN OPENSSH-----\n"}
    for name, body in secrets.items():
        (data / name).write_bytes(body)
        (data / name).chmod(0o600)
    dest = tmp_path / "backup"
    done = run_cli("backup", "--data-dir", str(data), str(dest))
    assert done.returncode == 0, done.stderr
    for name, body in secrets.items():
        assert (dest / name).read_bytes() == body
        assert stat.S_IMODE((dest / name).stat().st_mode) == 0o600
    for inside in (data / "bk", data):
        refused = run_cli("backup", "--data-dir", str(data), str(inside))
        assert refused.returncode != 0 and "inside the data folder" in refused.stderr
    assert not (data / "bk").exists()


@pytest.mark.both_tiers
def test_a_blocked_user_cannot_create_the_pairs_file(server: Server, tmp_path: Path) -> None:
    alice = register(server.url, "alice")
    mallory = register(server.url, "mallory")
    blocked = http.post(
        f"{server.url}/block_friend", data={"username": "mallory"}, headers=bearer(alice)
    )
    assert blocked.status_code == 200
    made = http.post(
        f"{server.url}/create_conversation_db",
        data={"user_one": "mallory", "user_two": "alice"},
        headers=bearer(mallory),
    )
    assert (made.status_code, made.json()["error"]) == (403, "blocked")
    assert not (server.data_dir / "alice_mallory.db").exists()
    sent = http.post(
        f"{server.url}/send_message/alice",
        data={"author": "mallory", "message": "hi"},
        headers=bearer(mallory),
    )
    assert (sent.status_code, sent.json()["error"]) == (403, "blocked")
    # alice herself still may
    assert (
        http.post(
            f"{server.url}/create_conversation_db",
            data={"user_one": "mallory", "user_two": "alice"},
            headers=bearer(alice),
        ).status_code
        == 200
    )
