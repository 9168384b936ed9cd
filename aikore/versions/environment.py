"""An instance's Python environment: the exact package set, taken and put back with uv.

Blueprints make one uv environment per instance (``aik_python_env``, blueprints/lib/pyenv.sh,
usually ``config/env``) and record each install they did in ``.aikore-installed/`` inside it, to
skip it on the next start. A snapshot keeps ``uv pip freeze`` and those records; a rollback runs
``uv pip sync`` (the environment becomes exactly the frozen set, nothing more) and puts the
records back, so a later update installs its requirements again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from aikore.versions.commands import find_uv, run

# pyenv.sh's record of the installs it did (one file per distinct request).
INSTALLED_DIR = ".aikore-installed"
_MAX_DEPTH = 3
_SKIP = frozenset({".git", "node_modules", "__pycache__", "snapshots", "output", "models"})


def find_env(folder: Path) -> Path | None:
    """The shallowest virtual environment under ``folder`` (breadth first; links are not followed)."""
    level = [folder]
    for _depth in range(_MAX_DEPTH + 1):
        found = [here for here in level if (here / "pyvenv.cfg").is_file() and (here / "bin" / "python").exists()]
        if found:
            return found[0]
        level = [child for here in level for child in _subfolders(here)]
    return None


def _subfolders(here: Path) -> list[Path]:
    try:
        return sorted(p for p in here.iterdir() if p.name not in _SKIP and p.is_dir() and not p.is_symlink())
    except OSError:
        return []


async def freeze(env_dir: Path, env: dict[str, str]) -> str:
    """``uv pip freeze`` of the environment: every package at its exact version."""
    done = await run([find_uv(env), "pip", "freeze", "--python", str(env_dir / "bin" / "python")], env=env,
                     limit=120)
    if not done.ok:
        raise RuntimeError(f"uv pip freeze failed: {done.reason()}")
    return done.stdout


async def sync(env_dir: Path, packages: Path, env: dict[str, str]) -> None:
    """Make the environment hold exactly the packages in ``packages`` (adds, swaps, removes)."""
    done = await run([find_uv(env), "pip", "sync", "--python", str(env_dir / "bin" / "python"), str(packages)],
                     env=env)
    if not done.ok:
        raise RuntimeError(f"uv pip sync failed: {done.reason()}")


def installed_records(env_dir: Path) -> dict[str, str]:
    folder = env_dir / INSTALLED_DIR
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(errors="replace") for p in sorted(folder.iterdir()) if p.is_file()}


def restore_records(env_dir: Path, records: dict[str, str]) -> None:
    """The install records as they were: one the update added would skip that install next time."""
    folder = env_dir / INSTALLED_DIR
    if folder.exists():
        shutil.rmtree(folder)
    if records:
        folder.mkdir()
        for name, text in records.items():
            (folder / Path(name).name).write_text(text)
