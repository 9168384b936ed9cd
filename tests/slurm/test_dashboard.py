"""The System view lists the cluster's nodes, with the GPUs in use and the instances on each."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.helpers import launch_chromium
from tests.slurm.aikore import Start, create, instance
from tests.slurm.cluster import PARTITION, Cluster


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


def test_system_view_lists_cluster_nodes_with_their_instances(
    cluster: Cluster, aikore: Start, browser: Browser
) -> None:
    proc = aikore()
    started = create(proc, "shown", slurm_partition=PARTITION, slurm_gpus=1, slurm_node="node1")
    instance(proc, started["id"], "running")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{proc.base}/#/system")
    node1 = page.locator("[data-node='node1']")
    expect(node1.locator("[data-fig='gpus']")).to_have_text("1 / 2 in use", timeout=15_000)
    # With the job's memory once sstat has measured it.
    expect(node1.locator("[data-fig='instances']")).to_have_text(re.compile(r"^shown \(\d+(\.\d)? MiB\)$"))
    expect(page.locator("[data-node='node2'] [data-fig='gpus']")).to_have_text("0 / 2 in use")
    expect(page.locator("#cluster-partitions")).to_contain_text("gpu")
    assert errors == []
    page.close()
