"""The tree copy behind instance copies: every file, links kept as links, progress counted, a
cancel honoured at the next file, the environment's own paths rewritten."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aikore.store.treecopy import Cancelled, Progress, TreeCopy, measure, relocate


def tree(root: Path) -> Path:
    (root / "app" / "pkg").mkdir(parents=True)
    (root / "app" / "pkg" / "a.py").write_text("print('a')\n")
    (root / "app" / "big.bin").write_bytes(os.urandom(300_000))
    (root / "app" / "run.sh").write_text("#!/bin/sh\n")
    (root / "app" / "run.sh").chmod(0o755)
    (root / "app" / "models").symlink_to("/somewhere/shared/models")
    return root


def test_a_copy_holds_every_file_mode_and_link_and_counts_its_progress(tmp_path: Path) -> None:
    source = tree(tmp_path / "src")
    seen: list[Progress] = []
    done = TreeCopy(source, tmp_path / "dst", seen.append).run()
    target = tmp_path / "dst"
    assert (target / "app" / "big.bin").read_bytes() == (source / "app" / "big.bin").read_bytes()
    assert os.stat(target / "app" / "run.sh").st_mode & 0o777 == 0o755
    assert os.readlink(target / "app" / "models") == "/somewhere/shared/models"
    assert done == seen[-1] and done.files_done == done.files_total == 3
    assert done.bytes_done == done.bytes_total == measure(source).bytes_total > 300_000
    assert seen[0].files_done == 0 and [p.files_done for p in seen[1:]] == [1, 2, 3]


def test_a_cancelled_copy_stops_at_the_next_file(tmp_path: Path) -> None:
    source = tree(tmp_path / "src")
    copy = TreeCopy(source, tmp_path / "dst", lambda p: copy.cancelled.set() if p.files_done == 1 else None)
    with pytest.raises(Cancelled):
        copy.run()
    assert copy.progress.files_done == 1


def test_relocate_rewrites_the_environments_own_paths_and_nothing_else(tmp_path: Path) -> None:
    old, new = tmp_path / "inst-a" / "config", tmp_path / "inst-b" / "config"
    env = old / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (env / "bin" / "tool").write_text(f"#!{env}/bin/python\nprint(1)\n")
    site = next(env.glob("lib/python*/site-packages"))
    (site / "app.pth").write_text(f"{old}/app\n")
    (old / "app").mkdir()
    (old / "app" / "notes.txt").write_text(f"{old}/ stays as the user wrote it\n")
    (tmp_path / "inst-b").mkdir()
    TreeCopy(old, new, lambda p: None).run()

    changed = relocate(new, old, new)
    assert {p.name for p in changed} >= {"tool", "activate", "app.pth"}
    assert (new / "env" / "bin" / "tool").read_text().startswith(f"#!{new}/env/bin/python\n")
    assert str(new / "env") in (new / "env" / "bin" / "activate").read_text()
    assert str(old) not in (new / "env" / "bin" / "activate").read_text()
    assert next((new / "env").glob("lib/python*/site-packages/app.pth")).read_text() == f"{new}/app\n"
    assert (new / "app" / "notes.txt").read_text().startswith(str(old)), "only environments are rewritten"
    assert os.stat(new / "env" / "bin" / "tool").st_mode == os.stat(env / "bin" / "tool").st_mode


@pytest.fixture
def xfs(tmp_path: Path):
    """A small XFS filesystem with reflinks, on a loop device (root and mkfs.xfs, as scripts/test-deps sets up)."""
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        pytest.skip("needs root and mkfs.xfs (apt-get install xfsprogs; scripts/test-deps does)")
    image, mnt = tmp_path / "xfs.img", tmp_path / "xfs"
    mnt.mkdir()
    with image.open("wb") as f:
        f.truncate(320 * 1024 * 1024)  # sparse: costs nothing until written
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], check=True)
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a loop device here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_on_a_reflink_filesystem_a_copy_shares_the_blocks_until_either_side_writes(xfs: Path) -> None:
    source = xfs / "src"
    (source / "env").mkdir(parents=True)
    (source / "env" / "torch.so").write_bytes(os.urandom(64 * 1024 * 1024))
    (source / "env" / "small.py").write_text("x = 1\n")
    free = shutil.disk_usage(xfs).free

    done = TreeCopy(source, xfs / "dst", lambda p: None).run()
    assert done.reflinked == done.files_done == 2
    # 64 MiB copied, (almost) nothing of the disk used: the copy shares the source's blocks.
    assert free - shutil.disk_usage(xfs).free < 4 * 1024 * 1024
    copied = xfs / "dst" / "env" / "torch.so"
    assert copied.read_bytes() == (source / "env" / "torch.so").read_bytes()

    # Copy-on-write: a write to the copy leaves the source as it was (a hardlink would not).
    before = (source / "env" / "torch.so").read_bytes()[:16]
    with copied.open("r+b") as f:
        f.write(b"changed by the copy")
    assert (source / "env" / "torch.so").read_bytes()[:16] == before
