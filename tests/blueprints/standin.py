"""Stand-in for git, uv, python, npm and the apps: records what a blueprint asked it to do.

Each stand-in on PATH is a two-line shell wrapper that runs this file with its own path first.
One JSON line per call goes to $STANDIN_RECORD. The few effects a blueprint relies on are
imitated (a clone makes a folder, ``uv venv`` makes an environment whose python is a stand-in too,
``rev-parse`` prints a commit), so the scripts run their real logic end to end without network.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

RECORDED_ENV = (
    "VIRTUAL_ENV", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_ROOT_PATH", "HF_HOME",
    "INVOKEAI_ROOT", "INVOKEAI_HOST", "INVOKEAI_PORT", "INVOKEAI_OUTPUTS_DIR", "JUPYTER_CONFIG_DIR",
    "TORCH_COMMAND", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTHONUNBUFFERED", "DISPLAY",
    "PIP_CONSTRAINT", "UV_CONSTRAINT",
)
# Remote branches the fake origin has; any other name resolves only as a tag or commit.
BRANCHES = {"main", "master", "sd3"}
MISSING_REF = "no-such-ref"
# What a checkout leaves in the app folder: requirement files and a model folder with the
# placeholder most apps ship, so linking has something real to move.
APP_FILES = {
    "requirements.txt": "appdeps==1.0\n",
    "requirements_versions.txt": "appdeps==1.0\n",
    "requirements-global.txt": "appdeps==1.0\n",
    "models/checkpoints/put_checkpoints_here": "",
    "ui/package.json": "{}\n",
}


def sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def wrapper(target: Path) -> None:
    """Write a stand-in wrapper at ``target`` (used for the python inside a fake environment)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$0" "$@"\n')
    target.chmod(0o755)


def git(args: list[str]) -> int:
    repo = Path.cwd()
    if args[:1] == ["-C"]:
        repo, args = Path(args[1]), args[2:]
    command = args[0]
    if command == "clone":
        url, target = [a for a in args[1:] if not a.startswith("-")][:2]
        (Path(target) / ".git").mkdir(parents=True)
        (Path(target) / ".git" / "standin-url").write_text(url)
    elif command == "rev-parse":
        return rev_parse(repo, args[1:])
    elif command == "checkout":
        commit = args[-1]
        (repo / ".git" / "standin-head").write_text(commit)
        for name, content in APP_FILES.items():
            path = repo / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(content)
    return 0


def rev_parse(repo: Path, args: list[str]) -> int:
    name = args[-1].removesuffix("^{commit}")
    if name == "HEAD":
        head = (repo / ".git" / "standin-head").read_text()
        print(head[:7] if "--short" in args else head)
        return 0
    branch = name.removeprefix("origin/")
    if name.startswith("origin/") and branch not in BRANCHES:
        return 1
    if branch == MISSING_REF:
        return 1
    print(sha(name))
    return 0


def uv(args: list[str]) -> int:
    if args[0] == "venv":
        wrapper(Path(args[-1]) / "bin" / "python")
    return 0


def main() -> int:
    path, args = sys.argv[1], sys.argv[2:]
    prog = os.path.basename(path)
    entry = {
        "prog": prog,
        "path": path,
        "args": args,
        "cwd": os.getcwd(),
        "env": {key: os.environ[key] for key in RECORDED_ENV if key in os.environ},
    }
    with open(os.environ["STANDIN_RECORD"], "a", encoding="utf-8") as record:
        record.write(json.dumps(entry) + "\n")
    if prog == "git":
        return git(args)
    if prog == "uv":
        return uv(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
