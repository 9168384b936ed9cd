"""init-aikore, the container's first-start step, run outside Docker against a scratch root.

usermod, groupmod, chown and id are stand-ins that record their arguments (the test machine's
accounts must not change); everything else (stat, ln, od, the file writes) is real.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INIT = REPO / "docker" / "rootfs" / "usr" / "local" / "sbin" / "init-aikore"

STANDIN = """#!/bin/sh
echo "$(basename "$0") $*" >> "$INIT_RECORD"
if [ "$(basename "$0")" = id ]; then
    case "$1" in -u) echo "$STANDIN_UID" ;; -g) echo "$STANDIN_GID" ;; esac
fi
"""


class Init:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.record = root / "record"
        self.data = root / "config"
        bin_dir = root / "standin-bin"
        bin_dir.mkdir()
        for name in ("id", "usermod", "groupmod", "chown"):
            (bin_dir / name).write_text(STANDIN)
            (bin_dir / name).chmod(0o755)
        (root / "etc").mkdir()
        zone = root / "usr" / "share" / "zoneinfo" / "Europe"
        zone.mkdir(parents=True)
        (zone / "Paris").write_text("TZif")
        self.path = f"{bin_dir}:/usr/bin:/bin"

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        self.record.write_text("")
        base = {"PATH": self.path, "AIKORE_INIT_ROOT": str(self.root), "INIT_RECORD": str(self.record),
                "STANDIN_UID": "1000", "STANDIN_GID": "1000"}
        return subprocess.run(["bash", str(INIT)], env={**base, **env}, capture_output=True, text=True, timeout=60)

    def calls(self, prog: str) -> list[str]:
        return [line.split(" ", 1)[1] for line in self.record.read_text().splitlines() if line.startswith(prog + " ")]


@pytest.fixture
def init(tmp_path: Path) -> Init:
    return Init(tmp_path)


def me() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def test_user_and_group_are_remapped_to_puid_and_pgid(init: Init) -> None:
    proc = init.run(PUID="1234", PGID="5678")
    assert proc.returncode == 0, proc.stderr
    assert init.calls("groupmod") == ["-o -g 5678 aikore"]
    assert init.calls("usermod") == ["-o -u 1234 aikore"]
    assert "uid 1234, gid 5678" in proc.stdout


def test_matching_ids_are_left_alone(init: Init) -> None:
    assert init.run(PUID="1000", PGID="1000").returncode == 0
    assert init.calls("usermod") == [] and init.calls("groupmod") == []


@pytest.mark.parametrize("bad", ["abc", "-1", "1000; rm -rf /", "01000", "4294967295"])
def test_non_numeric_or_out_of_range_ids_are_refused(init: Init, bad: str) -> None:
    proc = init.run(PUID=bad)
    assert proc.returncode != 0
    assert f"PUID must be a numeric user id, got '{bad}'" in proc.stderr
    assert init.calls("usermod") == [] and not init.data.exists()


def test_data_folders_are_created_and_handed_over_recursively_when_the_owner_differs(init: Init) -> None:
    init.run(PUID="4321", PGID="4321")
    for folder in ("models", "instances", "blueprints", "home", "cache"):
        assert (init.data / folder).is_dir()
    assert f"-R 4321:4321 {init.data}" in init.calls("chown")


def test_data_owned_by_puid_is_not_walked_recursively(init: Init) -> None:
    uid, gid = me().split(":")
    init.run(PUID=uid, PGID=gid, STANDIN_UID=uid, STANDIN_GID=gid)
    chowns = init.calls("chown")
    assert chowns and not any(c.startswith("-R") for c in chowns)


def test_first_start_creates_a_private_token_once(init: Init) -> None:
    assert init.run().returncode == 0
    token_file = init.data / "token"
    token = token_file.read_text()
    assert len(token.strip()) == 64 and int(token, 16) > 0
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f"1000:1000 {token_file}" in init.calls("chown")
    init.run()
    assert token_file.read_text() == token


def test_tokens_differ_between_installations(tmp_path: Path) -> None:
    tokens = []
    for n in range(2):
        root = tmp_path / str(n)
        root.mkdir()
        Init(root).run()
        tokens.append((root / "config" / "token").read_text())
    assert tokens[0] != tokens[1]


@pytest.mark.parametrize("env", [{"AIKORE_TOKEN": "given"}, {"AIKORE_AUTH": "none"}, {"AIKORE_PASSWORD": "pw"}])
def test_no_token_file_when_a_token_is_given_or_another_auth_is_used(init: Init, env: dict[str, str]) -> None:
    assert init.run(**env).returncode == 0
    assert not (init.data / "token").exists()


def test_time_zone_is_linked_from_tz(init: Init) -> None:
    proc = init.run(TZ="Europe/Paris")
    assert proc.returncode == 0
    assert os.readlink(init.root / "etc" / "localtime") == "/usr/share/zoneinfo/Europe/Paris"
    assert (init.root / "etc" / "timezone").read_text() == "Europe/Paris\n"


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "/etc/passwd"])
def test_unknown_or_escaping_time_zone_is_ignored(init: Init, tz: str) -> None:
    proc = init.run(TZ=tz)
    assert proc.returncode == 0
    assert "unknown time zone" in proc.stdout
    assert not (init.root / "etc" / "localtime").exists()


def test_aikore_logs_in_with_the_token_the_first_start_created(init: Init, aikore_process) -> None:
    assert init.run().returncode == 0
    token = (init.data / "token").read_text().strip()
    aikore = aikore_process(extra_args=[], data_dir=init.data)
    assert aikore.request("GET", "/api/instances", auth=False).status == 401
    aikore.token = token
    assert aikore.request("GET", "/api/instances").status == 200
    assert f"?token={token}" in aikore.output()
