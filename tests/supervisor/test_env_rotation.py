"""The instance environment contract, and log rotation as a property over arbitrary output."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from aikore.config import Settings
from aikore.store.instance import Instance
from aikore.supervisor.logwriter import RotatingFile, backup_path
from aikore.supervisor.process import instance_env


def test_instance_env_follows_the_contract_and_drops_aikore_secrets(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth="none", models_dir=tmp_path / "models")
    instance = Instance(id=7, name="comfy", blueprint="comfyui", gpu_ids="0,2",
                        launch_args=("--a b", "--c"), env={"EXTRA": "x y", "HOME": "/home/comfy"})
    base = {"PATH": "/usr/bin", "AIKORE_TOKEN": "secret", "AIKORE_PASSWORD": "pw", "HOME": "/root"}
    env = instance_env(settings, instance, tmp_path / "instances" / "comfy", 23456, rebuild=True, base=base)
    assert "AIKORE_TOKEN" not in env and "AIKORE_PASSWORD" not in env
    assert env["PATH"] == "/usr/bin"
    assert env == {
        **{k: v for k, v in base.items() if not k.startswith("AIKORE_")},
        "PYTHONUNBUFFERED": "1",
        "WEBUI_PORT": "23456",
        "WEBUI_HOST": "127.0.0.1",
        "INSTANCE_NAME": "comfy",
        "INSTANCE_ID": "7",
        "INSTANCE_CONF_DIR": str(tmp_path / "instances" / "comfy" / "config"),
        "AIKORE_OWN_CONF_DIR": str(tmp_path / "instances" / "comfy" / "config"),
        "INSTANCE_OUTPUT_DIR": str(tmp_path / "instances" / "comfy" / "output"),
        "AIKORE_ROOT_PATH": "/app/comfy",
        "GRADIO_ROOT_PATH": "/app/comfy",
        "CUDA_VISIBLE_DEVICES": "0,2",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "AIKORE_DATA_DIR": str(tmp_path),
        "AIKORE_MODELS_DIR": str(tmp_path / "models"),
        "AIKORE_REBUILD_ENV": "1",
        "AIKORE_PYTHON": sys.executable,
        # The instance's own settings: extra variables over AiKore's environment, its arguments.
        "EXTRA": "x y",
        "HOME": "/home/comfy",
        "AIKORE_LAUNCH_ARGS": "--a b\n--c\n",
    }


_lines = st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=80)


def test_a_line_written_in_pieces_is_finished_in_the_file_it_was_begun_in(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    writer = RotatingFile(path, 20, 2)
    for piece in (b"0123456789\n", b"progress ", b"50%", b" done\n", b"next\n"):
        writer.write(piece)
    writer.close()
    assert backup_path(path, 1).read_bytes() == b"0123456789\nprogress 50% done\n"
    assert path.read_bytes() == b"next\n"


@settings(max_examples=60, deadline=None)
@given(lines=_lines, chunking=st.lists(st.integers(1, 500), min_size=1, max_size=20),
       max_bytes=st.integers(50, 600), backups=st.integers(0, 4))
def test_rotation_keeps_a_contiguous_tail_of_whole_lines_within_the_size_limit(
    tmp_path_factory, lines: list[bytes], chunking: list[int], max_bytes: int, backups: int
) -> None:
    folder = tmp_path_factory.mktemp("rot")
    path = folder / "x.log"
    data = b"".join(lines)
    writer = RotatingFile(path, max_bytes, backups)
    pos, step = 0, 0
    while pos < len(data):
        size = chunking[step % len(chunking)]
        writer.write(data[pos : pos + size])
        pos, step = pos + size, step + 1
    writer.close()
    files = [backup_path(path, i) for i in range(backups, 0, -1)] + [path]
    kept = [p.read_bytes() for p in files if p.exists()]
    joined = b"".join(kept)
    # Nothing inside what is kept is lost or reordered: it is exactly the end of what was written.
    assert data.endswith(joined)
    if backups > 0 or len(kept) == 1:
        offset = len(data) - len(joined)
        for content in kept[:-1]:
            offset += len(content)
            # A rotated file ends at a line end, unless the line it ends in is longer than a file.
            if not content.endswith(b"\n"):
                line_start = data.rfind(b"\n", 0, offset) + 1
                line_end = data.find(b"\n", offset) + 1 or len(data)
                assert line_end - line_start > max_bytes, (content, max_bytes)
            # It stays within the limit but for the line it ends in (finished where it was begun).
            last_line = content.rfind(b"\n", 0, len(content) - 1) + 1
            assert last_line <= max_bytes, (content, max_bytes)
    assert not any(backup_path(path, i).exists() for i in range(backups + 1, backups + 3))
