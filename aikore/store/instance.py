"""An instance: one configured WebUI, as stored in the database, with one declaration per field.

Each field of ``Instance`` carries a ``Setting`` in its metadata: its JSON schema, the check that
turns client input into a stored value, and whether a client may set it at creation, change it
later, and change it while the instance runs. The API's validation, the OpenAPI schemas and the
constants the dashboard needs are all derived from these declarations, so adding a field means
one line here (and a migration), not edits in five places.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aikore.store import validation as v

STATUSES = ("stopped", "starting", "running", "stopping", "error")


@dataclass(frozen=True)
class Rules:
    """What some checks need to know of this AiKore (the public port pool)."""

    public_ports: range = range(0)
    # The Slurm partitions instances may choose (None: Slurm is not enabled).
    partitions: frozenset[str] | None = None


Check = Callable[[Any, Rules], Any]


@dataclass(frozen=True)
class Setting:
    """How the API treats one instance field."""

    schema: Mapping[str, Any]
    # Client input -> stored value, raising a 4xx AikoreError naming the field. None: AiKore sets it.
    check: Check | None = None
    # What a create without this field checks (and so stores).
    default: Any = None
    create: bool = False
    patch: bool = False
    # Changeable while the process runs: it only matters at the next start or crash.
    live: bool = False
    # A change made while it runs applies at its next start (the dashboard says so); live fields
    # without it apply at once (autostart, restart policy).
    restart: bool = False
    required: bool = False
    # The input schema, where it differs from what the API returns.
    input_schema: Mapping[str, Any] | None = None
    # Hidden fields exist only inside AiKore (process identity for re-adoption).
    hidden: bool = False


def _setting(**kwargs: Any) -> dict[str, Setting]:
    return {"api": Setting(**kwargs)}


_NAME = {"type": "string", "pattern": v.NAME_RE.pattern}
_NULL_INT = {"type": ["integer", "null"]}
_RESOLUTION = {
    "type": "string",
    "pattern": "^[0-9]{3,5}x[0-9]{3,5}$",
    "description": "Persistent mode: the desktop screen, WIDTHxHEIGHT (even sides); used from the next start",
}
_LAUNCH_ARGS = {
    "type": "array",
    "maxItems": v.MAX_LAUNCH_ARGS,
    "items": {"type": "string", "maxLength": v.MAX_ARG_LENGTH, "pattern": "^[^\\n\\r\\u0000]*$"},
    "description": "Extra arguments the app is launched with, each one argument (spaces included); "
    "applies at the next start",
}
_ENV = {
    "type": "object",
    "maxProperties": v.MAX_ENV_VARS,
    "propertyNames": {"pattern": v.ENV_NAME_RE.pattern},
    "additionalProperties": {"type": "string", "maxLength": v.MAX_ENV_VALUE},
    "description": "Extra environment variables for the script and the app (not the blueprint contract's own); "
    "applies at the next start",
}
_FPS = {
    "type": "integer",
    "minimum": 1,
    "maximum": v.MAX_FPS,
    "description": "Persistent mode: the desktop stream's frame-rate cap; takes effect at the next start",
}


@dataclass(frozen=True)
class Instance:
    id: int = field(metadata=_setting(schema={"type": "integer"}))
    name: str = field(metadata=_setting(schema=_NAME, check=lambda x, r: v.check_name(x), create=True, patch=True,
                                        required=True))
    blueprint: str = field(metadata=_setting(schema={"type": "string"}, check=lambda x, r: v.check_blueprint_id(x),
                                             create=True, required=True))
    gpu_ids: str = field(default="", metadata=_setting(
        schema={"type": "string", "description": 'Comma-separated GPU indexes, e.g. "0,1"; empty for none'},
        input_schema={"type": ["string", "null"], "pattern": "^\\s*(\\d{1,3}\\s*(,\\s*\\d{1,3}\\s*)*)?$"},
        check=lambda x, r: v.check_gpu_ids(x), create=True, patch=True))
    autostart: bool = field(default=False, metadata=_setting(
        schema={"type": "boolean"}, check=lambda x, r: v.check_bool("autostart", x), default=False,
        create=True, patch=True, live=True))
    persistent_mode: bool = field(default=False, metadata=_setting(
        schema={"type": "boolean"}, check=lambda x, r: v.check_bool("persistent_mode", x), default=False,
        create=True, patch=True))
    status: str = field(default="stopped", metadata=_setting(schema={"type": "string", "enum": list(STATUSES)}))
    pid: int | None = field(default=None, metadata=_setting(schema=_NULL_INT))
    pid_create_time: float | None = field(default=None, metadata=_setting(schema={}, hidden=True))
    port: int | None = field(default=None, metadata=_setting(
        schema={**_NULL_INT, "description": "Internal port the app listens on (WEBUI_PORT)"}))
    public_port: int | None = field(default=None, metadata=_setting(
        schema=_NULL_INT, check=lambda x, r: v.check_public_port(x, r.public_ports), create=True, patch=True))
    persistent_port: int | None = field(default=None, metadata=_setting(schema=_NULL_INT))
    exit_code: int | None = field(default=None, metadata=_setting(schema=_NULL_INT))
    restart_policy: str = field(default="never", metadata=_setting(
        schema={"type": "string", "enum": list(v.RESTART_POLICIES)}, check=lambda x, r: v.check_restart_policy(x),
        default="never", create=True, patch=True, live=True))
    status_message: str | None = field(default=None, metadata=_setting(schema={"type": ["string", "null"]}))
    created_at: str = field(default="", metadata=_setting(schema={"type": "string"}))
    updated_at: str = field(default="", metadata=_setting(schema={"type": "string"}))
    # Persistent mode: the desktop's screen (WIDTHxHEIGHT) and frame-rate cap.
    desktop_resolution: str = field(default=v.DEFAULT_RESOLUTION, metadata=_setting(
        schema=_RESOLUTION, check=lambda x, r: v.check_resolution(x), create=True, patch=True, live=True,
        restart=True))
    desktop_fps: int = field(default=v.DEFAULT_FPS, metadata=_setting(
        schema=_FPS, check=lambda x, r: v.check_fps(x), create=True, patch=True, live=True, restart=True))
    # Satellites: set once, by POST /api/instances/{id}/satellites; never by a create or a PATCH.
    parent_id: int | None = field(default=None, metadata=_setting(schema={
        **_NULL_INT, "description": "A satellite's parent: the instance whose app and environment it runs"}))

    # Where it runs: null on this machine, else a Slurm partition, with the job's GPUs (gres), node,
    # time limit and account. Used from the next start.
    slurm_partition: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": "Slurm partition to run on as a batch job; null: this "
                "machine (needs --slurm)"},
        check=lambda x, r: v.check_partition(x, r.partitions), create=True, patch=True))
    slurm_gpus: int = field(default=0, metadata=_setting(
        schema={"type": "integer", "minimum": 0, "maximum": v.MAX_SLURM_GPUS,
                "description": "GPUs the Slurm job asks for (--gres=gpu:N)"},
        check=lambda x, r: v.check_slurm_gpus(x), default=0, create=True, patch=True))
    slurm_node: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": "Node the Slurm job must run on (--nodelist); null: any"},
        check=lambda x, r: v.check_slurm_name("slurm_node", x), create=True, patch=True))
    slurm_time_limit: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": 'Slurm time limit (--time), e.g. "4:00:00"'},
        check=lambda x, r: v.check_slurm_time(x), create=True, patch=True))
    slurm_account: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": "Slurm account charged (--account)"},
        check=lambda x, r: v.check_slurm_name("slurm_account", x), create=True, patch=True))
    # Where a Slurm launch runs: its job, and the node and address the proxy forwards to.
    slurm_job_id: int | None = field(default=None, metadata=_setting(schema=_NULL_INT))
    node: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": "Cluster node the instance runs on (Slurm)"}))
    node_address: str | None = field(default=None, metadata=_setting(
        schema={"type": ["string", "null"], "description": "Address of that node; the app listens on it at port"}))
    # Stored as JSON text (store/db.py); passed to the script as AIKORE_LAUNCH_ARGS and its environment.
    launch_args: tuple[str, ...] = field(default=(), metadata=_setting(
        schema=_LAUNCH_ARGS, input_schema={**_LAUNCH_ARGS, "type": ["array", "null"]},
        check=lambda x, r: v.check_launch_args(x), create=True, patch=True, live=True, restart=True))
    env: Mapping[str, str] = field(default_factory=dict, metadata=_setting(
        schema=_ENV, input_schema={**_ENV, "type": ["object", "null"]},
        check=lambda x, r: v.check_env(x), create=True, patch=True, live=True, restart=True))

    def replace(self, **changes: Any) -> Instance:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The stored fields in API form; the API adds url and live figures on top."""
        return {name: _plain(getattr(self, name)) for name, _ in _visible()}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


FIELDS = tuple(f.name for f in dataclasses.fields(Instance))


def settings() -> Iterator[tuple[str, Setting]]:
    """Every field with its declaration, in declaration order."""
    for f in dataclasses.fields(Instance):
        yield f.name, f.metadata["api"]


def _visible() -> Iterator[tuple[str, Setting]]:
    return ((name, s) for name, s in settings() if not s.hidden)


CREATE_FIELDS = frozenset(name for name, s in settings() if s.create)
PATCH_FIELDS = frozenset(name for name, s in settings() if s.patch)
LIVE_FIELDS = frozenset(name for name, s in settings() if s.live)
RESTART_FIELDS = frozenset(name for name, s in settings() if s.restart)


def validate_create(data: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    """A create body -> the fields to store; unknown fields and bad values are 4xx errors."""
    v.reject_unknown(data, CREATE_FIELDS)
    return {name: s.check(data.get(name, s.default), rules) for name, s in settings() if s.create and s.check}


def validate_patch(data: Mapping[str, Any], rules: Rules) -> dict[str, Any]:
    """A PATCH body -> the checked changes (only the fields it names)."""
    v.reject_unknown(data, PATCH_FIELDS)
    return {name: s.check(data[name], rules) for name, s in settings() if s.patch and s.check and name in data}


def instance_schema(extra: Mapping[str, Any], required_extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI schema of the Instance the API returns: stored fields plus ``extra`` ones."""
    properties = {name: dict(s.schema) for name, s in _visible()}
    required = ["id", "name", "blueprint", "gpu_ids", "autostart", "persistent_mode", "status", *required_extra]
    return {"type": "object", "required": required, "properties": {**properties, **extra}}


def input_schema(patch: bool) -> dict[str, Any]:
    """The OpenAPI schema of a create (``patch=False``) or PATCH body."""
    chosen = [(name, s) for name, s in settings() if (s.patch if patch else s.create)]
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: dict(s.input_schema or s.schema) for name, s in chosen},
    }
    required = [name for name, s in chosen if s.required and not patch]
    if required:
        schema["required"] = required
    return schema


def dashboard_constants() -> dict[str, Any]:
    """What the dashboard needs to know of the fields (served to it, never copied into JavaScript)."""
    return {
        "create_fields": sorted(CREATE_FIELDS),
        "patch_fields": sorted(PATCH_FIELDS),
        "live_fields": sorted(LIVE_FIELDS),
        "restart_fields": sorted(RESTART_FIELDS),
        "restart_policies": list(v.RESTART_POLICIES),
        "name_pattern": v.NAME_RE.pattern,
    }
