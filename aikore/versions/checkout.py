"""The app's git checkout in an instance folder, and the ref its launch.sh pins.

Blueprints clone their app with ``aik_git_checkout URL DIR "$SOME_REF"`` (blueprints/lib/gitref.sh),
which leaves ``.git/aikore-ref`` (the ref it checked out) in the clone, and pin the ref with a
default a user may override: ``SOME_REF=${SOME_REF:-v0.3.64}``. The first such call is the app;
later ones (ComfyUI-Manager under ComfyUI) are its extensions. Moving the pin and starting again
is the blueprint's own update path: the library fetches and checks out a changed ref.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from aikore.versions.commands import run

# Written by gitref.sh beside every clone it made.
REF_STAMP = "aikore-ref"
# Checkouts lie a few folders down (config/ComfyUI); deeper ones are an app's own clones.
_MAX_DEPTH = 4
_SKIP = frozenset({".git", "node_modules", "__pycache__", "snapshots", "output", "models"})
_CHECKOUT_CALL = re.compile(
    r'^[ \t]*aik_git_checkout[ \t]+(\S+)[ \t]+(\S+)[ \t]+"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?[ \t]*(?:#.*)?$', re.M
)
# A tag, branch or commit: safe to write into a shell default, and what git accepts as a ref
# (always with fullmatch: "$" would let a trailing newline through).
REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]{0,199}")


@dataclass(frozen=True)
class Pin:
    """``VARIABLE=${VARIABLE:-value}`` in launch.sh: the ref the blueprint checks out."""

    variable: str
    value: str
    # The app's URL when the script names it literally (before the first start there is no clone).
    url: str | None


@dataclass(frozen=True)
class Checkout:
    """A clone gitref.sh made, as it is now."""

    path: Path
    remote: str | None
    commit: str
    tag: str | None
    # The ref gitref.sh last checked out (its stamp); the pin may differ until the next start.
    checked_out_ref: str | None


def _pin_line(variable: str) -> re.Pattern[str]:
    v = re.escape(variable)
    return re.compile(rf'^([ \t]*{v}=)("?)\$\{{{v}:-([^}}"\s]*)\}}("?)([ \t]*(?:#.*)?)$', re.M)


def pin_of(script: str) -> Pin | None:
    """The app's pinned ref, or None when the script clones nothing or pins no default."""
    call = _CHECKOUT_CALL.search(script)
    if call is None:
        return None
    variable = call.group(3)
    line = _pin_line(variable).search(script)
    if line is None:
        return None
    url = call.group(1).strip("\"'")
    return Pin(variable, line.group(3), None if "$" in url else url)


def with_pin(script: str, pin: Pin, value: str) -> str:
    """The script with the pin's default replaced by ``value`` (a ref REF_PATTERN accepts)."""
    if not REF_PATTERN.fullmatch(value):
        raise ValueError(f"not a ref: {value!r}")
    pattern = _pin_line(pin.variable)
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}${{{pin.variable}:-{value}}}{m.group(4)}{m.group(5)}",
                       script, count=1)


def find_checkouts(folder: Path) -> list[Path]:
    """Clones gitref.sh made under ``folder``, shallowest first (links are not followed)."""
    found: list[tuple[int, str, Path]] = []
    for root, dirs, _files in os.walk(folder):
        here = Path(root)
        depth = len(here.relative_to(folder).parts)
        if (here / ".git" / REF_STAMP).is_file():
            found.append((depth, root, here))
        if depth >= _MAX_DEPTH:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d not in _SKIP and not (here / d).is_symlink()
                   and not (here / d / "pyvenv.cfg").exists()]
    return [path for _depth, _name, path in sorted(found)]


def choose_app(checkouts: list[Path], remotes: dict[Path, str | None], pin: Pin | None) -> Path | None:
    """The app among the clones: the one from the script's literal URL, else the shallowest."""
    if pin is not None and pin.url is not None:
        for path in checkouts:
            if remotes.get(path) == pin.url:
                return path
    return checkouts[0] if checkouts else None


async def git(path: Path, *args: str, env: dict[str, str]) -> str | None:
    """A git command's stripped output in ``path``, or None when it fails."""
    done = await run(["git", "-C", str(path), *args], env=env, limit=30)
    return done.stdout.strip() if done.ok else None


async def remote_of(path: Path, env: dict[str, str]) -> str | None:
    return await git(path, "remote", "get-url", "origin", env=env)


async def describe(path: Path, env: dict[str, str]) -> Checkout | None:
    """The clone's commit, tag and stamp; None when it is not a usable git checkout."""
    commit = await git(path, "rev-parse", "--verify", "HEAD", env=env)
    if not commit:
        return None
    tag = await git(path, "describe", "--tags", "--exact-match", "HEAD", env=env)
    stamp = path / ".git" / REF_STAMP
    checked_out = stamp.read_text(errors="replace").strip() if stamp.is_file() else None
    return Checkout(path, await remote_of(path, env), commit, tag or None, checked_out or None)


async def local_changes(path: Path, env: dict[str, str]) -> list[str]:
    """Tracked files someone edited: a forced checkout would discard them (gitref.sh refuses too).

    A tracked file behind a folder the library turned into a link (shared models) reads as
    deleted; that is no edit.
    """
    done = await run(["git", "-C", str(path), "status", "--porcelain", "-z", "--untracked-files=no"],
                     env=env, limit=60)
    entries = done.stdout.split("\0")
    changed: list[str] = []
    skip_next = False
    for entry in entries:
        if skip_next or not entry:
            skip_next = False
            continue
        code, name = entry[:2], entry[3:]
        skip_next = code[0] in "RC"  # a rename's source path follows as its own entry
        if code == " D" and _behind_link(path, name):
            continue
        changed.append(name)
    return changed


def _behind_link(path: Path, name: str) -> bool:
    parts = Path(name).parts
    return any((path.joinpath(*parts[:i])).is_symlink() for i in range(1, len(parts)))


async def restore(path: Path, commit: str, checked_out_ref: str | None, env: dict[str, str]) -> None:
    """Check out ``commit`` (detached, as gitref.sh does) and put its stamp back.

    With the stamp equal to the pin again, the next start keeps this commit instead of fetching.
    """
    for args in (("checkout", "--force", "--detach", commit),
                 *((("submodule", "update", "--init", "--recursive"),) if (path / ".gitmodules").exists() else ())):
        done = await run(["git", "-C", str(path), *args], env=env, limit=600)
        if not done.ok:
            raise RuntimeError(f"git {args[0]} in {path.name} failed: {done.reason()}")
    stamp = path / ".git" / REF_STAMP
    if checked_out_ref:
        stamp.write_text(checked_out_ref + "\n")
    else:
        stamp.unlink(missing_ok=True)
