"""Checks on client input; each failure names the field and says what was wrong."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from aikore.errors import AikoreError, invalid

# fullmatch, not match: "$" also matches before a trailing newline ("name\n" would pass).
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
RESTART_POLICIES = ("never", "on-failure")
# Persistent mode's desktop: sizes Xvfb and the encoders accept are even numbers (4:2:0 video),
# up to the 8K Xvfb allows; the frame rate is a cap the stream's client may lower.
DEFAULT_RESOLUTION = "1920x1080"
DEFAULT_FPS = 30
MAX_FPS = 120
_RESOLUTION = re.compile(r"^(\d{3,5})x(\d{3,5})$")
_MIN_SIDE, _MAX_SIDE = 320, 7680
# ASCII: Python's \d also matches other scripts' digits (U+0661), which the documented pattern does not.
_GPU_LIST = re.compile(r"^\s*\d{1,3}\s*(,\s*\d{1,3}\s*)*$", re.ASCII)
# Launch arguments reach the script as one line each (AIKORE_LAUNCH_ARGS), so none holds a line break.
MAX_LAUNCH_ARGS = 200
MAX_ARG_LENGTH = 4096
MAX_ENV_VARS = 200
MAX_ENV_VALUE = 32 * 1024
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# What AiKore itself gives every instance (the blueprint contract, its launch marker, its login
# secrets): an extra variable of the same name would be overridden, or must never be passed on.
RESERVED_ENV = frozenset({
    "WEBUI_PORT", "WEBUI_HOST", "INSTANCE_NAME", "INSTANCE_ID", "INSTANCE_CONF_DIR", "INSTANCE_OUTPUT_DIR",
    "AIKORE_ROOT_PATH", "GRADIO_ROOT_PATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "AIKORE_DATA_DIR",
    "AIKORE_MODELS_DIR", "AIKORE_REBUILD_ENV", "AIKORE_PYTHON", "AIKORE_LAUNCH_ARGS", "AIKORE_LAUNCH_ID",
    "AIKORE_OWN_CONF_DIR", "AIKORE_SATELLITE_OF",
    "AIKORE_TOKEN", "AIKORE_PASSWORD",
})


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


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` → (1920, 1080); ValueError for anything else."""
    match = _RESOLUTION.match(text)
    if match is None:
        raise ValueError(text)
    width, height = int(match[1]), int(match[2])
    if not (_MIN_SIDE <= width <= _MAX_SIDE and _MIN_SIDE <= height <= _MAX_SIDE) or width % 2 or height % 2:
        raise ValueError(text)
    return width, height


def check_resolution(value: Any) -> str:
    """API input check for ``desktop_resolution``."""
    if value is None:
        return DEFAULT_RESOLUTION
    if isinstance(value, str):
        try:
            width, height = parse_resolution(value.strip())
            return f"{width}x{height}"
        except ValueError:
            pass
    raise invalid(
        "desktop_resolution",
        f'must be WIDTHxHEIGHT with even sides from {_MIN_SIDE} to {_MAX_SIDE}, e.g. "{DEFAULT_RESOLUTION}"',
    )


def check_fps(value: Any) -> int:
    """API input check for ``desktop_fps``."""
    if value is None:
        return DEFAULT_FPS
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_FPS:
        return value
    raise AikoreError("invalid_field", f"desktop_fps: must be an integer from 1 to {MAX_FPS}", 400, field="desktop_fps")


# Slurm names (partitions, nodes, accounts) and time limits as sbatch takes them: "90" (minutes),
# "1:30:00", "2-00:00:00", "2-12".
SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", re.ASCII)
SLURM_TIME_RE = re.compile(r"^(\d{1,5}|\d{1,5}:\d{2}(:\d{2})?|\d{1,3}-\d{1,2}(:\d{2}(:\d{2})?)?)$", re.ASCII)
MAX_SLURM_GPUS = 64


def check_partition(value: Any, partitions: Collection[str] | None) -> str | None:
    """``slurm_partition``: null runs on this machine; else a partition ``sinfo`` lists (Slurm enabled)."""
    if value is None:
        return None
    if not isinstance(value, str) or not SLURM_NAME_RE.fullmatch(value):
        raise invalid("slurm_partition", "must be a Slurm partition name or null (this machine)")
    if partitions is None:
        raise AikoreError("slurm_disabled", "slurm_partition: Slurm is not enabled; start AiKore with --slurm "
                          "(AIKORE_SLURM=1)", 409, field="slurm_partition")
    if value not in partitions:
        known = ", ".join(sorted(partitions)) or "none"
        raise AikoreError("unknown_partition", f"slurm_partition: {_show(value)} is not a partition of the cluster "
                          f"(sinfo lists: {known})", 400, field="slurm_partition")
    return value


def check_slurm_name(field: str, value: Any) -> str | None:
    """A node or account name (null: Slurm chooses / the user's default account)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SLURM_NAME_RE.fullmatch(value):
        raise invalid(field, "must be a Slurm name (letters, digits, '.', '_', '-') or null")
    return value


def check_slurm_gpus(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SLURM_GPUS:
        return value
    raise invalid("slurm_gpus", f"must be an integer from 0 to {MAX_SLURM_GPUS} (the job's --gres=gpu:N)")


def check_slurm_time(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and SLURM_TIME_RE.fullmatch(value.strip()):
        return value.strip()
    raise invalid("slurm_time_limit", 'must be a Slurm time limit such as "90", "4:00:00" or "2-00:00:00", or null')


def check_launch_args(value: Any) -> tuple[str, ...]:
    """A list of arguments, each passed to the app as one argument (spaces and quotes included)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid("launch_args", "must be a list of strings, one per argument")
    if len(value) > MAX_LAUNCH_ARGS:
        raise invalid("launch_args", f"at most {MAX_LAUNCH_ARGS} arguments")
    for index, arg in enumerate(value):
        where = f"launch_args[{index}]"
        if not isinstance(arg, str):
            raise _invalid_at("launch_args", where, "must be a string")
        if len(arg) > MAX_ARG_LENGTH:
            raise _invalid_at("launch_args", where, f"longer than {MAX_ARG_LENGTH} characters")
        if any(c in arg for c in "\n\r\x00"):
            raise _invalid_at("launch_args", where, f"{_show(arg)} must not contain a line break or NUL")
    return tuple(value)


def check_env(value: Any) -> dict[str, str]:
    """Extra environment variables for the instance's script and app: ``{"NAME": "value"}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("env", 'must be an object of variables, e.g. {"HF_TOKEN": "..."}')
    if len(value) > MAX_ENV_VARS:
        raise invalid("env", f"at most {MAX_ENV_VARS} variables")
    for name, text in value.items():
        if not ENV_NAME_RE.fullmatch(name):
            raise invalid("env", f"{_show(name)} is not a variable name: letters, digits and '_', not starting "
                          "with a digit")
        if name in RESERVED_ENV:
            raise _invalid_at("env", f"env.{name}", "is set by AiKore itself; it cannot be changed here")
        if not isinstance(text, str):
            raise _invalid_at("env", f"env.{name}", "the value must be a string")
        if len(text) > MAX_ENV_VALUE or "\x00" in text:
            raise _invalid_at("env", f"env.{name}", f"the value must be under {MAX_ENV_VALUE} characters, without NUL")
    return dict(sorted(value.items()))


def reject_unknown(data: Mapping[str, Any], allowed: Collection[str]) -> None:
    """A 400 naming the fields a body has that ``allowed`` does not."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise AikoreError("unknown_field", f"unknown field(s) {shown}; allowed: {', '.join(sorted(allowed))}", 400)


def _invalid_at(field: str, where: str, message: str) -> AikoreError:
    """A 400 for one item of a list or object field: ``launch_args[2]: ...``, ``env.HOME: ...``."""
    return AikoreError("invalid_field", f"{where}: {message}", 400, field=field)


def _show(value: str) -> str:
    # Quote user input in messages, cut so a 10 MB name does not come back in the error.
    return repr(value if len(value) <= 80 else value[:77] + "...")
