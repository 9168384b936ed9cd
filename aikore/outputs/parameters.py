"""Generation parameters that ComfyUI and A1111 embed in their PNGs (text chunks)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

# Text chunks larger than this are not shown (a workflow is tens of KiB; this is generous).
MAX_CHUNK = 4 * 1024 * 1024
_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_A1111_SETTING = re.compile(r"\s*([\w \-/]+):\s*(\"(?:\\.|[^\\\"])*\"|[^,]*)(?:,|$)")


def read(path: Path) -> dict[str, Any]:
    """{"comfyui": {...}|None, "a1111": {...}|None, "text": {chunk: value}} for an image file."""
    with Image.open(path) as img:
        text = {k: v for k, v in img.info.items() if isinstance(v, str) and len(v) <= MAX_CHUNK}
        if "parameters" not in text and (comment := _user_comment(img)):
            text["parameters"] = comment
    return {"comfyui": comfyui(text), "a1111": a1111(text.get("parameters")), "text": text}


def comfyui(text: dict[str, str]) -> dict[str, Any] | None:
    prompt, workflow = _json(text.get("prompt")), _json(text.get("workflow"))
    if not isinstance(prompt, dict) and not isinstance(workflow, dict):
        return None
    return {"summary": _summary(prompt) if isinstance(prompt, dict) else {}, "prompt": prompt, "workflow": workflow}


def _summary(prompt: dict[str, Any]) -> dict[str, Any]:
    """The parameters a person looks for, from the nodes of a ComfyUI API prompt."""
    summary: dict[str, Any] = {}
    texts: list[str] = []
    for node in prompt.values():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        kind, inputs = str(node.get("class_type", "")), node["inputs"]
        if "KSampler" in kind:
            for key in ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"):
                if key in inputs and not isinstance(inputs[key], list):
                    summary.setdefault(key, inputs[key])
        elif "CLIPTextEncode" in kind and isinstance(inputs.get("text"), str):
            texts.append(inputs["text"])
        elif isinstance(inputs.get("ckpt_name"), str):
            summary.setdefault("model", inputs["ckpt_name"])
    if texts:
        summary["prompts"] = texts
    return summary


def a1111(parameters: str | None) -> dict[str, Any] | None:
    """A1111's ``parameters``: the prompt, "Negative prompt: ...", then a "Key: value, ..." line."""
    if not parameters:
        return None
    lines = parameters.strip().split("\n")
    settings_line = lines.pop() if len(lines) > 1 and re.match(r"^\s*Steps:", lines[-1]) else ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative, line = True, line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    settings = {m.group(1).strip(): m.group(2).strip().strip('"') for m in _A1111_SETTING.finditer(settings_line)}
    return {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative), "settings": settings}


def _user_comment(img: Image.Image) -> str | None:
    """A1111's parameters in a JPEG or WebP: the EXIF UserComment (an 8-byte charset tag, then text)."""
    raw = img.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if not isinstance(raw, bytes) or len(raw) <= 8 or len(raw) > MAX_CHUNK:
        return None
    tag, body = raw[:8], raw[8:]
    if tag.startswith(b"UNICODE"):
        # piexif (what A1111 uses) writes UTF-16 big-endian; some tools little-endian.
        encoding = "utf-16-le" if body[:1] != b"\x00" and body[1:2] == b"\x00" else "utf-16-be"
        return body.decode(encoding, errors="replace").rstrip("\x00") or None
    return body.decode("utf-8", errors="replace").rstrip("\x00") or None


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
