"""Snapshots taken before an app update: what a rollback puts back.

Kept in the instance's own folder (``instances/<name>/snapshots/<id>/``), so they move with a
rename and go to the trash with a delete: ``snapshot.json`` (the app's commit, its tag, the ref
gitref.sh had checked out, the script's pin, the install records) and ``packages.txt`` (``uv
pip freeze`` of the environment). A snapshot is written under a temporary name and renamed into
place, so a crash leaves a whole one or none. The newest ``keep`` are kept.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FOLDER = "snapshots"
PACKAGES = "packages.txt"
_META = "snapshot.json"
_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")


@dataclass(frozen=True)
class Snapshot:
    id: str
    created_at: float
    reason: str
    # Paths relative to the instance folder.
    app_path: str
    commit: str
    tag: str | None
    checked_out_ref: str | None
    variable: str
    pinned: str
    env_path: str | None
    package_count: int | None
    installed: dict[str, str] = field(default_factory=dict)


def new_id(now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(2)


class Snapshots:
    """The snapshots of one instance folder, newest first."""

    def __init__(self, instance_dir: Path) -> None:
        self.folder = instance_dir / FOLDER

    def list(self) -> list[Snapshot]:
        if not self.folder.is_dir():
            return []
        found = [s for p in self.folder.iterdir() if _ID.fullmatch(p.name) and (s := self._read(p)) is not None]
        return sorted(found, key=lambda s: (s.created_at, s.id), reverse=True)

    def get(self, snapshot_id: str) -> Snapshot | None:
        return self._read(self.folder / snapshot_id) if _ID.fullmatch(snapshot_id) else None

    def packages(self, snapshot: Snapshot) -> Path:
        return self.folder / snapshot.id / PACKAGES

    def save(self, snapshot: Snapshot, packages: str | None, keep: int) -> None:
        """Write it whole (temporary folder, then rename), then drop the oldest beyond ``keep``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = self.folder / f".new-{snapshot.id}"
        try:
            staging.mkdir()
            if packages is not None:
                (staging / PACKAGES).write_text(packages)
            (staging / _META).write_text(json.dumps(asdict(snapshot), indent=2))
            os.rename(staging, self.folder / snapshot.id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for old in self.list()[keep:]:
            shutil.rmtree(self.folder / old.id, ignore_errors=True)

    def _read(self, path: Path) -> Snapshot | None:
        try:
            data: dict[str, Any] = json.loads((path / _META).read_text())
            return Snapshot(**data)
        except (OSError, ValueError, TypeError):
            return None
