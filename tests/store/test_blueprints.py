"""Blueprint discovery and metadata header parsing, including malformed headers."""

from __future__ import annotations

from pathlib import Path

from aikore.resources import builtin_blueprints_dir
from aikore.store.blueprints import BlueprintCatalog, load_blueprint, parse_header

GOOD = """#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: ComfyUI
# aikore.category: Image generation
# aikore.description: Node-based Stable Diffusion UI
# aikore.proxy: keep-prefix        # strip-prefix (default) | keep-prefix | port-only
# aikore.health: /system_stats     # readiness probe path
# aikore.desktop: true
### AIKORE-METADATA-END ###
echo run
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_header_fields_and_trailing_comments(tmp_path: Path) -> None:
    bp = load_blueprint(_write(tmp_path, "comfyui.sh", GOOD), builtin=True)
    assert (bp.id, bp.name, bp.category) == ("comfyui", "ComfyUI", "Image generation")
    assert bp.description == "Node-based Stable Diffusion UI"
    assert (bp.proxy_mode, bp.health) == ("keep-prefix", "/system_stats")
    assert bp.get("desktop") == "true" and bp.warnings == ()


def test_script_without_header_is_named_after_its_file(tmp_path: Path) -> None:
    bp = load_blueprint(_write(tmp_path, "my-tool.sh", "#!/bin/bash\necho hi\n"), builtin=False)
    assert (bp.id, bp.name, bp.category, bp.proxy_mode, bp.health) == (
        "my-tool",
        "my-tool",
        "Other",
        "strip-prefix",
        "/",
    )


def test_unknown_proxy_mode_and_bad_health_fall_back_with_warnings(tmp_path: Path) -> None:
    text = GOOD.replace("keep-prefix", "teleport").replace("/system_stats", "system_stats")
    bp = load_blueprint(_write(tmp_path, "x.sh", text), builtin=True)
    assert (bp.proxy_mode, bp.health) == ("strip-prefix", "/")
    assert any("teleport" in w for w in bp.warnings) and any("health" in w for w in bp.warnings)


def test_missing_end_marker_and_junk_lines_are_reported() -> None:
    values, warnings = parse_header("### AIKORE-METADATA-START ###\n# aikore.name: X\nnot a comment\n")
    assert values == {"name": "X"}
    assert any("end marker" in w for w in warnings) and any("not a comment" in w for w in warnings)


def test_binary_garbage_does_not_break_discovery(tmp_path: Path) -> None:
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "garbage.sh").write_bytes(b"\xff\xfe\x00### AIKORE-METADATA-START ###\n\xff")
    catalog = BlueprintCatalog(tmp_path / "builtin", tmp_path / "custom")
    assert catalog.discover()["garbage"].name == "garbage"


def test_custom_overrides_builtin_and_odd_names_are_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "builtin", "demo.sh", GOOD)
    _write(tmp_path / "custom", "demo.sh", GOOD.replace("ComfyUI", "Mine"))
    _write(tmp_path / "custom", "-rf.sh", GOOD)
    _write(tmp_path / "custom", "notes.txt", GOOD)
    catalog = BlueprintCatalog(tmp_path / "builtin", tmp_path / "custom")
    found = catalog.discover()
    assert set(found) == {"demo"}
    assert found["demo"].name == "Mine" and not found["demo"].builtin
    assert catalog.get("../builtin/demo") is None and catalog.get("demo").name == "Mine"


def test_builtin_demo_blueprint_is_shipped() -> None:
    demo = BlueprintCatalog(builtin_blueprints_dir(), Path("/nonexistent")).get("demo")
    assert demo is not None and demo.builtin
    assert demo.health == "/health" and demo.proxy_mode == "strip-prefix" and demo.warnings == ()
