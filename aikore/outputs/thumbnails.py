"""Thumbnails made once with Pillow and kept beside the instance's outputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image, ImageOps

SIZE = (384, 384)
# Under the instance folder, not the output folder: the apps never see (or list) them.
CACHE_DIR = ".thumbnails"


def thumbnail(instance_folder: Path, image: Path) -> Path:
    """The cached thumbnail of ``image`` (a JPEG), made now if it has none for this version."""
    st = image.stat()
    key = hashlib.sha256(f"{image}\0{st.st_mtime_ns}\0{st.st_size}".encode()).hexdigest()[:32]
    cache = instance_folder / CACHE_DIR
    target = cache / f"{key}.jpg"
    if target.exists():
        return target
    cache.mkdir(exist_ok=True)
    with Image.open(image) as img:
        img.seek(0)
        small = ImageOps.exif_transpose(img.convert("RGBA") if img.mode in ("P", "LA") else img)
        small.thumbnail(SIZE)
        if small.mode != "RGB":
            background = Image.new("RGB", small.size, (24, 24, 24))
            rgba = small.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            small = background
        temp = cache / f".{key}.{os.getpid()}.tmp"
        small.save(temp, "JPEG", quality=82)
    os.replace(temp, target)
    return target
