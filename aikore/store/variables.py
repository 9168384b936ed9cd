"""Blueprint variables: settings a blueprint declares in its header and pins in its own script.

    ### AIKORE-METADATA-START ###
    # aikore.var: COMFYUI_REF ComfyUI's version: a git tag, branch or commit
    ### AIKORE-METADATA-END ###
    COMFYUI_REF=${COMFYUI_REF:-v0.3.64}

The header line declares one variable (its name, then what it means; one line per variable); the
assignment line in the script holds its value, the default the script uses unless its environment
sets another. Changing a variable rewrites that line of the instance's launch.sh, so the script
stays the one place its value lives: what "Edit Script" shows, what running it by hand uses, and
the pin an app update moves (aikore/versions reads the same line).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aikore.errors import AikoreError

VARIABLE_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
# Values stay one shell word inside ${NAME:-...}: nothing that ends it, quotes, expands or splits.
VALUE = re.compile(r"^[A-Za-z0-9._/+:@=,%~-]{0,200}$")
_DECLARATION = re.compile(r"^#\s*aikore\.var\s*:\s*([A-Z_][A-Z0-9_]*)\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Variable:
    """One declared variable and its value in the script (None: the script has no line to set)."""

    name: str
    description: str
    value: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "value": self.value}


def declarations(header_lines: list[str]) -> list[tuple[str, str]]:
    """``(name, description)`` of each ``# aikore.var:`` line of a metadata header, in order."""
    found = (_DECLARATION.match(line.strip()) for line in header_lines)
    named = [(m.group(1), m.group(2)) for m in found if m is not None and VARIABLE_NAME.match(m.group(1))]
    return list(dict(named).items())


def variables(declared: list[tuple[str, str]], script: str) -> tuple[Variable, ...]:
    """The declared variables with their values as the script sets them."""
    return tuple(Variable(name, text, _value(script, name)) for name, text in declared)


def with_values(script: str, declared: list[tuple[str, str]], changes: Any) -> str:
    """The script with each variable's line set to its new value; a 400 naming the first bad one."""
    if not isinstance(changes, Mapping):
        raise AikoreError("invalid_field", 'variables: must be an object, e.g. {"COMFYUI_REF": "v0.3.65"}', 400,
                          field="variables")
    names = dict(declared)
    for name, value in changes.items():
        where = f"variables.{str(name)[:64]}"
        if name not in names:
            known = ", ".join(names) or "none"
            raise _bad(where, f"launch.sh declares no such variable (# aikore.var: lines declare {known})")
        if not isinstance(value, str) or not VALUE.match(value):
            raise _bad(where, "must be up to 200 letters, digits or . _ / + : @ = , % ~ - (one shell word)")
        line = _line(name)
        if not line.search(script):
            raise _bad(where, f"launch.sh has no line {name}=${{{name}:-...}} to set")
        script = line.sub(_assignment(name, value), script, count=1)
    return script


def _assignment(name: str, value: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group(1)}{m.group(2)}${{{name}:-{value}}}{m.group(4)}{m.group(5)}"


def _bad(where: str, message: str) -> AikoreError:
    return AikoreError("invalid_field", f"{where}: {message}", 400, field="variables")


def _line(name: str) -> re.Pattern[str]:
    # NAME=${NAME:-value}, optionally quoted, optionally with a trailing comment (as aikore/versions).
    n = re.escape(name)
    return re.compile(rf'^([ \t]*{n}=)("?)\$\{{{n}:-([^}}"\s]*)\}}("?)([ \t]*(?:#.*)?)$', re.M)


def _value(script: str, name: str) -> str | None:
    found = _line(name).search(script)
    return found.group(3) if found else None
