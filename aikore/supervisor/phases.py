"""Install progress: the phase a starting instance's script reports, and why a phase failed.

A blueprint prints ``::aikore-phase NAME [FRACTION]`` lines (README, "Install progress"); the
instance's logwriter keeps the last one in ``logs/instance.phase.json``. Until the script reports
``launching`` the instance is installing, and its ready timeout does not run. When a start fails,
the phase it failed in is named with the cause found in that phase's own log lines, so a user
reads "cloning failed: could not resolve github.com" rather than an exit code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAUNCHING = "launching"
MARKER = "::aikore-phase"
# The log lines a failure's cause is looked for in (those of the failing phase among them).
CAUSE_LINES = 200
_CAUSE_MAX = 300
_CAUSES_KEPT = 3
_RESOLVE = re.compile(r"could not resolve (?:host:?\s*)?['\"]?([\w.-]+)", re.IGNORECASE)
# Lines that say what went wrong, as git, uv, pip, Python, curl and the blueprint library write them.
_ERROR = re.compile(
    r"^\s*(?:\[aikore\] error:|fatal:|error:|Error:|ERROR:?|E:|\u00d7|\u2570\u2500\u25b6|Caused by:|cause:|"
    r"curl: \(\d+\)|"
    r"[A-Za-z_][\w.]*(?:Error|Exception|Exit):|npm ERR!)\s*",
)
_FRAME = re.compile(r"^=====.*=====$")


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a start is: the phase its script reported last, and since when (Unix times)."""

    phase: str
    fraction: float | None
    since: float
    started: float

    @property
    def installing(self) -> bool:
        """Still installing (not yet launching the app): the ready timeout waits."""
        return self.phase != LAUNCHING

    @property
    def label(self) -> str:
        return self.phase.replace("-", " ")

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "fraction": self.fraction,
            "installing": self.installing,
            "since": self.since,
            "started": self.started,
        }


def read_progress(path: Path, pid: int) -> Progress | None:
    """The phase the logwriter ``pid`` recorded (None: no phase reported, or the file is another launch's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pid") != pid or not isinstance(data.get("phase"), str):
        return None
    fraction = data.get("fraction")
    try:
        return Progress(
            phase=data["phase"],
            fraction=min(max(float(fraction), 0.0), 1.0) if isinstance(fraction, int | float) else None,
            since=float(data.get("since", 0.0)),
            started=float(data.get("started", 0.0)),
        )
    except (TypeError, ValueError):
        return None


def failure_cause(lines: list[str]) -> str | None:
    """The meaningful last error lines of the failing phase (the lines after its marker), in a line."""
    marker = max((i for i, line in enumerate(lines) if line.lstrip("\r").startswith(MARKER)), default=-1)
    own = [line.rsplit("\r", 1)[-1].strip() for line in lines[marker + 1:]]
    own = [line for line in own if line and not _FRAME.match(line) and not line.startswith(MARKER)]
    for line in reversed(own):
        if found := _RESOLVE.search(line):
            return f"could not resolve {found.group(1)}"
    errors = [_ERROR.sub(_keep_exception_name, line, count=1) for line in own if _ERROR.match(line)]
    errors = [line for line in errors if line]
    if errors:
        return _short(" — ".join(_dedupe(errors[-_CAUSES_KEPT:])))
    return _short(own[-1]) if own else None


def _keep_exception_name(found: re.Match[str]) -> str:
    # "ModuleNotFoundError: x" keeps its name; "fatal: x", "error: x" and uv's cross lose the prefix.
    text = found.group(0).strip()
    return f"{text} " if text.endswith(("Error:", "Exception:", "Exit:")) else ""


def _dedupe(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _short(text: str) -> str:
    return text if len(text) <= _CAUSE_MAX else text[: _CAUSE_MAX - 1] + "…"
