"""A real `aikore` process: /metrics behind the token, and a quick stop with a stats stream open."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import AikoreProcess

TOKEN = "monitor-e2e-token-0123456789abcdef"


def test_real_aikore_serves_monitoring_and_stops_promptly_with_a_stream_open(
    aikore_process: Callable[..., AikoreProcess],
) -> None:
    server = aikore_process(extra_args=["--token", TOKEN, "--monitor-interval", "0.5"])
    assert server.request("GET", "/metrics", auth=False).status == 401
    assert server.request("GET", "/api/system/stats", auth=False).status == 401
    server.token = TOKEN

    metrics = server.request("GET", "/metrics")
    assert metrics.status == 200
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(metrics.body.decode())
        for sample in family.samples
    }
    assert values["aikore_monitor_interval_seconds"] == 0.5
    stats = server.request("GET", "/api/system/stats").json()
    assert server.proc is not None and stats["aikore"]["pid"] == server.proc.pid
    assert (stats["gpus"] == []) == (stats["gpu_reason"] is not None)

    stream_request = urllib.request.Request(
        server.base + "/api/system/stream", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(stream_request, timeout=30) as stream:
        assert stream.readline() == b"event: stats\n"
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 20, "an open stats stream held up shutdown"
