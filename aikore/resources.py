"""Where the shipped static/ and blueprints/ folders are, in a source tree or an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(installed_name: str, source_name: str) -> Path:
    # A wheel carries them inside the package (see pyproject's force-include); a source checkout
    # or editable install has them at the repository's top level.
    installed = _PACKAGE / installed_name
    return installed if installed.is_dir() else _PACKAGE.parent / source_name


def static_dir() -> Path:
    return _shipped("_static", "static")


def builtin_blueprints_dir() -> Path:
    return _shipped("_blueprints", "blueprints")
