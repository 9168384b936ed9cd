"""Runs blueprints as AiKore does (bash, cwd = instances/<name>/) with stand-ins first on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
BLUEPRINTS = REPO / "blueprints"
LIB = BLUEPRINTS / "lib"
STANDIN = Path(__file__).resolve().parent / "standin.py"
STANDIN_PROGRAMS = ("git", "uv", "pip", "python", "python3", "npm", "npx", "node", "jupyter", "invokeai-web")
NAME = "inst"
PORT = "18123"
HOST = "127.0.0.1"
ROOT_PATH = f"/app/{NAME}"


# What AiKore's own environment passes to instances and the tests keep: locale, and how this
# machine reaches package registries (CA bundles, proxies, index settings) for the real-tool tests.
_KEPT_ENV = frozenset({"LANG", "LC_ALL", "TMPDIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"})
_KEPT_PREFIXES = ("UV_", "PIP_", "SSL_", "GIT_SSL_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")


@dataclass
class Call:
    prog: str
    path: str
    args: list[str]
    cwd: str
    env: dict[str, str]


@dataclass
class BlueprintRun:
    """One instance folder; ``run`` starts its launch.sh again like an instance restart."""

    root: Path
    blueprint: str
    extra_env: dict[str, str] = field(default_factory=dict)
    # The calls of the first start, kept by fixtures before later runs clear the record.
    first: list[Call] = field(default_factory=list)

    @property
    def instance_dir(self) -> Path:
        return self.root / "data" / "instances" / NAME

    @property
    def conf_dir(self) -> Path:
        return self.instance_dir / "config"

    @property
    def output_dir(self) -> Path:
        return self.instance_dir / "output"

    @property
    def models_dir(self) -> Path:
        return self.root / "data" / "models"

    @property
    def venv(self) -> Path:
        return self.conf_dir / "env"

    @property
    def record(self) -> Path:
        return self.root / "record.jsonl"

    def env(self, **overrides: str) -> dict[str, str]:
        bin_dir = self.root / "bin"
        keep = {k: v for k, v in os.environ.items() if k in _KEPT_ENV or k.upper().startswith(_KEPT_PREFIXES)}
        return {
            **keep,
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "STANDIN_RECORD": str(self.record),
            "WEBUI_PORT": PORT,
            "WEBUI_HOST": HOST,
            "INSTANCE_NAME": NAME,
            "INSTANCE_CONF_DIR": str(self.conf_dir),
            "INSTANCE_OUTPUT_DIR": str(self.output_dir),
            "AIKORE_ROOT_PATH": ROOT_PATH,
            "GRADIO_ROOT_PATH": ROOT_PATH,
            "CUDA_VISIBLE_DEVICES": "0",
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "AIKORE_DATA_DIR": str(self.root / "data"),
            "AIKORE_MODELS_DIR": str(self.models_dir),
            "AIKORE_REBUILD_ENV": "0",
            "AIKORE_BLUEPRINTS_LIB": str(LIB),
            **self.extra_env,
            **overrides,
        }

    def run(self, *, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run launch.sh once; the record is cleared first so it holds this run only."""
        self.record.write_text("")
        proc = subprocess.run(
            ["bash", "launch.sh"], cwd=self.instance_dir, env=self.env(**(env or {})),
            capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.blueprint} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def calls(self, prog: str | None = None) -> list[Call]:
        lines = self.record.read_text().splitlines()
        calls = [Call(**json.loads(line)) for line in lines]
        return [c for c in calls if prog is None or c.prog == prog]

    def uv_calls(self, sub: str) -> list[Call]:
        return [c for c in self.calls("uv") if c.args[: len(sub.split())] == sub.split()]

    def launch(self) -> Call:
        """The app's start is the last thing a blueprint does (it execs the app)."""
        return self.calls()[-1]


def _write_standins(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True)
    for prog in STANDIN_PROGRAMS:
        path = bin_dir / prog
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$0" "$@"\n')
        path.chmod(0o755)


def make_blueprint_run(root: Path, blueprint: str, script: str | None = None, **extra_env: str) -> BlueprintRun:
    """An instance folder under ``root`` holding a copy of the blueprint (or ``script``) as launch.sh."""
    run = BlueprintRun(root=root, blueprint=blueprint, extra_env=dict(extra_env))
    _write_standins(root / "bin")
    for folder in (run.conf_dir, run.output_dir, root / "home"):
        folder.mkdir(parents=True)
    if script is None:
        shutil.copyfile(BLUEPRINTS / f"{blueprint}.sh", run.instance_dir / "launch.sh")
    else:
        (run.instance_dir / "launch.sh").write_text(script)
    return run


@pytest.fixture
def blueprint_run(tmp_path: Path) -> Any:
    """Factory: ``blueprint_run("comfyui")``; ``script=`` replaces the blueprint's text (library tests)."""

    def make(blueprint: str, script: str | None = None, **extra_env: str) -> BlueprintRun:
        return make_blueprint_run(tmp_path, blueprint, script, **extra_env)

    return make
