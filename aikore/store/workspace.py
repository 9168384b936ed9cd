"""Instance folders on disk: ``instances/<name>/`` with launch.sh, its backup, config and output.

Every change is made so that a crash at any point leaves either the old state or the new one:
new folders are built under a temporary name and renamed into place, files are replaced with
``os.replace``, and deleted instances are moved aside rather than erased (nothing is lost).

A create and a delete each pair a folder change with a database row, so each goes through a
hidden work folder whose name says what it was for: ``.creating-<name>.<token>`` (built, waiting
for its row) and ``.deleting-<name>.<id>`` (taken out of the way, its row being removed). Names
cannot contain a dot, so the name is read back from the folder; the supervisor finishes what a
crash interrupted at its next start (``staged`` and ``deleting`` list them).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from aikore.store.blueprints import Blueprint, load_blueprint
from aikore.store.private import private_folder

SCRIPT = "launch.sh"
SCRIPT_BACKUP = "launch.sh.bak"
CONF_DIR = "config"
OUTPUT_DIR = "output"
# The older form of an instance's launch arguments (words, split on whitespace), moved into its
# settings once and kept beside as launch_args.txt.migrated.
LEGACY_LAUNCH_ARGS = "launch_args.txt"
_MIGRATED = ".migrated"
_TMP_PREFIX = ".creating-"
_DELETING_PREFIX = ".deleting-"
_METADATA_CACHE = 1024


class Workspace:
    def __init__(self, instances_dir: Path, trash_dir: Path) -> None:
        self.instances_dir = instances_dir
        self.trash_dir = trash_dir
        self._metadata: dict[tuple[str, str], tuple[tuple[int, int, int], Blueprint]] = {}

    def path(self, name: str) -> Path:
        return self.instances_dir / name

    def script_path(self, name: str) -> Path:
        return self.path(name) / SCRIPT

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def staged(self) -> list[tuple[str, Path]]:
        """Folders built for a create that a crash interrupted: (instance name, folder)."""
        return self._work_folders(_TMP_PREFIX)

    def deleting(self) -> list[tuple[str, int | None, Path]]:
        """Folders of deletes a crash interrupted: (instance name, instance id, folder)."""
        found = []
        for name, path in self._work_folders(_DELETING_PREFIX):
            tail = path.name.rsplit(".", 1)[-1]
            found.append((name, int(tail) if tail.isdigit() else None, path))
        return found

    def _work_folders(self, prefix: str) -> list[tuple[str, Path]]:
        if not self.instances_dir.is_dir():
            return []
        return [
            (path.name[len(prefix):].split(".", 1)[0], path)
            for path in sorted(self.instances_dir.glob(f"{prefix}*"))
            if path.is_dir()
        ]

    def prepare(self, name: str, blueprint_script: Path) -> Path:
        """Build the folder under a temporary name; ``commit`` renames it into place.

        On any failure (a full disk) the half-built folder is removed before the error goes up.
        """
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        staging = self.instances_dir / f"{_TMP_PREFIX}{name}.{os.getpid()}-{time.monotonic_ns()}"
        staging.mkdir()
        private_folder(staging)
        try:
            (staging / CONF_DIR).mkdir()
            (staging / OUTPUT_DIR).mkdir()
            shutil.copyfile(blueprint_script, staging / SCRIPT)
            (staging / SCRIPT).chmod(0o755)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return staging

    def commit(self, staging: Path, name: str) -> None:
        target = self.path(name)
        if target.exists():
            raise FileExistsError(target)
        os.rename(staging, target)

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        """Atomic on one filesystem; refuses to replace an existing folder."""
        source, target = self.path(old), self.path(new)
        if target.exists():
            raise FileExistsError(target)
        if source.exists():
            os.rename(source, target)
        else:
            target.mkdir(parents=True)

    def retire(self, name: str) -> Path | None:
        """Move a deleted instance's folder to the trash (its outputs and logs stay recoverable)."""
        return self.trash(self.path(name), name)

    def begin_delete(self, name: str, instance_id: int) -> Path | None:
        """Take the folder out of the way (atomically) before its row goes; None if it has none."""
        source = self.path(name)
        if not source.exists():
            return None
        moved = self.instances_dir / f"{_DELETING_PREFIX}{name}.{instance_id}"
        os.rename(source, moved)
        return moved

    def undo_delete(self, moved: Path | None, name: str) -> None:
        """The row could not be removed: the folder goes back where it was."""
        if moved is not None:
            os.rename(moved, self.path(name))

    def trash(self, source: Path | None, name: str) -> Path | None:
        """Move a folder of instance ``name`` to the trash; None if there is nothing to move."""
        if source is None or not source.exists():
            return None
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        target = self.trash_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}"
        os.rename(source, target)
        return target

    def metadata(self, name: str, blueprint_id: str) -> Blueprint:
        """The header of the instance's launch.sh, re-read only when the file changed.

        Every instance JSON (each API answer and each published event) needs the proxy mode, so
        the parse is kept per file and checked against the file's size and mtime.
        """
        script = self.script_path(name)
        try:
            st = script.stat()
        except OSError:
            return script_metadata(script, blueprint_id)
        key = (str(script), blueprint_id)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._metadata.get(key)
        if cached is None or cached[0] != stamp:
            if len(self._metadata) >= _METADATA_CACHE:
                self._metadata.clear()
            cached = self._metadata[key] = (stamp, script_metadata(script, blueprint_id))
        return cached[1]

    def take_legacy_launch_args(self, name: str) -> list[str] | None:
        """The words of ``config/launch_args.txt``, renamed away so the script no longer reads it; None if absent."""
        path = self.path(name) / CONF_DIR / LEGACY_LAUNCH_ARGS
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            path.replace(path.with_name(LEGACY_LAUNCH_ARGS + _MIGRATED))
        except FileNotFoundError:
            return None
        # As the shell library read it: comment and blank lines skipped, the rest split into words.
        return [word for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
                for word in line.split()]

    def restore_legacy_launch_args(self, name: str) -> None:
        """Undo ``take_legacy_launch_args`` (the settings could not be written): the script reads it again."""
        path = self.path(name) / CONF_DIR / LEGACY_LAUNCH_ARGS
        path.with_name(LEGACY_LAUNCH_ARGS + _MIGRATED).replace(path)

    def read_script(self, name: str) -> str:
        return self.script_path(name).read_text(encoding="utf-8", errors="replace")

    def write_script(self, name: str, content: str) -> None:
        """Replace launch.sh, keeping the previous version as launch.sh.bak (both or neither on a failure)."""
        folder = self.path(name)
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / SCRIPT
        fresh = folder / f".{SCRIPT}.new"
        backup = folder / f".{SCRIPT_BACKUP}.new"
        try:
            fresh.write_text(content, encoding="utf-8")
            fresh.chmod(0o755)
            if script.exists():
                shutil.copy2(script, backup)
                os.replace(backup, folder / SCRIPT_BACKUP)
            os.replace(fresh, script)
        except BaseException:
            fresh.unlink(missing_ok=True)
            backup.unlink(missing_ok=True)
            raise


def script_metadata(script: Path, blueprint_id: str) -> Blueprint:
    """The header of an instance's own launch.sh: edits to it (proxy mode, health) take effect."""
    try:
        meta = load_blueprint(script, builtin=False)
    except OSError:
        meta = Blueprint(id=blueprint_id, name=blueprint_id, path=script)
    return dataclasses.replace(meta, id=blueprint_id)
