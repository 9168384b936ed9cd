"""Checks on client input; each failure names the field and says what was wrong."""

from __future__ import annotations

import re
from typing import Any

from aikore.errors import AikoreError, invalid

# fullmatch, not match: "$" also matches before a trailing newline ("name\n" would pass).
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RESTART_POLICIES = ("never", "on-failure")
# ASCII: Python's \d also matches other scripts' digits (U+0661), which the documented pattern does not.
_GPU_LIST = re.compile(r"^\s*\d{1,3}\s*(,\s*\d{1,3}\s*)*$", re.ASCII)


def check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid("name", "must be a string")
    if not NAME_RE.fullmatch(value):
        raise invalid(
            "name",
            f"{_show(value)} is not a valid instance name: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit",
        )
    return value


def check_gpu_ids(value: Any) -> str:
    """``"0,1"`` (or a list of integers) → normalised ``"0,1"``; empty means no GPU."""
    if value is None:
        return ""
    if isinstance(value, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1000 for v in value):
            raise invalid("gpu_ids", "a list must hold GPU indexes (integers 0-999)")
        ids = [str(v) for v in value]
    elif isinstance(value, str):
        if value.strip() == "":
            return ""
        if not _GPU_LIST.fullmatch(value):
            raise invalid("gpu_ids", f"{_show(value)} is not a comma-separated list of GPU indexes like \"0,1\"")
        ids = [str(int(v)) for v in value.split(",")]
    else:
        raise invalid("gpu_ids", "must be a string like \"0,1\" or a list of integers")
    if len(set(ids)) != len(ids):
        raise invalid("gpu_ids", "lists a GPU twice")
    return ",".join(ids)


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def check_restart_policy(value: Any) -> str:
    if value not in RESTART_POLICIES:
        raise invalid("restart_policy", f"must be one of {', '.join(RESTART_POLICIES)}")
    return str(value)


def check_public_port(value: Any, pool: range) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid("public_port", "must be an integer port number or null")
    if value not in pool:
        where = f"{pool.start}-{pool.stop - 1}" if len(pool) else "empty (AIKORE_PUBLIC_PORTS)"
        raise AikoreError(
            "public_port_unavailable", f"public_port: {value} is outside the pool {where}", 409, field="public_port",
        )
    return value


def check_blueprint_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("blueprint", "must be a blueprint id string")
    return value


def _show(value: str) -> str:
    # Quote user input in messages, cut so a 10 MB name does not come back in the error.
    return repr(value if len(value) <= 80 else value[:77] + "...")
