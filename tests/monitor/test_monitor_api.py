"""The monitoring API through the real app: stats, history, interval, stream, /metrics, usage."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aikore.app import create_app
from aikore.config import Settings
from aikore.monitor import MONITOR, InstanceNames, gpu
from aikore.store.instance import Instance
from aikore.supervisor.events import InstanceChanged, InstanceDeleted, InstanceRenamed, Runtime
from tests.helpers import until

DEADLINE = 30.0


async def _json(client: TestClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    return await response.json()


def _validator(schema_name: str, document: dict[str, Any]) -> Any:
    # The schema refers to its siblings as #/components/schemas/...; keep them in the root.
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    )


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


async def test_stats_match_the_documented_schema(client: TestClient) -> None:
    stats = await _json(client, "/api/system/stats")
    document = await _json(client, "/api/openapi.json")
    _validator("SystemStats", document).validate(stats)
    assert {"/api/system/stats", "/api/system/history", "/api/system/interval", "/metrics"} <= set(document["paths"])
    # No GPU on this machine gives an empty list and a reason; a GPU machine gives the opposite.
    assert (stats["gpus"] == []) == (stats["gpu_reason"] is not None)


async def test_history_grows_and_filters(client: TestClient) -> None:
    client.app[MONITOR].set_interval(0.25)

    async def three_samples() -> Any:
        body = await _json(client, "/api/system/history")
        return body if len(body["samples"]) >= 3 else None

    history = await until(three_samples, DEADLINE, what="three samples in the history")
    document = await _json(client, "/api/openapi.json")
    _validator("SystemHistory", document).validate(history)
    times = [sample["time"] for sample in history["samples"]]
    assert times == sorted(times)
    assert history["interval_seconds"] == 0.25 and history["capacity"] == 3600
    newer = [s["time"] for s in (await _json(client, f"/api/system/history?since={times[1]}"))["samples"]]
    # Samples taken meanwhile may follow; the ring (3600 at 0.25 s) has dropped none.
    assert newer[: len(times) - 2] == times[2:] and min(newer) > times[1]
    assert len((await _json(client, "/api/system/history?limit=1"))["samples"]) == 1


@pytest.mark.parametrize(
    ("query", "field"), [("limit=0", "limit"), ("limit=x", "limit"), ("since=abc", "since"), ("since=nan", "since")]
)
async def test_history_rejects_bad_query_naming_the_field(client: TestClient, query: str, field: str) -> None:
    body = await _json(client, f"/api/system/history?{query}", status=400)
    assert body["error"]["code"] == "invalid_field"
    assert body["error"]["message"].startswith(f"{field}:")


async def test_interval_change_through_the_api_takes_effect(client: TestClient) -> None:
    before = await _json(client, "/api/system/interval")
    assert before["interval_seconds"] == 1.0
    response = await client.put("/api/system/interval", json={"interval_seconds": 0.25})
    assert response.status == 200
    assert (await response.json())["interval_seconds"] == 0.25
    assert (await _json(client, "/api/system/interval"))["capacity"] == 3600

    async def sampled_at_new_interval() -> bool:
        return (await _json(client, "/api/system/stats"))["interval_seconds"] == 0.25

    await until(sampled_at_new_interval, DEADLINE, what="a sample taken at the new interval")


@pytest.mark.parametrize(
    "body",
    [
        {"interval_seconds": 0.01},
        {"interval_seconds": 3600},
        {"interval_seconds": "1"},
        {"interval_seconds": True},
        {"interval_seconds": None},
        {},
        {"interval_seconds": 1, "extra": 1},
    ],
)
async def test_bad_interval_is_refused_and_nothing_changes(client: TestClient, body: dict[str, Any]) -> None:
    response = await client.put("/api/system/interval", json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert "interval_seconds" in error["message"]
    assert (await _json(client, "/api/system/interval"))["interval_seconds"] == 1.0


async def test_stream_sends_samples_as_server_sent_events(client: TestClient) -> None:
    client.app[MONITOR].set_interval(0.25)
    response = await client.get("/api/system/stream")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(DEADLINE):
        while len(events) < 2:
            line = (await response.content.readline()).decode()
            assert line == "event: stats\n" or line.startswith("data: ") or line == "\n"
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    response.close()
    assert events[0]["time"] < events[1]["time"]


async def test_metrics_parse_with_prometheus_client(client: TestClient) -> None:
    await _json(client, "/api/system/stats")  # at least one sample exists
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(await response.text())}
    assert {"aikore_monitor_interval_seconds", "aikore_memory_total_bytes", "aikore_gpu_count"} <= names
    assert "process_resident_memory_bytes" in names


async def _started_demo(client: TestClient, name: str) -> dict[str, Any]:
    """Create an instance of the built-in demo blueprint, start it and wait until it runs."""
    response = await client.post("/api/instances", json={"name": name, "blueprint": "demo"})
    assert response.status == 201, await response.text()
    instance_id = (await response.json())["id"]
    response = await client.post(f"/api/instances/{instance_id}/start")
    assert response.status == 200, await response.text()

    async def running() -> Any:
        instance = await _json(client, f"/api/instances/{instance_id}")
        if instance["status"] not in ("starting", "running"):
            pytest.fail(f"the demo instance did not start: {instance}")
        return instance if instance["status"] == "running" else None

    return await until(running, DEADLINE, what=f"instance {name} to run")


async def test_running_instance_usage_in_stats_instance_json_and_metrics(client: TestClient) -> None:
    client.app[MONITOR].set_interval(0.25)
    instance = await _started_demo(client, "watched")
    instance_id = instance["id"]

    async def usage() -> Any:
        return (await _json(client, f"/api/instances/{instance_id}"))["usage"]

    seen = await until(usage, DEADLINE, what="the instance's usage")
    document = await _json(client, "/api/openapi.json")
    _validator("Instance", document).validate(await _json(client, f"/api/instances/{instance_id}"))
    assert (seen["id"], seen["pid"], seen["running"]) == (instance_id, instance["pid"], True)
    assert seen["process_count"] >= 1
    assert seen["rss_bytes"] > 10 * 2**20  # at least the demo app's Python with aiohttp loaded
    stats = await _json(client, "/api/system/stats")
    assert [entry["id"] for entry in stats["instances"]] == [instance_id]
    page = await client.get("/app/watched/")  # through the proxy, so the route counts it
    assert page.status == 200
    await page.read()
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(await (await client.get("/metrics")).text())
        for sample in family.samples
    }
    assert found[("aikore_instance_rss_bytes", (("id", str(instance_id)), ("name", "watched")))] > 0
    assert found[("aikore_route_requests_total", (("route", "watched"),))] >= 1
    assert found[("aikore_route_sent_bytes_total", (("route", "watched"),))] > 0
    assert found[("aikore_route_last_activity_timestamp_seconds", (("route", "watched"),))] > time.time() - 600

    response = await client.post(f"/api/instances/{instance_id}/stop")
    assert response.status == 200

    async def stopped_without_usage() -> bool:
        instance = await _json(client, f"/api/instances/{instance_id}")
        return instance["status"] == "stopped" and instance["usage"] is None

    await until(stopped_without_usage, DEADLINE, what="the instance stopped, without usage")

    async def gone_from_stats() -> bool:
        return not (await _json(client, "/api/system/stats"))["instances"]

    await until(gone_from_stats, DEADLINE, what="the instance gone from the stats")


def test_metric_names_follow_the_supervisor_events() -> None:
    names, runtime = InstanceNames(), Runtime()
    names.on_event(InstanceChanged(Instance(1, "comfy", "comfyui"), runtime))
    names.on_event(InstanceChanged(Instance(2, "old", "forge"), runtime))
    names.on_event(InstanceRenamed("old", Instance(2, "forge", "forge"), runtime))
    names.on_event(InstanceChanged(Instance(3, "jupyter", "jupyterlab", status="starting", pid=4343), runtime))
    names.on_event(InstanceChanged(Instance(1, "comfy", "comfyui", status="error"), runtime))
    names.on_event(InstanceDeleted(Instance(3, "jupyter", "jupyterlab")))
    assert names.names() == {1: "comfy", 2: "forge"}


@pytest.fixture
async def gpu_client(
    aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings, fake_nvml: Any, monkeypatch: Any
) -> AsyncIterator[TestClient]:
    """The app with a fake NVML in place of pynvml: two GPUs, the second power-less."""
    fake_nvml.add_gpu(name="NVIDIA Fake A")
    fake_nvml.add_gpu(name="NVIDIA Fake B", power_mw=None)
    monkeypatch.setattr(gpu, "load_pynvml", fake_nvml.load)
    yield await aiohttp_client(create_app(settings))


async def test_app_reports_gpus_and_shuts_nvml_down_on_exit(gpu_client: TestClient, fake_nvml: Any) -> None:
    stats = await _json(gpu_client, "/api/system/stats")
    assert stats["gpu_reason"] is None
    assert [(g["index"], g["name"], g["power_watts"]) for g in stats["gpus"]] == [
        (0, "NVIDIA Fake A", 215.5),
        (1, "NVIDIA Fake B", None),
    ]
    text = await (await gpu_client.get("/metrics")).text()
    assert 'aikore_gpu_memory_total_bytes{gpu="1",name="NVIDIA Fake B",uuid="GPU-fake-1"}' in text
    assert fake_nvml.init_calls == 1 and fake_nvml.shutdown_calls == 0
    await gpu_client.close()
    assert fake_nvml.shutdown_calls == 1


async def test_gpu_lost_while_running_is_reported_not_fatal(gpu_client: TestClient, fake_nvml: Any) -> None:
    gpu_client.app[MONITOR].set_interval(0.25)
    fake_nvml.gpus[1].lost = True

    async def lost_reported() -> Any:
        gpus = (await _json(gpu_client, "/api/system/stats"))["gpus"]
        return gpus if gpus[1]["error"] else None

    gpus = await until(lost_reported, DEADLINE, what="the lost GPU reported")
    assert "GPU is lost" in gpus[1]["error"] and gpus[0]["error"] is None
    assert (await gpu_client.get("/api/health")).status == 200


async def test_open_streams_do_not_hold_up_shutdown(client: TestClient) -> None:
    # A connection of its own, which the test client does not close before stopping the server.
    async with aiohttp.ClientSession() as browser:
        response = await browser.get(client.make_url("/api/system/stream"))
        assert response.status == 200
        started = time.monotonic()
        await client.server.close()
        assert time.monotonic() - started < 10
        assert await response.content.read() is not None  # the stream ended instead of hanging
