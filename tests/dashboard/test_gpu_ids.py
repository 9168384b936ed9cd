"""GPU IDs are checked against the GPUs NVML finds (here the stand-in's two), naming those that
exist; where NVML does not answer they are taken as given, with a warning in the row."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

TWO_GPUS = "GPU 0 (NVIDIA GeForce RTX 4090) and GPU 1 (NVIDIA RTX A6000)"


def test_a_gpu_the_machine_lacks_is_refused_naming_those_it_has(shared_dashboard: Callable[..., Dashboard]) -> None:
    board = shared_dashboard()
    board.api("POST", "/api/instances", {"name": "gpu-check", "blueprint": "demo"})
    refused = board.server.request("POST", "/api/instances", {"name": "gpu-api", "blueprint": "demo", "gpu_ids": "1,7"})
    assert refused.status == 400
    assert refused.json()["error"] == {
        "code": "invalid_field", "field": "gpu_ids",
        "message": f"gpu_ids: GPU 7 is not on this machine: it has {TWO_GPUS}",
    }
    board.login()
    page = board.page
    row = page.locator(board.row("gpu-check"))
    gpus = row.locator("[data-field='gpu_ids']")
    gpus.fill("7,8")
    gpus.press("Enter")
    message = f"gpu_ids: GPUs 7, 8 are not on this machine: it has {TWO_GPUS}"
    expect(row.locator("[data-show='error']")).to_have_text(message)
    expect(gpus).to_have_attribute("aria-invalid", "true")
    gpus.fill("1")
    gpus.press("Enter")
    expect(page.locator("#toast")).to_have_text("Saved gpu-check: GPU IDs.")
    expect(row.locator("[data-show='error']")).to_be_hidden()
    expect(row.locator("[data-show='note']")).to_be_hidden()


def test_without_nvml_gpu_ids_are_taken_as_given_with_a_warning(dashboard: Callable[..., Dashboard]) -> None:
    board = dashboard()
    created = board.api("POST", "/api/instances", {"name": "gpu-blind", "blueprint": "demo", "gpu_ids": "7"})
    assert created["gpu_ids"] == "7"
    assert created["gpu_warning"].startswith("GPU IDs not checked: ")
    board.login()
    row = board.page.locator(board.row("gpu-blind"))
    expect(row.locator("[data-show='note']")).to_contain_text("GPU IDs not checked: ")
    expect(row.locator("[data-show='note']")).to_contain_text("; used as given")
    expect(row.locator("[data-field='gpu_ids']")).to_have_class("cell-input narrow warn")
