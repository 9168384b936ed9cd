"""Blueprints: launch scripts with an ``AIKORE-METADATA`` header, built in or from the custom dir.

Built-ins ship with AiKore and are read-only; custom ones live in the custom dir (``<data>/blueprints``
by default), where the dashboard saves, edits, imports and deletes them (``CustomBlueprints``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aikore.errors import AikoreError, invalid
from aikore.store.variables import Variable, declarations, variables

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
    # Declared by ``# aikore.var:`` header lines, valued by the script (store/variables.py).
    variables: tuple[Variable, ...] = ()

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
            "variables": [v.to_json() for v in self.variables],
        }

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.extra).get(key, default)


def header_lines(text: str) -> list[str]:
    """The lines between the metadata markers (none without a start marker)."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == HEADER_START)
    except StopIteration:
        return []
    block = lines[start + 1 :]
    end = next((i for i, line in enumerate(block) if line.strip() == HEADER_END), len(block))
    return block[:end]


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
    # One line per variable: collected by store/variables.py, not one key among the others.
    values.pop("var", None)
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
        variables=variables(declarations(header_lines(text)), text),
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


# What the dashboard writes into a header: one line each, of a sensible length.
HEADER_FIELDS = ("name", "category", "description")
_HEADER_VALUE_MAX = {"name": 80, "category": 60, "description": 1000}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def set_header(content: str, values: dict[str, str]) -> str:
    """``content`` with ``aikore.<key>: value`` lines set in its metadata block (added if it has none)."""
    lines = content.splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if HEADER_START in stripped and HEADER_END in stripped[stripped.index(HEADER_START):]:
        start = stripped.index(HEADER_START)
        end = stripped.index(HEADER_END, start)
        block = lines[start + 1 : end]
        for key, value in values.items():
            line = f"# aikore.{key}: {value}\n"
            at = next((i for i, old in enumerate(block) if _header_key(old) == key), None)
            if at is None:
                block.append(line)
            else:
                block[at] = line
        return "".join([*lines[: start + 1], *block, *lines[end:]])
    header = [f"{HEADER_START}\n", *(f"# aikore.{k}: {v}\n" for k, v in values.items()), f"{HEADER_END}\n"]
    if lines and lines[0].startswith("#!"):
        first = lines[0] if lines[0].endswith("\n") else lines[0] + "\n"
        return "".join([first, *header, *lines[1:]])
    return "".join(["#!/usr/bin/env bash\n", *header, *lines])


def _header_key(line: str) -> str | None:
    match = _HEADER_LINE.match(_strip_comment(line.strip())) if line.strip().startswith("#") else None
    return match.group(1) if match else None


def check_header_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(key, "must be a string")
    value = value.strip()
    if _CONTROL.search(value):
        raise invalid(key, "must be one line of text (no line breaks or control characters)")
    if len(value) > _HEADER_VALUE_MAX[key]:
        raise invalid(key, f"is limited to {_HEADER_VALUE_MAX[key]} characters")
    if key == "name" and not value:
        raise invalid(key, "must not be empty")
    return value


def check_blueprint_id(value: Any) -> str:
    if not isinstance(value, str) or not BLUEPRINT_ID.fullmatch(value) or value.endswith(".sh"):
        raise invalid("id", f"{str(value)[:80]!r} is not a valid blueprint id: 1-63 letters, digits, '.', '_' or "
                      "'-', starting with a letter or digit (it becomes <id>.sh in the custom blueprints folder)")
    return value


class CustomBlueprints:
    """Writes to the custom dir: built-ins are never changed (a 403 says so)."""

    def __init__(self, catalog: BlueprintCatalog, trash_dir: Path) -> None:
        self.catalog = catalog
        self.trash_dir = trash_dir

    def _path(self, blueprint_id: str) -> Path:
        return self.catalog.custom_dir / f"{check_blueprint_id(blueprint_id)}.sh"

    def _builtin(self, blueprint_id: str) -> bool:
        return (self.catalog.builtin_dir / f"{blueprint_id}.sh").is_file()

    def editable(self, blueprint_id: str) -> Path:
        """The custom file of ``blueprint_id``: a 403 for a built-in, a 404 for none."""
        if not isinstance(blueprint_id, str) or not BLUEPRINT_ID.fullmatch(blueprint_id):
            # A path that cannot name a blueprint names none (as an instance id that is not a number).
            raise AikoreError("not_found", f"blueprint {blueprint_id[:80]!r} does not exist", 404)
        path = self._path(blueprint_id)
        if path.is_file():
            return path
        if self._builtin(blueprint_id):
            raise AikoreError(
                "builtin_read_only",
                f"{blueprint_id} is a built-in blueprint and is read-only; save it under another id as a custom "
                "blueprint to change it",
                403,
            )
        raise AikoreError("not_found", f"blueprint {blueprint_id} does not exist", 404)

    def create(self, blueprint_id: str, content: str) -> Blueprint:
        """A new custom blueprint; its id may clash with neither a built-in nor another custom one."""
        path = self._path(blueprint_id)
        if self._builtin(blueprint_id):
            raise AikoreError("blueprint_exists", f"id: {blueprint_id} is a built-in blueprint's id; pick another",
                              409, field="id")
        self.catalog.custom_dir.mkdir(parents=True, exist_ok=True)
        fresh = self._write_aside(path, content)
        try:
            # link() never replaces: two saves under one id cannot both win.
            os.link(fresh, path)
        except FileExistsError:
            raise AikoreError("blueprint_exists", f"id: a custom blueprint {blueprint_id} already exists; pick "
                              "another id or edit that one", 409, field="id") from None
        finally:
            fresh.unlink(missing_ok=True)
        return load_blueprint(path, builtin=False)

    def replace(self, blueprint_id: str, content: str) -> Blueprint:
        path = self.editable(blueprint_id)
        fresh = self._write_aside(path, content)
        try:
            os.replace(fresh, path)
        except BaseException:
            fresh.unlink(missing_ok=True)
            raise
        return load_blueprint(path, builtin=False)

    def remove(self, blueprint_id: str) -> Path:
        """Move the file to ``<trash>/blueprints/`` (nothing is erased); instances made from it keep their copy."""
        path = self.editable(blueprint_id)
        target_dir = self.trash_dir / "blueprints"
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{blueprint_id}-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}.sh"
        os.rename(path, target)
        return target

    def _write_aside(self, path: Path, content: str) -> Path:
        fresh = path.with_name(f".{path.name}.{os.getpid()}-{time.monotonic_ns()}.new")
        try:
            fresh.write_text(content, encoding="utf-8")
            fresh.chmod(0o644)
        except BaseException:
            fresh.unlink(missing_ok=True)
            raise
        return fresh
