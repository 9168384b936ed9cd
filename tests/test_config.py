"""Settings from flags and AIKORE_* env: precedence, defaults and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aikore.config import ConfigError, Settings


def test_defaults_match_design(tmp_path: Path) -> None:
    s = Settings.from_args([], {})
    assert (s.host, s.port, s.auth) == ("127.0.0.1", 9000, "token")
    assert s.public_ports == range(19001, 19021)
    assert s.data_dir == Path("aikore-data").resolve()
    assert s.blueprints_dir == s.data_dir / "blueprints"
    assert s.models_dir == s.data_dir / "models"
    assert s.db_path == s.data_dir / "aikore.db"
    assert s.stop_timeout == 10.0


def test_env_sets_every_contract_value(tmp_path: Path) -> None:
    env = {
        "AIKORE_HOST": "0.0.0.0", "AIKORE_PORT": "9100", "AIKORE_DATA_DIR": str(tmp_path),
        "AIKORE_BLUEPRINTS_DIR": str(tmp_path / "bp"), "AIKORE_PUBLIC_PORTS": "20000-20004",
        "AIKORE_TOKEN": "secret", "AIKORE_STOP_TIMEOUT": "3",
    }
    s = Settings.from_args([], env)
    assert (s.host, s.port, s.token, s.stop_timeout) == ("0.0.0.0", 9100, "secret", 3.0)
    assert s.data_dir == tmp_path and s.blueprints_dir == tmp_path / "bp"
    assert s.public_ports == range(20000, 20005)


def test_flag_wins_over_env(tmp_path: Path) -> None:
    s = Settings.from_args(["--port", "9200", "--token", "fromflag"], {"AIKORE_PORT": "9100", "AIKORE_TOKEN": "env"})
    assert (s.port, s.token) == (9200, "fromflag")


def test_no_auth_flag_and_env() -> None:
    assert Settings.from_args(["--no-auth"], {}).auth == "none"
    assert Settings.from_args([], {"AIKORE_AUTH": "none"}).auth == "none"
    assert Settings.from_args([], {"AIKORE_PASSWORD": "pw"}).auth == "password"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AIKORE_PORT": "nine"}, "AIKORE_PORT"),
        ({"AIKORE_PORT": "70000"}, "'70000'"),
        ({"AIKORE_PUBLIC_PORTS": "19020-19001"}, "AIKORE_PUBLIC_PORTS"),
        ({"AIKORE_PUBLIC_PORTS": "a-b"}, "'a-b'"),
        ({"AIKORE_AUTH": "maybe"}, "AIKORE_AUTH"),
        ({"AIKORE_AUTH": "password"}, "AIKORE_PASSWORD"),
        ({"AIKORE_STOP_TIMEOUT": "-1"}, "AIKORE_STOP_TIMEOUT"),
    ],
)
def test_bad_values_name_key_and_value(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_args([], env)


def test_help_documents_every_setting() -> None:
    out = subprocess.run([sys.executable, "-m", "aikore", "--help"], capture_output=True, text=True, check=True).stdout
    for flag, env in [
        ("--host", "AIKORE_HOST"), ("--port", "AIKORE_PORT"), ("--data-dir", "AIKORE_DATA_DIR"),
        ("--blueprints-dir", "AIKORE_BLUEPRINTS_DIR"), ("--public-ports", "AIKORE_PUBLIC_PORTS"),
        ("--token", "AIKORE_TOKEN"), ("--no-auth", "AIKORE_AUTH=none"), ("--models-dir", "AIKORE_MODELS_DIR"),
        ("--stop-timeout", "AIKORE_STOP_TIMEOUT"),
    ]:
        assert flag in out and env in out, (flag, env)


def test_bad_setting_exits_2_with_message() -> None:
    proc = subprocess.run([sys.executable, "-m", "aikore", "--port", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "AIKORE_PORT" in proc.stderr and "'x'" in proc.stderr


def test_blank_env_values_keep_defaults_and_whole_numbers_are_checked() -> None:
    s = Settings.from_args([], {"AIKORE_PORT": "  ", "AIKORE_TOKEN": " ", "AIKORE_LOG_BACKUPS": "3"})
    assert (s.port, s.token, s.log_backups) == (9000, None, 3)
    with pytest.raises(ConfigError, match=r"AIKORE_LOG_BACKUPS.*'2\.5'"):
        Settings.from_args([], {"AIKORE_LOG_BACKUPS": "2.5"})
    with pytest.raises(ConfigError, match=r"AIKORE_SESSION_TTL.*'nan'"):
        Settings.from_args([], {"AIKORE_SESSION_TTL": "nan"})


@pytest.mark.parametrize("value", ["0.1", "61"])
def test_monitor_interval_outside_its_bounds_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=rf"AIKORE_MONITOR_INTERVAL must be within 0.25-60.0 seconds, got '{value}'"):
        Settings.from_args(["--monitor-interval", value], {})
