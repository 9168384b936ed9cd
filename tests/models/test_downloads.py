"""Downloads against real loopback servers: complete, resumed, verified, refused, cancelled, queued."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from aikore.config import Settings
from tests.helpers import until
from tests.models.fileserver import CIVITAI_KEY, HF_TOKEN, FileServer, sha256


async def _add(client: TestClient, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/models/downloads", json=body)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def _finished(client: TestClient, download_id: str, within: float = 60) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        data = await (await client.get(f"/api/models/downloads/{download_id}")).json()
        return data if data["state"] in ("done", "failed", "cancelled") else None

    return await until(ended, within, what=f"download {download_id} to end")


def _kind_dir(settings: Settings, kind: str) -> Path:
    assert settings.models_dir is not None
    return settings.models_dir / kind


def _leftovers(settings: Settings, kind: str) -> list[str]:
    folder = _kind_dir(settings, kind)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_direct_download_lands_in_its_kind_with_checksum_and_source(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("model.safetensors", 3 * 1024 * 1024 + 17)
    url = f"{files.base}/files/model.safetensors"
    download = await _add(models_client, url=url, kind="checkpoints")
    assert download["filename"] == "model.safetensors"
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert done["sha256"] == sha256(data)
    assert (_kind_dir(settings, "checkpoints") / "model.safetensors").read_bytes() == data
    tree = await (await models_client.get("/api/models")).json()
    kind = next(k for k in tree["kinds"] if k["kind"] == "checkpoints")
    assert kind["count"] == 1 and kind["total_bytes"] == len(data)
    assert kind["files"][0] | {"modified": 0} == {
        "kind": "checkpoints",
        "path": "model.safetensors",
        "size_bytes": len(data),
        "modified": 0,
        "source": url,
        "sha256": sha256(data),
    }
    assert tree["disk"]["free_bytes"] > 0


async def test_a_dropped_connection_resumes_with_range_to_a_byte_identical_file(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("drop.bin", 2 * 1024 * 1024 + 3)
    download = await _add(models_client, url=f"{files.base}/drop/drop.bin", kind="loras", sha256=sha256(data))
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert (_kind_dir(settings, "loras") / "drop.bin").read_bytes() == data
    resumed = [r for r in files.ranges if r]
    assert resumed and int(resumed[0].removeprefix("bytes=").rstrip("-")) > 0, files.ranges
    assert _leftovers(settings, "loras") == ["drop.bin"]


async def test_a_server_without_range_support_restarts_from_zero_to_a_byte_identical_file(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("norange.bin", 1024 * 1024 + 5)
    download = await _add(models_client, url=f"{files.base}/norange-drop/norange.bin", kind="loras")
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert (_kind_dir(settings, "loras") / "norange.bin").read_bytes() == data


async def test_a_checksum_mismatch_keeps_nothing(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("wrong.bin", 256 * 1024)
    download = await _add(models_client, url=f"{files.base}/wrong/wrong.bin", kind="vae", sha256=sha256(data))
    done = await _finished(models_client, download["id"])
    assert done["state"] == "failed"
    assert "checksum mismatch" in done["error"] and sha256(data) in done["error"]
    assert _leftovers(settings, "vae") == []


@pytest.mark.parametrize("code", [401, 404, 500])
async def test_an_http_error_fails_with_a_clear_message_and_no_file(
    models_client: TestClient, files: FileServer, settings: Settings, code: int
) -> None:
    download = await _add(models_client, url=f"{files.base}/status/{code}", kind="embeddings", filename="e.pt")
    done = await _finished(models_client, download["id"])
    assert done["state"] == "failed"
    assert f"HTTP {code}" in done["error"], done["error"]
    assert _leftovers(settings, "embeddings") == []


async def test_a_failed_download_can_be_retried(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("flaky.bin", 50_000)
    download = await _add(models_client, url=f"{files.base}/flaky/flaky.bin", kind="hypernetworks")
    assert (await _finished(models_client, download["id"]))["state"] == "failed"
    resp = await models_client.post(f"/api/models/downloads/{download['id']}/retry")
    assert resp.status == 200 and (await resp.json())["error"] is None
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert (_kind_dir(settings, "hypernetworks") / "flaky.bin").read_bytes() == data
    again = await models_client.post(f"/api/models/downloads/{download['id']}/retry")
    assert again.status == 409


async def test_a_file_larger_than_the_free_disk_is_refused_before_writing(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    download = await _add(models_client, url=f"{files.base}/huge", kind="unet", filename="huge.bin")
    done = await _finished(models_client, download["id"])
    assert done["state"] == "failed"
    assert "not enough disk space" in done["error"]
    assert _leftovers(settings, "unet") == []


async def test_a_hugging_face_resolve_link_follows_the_redirect_and_checks_the_linked_sha256(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("hf.safetensors", 700 * 1024)
    url = f"{files.base}/owner/repo/resolve/main/hf.safetensors"
    download = await _add(models_client, url=url, kind="checkpoints")
    assert download["source"] == "huggingface"
    assert download["sha256"] == sha256(data)
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert (_kind_dir(settings, "checkpoints") / "hf.safetensors").read_bytes() == data


async def test_a_size_the_source_publishes_beyond_the_free_disk_is_refused_when_queued(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    body = {"source": "huggingface", "repo": "owner/repo", "file": "too-big.safetensors", "kind": "unet"}
    resp = await models_client.post("/api/models/downloads", json=body)
    assert resp.status == 507, await resp.text()
    assert "not enough disk space" in (await resp.json())["error"]["message"]
    assert (await (await models_client.get("/api/models/downloads")).json())["downloads"] == []


async def test_the_token_is_not_sent_on_to_a_file_host_of_another_origin(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    cdn = FileServer().start()
    try:
        files.cdn_base = cdn.base
        data = cdn.add("cdn.safetensors", 64 * 1024)
        files.files["cdn.safetensors"] = data
        await models_client.put("/api/models/secrets/huggingface", json={"value": HF_TOKEN})
        url = f"{files.base}/gated/model/resolve/main/cdn.safetensors"
        done = await _finished(models_client, (await _add(models_client, url=url, kind="vae"))["id"])
        assert done["state"] == "done", done
        assert f"Bearer {HF_TOKEN}" in files.auth_seen
        assert cdn.auth_seen == [None]
    finally:
        cdn.stop()


async def test_a_gated_hugging_face_repo_needs_the_token_which_is_kept_private(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("gated.safetensors", 100 * 1024)
    body = {"source": "huggingface", "repo": "gated/model", "file": "gated.safetensors", "kind": "clip"}
    refused = await models_client.post("/api/models/downloads", json=body)
    assert refused.status == 400
    assert "access token" in (await refused.json())["error"]["message"]

    resp = await models_client.put("/api/models/secrets/huggingface", json={"value": HF_TOKEN})
    assert resp.status == 200
    assert await resp.json() == {"huggingface": {"set": True}, "civitai": {"set": False}}
    secret = settings.data_dir / "secrets" / "huggingface"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    done = await _finished(models_client, (await _add(models_client, **body))["id"])
    assert done["state"] == "done", done
    assert (_kind_dir(settings, "clip") / "gated.safetensors").read_bytes() == data
    listing = await (await models_client.get("/api/models/downloads")).text()
    assert HF_TOKEN not in listing
    assert HF_TOKEN not in (settings.data_dir / "downloads.json").read_text()


async def test_a_civitai_model_page_downloads_the_primary_file_under_the_servers_name(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("civitai.safetensors", 300 * 1024)
    await models_client.put("/api/models/secrets/civitai", json={"value": CIVITAI_KEY})
    download = await _add(models_client, source="civitai", url=f"{files.base}/models/123/some-slug", kind="loras")
    assert download["source"] == "civitai"
    assert download["sha256"] == sha256(data)
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done", done
    assert done["filename"] == "civitai.safetensors"
    assert (_kind_dir(settings, "loras") / "civitai.safetensors").read_bytes() == data
    assert f"Bearer {CIVITAI_KEY}" in files.auth_seen


async def test_a_direct_link_takes_the_name_the_server_gives(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    data = files.add("download", 10_000)
    download = await _add(models_client, url=f"{files.base}/named/download", kind="upscale_models")
    done = await _finished(models_client, download["id"])
    assert done["state"] == "done" and done["filename"] == "Real Name v2.safetensors", done
    assert _leftovers(settings, "upscale_models") == ["Real Name v2.safetensors"]
    assert (_kind_dir(settings, "upscale_models") / "Real Name v2.safetensors").read_bytes() == data


async def test_a_civitai_version_page_url_picks_that_version(models_client: TestClient, files: FileServer) -> None:
    files.add("civitai.safetensors", 1024)
    url = f"{files.base}/models/123/slug?modelVersionId=444"
    download = await _add(models_client, source="civitai", url=url, kind="loras")
    assert download["url"].endswith("/api/download/models/444")


async def test_a_civitai_version_id_without_the_api_key_fails_naming_the_refusal(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    files.add("civitai.safetensors", 1024)
    download = await _add(models_client, source="civitai", version_id=444, kind="loras")
    done = await _finished(models_client, download["id"])
    assert done["state"] == "failed"
    assert "HTTP 401" in done["error"] and "API key" in done["error"]
    assert _leftovers(settings, "loras") == []


async def test_cancelling_a_running_download_removes_its_part(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    files.add("slow.bin", 8 * 1024 * 1024)
    download = await _add(models_client, url=f"{files.base}/slow/slow.bin", kind="controlnet")

    async def started() -> bool:
        data = await (await models_client.get(f"/api/models/downloads/{download['id']}")).json()
        return data["received_bytes"] > 0

    await until(started, 30, what="the download to start")
    resp = await models_client.post(f"/api/models/downloads/{download['id']}/cancel")
    assert (await resp.json())["state"] == "cancelled"
    await until(lambda: _leftovers(settings, "controlnet") == [], 10, what="the part file to go")
    assert (await _finished(models_client, download["id"]))["state"] == "cancelled"


async def test_downloads_queue_and_run_at_most_two_at_once(
    models_client: TestClient, files: FileServer, settings: Settings
) -> None:
    for n in range(3):
        files.add(f"q{n}.bin", 1024 * 1024)
    ids = [(await _add(models_client, url=f"{files.base}/slow/q{n}.bin", kind="clip_vision"))["id"] for n in range(3)]
    most = 0
    while True:
        listing = (await (await models_client.get("/api/models/downloads")).json())["downloads"]
        states = [d["state"] for d in listing]
        most = max(most, states.count("downloading"))
        if all(s == "done" for s in states):
            break
        assert "failed" not in states, listing
        await asyncio.sleep(0.05)  # sampling how many run at once, not waiting for one thing
    assert most <= 2
    assert sorted(_leftovers(settings, "clip_vision")) == ["q0.bin", "q1.bin", "q2.bin"]
    assert len(ids) == 3


async def test_the_events_stream_carries_download_progress_and_the_tree_change(
    models_client: TestClient, files: FileServer
) -> None:
    files.add("ev.bin", 512 * 1024)
    resp = await models_client.get("/api/events")
    assert (await resp.content.readline()).startswith(b"event: snapshot")
    download = await _add(models_client, url=f"{files.base}/files/ev.bin", kind="vae_approx")
    seen: list[str] = []
    while "event: models_changed" not in seen:
        line = (await resp.content.readline()).decode().strip()
        if line.startswith("event:"):
            seen.append(line)
        if line.startswith("data:") and download["id"] in line and '"state":"done"' in line:
            seen.append("done")
    assert "event: download" in seen and "done" in seen
    resp.close()
