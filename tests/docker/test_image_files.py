"""The Dockerfile, compose file and s6 service tree, checked without Docker.

test_container.py builds the image and runs it; these tests are the fast half: they lint the
Dockerfile with hadolint and check that the files it copies, the ports it opens, the services s6
starts and the compose file agree with each other.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
ROOTFS = REPO / "docker" / "rootfs"
ENTRYPOINT = ROOTFS / "usr" / "local" / "sbin" / "aikore-entrypoint"
INIT = ROOTFS / "usr" / "local" / "sbin" / "init-aikore"
SCAN = ROOTFS / "etc" / "aikore" / "s6"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def args_of(name: str) -> list[str]:
    return [args for instr, args in instructions() if instr == name]


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    return str(found) if found.exists() else shutil.which("hadolint") or "hadolint"


def test_dockerfile_is_hadolint_clean() -> None:
    proc = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint above passes only if hadolint really ran and judged; a broken one must fail here.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install curl\n")
    assert subprocess.run([hadolint(), str(bad)], capture_output=True).returncode != 0


def test_image_is_debian_from_a_base_argument_with_s6_from_its_packages() -> None:
    assert "BASE_IMAGE=debian:bookworm-slim" in args_of("ARG")
    assert args_of("FROM") == ["${BASE_IMAGE}"]
    assert args_of("ENTRYPOINT") == ['["/usr/local/sbin/aikore-entrypoint"]']
    # Only Debian's packages and PyPI: nothing fetched by URL, no third-party apt sources.
    assert args_of("ADD") == []
    runs = " ".join(args_of("RUN"))
    for fetch in ("://", "add-apt-repository", "sources.list", "apt-key"):
        assert fetch not in runs, fetch


def test_image_has_what_blueprints_and_persistent_mode_need() -> None:
    packages = set(" ".join(a for a in args_of("RUN") if "apt-get install" in a).split())
    for needed in ("s6", "git", "build-essential", "python3-venv", "nodejs", "npm", "xvfb", "openbox", "chromium",
                   "curl", "tzdata"):
        assert needed in packages, needed
    runs = args_of("RUN")
    assert any("uv==${UV_VERSION}" in a for a in runs)
    assert any("--requirements ./src/pyproject.toml --extra persistent" in a for a in runs)
    assert any(a.endswith("--no-deps ./src") for a in runs)


def test_healthcheck_probes_api_health_on_aikores_port() -> None:
    (check,) = args_of("HEALTHCHECK")
    assert "/api/health" in check and "${AIKORE_PORT}" in check
    env = " ".join(args_of("ENV"))
    assert "AIKORE_PORT=9000" in env and "AIKORE_HOST=0.0.0.0" in env and "AIKORE_DATA_DIR=/config" in env


def test_exposed_ports_match_the_public_pool_and_compose() -> None:
    env = " ".join(args_of("ENV"))
    pool = re.search(r"AIKORE_PUBLIC_PORTS=(\d+-\d+)", env).group(1)
    assert args_of("EXPOSE") == [f"9000 {pool}"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["aikore"]
    assert set(compose["ports"]) == {"9000:9000", f"{pool}:{pool}"}


def test_data_volume_and_user_remapping_defaults() -> None:
    assert args_of("VOLUME") == ['["/config"]']
    env = " ".join(args_of("ENV"))
    for default in ("PUID=1000", "PGID=1000", "TZ=Etc/UTC", "AIKORE_BLUEPRINTS_LIB=/opt/aikore/src/blueprints/lib"):
        assert default in env
    assert any("useradd --uid 1000" in a for a in args_of("RUN"))


def test_compose_reserves_gpus_and_mounts_the_volumes() -> None:
    service = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["aikore"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert any(v.endswith(":/config") for v in service["volumes"])
    assert any(v.endswith(":/config/models") for v in service["volumes"])
    assert {"PUID", "PGID", "TZ"} <= set(service["environment"])


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.skip("docker-compose is missing: scripts/test-deps installs Debian's package")
    return found


def test_compose_file_is_valid_for_docker_compose() -> None:
    proc = subprocess.run([docker_compose(), "-f", "docker-compose.yml", "config", "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_docker_compose_catches_a_bad_compose_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  aikore:\n    image: aikore\n    ports: 9000\n    restart: sometimes\n")
    proc = subprocess.run([docker_compose(), "-f", str(bad), "config", "--quiet"], capture_output=True, timeout=60)
    assert proc.returncode != 0


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        if fnmatch.fnmatch(path, pat.rstrip("/")) or fnmatch.fnmatch(path, pat.rstrip("/") + "/*"):
            ignored = not negate
    return ignored


def test_every_copied_path_exists_and_survives_dockerignore() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip()[:1] not in ("", "#")]
    for args in args_of("COPY"):
        *sources, _ = args.split()
        for source in sources:
            source = source.rstrip("/")
            assert (REPO / source).exists(), source
            assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    assert _ignored(".venv", patterns) and _ignored("tests", patterns)


def test_entrypoint_runs_the_init_step_then_becomes_s6_svscan() -> None:
    script = ENTRYPOINT.read_text()
    assert os.access(ENTRYPOINT, os.X_OK) and os.access(INIT, os.X_OK)
    assert script.index("/usr/local/sbin/init-aikore") < script.index("exec s6-svscan")
    assert script.rstrip().splitlines()[-1] == 'exec s6-svscan "$scan"'
    assert "cp -a /etc/aikore/s6" in script


def test_s6_supervises_aikore_as_the_aikore_user() -> None:
    services = {p.name for p in SCAN.iterdir()}
    assert services == {"aikore", ".s6-svscan"}
    run, finish = SCAN / "aikore" / "run", SCAN / "aikore" / "finish"
    assert os.access(run, os.X_OK) and os.access(finish, os.X_OK)
    assert run.read_text().rstrip().splitlines()[-1] == 'exec s6-setuidgid "${AIKORE_USER:-aikore}" aikore'
    assert os.access(SCAN / ".s6-svscan" / "finish", os.X_OK)


def test_container_scripts_are_shellcheck_clean() -> None:
    assert shutil.which("shellcheck"), "shellcheck (Debian package) is part of the test tools"
    scripts = [ENTRYPOINT, INIT, SCAN / "aikore" / "run", SCAN / "aikore" / "finish", SCAN / ".s6-svscan" / "finish"]
    proc = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
