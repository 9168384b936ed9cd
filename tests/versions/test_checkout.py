"""What the versions package reads from scripts, tags and folders, without a running aikore."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from aikore.versions.checkout import REF_STAMP, Pin, choose_app, find_checkouts, pin_of, with_pin
from aikore.versions.environment import find_env
from aikore.versions.releases import is_newer, newest, version_key
from aikore.versions.snapshots import Snapshot, Snapshots, new_id
from tests.helpers import REPO

# Apps a blueprint installs with pip rather than from a clone have no pin to move.
_NO_CLONE = {"demo", "invokeai", "jupyterlab"}


@pytest.mark.parametrize("script", sorted((REPO / "blueprints").glob("*.sh")), ids=lambda p: p.stem)
def test_every_built_in_app_blueprint_pins_its_app_and_an_update_moves_only_that_line(script: Path) -> None:
    text = script.read_text()
    pin = pin_of(text)
    if script.stem in _NO_CLONE:
        assert pin is None
        return
    assert pin is not None and pin.variable.endswith("_REF") and pin.url and pin.url.startswith("https://")
    moved = with_pin(text, pin, "v9.9.9")
    changed = [line for line in difflib.ndiff(text.splitlines(), moved.splitlines()) if line[:1] in "+-"]
    assert changed == [f"- {pin.variable}=${{{pin.variable}:-{pin.value}}}",
                       f"+ {pin.variable}=${{{pin.variable}:-v9.9.9}}"]
    assert pin_of(moved) == Pin(pin.variable, "v9.9.9", pin.url)


def test_the_first_clone_is_the_app_and_quoted_pins_keep_their_quotes() -> None:
    script = 'APP_REF="${APP_REF:-v1}"  # the app\nEXT_REF=${EXT_REF:-main}\n' \
        'aik_git_checkout "$URL" "$app" "$APP_REF"\naik_git_checkout https://x.invalid/e.git "$e" "$EXT_REF"\n'
    pin = pin_of(script)
    assert pin == Pin("APP_REF", "v1", None)
    assert with_pin(script, pin, "v2").splitlines()[0] == 'APP_REF="${APP_REF:-v2}"  # the app'


@pytest.mark.parametrize("ref", ["v2}; rm -rf /", "$(id)", "", "-v2", "a b", "v2\n"])
def test_a_ref_that_is_not_one_shell_word_is_never_written(ref: str) -> None:
    with pytest.raises(ValueError):
        with_pin("A=${A:-v1}\naik_git_checkout u d \"$A\"\n", Pin("A", "v1", None), ref)


def test_releases_are_version_tags_and_the_newest_is_by_number() -> None:
    assert version_key("v0.3.10") == (0, 3, 10) and version_key("1.2") == (1, 2)
    assert version_key("v2.0-rc1") is None and version_key("nightly") is None
    assert newest(["v0.3.9", "v0.3.10", "v0.4.0-rc1", "latest"]) == "v0.3.10"
    assert newest(["nightly"]) is None
    assert is_newer("v0.3.10", "v0.3.9") is True and is_newer("v1", "v1") is False
    assert is_newer("v2", "main") is None


def test_the_shallowest_clone_is_the_app_and_linked_folders_are_not_walked(tmp_path: Path) -> None:
    for clone in ("config/app", "config/app/custom_nodes/ext", "elsewhere/deep/er/than/four"):
        (tmp_path / clone / ".git").mkdir(parents=True)
        (tmp_path / clone / ".git" / REF_STAMP).write_text("v1\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    (outside / "linked" / ".git").mkdir(parents=True)
    (outside / "linked" / ".git" / REF_STAMP).write_text("v1\n")
    (tmp_path / "config" / "models").symlink_to(outside)
    found = find_checkouts(tmp_path)
    assert found == [tmp_path / "config/app", tmp_path / "config/app/custom_nodes/ext"]
    ext = tmp_path / "config/app/custom_nodes/ext"
    assert choose_app(found, {ext: "https://x.invalid/e.git"}, Pin("E", "v1", "https://x.invalid/e.git")) == ext
    assert choose_app(found, {}, Pin("A", "v1", None)) == tmp_path / "config/app"


def test_the_environment_is_the_shallowest_venv(tmp_path: Path) -> None:
    for venv in ("config/env", "config/app/venv"):
        (tmp_path / venv / "bin").mkdir(parents=True)
        (tmp_path / venv / "bin" / "python").touch()
        (tmp_path / venv / "pyvenv.cfg").touch()
    assert find_env(tmp_path) == tmp_path / "config/env"
    assert find_env(tmp_path / "output") is None


def test_only_the_newest_snapshots_are_kept_and_each_is_whole(tmp_path: Path) -> None:
    store = Snapshots(tmp_path)
    for n in range(4):
        snap = Snapshot(id=new_id(1_700_000_000 + n), created_at=1_700_000_000 + n, reason=f"update {n}",
                        app_path="config/app", commit="c" * 40, tag=f"v{n}", checked_out_ref=f"v{n}",
                        variable="APP_REF", pinned=f"v{n}", env_path="config/env", package_count=1)
        store.save(snap, "pkg==1.0\n", keep=2)
    kept = store.list()
    assert [s.tag for s in kept] == ["v3", "v2"]
    assert store.packages(kept[0]).read_text() == "pkg==1.0\n"
    assert sorted(p.name for p in store.folder.iterdir()) == sorted(s.id for s in kept)
    assert store.get("../../etc") is None and store.get(kept[0].id) == kept[0]
