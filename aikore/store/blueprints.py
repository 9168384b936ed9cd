"""Blueprints: launch scripts with an ``AIKORE-METADATA`` header, built in or from the custom dir."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROXY_MODES = ("strip-prefix", "keep-prefix", "port-only")
HEADER_START = "### AIKORE-METADATA-START ###"
HEADER_END = "### AIKORE-METADATA-END ###"
# Blueprint ids are file stems; the same rule as instance names keeps them safe in paths and URLs.
BLUEPRINT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_HEADER_LINE = re.compile(r"^#\s*aikore\.([a-z_]+)\s*:\s*(.*?)\s*$")
# Only the top of a script can hold the header; reading a whole multi-MB script is pointless.
_HEADER_SCAN_BYTES = 16 * 1024


@dataclass(frozen=True)
class Blueprint:
    id: str
    name: str
    path: Path
    category: str = "Other"
    description: str = ""
    proxy_mode: str = "strip-prefix"
    health: str = "/"
    builtin: bool = True
    # Header keys this version does not know (e.g. from newer blueprints), kept for the API.
    extra: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "proxy": self.proxy_mode,
            "health": self.health,
            "source": "builtin" if self.builtin else "custom",
            "extra": dict(self.extra),
            "warnings": list(self.warnings),
        }

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.extra).get(key, default)


def parse_header(text: str) -> tuple[dict[str, str], list[str]]:
    """Return the ``aikore.*`` keys of the metadata block and warnings about what was off."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADER_START)
    except StopIteration:
        return {}, []
    values: dict[str, str] = {}
    warnings: list[str] = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if stripped == HEADER_END:
            return values, warnings
        if not stripped:
            continue
        match = _HEADER_LINE.match(_strip_comment(stripped))
        if match is None:
            warnings.append(f"ignored header line: {stripped[:80]!r}")
            continue
        values[match.group(1)] = match.group(2)
    warnings.append("metadata header has no end marker")
    return values, warnings


def _strip_comment(line: str) -> str:
    # "# aikore.proxy: strip-prefix   # comment" → drop the trailing comment (DESIGN.md shows them).
    head, sep, _ = line[1:].partition(" #")
    return "#" + head if sep else line


def load_blueprint(path: Path, *, builtin: bool) -> Blueprint:
    with path.open("rb") as f:
        text = f.read(_HEADER_SCAN_BYTES).decode("utf-8", errors="replace")
    values, warnings = parse_header(text)
    mode = values.pop("proxy", "strip-prefix") or "strip-prefix"
    if mode not in PROXY_MODES:
        warnings.append(f"unknown proxy mode {mode!r}; using strip-prefix")
        mode = "strip-prefix"
    health = values.pop("health", "/") or "/"
    if not health.startswith("/"):
        warnings.append(f"health path {health!r} must start with '/'; using /")
        health = "/"
    return Blueprint(
        id=path.stem,
        name=values.pop("name", "") or path.stem,
        path=path,
        category=values.pop("category", "") or "Other",
        description=values.pop("description", ""),
        proxy_mode=mode,
        health=health,
        builtin=builtin,
        extra=tuple(sorted(values.items())),
        warnings=tuple(warnings),
    )


class BlueprintCatalog:
    """Discovers ``*.sh`` blueprints; a custom one with a built-in's id overrides it."""

    def __init__(self, builtin_dir: Path, custom_dir: Path) -> None:
        self.builtin_dir = builtin_dir
        self.custom_dir = custom_dir

    def discover(self) -> dict[str, Blueprint]:
        # Rescanned on each call: users drop scripts into the custom dir while AiKore runs.
        found: dict[str, Blueprint] = {}
        for directory, builtin in ((self.builtin_dir, True), (self.custom_dir, False)):
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.sh")):
                if not BLUEPRINT_ID.match(path.stem) or not path.is_file():
                    continue
                try:
                    found[path.stem] = load_blueprint(path, builtin=builtin)
                except OSError as exc:
                    log.warning("cannot read blueprint %s: %s", path, exc)
        return found

    def get(self, blueprint_id: str) -> Blueprint | None:
        """One blueprint by id, custom first; the id is checked before it becomes a path."""
        if not BLUEPRINT_ID.match(blueprint_id):
            return None
        for directory, builtin in ((self.custom_dir, False), (self.builtin_dir, True)):
            path = directory / f"{blueprint_id}.sh"
            if path.is_file():
                try:
                    return load_blueprint(path, builtin=builtin)
                except OSError as exc:
                    log.warning("cannot read blueprint %s: %s", path, exc)
        return None
