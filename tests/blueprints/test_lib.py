"""The blueprint library's rules, each pinned down with a small script that sources it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.blueprints.conftest import BLUEPRINTS, LIB, PORT

PREAMBLE = 'source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"\n'
CLONE = 'aik_git_checkout https://example.invalid/app.git "$INSTANCE_CONF_DIR/app" "${APP_REF:-v1.0}"\n'


def git_calls(run) -> list[list[str]]:
    return [c.args for c in run.calls("git")]


def test_checkout_is_left_alone_while_the_ref_is_unchanged(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + CLONE)
    run.run()
    run.run()
    assert not any("fetch" in args or "checkout" in args for args in git_calls(run))
    assert "keeping" in run.run().stdout


def test_changed_ref_fetches_and_checks_out_the_new_one(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + CLONE)
    run.run()
    run.run(env={"APP_REF": "v2.0"})
    calls = git_calls(run)
    assert any("fetch" in args for args in calls)
    assert any(args[-3:-1] == ["--force", "--detach"] for args in calls if "checkout" in args)
    assert (run.conf_dir / "app" / ".git" / "aikore-ref").read_text() == "v2.0\n"


def test_update_app_refetches_a_branch(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + CLONE, APP_REF="main")
    run.run()
    run.run(env={"AIKORE_UPDATE_APP": "1"})
    assert any("fetch" in args for args in git_calls(run))


def test_a_folder_with_files_is_never_cloned_over(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + CLONE)
    (run.conf_dir / "app").mkdir()
    (run.conf_dir / "app" / "my-notes.txt").write_text("keep me")
    proc = run.run(check=False)
    assert proc.returncode != 0
    assert "is not a git checkout" in proc.stderr
    assert (run.conf_dir / "app" / "my-notes.txt").read_text() == "keep me"
    assert run.calls("git") == []


def test_unknown_ref_fails_with_its_name(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + CLONE, APP_REF="no-such-ref")
    proc = run.run(check=False)
    assert proc.returncode != 0
    assert "ref no-such-ref not found" in proc.stderr


def test_changed_requirements_are_installed_again(blueprint_run) -> None:
    script = PREAMBLE + 'aik_python_env "$INSTANCE_CONF_DIR/env"\naik_pip_requirements "$INSTANCE_CONF_DIR/req.txt"\n'
    run = blueprint_run("lib", script=script)
    (run.conf_dir / "req.txt").write_text("a==1\n")
    run.run()
    assert len(run.uv_calls("pip install")) == 1
    run.run()
    assert run.uv_calls("pip install") == []
    (run.conf_dir / "req.txt").write_text("a==2\n")
    run.run()
    assert len(run.uv_calls("pip install")) == 1


def test_missing_requirements_file_is_skipped(blueprint_run) -> None:
    script = PREAMBLE + 'aik_python_env "$INSTANCE_CONF_DIR/env"\naik_pip_requirements nothing.txt\n'
    run = blueprint_run("lib", script=script)
    assert "no nothing.txt; skipped" in run.run().stdout
    assert run.uv_calls("pip install") == []


def test_venv_python_override_is_passed_to_uv(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + 'aik_python_env "$INSTANCE_CONF_DIR/env" 3.12\n',
                        AIKORE_VENV_PYTHON="/opt/python3.11")
    run.run()
    assert run.uv_calls("venv")[0].args[1:4] == ["--seed", "--python", "/opt/python3.11"]


def test_half_created_env_is_made_again(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + 'aik_python_env "$INSTANCE_CONF_DIR/env"\n')
    (run.venv / "lib").mkdir(parents=True)
    run.run()
    assert len(run.uv_calls("venv")) == 1
    assert not (run.venv / "lib").exists() and (run.venv / "bin" / "python").exists()


def test_missing_uv_is_named(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + 'aik_python_env "$INSTANCE_CONF_DIR/env"\n')
    if shutil.which("uv", path="/usr/local/bin:/usr/bin:/bin"):
        pytest.skip("a system-wide uv is on the blueprints' PATH")
    (run.root / "bin" / "uv").unlink()
    proc = run.run(check=False)
    assert proc.returncode != 0
    assert "uv is not installed" in proc.stderr


def test_linking_moves_user_files_into_the_shared_folder(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + 'aik_link_models "$INSTANCE_CONF_DIR/app/models" checkpoints=ckpt\n')
    models = run.conf_dir / "app" / "models" / "checkpoints"
    models.mkdir(parents=True)
    (models / "mine.safetensors").write_text("weights")
    run.run()
    assert models.is_symlink()
    assert (run.models_dir / "ckpt" / "mine.safetensors").read_text() == "weights"


def test_identical_placeholders_are_merged_and_different_files_never_overwritten(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + 'aik_link_dir "$AIKORE_MODELS_DIR/vae" "$INSTANCE_CONF_DIR/vae"\n')
    shared, own = run.models_dir / "vae", run.conf_dir / "vae"
    shared.mkdir(parents=True)
    own.mkdir()
    (shared / "put_vae_here").write_text("")
    (own / "put_vae_here").write_text("")
    run.run()
    assert own.is_symlink()

    run2_own = run.conf_dir / "vae2"
    run2_own.mkdir()
    (shared / "model.pt").write_text("shared")
    (run2_own / "model.pt").write_text("mine")
    (run.instance_dir / "launch.sh").write_text(
        PREAMBLE + 'aik_link_dir "$AIKORE_MODELS_DIR/vae" "$INSTANCE_CONF_DIR/vae2"\n')
    assert "not linking" in run.run().stdout
    assert not run2_own.is_symlink()
    assert (run2_own / "model.pt").read_text() == "mine"
    assert (shared / "model.pt").read_text() == "shared"


def test_launch_args_file_is_appended_word_by_word_never_evaluated(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + "aik_launch python app.py --port \"$WEBUI_PORT\"\n")
    (run.conf_dir / "launch_args.txt").write_text("# user flags\n--lowvram --preview auto\n\n$(touch pwned) `id`\n")
    run.run()
    assert run.launch().args == ["app.py", "--port", PORT, "--lowvram", "--preview", "auto", "$(touch", "pwned)",
                                 "`id`"]
    assert not (run.instance_dir / "pwned").exists()


def test_missing_webui_port_is_refused_with_its_name(blueprint_run) -> None:
    run = blueprint_run("lib", script=PREAMBLE + "echo unreachable\n")
    proc = run.run(check=False, env={"WEBUI_PORT": ""})
    assert proc.returncode != 0
    assert "WEBUI_PORT" in proc.stderr
    assert "unreachable" not in proc.stdout


def test_onetrainer_without_a_display_asks_for_persistent_mode(blueprint_run) -> None:
    run = blueprint_run("onetrainer")
    proc = run.run(check=False)
    assert proc.returncode != 0
    assert "persistent mode" in proc.stderr
    assert run.calls("git") == []


def test_library_is_found_through_aikores_python_when_not_given(blueprint_run) -> None:
    # AiKore runs blueprints with AIKORE_PYTHON set; the library ships beside the built-in blueprints.
    run = blueprint_run("jupyterlab", AIKORE_PYTHON=sys.executable)
    env = run.env()
    del env["AIKORE_BLUEPRINTS_LIB"]
    proc = subprocess.run(["bash", "launch.sh"], cwd=run.instance_dir, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert run.launch().prog == "jupyter"


def test_blueprints_and_library_are_shellcheck_clean() -> None:
    assert shutil.which("shellcheck"), "shellcheck (Debian package) is part of the test tools"
    scripts = sorted(str(p) for p in [*BLUEPRINTS.glob("*.sh"), *LIB.glob("*.sh")])
    proc = subprocess.run(["shellcheck", "--external-sources", "--source-path=SCRIPTDIR", *scripts],
                          capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stdout
