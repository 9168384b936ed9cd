"""aik_git_checkout with the real git against a local upstream: pinning and updating for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import git

SCRIPT = 'source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"\naik_git_checkout "$UPSTREAM" "$INSTANCE_CONF_DIR/app" "$APP_REF"\n'




def commit(repo: Path, text: str) -> str:
    (repo / "app.py").write_text(text)
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", text)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "one")
    git(repo, "tag", "v1.0")
    return repo


def real_git_run(blueprint_run, upstream: Path, ref: str):
    run = blueprint_run("lib", script=SCRIPT, UPSTREAM=str(upstream), APP_REF=ref)
    (run.root / "bin" / "git").unlink()  # the real git from /usr/bin
    return run


def head(run) -> str:
    return git(run.conf_dir / "app", "rev-parse", "HEAD")


def test_tag_is_checked_out_and_stays_when_upstream_moves(blueprint_run, upstream: Path) -> None:
    run = real_git_run(blueprint_run, upstream, "v1.0")
    run.run()
    pinned = git(upstream, "rev-parse", "v1.0")
    assert head(run) == pinned
    commit(upstream, "two")
    run.run()
    assert head(run) == pinned


def test_branch_stays_at_its_first_commit_until_an_update_is_asked(blueprint_run, upstream: Path) -> None:
    run = real_git_run(blueprint_run, upstream, "main")
    run.run()
    first = git(upstream, "rev-parse", "main")
    assert head(run) == first
    newer = commit(upstream, "two")
    run.run()
    assert head(run) == first
    run.run(env={"AIKORE_UPDATE_APP": "1"})
    assert head(run) == newer


def test_new_tag_in_the_script_is_fetched(blueprint_run, upstream: Path) -> None:
    run = real_git_run(blueprint_run, upstream, "v1.0")
    run.run()
    newer = commit(upstream, "two")
    git(upstream, "tag", "v2.0")
    run.run(env={"APP_REF": "v2.0"})
    assert head(run) == newer
    assert (run.conf_dir / "app" / "app.py").read_text() == "two"


def test_an_update_never_discards_edits_to_the_apps_files(blueprint_run, upstream: Path) -> None:
    run = real_git_run(blueprint_run, upstream, "main")
    run.run()
    first = head(run)
    (run.conf_dir / "app" / "app.py").write_text("edited by hand")
    commit(upstream, "two")
    proc = run.run(check=False, env={"AIKORE_UPDATE_APP": "1"})
    assert proc.returncode != 0 and "has local changes" in proc.stderr
    assert (run.conf_dir / "app" / "app.py").read_text() == "edited by hand"
    assert head(run) == first


def test_untracked_files_such_as_models_do_not_block_an_update(blueprint_run, upstream: Path) -> None:
    run = real_git_run(blueprint_run, upstream, "main")
    run.run()
    (run.conf_dir / "app" / "my-model.safetensors").write_text("weights")
    newer = commit(upstream, "two")
    run.run(env={"AIKORE_UPDATE_APP": "1"})
    assert head(run) == newer
    assert (run.conf_dir / "app" / "my-model.safetensors").read_text() == "weights"


def test_a_ref_change_passes_model_folders_linked_to_the_shared_tree(blueprint_run, upstream: Path) -> None:
    # Apps ship placeholders in their model folders; once a folder is a link, git reads them as deleted.
    (upstream / "models" / "checkpoints").mkdir(parents=True)
    (upstream / "models" / "checkpoints" / "put_checkpoints_here").write_text("")
    git(upstream, "add", "models")
    git(upstream, "commit", "-q", "-m", "models")
    git(upstream, "tag", "-f", "v1.0")
    script = SCRIPT + 'aik_link_models "$INSTANCE_CONF_DIR/app/models" checkpoints=checkpoints\n'
    run = real_git_run(blueprint_run, upstream, "v1.0")
    (run.instance_dir / "launch.sh").write_text(script)
    run.run()
    (run.models_dir / "checkpoints" / "model.safetensors").write_text("weights")
    newer = commit(upstream, "two")
    git(upstream, "tag", "v2.0")
    run.run(env={"APP_REF": "v2.0"})
    assert head(run) == newer
    link = run.conf_dir / "app" / "models" / "checkpoints"
    assert link.is_symlink() and (link / "model.safetensors").read_text() == "weights"
