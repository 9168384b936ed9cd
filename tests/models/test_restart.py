"""A real aikore stopped in the middle of a download resumes it at its next start."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import AikoreProcess, wait_until
from tests.models.fileserver import FileServer, sha256


def test_a_download_interrupted_by_a_restart_resumes_from_its_part(
    aikore_process: Callable[..., AikoreProcess], files: FileServer, tmp_path: Path
) -> None:
    files.slow_pause = 0.03
    data = files.add("big.safetensors", 6 * 1024 * 1024)
    aikore = aikore_process()
    part = tmp_path / "data" / "models" / "checkpoints" / "big.safetensors.part"
    body = {"url": f"{files.base}/slow/big.safetensors", "kind": "checkpoints", "sha256": sha256(data)}
    resp = aikore.request("POST", "/api/models/downloads", body)
    assert resp.status == 202, resp.body
    download_id = json.loads(resp.body)["id"]
    wait_until(lambda: part.exists() and part.stat().st_size > 1024 * 1024, 60, what="a part of the download")

    assert aikore.stop() == 0
    kept = part.stat().st_size
    assert 0 < kept < len(data)

    restarted = aikore_process(port=aikore.port)

    def finished() -> dict | None:
        found = json.loads(restarted.request("GET", f"/api/models/downloads/{download_id}").body)
        return found if found["state"] in ("done", "failed") else None

    done = wait_until(finished, 120, what="the resumed download to end")
    assert done["state"] == "done", done
    assert (tmp_path / "data" / "models" / "checkpoints" / "big.safetensors").read_bytes() == data
    assert not part.exists()
    resumed_from = [int(r.removeprefix("bytes=").rstrip("-")) for r in files.ranges if r]
    assert resumed_from == [kept], (resumed_from, kept)
