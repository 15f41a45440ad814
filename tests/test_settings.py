"""Unit: settings are read once, flags > PAIRCHAT_* environment > defaults, and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from backend.core.settings import THREAD_RESERVE, UNPLANNED_WAITERS, Settings, SettingsError
from backend.server import cli
from tests.support import REPO


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.data_dir.name == "conversations" and not settings.open_mode
    assert settings.waiter_slots == UNPLANNED_WAITERS and settings.threads is None


def test_environment_values_are_parsed_by_type() -> None:
    settings = Settings.from_env(
        {
            "PAIRCHAT_OPEN_MODE": "true",
            "PAIRCHAT_PORT": "6001",
            "PAIRCHAT_MAX_WAIT": "2.5",
            "PAIRCHAT_DATA_DIR": "/srv/chat",
            "PAIRCHAT_SQLITE_SYNCHRONOUS": "full",
            "PAIRCHAT_MAX_WAITERS": "7",
            "PAIRCHAT_WORKERS": "",  # empty is unset
            "OTHER_PORT": "1",
        }
    )
    assert settings.open_mode is True and settings.port == 6001 and settings.max_wait == 2.5
    assert settings.data_dir == Path("/srv/chat") and settings.sqlite_synchronous == "FULL"
    assert settings.waiter_slots == 7 and settings.workers == 1


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("PAIRCHAT_PORT", "five", "PAIRCHAT_PORT='five': expected a whole number"),
        ("PAIRCHAT_OPEN_MODE", "maybe", "expected true or false"),
        ("PAIRCHAT_MAX_WAIT", "soon", "expected a number"),
        ("PAIRCHAT_MAX_WAIT", "nan", "max_wait"),
        ("PAIRCHAT_SQLITE_SYNCHRONOUS", "OFF", "NORMAL, FULL or EXTRA"),
        ("PAIRCHAT_THREADS", str(THREAD_RESERVE), f"more than {THREAD_RESERVE}"),
        ("PAIRCHAT_LOGIN_RATE_LIMIT", "lots", "not a rate"),
    ],
)
def test_bad_values_are_refused_with_their_name(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env({name: value})


def test_flags_beat_the_environment_which_beats_the_defaults(tmp_path: Path) -> None:
    environ = {"PAIRCHAT_PORT": "6001", "PAIRCHAT_HOST": "0.0.0.0", "PAIRCHAT_OPEN_MODE": "1"}
    args = ["--port", "7001", "--data-dir", str(tmp_path)]
    with cli.serve.make_context("serve", args) as ctx:
        settings = cli.settings_from(ctx, environ)
    assert settings.port == 7001  # flag over environment
    assert settings.host == "0.0.0.0" and settings.open_mode  # environment over default
    assert settings.data_dir == tmp_path and settings.threads == Settings().threads
    with cli.serve.make_context("serve", []) as ctx:
        assert cli.settings_from(ctx, {}) == Settings()  # a flag's default is not "given"


def test_a_bad_flag_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.cli, ["serve", "--threads", "10", "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 2
    assert f"threads must be more than {THREAD_RESERVE}" in result.output
    assert not (tmp_path / "data").exists()


def test_every_setting_is_documented_for_operators() -> None:
    text = (REPO / "docs" / "deploy.md").read_text()
    missing = [f"PAIRCHAT_{name.upper()}" for name in Settings.__dataclass_fields__]
    assert [name for name in missing if f"`{name}`" not in text] == []
