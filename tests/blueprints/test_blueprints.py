"""Every app blueprint run against stand-ins: what it clones, installs, links and launches."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aikore.store.blueprints import load_blueprint
from tests.blueprints.conftest import BLUEPRINTS, HOST, PORT, ROOT_PATH, BlueprintRun, make_blueprint_run

OUT = "@output"
TORCH_27 = ("torch==2.7.1", "torchvision==0.22.1", "torchaudio==2.7.1")
COMFY_MODELS = (
    "checkpoints", "loras", "vae", "controlnet", "embeddings", "upscale_models", "clip", "clip_vision",
    "unet", "diffusion_models", "text_encoders", "hypernetworks", "vae_approx",
)
A1111_MODELS = {
    "models/Stable-diffusion": "checkpoints", "models/Lora": "loras", "models/VAE": "vae",
    "models/ESRGAN": "upscale_models", "models/ControlNet": "controlnet", "embeddings": "embeddings",
}


@dataclass(frozen=True)
class Expect:
    proxy: str
    python: str
    # checkout folder (relative to INSTANCE_CONF_DIR) -> (clone URL, pinned ref)
    repos: dict[str, tuple[str, str]] = field(default_factory=dict)
    torch: tuple[str, ...] = ()
    torch_index: str = "https://download.pytorch.org/whl/cu128"
    # requirement files installed (relative to INSTANCE_CONF_DIR), in order
    requirements: tuple[str, ...] = ()
    # link (relative to INSTANCE_CONF_DIR) -> folder under AIKORE_MODELS_DIR, or OUT
    links: dict[str, str] = field(default_factory=dict)
    # the launched program and the argument runs its command line must contain
    program: str = "python"
    launch_args: tuple[tuple[str, ...], ...] = ()
    gradio_env: bool = False
    env: dict[str, str] = field(default_factory=dict)


EXPECT: dict[str, Expect] = {
    "comfyui": Expect(
        requirements=("ComfyUI/requirements.txt", "ComfyUI/custom_nodes/ComfyUI-Manager/requirements.txt"),
        proxy="strip-prefix", python="3.12", torch=TORCH_27,
        repos={
            "ComfyUI": ("https://github.com/comfyanonymous/ComfyUI.git", "v0.3.64"),
            "ComfyUI/custom_nodes/ComfyUI-Manager": ("https://github.com/ltdrdata/ComfyUI-Manager.git", "main"),
        },
        links={f"ComfyUI/models/{m}": m for m in COMFY_MODELS},
        launch_args=(("main.py",), ("--listen", HOST), ("--port", PORT), ("--output-directory", "{out}")),
    ),
    "automatic1111": Expect(
        requirements=("stable-diffusion-webui/requirements_versions.txt",),
        proxy="strip-prefix", python="3.10", torch=("torch==2.1.2", "torchvision==0.16.2"),
        torch_index="https://download.pytorch.org/whl/cu121",
        repos={"stable-diffusion-webui": (
            "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git", "v1.10.1")},
        links={**{f"stable-diffusion-webui/{k}": v for k, v in A1111_MODELS.items()},
               "stable-diffusion-webui/models/hypernetworks": "hypernetworks",
               "stable-diffusion-webui/outputs": OUT},
        launch_args=(("launch.py",), ("--server-name", HOST), ("--port", PORT), ("--subpath", "app/inst")),
        env={"TORCH_COMMAND": "pip install torch==2.1.2 torchvision==0.16.2 "
                              "--extra-index-url https://download.pytorch.org/whl/cu121"},
    ),
    "forge": Expect(
        requirements=("stable-diffusion-webui-forge/requirements_versions.txt",),
        proxy="strip-prefix", python="3.10", torch=("torch==2.3.1", "torchvision==0.18.1"),
        torch_index="https://download.pytorch.org/whl/cu121",
        repos={"stable-diffusion-webui-forge": (
            "https://github.com/lllyasviel/stable-diffusion-webui-forge.git", "main")},
        links={**{f"stable-diffusion-webui-forge/{k}": v for k, v in A1111_MODELS.items()},
               "stable-diffusion-webui-forge/models/text_encoder": "text_encoders",
               "stable-diffusion-webui-forge/outputs": OUT},
        launch_args=(("launch.py",), ("--server-name", HOST), ("--port", PORT), ("--subpath", "app/inst")),
    ),
    "fooocus": Expect(
        requirements=("Fooocus/requirements_versions.txt",),
        proxy="port-only", python="3.10", torch=("torch==2.1.0", "torchvision==0.16.0"),
        torch_index="https://download.pytorch.org/whl/cu121",
        repos={"Fooocus": ("https://github.com/lllyasviel/Fooocus.git", "v2.5.5")},
        links={f"Fooocus/models/{m}": m for m in (
            "checkpoints", "loras", "vae", "embeddings", "upscale_models", "controlnet", "clip_vision")},
        launch_args=(("launch.py",), ("--listen", HOST), ("--port", PORT), ("--output-path", "{out}")),
    ),
    "invokeai": Expect(
        proxy="port-only", python="3.11", torch=("torch==2.4.1", "torchvision==0.19.1"),
        torch_index="https://download.pytorch.org/whl/cu124",
        program="invokeai-web", launch_args=(("--root", "{conf}/invokeai"),),
        env={"INVOKEAI_HOST": HOST, "INVOKEAI_PORT": PORT, "INVOKEAI_OUTPUTS_DIR": "{out}"},
    ),
    "sdnext": Expect(
        requirements=("sdnext/requirements.txt",),
        proxy="strip-prefix", python="3.12", torch=TORCH_27,
        repos={"sdnext": ("https://github.com/vladmandic/sdnext.git", "master")},
        links={"sdnext/models/Stable-diffusion": "checkpoints", "sdnext/models/Lora": "loras",
               "sdnext/models/VAE": "vae", "sdnext/models/ESRGAN": "upscale_models",
               "sdnext/models/ControlNet": "controlnet", "sdnext/models/embeddings": "embeddings",
               "sdnext/outputs": OUT},
        launch_args=(("launch.py",), ("--server-name", HOST), ("--port", PORT), ("--subpath", "app/inst"),
                     ("--skip-git",)),
    ),
    "kohya_ss": Expect(
        requirements=("kohya_ss/requirements.txt",),
        proxy="strip-prefix", python="3.11", torch=("torch==2.7.1", "torchvision==0.22.1"),
        repos={"kohya_ss": ("https://github.com/bmaltais/kohya_ss.git", "v25.2.1")},
        launch_args=(("kohya_gui.py",), ("--listen", HOST), ("--server_port", PORT), ("--headless",)),
        gradio_env=True,
    ),
    "fluxgym": Expect(
        requirements=("fluxgym/sd-scripts/requirements.txt", "fluxgym/requirements.txt"),
        proxy="strip-prefix", python="3.11", torch=TORCH_27,
        repos={"fluxgym": ("https://github.com/cocktailpeanut/fluxgym.git", "main"),
               "fluxgym/sd-scripts": ("https://github.com/kohya-ss/sd-scripts.git", "sd3")},
        links={"fluxgym/models/clip": "clip", "fluxgym/models/unet": "unet", "fluxgym/models/vae": "vae",
               "fluxgym/outputs": OUT},
        launch_args=(("app.py",),), gradio_env=True,
    ),
    "ai-toolkit": Expect(
        requirements=("ai-toolkit/requirements.txt",),
        proxy="port-only", python="3.12", torch=TORCH_27,
        repos={"ai-toolkit": ("https://github.com/ostris/ai-toolkit.git", "main")},
        links={"ai-toolkit/output": OUT},
        program="npx",
        launch_args=(("concurrently",), (f"npx --no-install next start --hostname {HOST} --port {PORT}",)),
    ),
    "onetrainer": Expect(
        requirements=("OneTrainer/requirements-global.txt",),
        proxy="port-only", python="3.12", torch=("torch==2.7.1", "torchvision==0.22.1"),
        repos={"OneTrainer": ("https://github.com/Nerogar/OneTrainer.git", "master")},
        launch_args=(("scripts/train_ui.py",),), env={"DISPLAY": ":99"},
    ),
    "jupyterlab": Expect(
        proxy="keep-prefix", python="3.12",
        links={"../output/notebooks/models": ""},
        program="jupyter",
        launch_args=(("lab",), (f"--ip={HOST}",), (f"--port={PORT}",), (f"--ServerApp.base_url={ROOT_PATH}/",)),
    ),
}
# OneTrainer draws a Tk window: it runs only where persistent mode gives it a display.
EXTRA_ENV = {"onetrainer": {"DISPLAY": ":99"}}


def expand(value: str, run: BlueprintRun) -> str:
    return value.format(out=run.output_dir, conf=run.conf_dir)


def contains_run(args: list[str], expected: tuple[str, ...]) -> bool:
    n = len(expected)
    return any(tuple(args[i : i + n]) == expected for i in range(len(args) - n + 1))


def start_once(root: Path, blueprint_id: str) -> tuple[BlueprintRun, Expect]:
    run = make_blueprint_run(root, blueprint_id, **EXTRA_ENV.get(blueprint_id, {}))
    run.run()
    run.first = run.calls()
    return run, EXPECT[blueprint_id]


@pytest.fixture(scope="module", params=sorted(EXPECT))
def first_start(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BlueprintRun, Expect]:
    """A blueprint started once, shared by the tests that only read what that start did."""
    return start_once(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(params=sorted(EXPECT))
def started(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[BlueprintRun, Expect]:
    """A blueprint started once, for a test that starts it again."""
    return start_once(tmp_path, request.param)


def test_every_app_blueprint_is_covered() -> None:
    ids = {p.stem for p in BLUEPRINTS.glob("*.sh")} - {"demo"}
    assert ids == set(EXPECT)


@pytest.mark.parametrize("blueprint_id", sorted(EXPECT))
def test_header_declares_proxy_mode_and_what_it_installs(blueprint_id: str) -> None:
    blueprint = load_blueprint(BLUEPRINTS / f"{blueprint_id}.sh", builtin=True)
    assert blueprint.warnings == ()
    assert blueprint.proxy_mode == EXPECT[blueprint_id].proxy
    assert blueprint.category != "Other"
    assert "Installs" in blueprint.description
    text = (BLUEPRINTS / f"{blueprint_id}.sh").read_text()
    assert "# Installs, under $INSTANCE_CONF_DIR:" in text


@pytest.mark.parametrize("blueprint_id", sorted(EXPECT))
def test_header_description_names_the_versions_the_script_installs(blueprint_id: str) -> None:
    expect = EXPECT[blueprint_id]
    description = load_blueprint(BLUEPRINTS / f"{blueprint_id}.sh", builtin=True).description
    if expect.torch:
        assert f"torch {expect.torch[0].split('==')[1]}" in description
    assert f"Python {expect.python}" in description
    for _, ref in expect.repos.values():
        if ref[0] == "v":
            assert ref in description


def test_onetrainer_header_marks_a_desktop_app() -> None:
    blueprint = load_blueprint(BLUEPRINTS / "onetrainer.sh", builtin=True)
    assert blueprint.get("desktop") == "true"


def test_apps_are_cloned_and_checked_out_at_their_pinned_ref(first_start) -> None:
    run, expect = first_start
    clones = {c.args[-1]: c.args[-2] for c in run.first if c.prog == "git" and c.args[:1] == ["clone"]}
    assert clones == {str(run.conf_dir / d): url for d, (url, _) in expect.repos.items()}
    for folder, (_, ref) in expect.repos.items():
        checkout = run.conf_dir / folder
        assert (checkout / ".git" / "aikore-ref").read_text().strip() == ref
        resolved = f"origin/{ref}" if ref in ("main", "master", "sd3") else ref
        head = (checkout / ".git" / "standin-head").read_text()
        assert head == hashlib.sha1(resolved.encode()).hexdigest()


def test_restart_reuses_env_and_checkout_and_installs_nothing(started) -> None:
    run, _ = started
    run.run()
    assert run.uv_calls("venv") == []
    assert run.uv_calls("pip install") == []
    assert [c for c in run.calls("git") if c.args[:1] == ["clone"] or "fetch" in c.args] == []


def test_env_is_created_once_by_uv_with_the_blueprints_python(first_start) -> None:
    # ... and not again on a restart: test_restart_reuses_env_and_checkout_and_installs_nothing.
    run, expect = first_start
    venvs = [c for c in run.first if c.prog == "uv" and c.args[:1] == ["venv"]]
    assert len(venvs) == 1
    assert contains_run(venvs[0].args, ("--python", expect.python))
    assert venvs[0].args[-1] == str(run.venv)


def test_rebuild_recreates_the_env_and_reinstalls(started) -> None:
    run, _ = started
    marker = run.venv / "user-installed-marker"
    marker.write_text("x")
    run.run(env={"AIKORE_REBUILD_ENV": "1"})
    venvs = run.uv_calls("venv")
    assert len(venvs) == 1 and venvs[0].args[-1] == str(run.venv)
    assert not marker.exists()
    assert run.uv_calls("pip install") != []


def test_torch_is_installed_first_and_pins_every_later_install(first_start) -> None:
    run, expect = first_start
    installs = [c for c in run.first if c.prog == "uv" and c.args[:2] == ["pip", "install"]]
    assert installs, "nothing installed"
    for call in installs:
        assert contains_run(call.args, ("--python", str(run.venv / "bin" / "python")))
    if not expect.torch:
        assert not any(a.startswith("torch") for c in installs for a in c.args)
        return
    first, later = installs[0], installs[1:]
    assert contains_run(first.args, ("--index-url", expect.torch_index))
    assert first.args[-len(expect.torch) :] == list(expect.torch)
    constraints = run.venv / "aikore-constraints.txt"
    assert constraints.read_text().split() == list(expect.torch)
    assert later, "no app requirements installed after torch"
    for call in later:
        assert contains_run(call.args, ("--constraint", str(constraints)))


def test_installs_the_app_makes_while_it_runs_obey_the_torch_pins_too(first_start) -> None:
    # ComfyUI-Manager (custom nodes), A1111's and SD.Next's launchers install with pip or uv at run time.
    run, expect = first_start
    keys = ("PIP_CONSTRAINT", "UV_CONSTRAINT")
    pinned = [run.first[-1].env.get(k) for k in keys]
    if expect.torch:
        assert pinned == [str(run.venv / "aikore-constraints.txt")] * 2
    else:  # whatever the machine itself sets, nothing more
        assert pinned == [os.environ.get(k) for k in keys]


@pytest.mark.parametrize("blueprint_id", sorted(b for b, e in EXPECT.items() if e.torch))
def test_machine_torch_pins_replace_the_blueprints_own(blueprint_id: str, tmp_path: Path) -> None:
    pins = ["torch==2.14.1", "torchvision==0.29.1"]
    run = make_blueprint_run(tmp_path, blueprint_id, AIKORE_TORCH_PINS=" ".join(pins),
                             AIKORE_TORCH_INDEX="https://pypi.example.invalid/simple",
                             **EXTRA_ENV.get(blueprint_id, {}))
    run.run()
    torch_install = run.uv_calls("pip install")[0]
    assert torch_install.args[-len(pins) :] == pins
    assert contains_run(torch_install.args, ("--index-url", "https://pypi.example.invalid/simple"))
    assert (run.venv / "aikore-constraints.txt").read_text().split() == pins
    command = run.launch().env.get("TORCH_COMMAND")
    if command is not None:
        assert command.split()[2:4] == pins


def test_app_requirements_are_installed_from_the_app_folder(first_start) -> None:
    run, expect = first_start
    installed = [
        os.path.join(c.cwd, c.args[c.args.index("-r") + 1])
        for c in run.first
        if c.prog == "uv" and c.args[:2] == ["pip", "install"] and "-r" in c.args
    ]
    assert installed == [str(run.conf_dir / r) for r in expect.requirements]


def test_model_folders_are_links_to_shared_folders(first_start) -> None:
    run, expect = first_start
    for link, shared in expect.links.items():
        path = run.conf_dir / link
        target = run.output_dir if shared == OUT else run.models_dir / shared
        assert path.is_symlink(), link
        assert os.path.realpath(path) == os.path.realpath(target), link
        assert target.is_dir()


def test_launch_listens_on_webui_host_port_under_the_sub_path(first_start) -> None:
    run, expect = first_start
    launch = run.first[-1]
    assert launch.prog == expect.program
    for wanted in expect.launch_args:
        assert contains_run(launch.args, tuple(expand(a, run) for a in wanted)), (wanted, launch.args)
    if expect.program == "python":
        assert launch.path == str(run.venv / "bin" / "python")
    assert launch.env.get("VIRTUAL_ENV") == str(run.venv)
    assert launch.env["CUDA_VISIBLE_DEVICES"] == "0"
    for key, value in expect.env.items():
        assert launch.env.get(key) == expand(value, run)
    if expect.gradio_env:
        assert launch.env["GRADIO_SERVER_NAME"] == HOST
        assert launch.env["GRADIO_SERVER_PORT"] == PORT
        assert launch.env["GRADIO_ROOT_PATH"] == ROOT_PATH


def test_demo_installs_nothing_and_listens_on_webui_host_port(blueprint_run) -> None:
    run = blueprint_run("demo")
    run.run(env={"AIKORE_PYTHON": str(run.root / "bin" / "python3")})
    launch = run.launch()
    assert run.calls("git") == [] and run.calls("uv") == []
    assert launch.args == ["-m", "aikore.demo", "--host", HOST, "--port", PORT]
