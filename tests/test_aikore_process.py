"""A real ``aikore`` process: startup line, placeholder page, health, graceful stop, installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, AikoreProcess, wait_until


def test_serves_dashboard_and_health_and_stops_on_sigterm(aikore_process) -> None:
    proc: AikoreProcess = aikore_process()
    assert proc.request("GET", "/api/health").json()["status"] == "ok"
    page = proc.request("GET", "/")
    assert page.status == 200 and b"AiKore" in page.body
    wait_until(lambda: f"http://127.0.0.1:{proc.port}/" in proc.output(), what="dashboard URL printed")
    assert proc.stop() == 0
    assert (proc.data_dir / "aikore.db").exists() and (proc.data_dir / "instances").is_dir()


def test_port_in_use_is_a_clear_error(aikore_process, tmp_path: Path) -> None:
    first: AikoreProcess = aikore_process()
    second = AikoreProcess(data_dir=tmp_path / "other", port=first.port, extra_args=["--no-auth"])
    second.start(wait=False)
    assert second.proc is not None and second.proc.wait(timeout=30) == 1
    assert "cannot listen" in second.output()


@pytest.mark.timeout(600)
def test_non_editable_install_works_from_any_directory(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(REPO)],
        check=True, capture_output=True,
    )
    assert (target / "aikore" / "http" / "templates" / "index.html").is_file()
    assert (target / "aikore" / "_blueprints" / "demo.sh").is_file()
    assert (target / "proxy" / "__init__.py").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONUNBUFFERED": "1"}
    where = subprocess.run([sys.executable, "-c", "import aikore.resources as r; print(r.static_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(target))
    proc = AikoreProcess(data_dir=elsewhere / "data", extra_args=["--no-auth"], env=env)
    proc.start()
    try:
        blueprints = proc.request("GET", "/api/blueprints").json()
        assert "demo" in [b["id"] for b in blueprints]
        assert b"AiKore" in proc.request("GET", "/").body
    finally:
        proc.stop()
