"""The shared model tree under ``models_dir``: kinds, files, totals, free disk, rename/move/delete.

Every path a client names is confined to one kind's folder: ``..``, absolute paths, NUL, hidden
names and symlinks that lead out are refused before anything touches the disk. Deleted models go
to the trash (``<data>/trash``), as deleted instances do, so a wrong click loses nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from aikore.errors import AikoreError, invalid

# The shared folders the blueprints link (blueprints/lib/models.sh), in ComfyUI's names.
KINDS: tuple[str, ...] = (
    "checkpoints",
    "loras",
    "vae",
    "controlnet",
    "embeddings",
    "upscale_models",
    "clip",
    "clip_vision",
    "unet",
    "diffusion_models",
    "text_encoders",
    "hypernetworks",
    "vae_approx",
)
PART_SUFFIX = ".part"
_MAX_NAME = 255
_LINK_ARGS = re.compile(r"^aik_link_models\s+\S+((?:\s*\\?\s*\S+=\S+)+)", re.MULTILINE)


@dataclass(frozen=True)
class ModelFile:
    kind: str
    path: str  # relative to the kind's folder, '/'-separated
    size: int
    modified: float


def check_kind(kind: object) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise invalid("kind", f"must be one of {', '.join(KINDS)}, got {str(kind)[:40]!r}")
    return kind


def check_relpath(path: object, field: str = "path") -> str:
    """A model path inside one kind: relative, no ``..``, no NUL, no hidden parts; '/'-separated."""
    if not isinstance(path, str) or not path.strip():
        raise invalid(field, "must be a non-empty string")
    if "\0" in path or "\\" in path:
        raise invalid(field, "must not contain NUL or backslashes")
    pure = PurePosixPath(path)
    if pure.is_absolute():
        raise invalid(field, f"must be relative to the kind's folder, got {path[:80]!r}")
    parts = pure.parts
    if not parts or any(p in ("..", ".") or p.startswith(".") or len(p) > _MAX_NAME for p in parts):
        raise invalid(field, f"must stay inside the models folder (no '..' or hidden names), got {path[:80]!r}")
    if parts[-1].endswith(PART_SUFFIX):
        raise invalid(field, f"names ending in {PART_SUFFIX} are kept for downloads")
    return "/".join(parts)


def linked_kinds(script: str) -> set[str]:
    """The shared kinds a launch script links (its ``aik_link_models app=shared ...`` arguments)."""
    found: set[str] = set()
    for match in _LINK_ARGS.finditer(script):
        for pair in match.group(1).replace("\\", " ").split():
            shared = pair.partition("=")[2]
            if shared in KINDS:
                found.add(shared)
    return found


class ModelLibrary:
    """The tree and its metadata index (source and checksum of files AiKore downloaded)."""

    def __init__(self, root: Path, trash_dir: Path, index_path: Path) -> None:
        self.root = root
        self.trash_dir = trash_dir
        self.index_path = index_path
        self._index: dict[str, dict[str, Any]] = self._load_index()

    def kind_dir(self, kind: str) -> Path:
        return self.root / check_kind(kind)

    def resolve(self, kind: str, path: str, field: str = "path") -> Path:
        """The absolute location of ``kind/path``, refused when it (or a symlink on the way) leaves the kind."""
        base = self.kind_dir(kind)
        target = base / check_relpath(path, field)
        real_base = os.path.realpath(base)
        real = os.path.realpath(target)
        if os.path.commonpath([real_base, real]) != real_base:
            raise invalid(field, "leads outside the models folder")
        return target

    def files(self, kind: str) -> list[ModelFile]:
        base = self.kind_dir(kind)
        found: list[ModelFile] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or name.endswith(PART_SUFFIX):
                    continue
                full = Path(dirpath) / name
                try:
                    st = full.stat()
                except OSError:
                    continue
                rel = full.relative_to(base).as_posix()
                found.append(ModelFile(kind, rel, st.st_size, st.st_mtime))
        return found

    def tree(self) -> dict[str, list[ModelFile]]:
        return {kind: self.files(kind) for kind in KINDS}

    def disk(self) -> dict[str, int]:
        self.root.mkdir(parents=True, exist_ok=True)
        usage = shutil.disk_usage(self.root)
        return {"total_bytes": usage.total, "free_bytes": usage.free}

    def free_bytes(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free

    def info(self, kind: str, path: str) -> dict[str, Any]:
        return dict(self._index.get(f"{kind}/{path}", {}))

    def record(self, kind: str, path: str, source: str | None, sha256: str | None) -> None:
        """Remember where a downloaded file came from and its checksum."""
        self._index[f"{kind}/{path}"] = {"source": source, "sha256": sha256}
        self._save_index()

    def move(self, kind: str, path: str, new_kind: str, new_path: str) -> ModelFile:
        """Rename a model or move it to another kind; never over an existing file."""
        source = self.resolve(kind, path)
        if not source.is_file():
            raise AikoreError("not_found", f"model {kind}/{path} does not exist", 404)
        target = self.resolve(new_kind, new_path, "new_path")
        if target.exists() or target.is_symlink():
            raise AikoreError("conflict", f"new_path: {new_kind}/{new_path} already exists", 409, field="new_path")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        meta = self._index.pop(f"{kind}/{path}", None)
        if meta is not None:
            self._index[f"{new_kind}/{check_relpath(new_path)}"] = meta
            self._save_index()
        st = target.stat()
        return ModelFile(new_kind, check_relpath(new_path), st.st_size, st.st_mtime)

    def delete(self, kind: str, path: str) -> Path:
        """Move a model to the trash; the trash path is returned."""
        source = self.resolve(kind, path)
        if not source.is_file():
            raise AikoreError("not_found", f"model {kind}/{path} does not exist", 404)
        self.trash_dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}"
        target = self.trash_dir / f"model-{kind}-{stamp}-{source.name}"
        # The trash may be on another disk than a custom models folder: move, not rename.
        shutil.move(source, target)
        if self._index.pop(f"{kind}/{path}", None) is not None:
            self._save_index()
        return target

    def _load_index(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def _save_index(self) -> None:
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.index_path.with_name(self.index_path.name + ".tmp")
        tmp.write_text(json.dumps(self._index, indent=1), encoding="utf-8")
        os.replace(tmp, self.index_path)
