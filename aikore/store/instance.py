"""An instance: one configured WebUI, as stored in the database."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Instance:
    id: int
    name: str
    blueprint: str
    gpu_ids: str = ""
    autostart: bool = False
    persistent_mode: bool = False
    status: str = "stopped"
    pid: int | None = None
    pid_create_time: float | None = None
    port: int | None = None
    public_port: int | None = None
    persistent_port: int | None = None
    exit_code: int | None = None
    restart_policy: str = "never"
    status_message: str | None = None
    created_at: str = ""
    updated_at: str = ""
    # Persistent mode: the desktop's screen (WIDTHxHEIGHT) and frame-rate cap.
    desktop_resolution: str = "1920x1080"
    desktop_fps: int = 30

    def replace(self, **changes: Any) -> Instance:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The stored fields in API form; the API adds url and live figures on top."""
        data = dataclasses.asdict(self)
        data.pop("pid_create_time")
        return data


FIELDS = tuple(f.name for f in dataclasses.fields(Instance))
