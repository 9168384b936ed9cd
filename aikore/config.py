"""Settings: every knob AiKore has, from CLI flags and ``AIKORE_*`` environment variables.

A flag beats its environment variable, which beats the default. The environ is injectable so
tests never touch ``os.environ``; errors name both the setting and the bad value.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

AUTH_MODES = ("token", "password", "none")


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
    auth: str = "token"
    password: str | None = field(default=None, repr=False)
    models_dir: Path | None = None
    stop_timeout: float = 10.0
    # First starts of real WebUIs install gigabytes of packages before they listen, hence the hour.
    ready_timeout: float = 3600.0
    monitor_interval: float = 1.0
    session_ttl: float = 7 * 24 * 3600.0
    trusted_proxies: tuple[str, ...] = ()
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5

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
        def pick(name: str, env_key: str) -> str | None:
            value = getattr(args, name)
            return value if value is not None else env.get(env_key)

        auth = "none" if args.no_auth else (env.get("AIKORE_AUTH") or "").strip().lower()
        password = env.get("AIKORE_PASSWORD") or None
        if not auth:
            auth = "password" if password else "token"
        if auth not in AUTH_MODES:
            raise ConfigError(f"AIKORE_AUTH must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if auth == "password" and not password:
            raise ConfigError("AIKORE_AUTH=password needs AIKORE_PASSWORD to be set")

        values: dict[str, object] = {"auth": auth, "password": password}
        values["host"] = pick("host", "AIKORE_HOST") or cls.host
        values["port"] = _port("AIKORE_PORT", pick("port", "AIKORE_PORT"), cls.port)
        values["data_dir"] = Path(pick("data_dir", "AIKORE_DATA_DIR") or cls.data_dir)
        bp = pick("blueprints_dir", "AIKORE_BLUEPRINTS_DIR")
        values["blueprints_dir"] = Path(bp) if bp else None
        models = pick("models_dir", "AIKORE_MODELS_DIR")
        values["models_dir"] = Path(models) if models else None
        values["public_ports"] = parse_port_range(
            "AIKORE_PUBLIC_PORTS", pick("public_ports", "AIKORE_PUBLIC_PORTS") or "19001-19020"
        )
        token = pick("token", "AIKORE_TOKEN")
        values["token"] = token.strip() if token and token.strip() else None
        values["stop_timeout"] = _positive("AIKORE_STOP_TIMEOUT", pick("stop_timeout", "AIKORE_STOP_TIMEOUT"), 10.0)
        values["ready_timeout"] = _positive(
            "AIKORE_READY_TIMEOUT", pick("ready_timeout", "AIKORE_READY_TIMEOUT"), 3600.0
        )
        values["monitor_interval"] = _positive(
            "AIKORE_MONITOR_INTERVAL", pick("monitor_interval", "AIKORE_MONITOR_INTERVAL"), 1.0
        )
        values["session_ttl"] = _positive("AIKORE_SESSION_TTL", pick("session_ttl", "AIKORE_SESSION_TTL"), 604800.0)
        proxies = pick("trusted_proxies", "AIKORE_TRUSTED_PROXIES") or ""
        values["trusted_proxies"] = _networks("AIKORE_TRUSTED_PROXIES", proxies)
        values["log_max_bytes"] = int(
            _positive("AIKORE_LOG_MAX_BYTES", pick("log_max_bytes", "AIKORE_LOG_MAX_BYTES"), 10 * 1024 * 1024)
        )
        values["log_backups"] = int(_positive("AIKORE_LOG_BACKUPS", pick("log_backups", "AIKORE_LOG_BACKUPS"), 5))
        return cls(**values)  # type: ignore[arg-type]


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


def _networks(key: str, text: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks, each checked so a typo fails at startup."""
    entries = tuple(p.strip() for p in text.split(",") if p.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"{key} entries must be IP addresses or networks, got {entry!r}") from None
    return entries


def _port(key: str, text: str | None, default: int) -> int:
    if text is None or str(text).strip() == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{key} must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{key} must be within 0-65535, got {text!r}")
    return value


def _positive(key: str, text: str | float | None, default: float) -> float:
    if text is None or str(text).strip() == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{key} must be greater than 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``aikore`` command line; every flag names the environment variable behind it."""
    p = argparse.ArgumentParser(
        prog="aikore",
        description="AiKore: run AI WebUIs on a GPU box from one browser dashboard.",
        epilog="Every flag can also be set with the environment variable shown; the flag wins.",
    )
    add = p.add_argument
    add("--host", help="address to listen on (AIKORE_HOST, default 127.0.0.1)")
    add("--port", help="dashboard/API/proxy port (AIKORE_PORT, default 9000)")
    add("--data-dir", dest="data_dir", help="where aikore.db, instances/, models/ and token live "
        "(AIKORE_DATA_DIR, default ./aikore-data)")
    add("--blueprints-dir", dest="blueprints_dir", help="extra blueprint scripts "
        "(AIKORE_BLUEPRINTS_DIR, default <data>/blueprints)")
    add("--models-dir", dest="models_dir", help="shared model folders for all instances "
        "(AIKORE_MODELS_DIR, default <data>/models)")
    add("--public-ports", dest="public_ports", help="pool of per-instance public ports, inclusive range "
        "(AIKORE_PUBLIC_PORTS, default 19001-19020)")
    add("--token", help="login token (AIKORE_TOKEN; default: generated once and kept in <data>/token)")
    add("--no-auth", dest="no_auth", action="store_true", default=False,
        help="turn authentication off, for trusted setups only (AIKORE_AUTH=none). "
        "Password mode: set AIKORE_PASSWORD (and optionally AIKORE_AUTH=password)")
    add("--stop-timeout", dest="stop_timeout", help="seconds between SIGTERM and SIGKILL when stopping an "
        "instance (AIKORE_STOP_TIMEOUT, default 10)")
    add("--ready-timeout", dest="ready_timeout", help="seconds an instance may take to answer its health "
        "path before it is marked error (AIKORE_READY_TIMEOUT, default 3600)")
    add("--monitor-interval", dest="monitor_interval", help="seconds between system/GPU samples "
        "(AIKORE_MONITOR_INTERVAL, default 1)")
    add("--session-ttl", dest="session_ttl", help="seconds a browser login stays valid "
        "(AIKORE_SESSION_TTL, default 604800 = 7 days)")
    add("--trusted-proxies", dest="trusted_proxies", help="comma-separated addresses of reverse proxies "
        "whose X-Forwarded-For is believed (AIKORE_TRUSTED_PROXIES, default none)")
    add("--log-max-bytes", dest="log_max_bytes", help="rotate an instance log at this size "
        "(AIKORE_LOG_MAX_BYTES, default 10485760)")
    add("--log-backups", dest="log_backups", help="rotated log files kept per instance "
        "(AIKORE_LOG_BACKUPS, default 5)")
    return p
