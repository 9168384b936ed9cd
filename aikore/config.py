"""Settings: every knob AiKore has, from CLI flags and ``AIKORE_*`` environment variables.

A flag beats its environment variable, which beats the default. The environ is injectable so
tests never touch ``os.environ``; errors name both the setting and the bad value.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

AUTH_MODES = ("token", "password", "none")
# Seconds between monitor samples: faster costs CPU for nothing a person can see, slower makes the
# live view useless. The monitor and its API enforce the same bounds.
MONITOR_INTERVAL_MIN = 0.25
MONITOR_INTERVAL_MAX = 60.0
# What --trusted-proxies entries become once parsed.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting has a value AiKore cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: Path = Path("aikore-data")
    blueprints_dir: Path | None = None
    public_ports: range = range(19001, 19021)
    token: str | None = None
    # Where --token-file read the token from (the token itself is in ``token``).
    token_file: Path | None = None
    auth: str = "token"
    password: str | None = field(default=None, repr=False)
    models_dir: Path | None = None
    stop_timeout: float = 10.0
    # First starts of real WebUIs install gigabytes of packages before they listen, hence the hour.
    ready_timeout: float = 3600.0
    monitor_interval: float = 1.0
    session_ttl: float = 7 * 24 * 3600.0
    trusted_proxies: tuple[str, ...] = ()
    # Host names allowed besides the defaults (loopback names, this machine's names, IP addresses).
    allowed_hosts: tuple[str, ...] = ()
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    # App updates: snapshots (app commit + exact package set) kept per instance for a rollback.
    keep_snapshots: int = 3
    # Instances may run as batch jobs on a Slurm cluster's partitions (this machine a Slurm client).
    slurm: bool = False

    def __post_init__(self) -> None:
        # Resolve derived paths once so every module sees the same absolute locations.
        data = self.data_dir.expanduser().resolve()
        object.__setattr__(self, "data_dir", data)
        bp = self.blueprints_dir or data / "blueprints"
        object.__setattr__(self, "blueprints_dir", bp.expanduser().resolve())
        models = self.models_dir or data / "models"
        object.__setattr__(self, "models_dir", models.expanduser().resolve())

    @property
    def db_path(self) -> Path:
        return self.data_dir / "aikore.db"

    @property
    def instances_dir(self) -> Path:
        return self.data_dir / "instances"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "token"

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse CLI flags with ``AIKORE_*`` environment variables as defaults."""
        env = os.environ if environ is None else environ
        args = build_parser().parse_args(argv)
        return cls.from_namespace(args, env)

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
        auth = "none" if args.no_auth else (env.get("AIKORE_AUTH") or "").strip().lower()
        password = env.get("AIKORE_PASSWORD") or None
        if not auth:
            auth = "password" if password else "token"
        if auth not in AUTH_MODES:
            raise ConfigError(f"AIKORE_AUTH must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if auth == "password" and not password:
            raise ConfigError("AIKORE_AUTH=password needs AIKORE_PASSWORD to be set")

        slurm_env = (env.get("AIKORE_SLURM") or "").strip().lower()
        if slurm_env not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ConfigError(f"AIKORE_SLURM must be 1 or 0, got {slurm_env!r}")
        slurm = bool(args.slurm) or slurm_env in ("1", "true", "yes")
        values: dict[str, object] = {"auth": auth, "password": password, "slurm": slurm}
        for option in OPTIONS:
            flag_value = getattr(args, option.field)
            text = flag_value if flag_value is not None else env.get(option.env)
            # Unset or blank keeps the dataclass default.
            if text is not None and text.strip() != "":
                values[option.field] = option.parse(option.env, text.strip())
        if "token_file" in values:
            if "token" in values:
                raise ConfigError("give the token once: --token/AIKORE_TOKEN or --token-file/AIKORE_TOKEN_FILE")
            values["token"] = read_token_file("AIKORE_TOKEN_FILE", values["token_file"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


def read_token_file(key: str, path: Path) -> str:
    """The token kept in ``path`` (its first line); a missing, unreadable or empty file names itself."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read the token from {str(path)!r}: {exc}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ConfigError(f"{key}: {str(path)!r} holds no token")
    return token


@dataclass(frozen=True)
class Option:
    """One setting: its flag, its environment variable, how its text is read, and its help."""

    field: str
    env: str
    parse: Callable[[str, str], object]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")


def parse_port_range(key: str, text: str) -> range:
    """``"19001-19020"`` (inclusive) or a single ``"19001"`` → ``range``; empty means no pool."""
    text = text.strip()
    if text in ("", "none"):
        return range(0)
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if sep else lo
    except ValueError:
        raise ConfigError(f"{key} must look like 19001-19020, got {text!r}") from None
    if not (1 <= lo <= hi <= 65535):
        raise ConfigError(f"{key} must be an ascending range within 1-65535, got {text!r}")
    return range(lo, hi + 1)


def parse_networks(key: str, entries: Iterable[str]) -> tuple[Network, ...]:
    """``("10.0.0.1", "172.16.0.0/12")`` → networks; a bad entry fails naming ``key`` and itself."""
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{key} entries must be IP addresses or networks, got {entry!r}") from None
    return tuple(networks)


def _networks(key: str, text: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks, each checked so a typo fails at startup."""
    entries = tuple(p.strip() for p in text.split(",") if p.strip())
    parse_networks(key, entries)
    return entries


def _text(key: str, text: str) -> str:
    return text


def _host_names(key: str, text: str) -> tuple[str, ...]:
    """Comma-separated host names (``.example.com`` also allows its subdomains, ``*`` any name)."""
    entries = tuple(p.strip().lower().rstrip(".") for p in text.split(",") if p.strip())
    for entry in entries:
        name = entry.removeprefix(".")
        bracketed = name.startswith("[") and name.endswith("]")
        if entry != "*" and (not name or (":" in name and not bracketed) or not _HOST_CHARS.issuperset(name)):
            raise ConfigError(f"{key} entries must be host names or addresses without a port, got {entry!r}")
    return entries


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_[]:")


def _path(key: str, text: str) -> Path:
    return Path(text)


def _port(key: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{key} must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key} must be within 0-65535, got {text!r}")
    return value


def _positive(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"{key} must be greater than 0, got {text!r}")
    return value


def _monitor_interval(key: str, text: str) -> float:
    value = _positive(key, text)
    if not MONITOR_INTERVAL_MIN <= value <= MONITOR_INTERVAL_MAX:
        raise ConfigError(f"{key} must be within {MONITOR_INTERVAL_MIN}-{MONITOR_INTERVAL_MAX} seconds, got {text!r}")
    return value


def _positive_int(key: str, text: str) -> int:
    value = _positive(key, text)
    if value != int(value):
        raise ConfigError(f"{key} must be a whole number, got {text!r}")
    return int(value)


OPTIONS: tuple[Option, ...] = (
    Option("host", "AIKORE_HOST", _text, "address to listen on (default 127.0.0.1)"),
    Option("port", "AIKORE_PORT", _port, "dashboard/API/proxy port (default 9000)"),
    Option(
        "data_dir",
        "AIKORE_DATA_DIR",
        _path,
        "where aikore.db, instances/, models/ and token live (default ./aikore-data)",
    ),
    Option("blueprints_dir", "AIKORE_BLUEPRINTS_DIR", _path, "extra blueprint scripts (default <data>/blueprints)"),
    Option("models_dir", "AIKORE_MODELS_DIR", _path, "shared model folders for all instances (default <data>/models)"),
    Option(
        "public_ports",
        "AIKORE_PUBLIC_PORTS",
        parse_port_range,
        "pool of per-instance public ports, inclusive range (default 19001-19020)",
    ),
    Option(
        "token",
        "AIKORE_TOKEN",
        _text,
        "login token (default: generated once and kept in <data>/token). A flag's value is visible to every "
        "local user in the process list: prefer AIKORE_TOKEN or --token-file, which keep it private",
    ),
    Option(
        "token_file",
        "AIKORE_TOKEN_FILE",
        _path,
        "read the login token from this file (first line), e.g. a Docker secret; kept out of the process list",
    ),
    Option(
        "stop_timeout",
        "AIKORE_STOP_TIMEOUT",
        _positive,
        "seconds between SIGTERM and SIGKILL when stopping an instance (default 10)",
    ),
    Option(
        "ready_timeout",
        "AIKORE_READY_TIMEOUT",
        _positive,
        "seconds an instance may take to answer its health path, counted from its script's launching phase, "
        "before it is marked error (default 3600)",
    ),
    Option(
        "monitor_interval",
        "AIKORE_MONITOR_INTERVAL",
        _monitor_interval,
        f"seconds between system/GPU samples, {MONITOR_INTERVAL_MIN}-{MONITOR_INTERVAL_MAX} (default 1)",
    ),
    Option(
        "session_ttl", "AIKORE_SESSION_TTL", _positive, "seconds a browser login stays valid (default 604800 = 7 days)"
    ),
    Option(
        "trusted_proxies",
        "AIKORE_TRUSTED_PROXIES",
        _networks,
        "comma-separated addresses or networks of reverse proxies whose X-Forwarded-* is believed (default none)",
    ),
    Option(
        "allowed_hosts",
        "AIKORE_ALLOWED_HOSTS",
        _host_names,
        "comma-separated host names browsers may use for AiKore besides loopback names, this machine's names "
        "and IP addresses (.example.com: its subdomains too; *: any); requests that change state under any "
        "other Host or Origin are refused (DNS rebinding)",
    ),
    Option(
        "log_max_bytes", "AIKORE_LOG_MAX_BYTES", _positive_int, "rotate an instance log at this size (default 10485760)"
    ),
    Option("log_backups", "AIKORE_LOG_BACKUPS", _positive_int, "rotated log files kept per instance (default 5)"),
    Option(
        "keep_snapshots",
        "AIKORE_KEEP_SNAPSHOTS",
        _positive_int,
        "app-update snapshots (commit + package set) kept per instance for a rollback (default 3)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``aikore`` command line; every flag names the environment variable behind it."""
    parser = argparse.ArgumentParser(
        prog="aikore",
        description="AiKore: run AI WebUIs on a GPU box from one browser dashboard.",
        epilog="Every flag can also be set with the environment variable shown; the flag wins. "
        "Password login instead of the token: set AIKORE_PASSWORD (and optionally AIKORE_AUTH=password).",
    )
    for option in OPTIONS:
        parser.add_argument(option.flag, dest=option.field, help=f"{option.help} [{option.env}]")
    parser.add_argument(
        "--no-auth",
        dest="no_auth",
        action="store_true",
        default=False,
        help="turn authentication off, for trusted setups only [AIKORE_AUTH=none]",
    )
    parser.add_argument(
        "--slurm",
        dest="slurm",
        action="store_true",
        default=False,
        help="let instances run as batch jobs on this Slurm cluster's partitions (needs the Slurm client "
        "commands and a data dir the nodes share) [AIKORE_SLURM=1]",
    )
    return parser


# The application's settings; a leaf key every package may read.
SETTINGS = web.AppKey("settings", Settings)
