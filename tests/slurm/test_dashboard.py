"""The System view lists the cluster's nodes, with the GPUs in use and the instances on each."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.dashboard.conftest import browser  # noqa: F401 - the module's Chromium
from tests.slurm.aikore import Start, create, instance
from tests.slurm.cluster import PARTITION, Cluster


def test_system_view_lists_cluster_nodes_with_their_instances(
    cluster: Cluster, aikore: Start, browser: Browser  # noqa: F811
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


def test_add_dialog_creates_an_instance_on_a_partition_and_node(
    cluster: Cluster, aikore: Start, browser: Browser  # noqa: F811
) -> None:
    proc = aikore()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{proc.base}/")
    page.click("#add-instance-btn")
    expect(page.locator("#add-where")).to_be_visible()
    expect(page.locator("#add-slurm")).to_be_hidden()
    page.fill("#add-name", "picked")
    page.check("label.blueprint[data-blueprint='web'] input")
    page.select_option("#add-partition", PARTITION)
    page.fill("#add-slurm input[name='slurm_node']", "node2")
    page.fill("#add-slurm input[name='slurm_time_limit']", "soon")
    page.click("#add-submit")
    # A bad field is named beside it; nothing is created.
    expect(page.locator("#add-dialog [data-error-for='slurm_time_limit']")).to_contain_text("time limit")
    page.fill("#add-slurm input[name='slurm_time_limit']", "1:00:00")
    page.click("#add-submit")
    expect(page.locator("#add-dialog")).to_be_hidden()
    created = next(i for i in proc.request("GET", "/api/instances").json() if i["name"] == "picked")
    assert (created["slurm_partition"], created["slurm_gpus"], created["slurm_node"], created["slurm_time_limit"]) == (
        PARTITION, 1, "node2", "1:00:00")
    assert proc.request("POST", f"/api/instances/{created['id']}/start").status == 200
    assert instance(proc, created["id"], "running")["node"] == "node2"
    assert errors == []
    page.close()


def test_settings_move_an_instance_to_a_partition_and_node_and_its_row_shows_where_it_runs(
    cluster: Cluster, aikore: Start, browser: Browser  # noqa: F811
) -> None:
    proc = aikore()
    started = create(proc, "moved")  # on this machine first
    instance(proc, started["id"], "running")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{proc.base}/")
    row = page.locator("tbody.instance[data-name='moved']")
    dialog = page.locator("#settings-dialog")
    where = row.locator("[data-show='where']")
    expect(where).to_be_hidden()

    def open_settings() -> None:
        row.locator(".more-toggle").click()
        row.locator("[data-action='settings']").click()
        expect(dialog.locator("#settings-where")).to_be_visible()

    # Running: where it runs can change only once it is stopped, as the API says (409 otherwise).
    open_settings()
    partition = page.locator("#settings-partition")
    expect(partition).to_have_value("")
    expect(page.locator("#settings-slurm")).to_be_hidden()
    expect(dialog.locator("[data-setting='slurm_partition'] .applies")).to_have_text("stop first")
    expect(partition).to_be_disabled()
    assert proc.request("POST", f"/api/instances/{started['id']}/stop").status == 200
    expect(partition).to_be_enabled()
    expect(dialog.locator("[data-setting='slurm_partition'] .applies")).to_be_hidden()

    page.select_option("#settings-partition", PARTITION)
    expect(page.locator("#settings-slurm-gpus")).to_have_value("1")
    page.fill("#settings-slurm-node", "node2")
    page.fill("#settings-slurm-time", "soon")
    page.click("#settings-submit")
    # A bad field is named beside it; nothing is saved.
    expect(dialog.locator("[data-error-for='slurm_time_limit']")).to_contain_text("time limit")
    expect(page.locator("#settings-slurm-time")).to_have_attribute("aria-invalid", "true")
    assert proc.request("GET", f"/api/instances/{started['id']}").json()["slurm_partition"] is None
    page.fill("#settings-slurm-time", "1:00:00")
    page.click("#settings-submit")
    expect(dialog).to_be_hidden()
    saved = proc.request("GET", f"/api/instances/{started['id']}").json()
    assert [saved[f] for f in ("slurm_partition", "slurm_gpus", "slurm_node", "slurm_time_limit", "slurm_account")] \
        == [PARTITION, 1, "node2", "1:00:00", None]
    # Stopped: the row says where its next start asks to run.
    expect(where).to_have_text(f"{PARTITION}/node2")

    assert proc.request("POST", f"/api/instances/{started['id']}/start").status == 200
    running = instance(proc, started["id"], "running")
    assert running["node"] == "node2"
    expect(where).to_have_text(f"{PARTITION}/node2 · job {running['slurm_job_id']}")
    expect(where).to_have_attribute("title", re.compile(r"node node2 \(127\.0\.0\.3\)"))

    # Reopened while it runs on the node: prefilled from the instance, and locked.
    open_settings()
    expect(partition).to_have_value(PARTITION)
    expect(page.locator("#settings-slurm-node")).to_have_value("node2")
    expect(page.locator("#settings-slurm-time")).to_have_value("1:00:00")
    expect(dialog.locator("[data-setting='slurm_partition'] .applies")).to_have_text("stop first")
    for field in ("#settings-partition", "#settings-slurm-gpus", "#settings-slurm-node", "#settings-slurm-time",
                  "#settings-slurm-account"):
        expect(page.locator(field)).to_be_disabled()
    assert errors == []
    page.close()
