"""What the model library publishes on the event bus (domain objects; JSON is made at the API edge)."""

from __future__ import annotations

from dataclasses import dataclass

from aikore.models.download import Download


@dataclass(frozen=True)
class DownloadChanged:
    """A download was added, moved on, progressed, finished, failed or was cancelled."""

    download: Download


@dataclass(frozen=True)
class DownloadRemoved:
    download_id: str


@dataclass(frozen=True)
class ModelsChanged:
    """Files of ``kind`` changed (a download finished, a rename, a move, a delete)."""

    kind: str
