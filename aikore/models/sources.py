"""Where a download comes from: a direct link, Hugging Face or CivitAI, resolved to one file URL.

Base URLs are settings (``AIKORE_HF_ENDPOINT``, ``AIKORE_CIVITAI_ENDPOINT``) so tests answer for
those sites locally. Secrets (a Hugging Face token, a CivitAI API key) live in
``<data>/secrets/`` (mode 600); a download stores only which secret it uses, never the secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp

from aikore.errors import AikoreError, invalid
from aikore.http.secretfiles import write_private

HF_DEFAULT = "https://huggingface.co"
CIVITAI_DEFAULT = "https://civitai.com"
SECRET_NAMES = ("huggingface", "civitai")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_HF_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CIVITAI_MODEL = re.compile(r"^/models/(?P<id>\d+)")
_CIVITAI_DOWNLOAD = re.compile(r"^/api/download/models/(?P<id>\d+)")
_METADATA_TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass(frozen=True)
class Resolved:
    """One file to fetch: its URL, the secret it needs, and what the source said about it."""

    url: str
    source: str  # "direct", "huggingface" or "civitai"
    secret: str | None = None
    filename: str | None = None
    sha256: str | None = None
    size: int | None = None


class Secrets:
    """The access token and API key, one private file each; never returned, never logged."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, name: str) -> Path:
        if name not in SECRET_NAMES:
            raise AikoreError("not_found", f"secret {name[:40]!r} does not exist (use {', '.join(SECRET_NAMES)})", 404)
        return self.folder / name

    def get(self, name: str) -> str | None:
        try:
            return self._path(name).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        path = self._path(name)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, value.strip() + "\n")

    def clear(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def status(self) -> dict[str, bool]:
        return {name: self.get(name) is not None for name in SECRET_NAMES}

    def headers(self, name: str | None) -> dict[str, str]:
        value = self.get(name) if name else None
        return {"Authorization": f"Bearer {value}"} if value else {}


def check_http_url(url: object, field: str = "url") -> str:
    if not isinstance(url, str) or not url.strip():
        raise invalid(field, "must be a non-empty string")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(field, f"must be an http:// or https:// URL, got {url[:80]!r}")
    return url.strip()


def check_sha256(value: object) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _SHA256.match(value.strip()):
        raise invalid("sha256", "must be 64 hexadecimal digits")
    return value.strip().lower()


def filename_from_url(url: str) -> str | None:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    return name or None


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header gives (RFC 6266 ``filename*`` first), base name only."""
    if not header:
        return None
    msg = Message()
    msg["content-disposition"] = header
    name = msg.get_filename()
    if not name:
        return None
    name = PurePosixPath(name.replace("\\", "/")).name
    return name if name and not name.startswith(".") and "\0" not in name else None


class Sources:
    """Turns what a user typed into a ``Resolved`` file, asking CivitAI's API where needed."""

    def __init__(self, hf_endpoint: str, civitai_endpoint: str, secrets: Secrets) -> None:
        self.hf = hf_endpoint.rstrip("/")
        self.civitai = civitai_endpoint.rstrip("/")
        self.secrets = secrets

    async def resolve(self, spec: Mapping[str, object], session: aiohttp.ClientSession) -> Resolved:
        source = spec.get("source") or "url"
        if source == "huggingface" or (source == "url" and spec.get("repo")):
            return await self._huggingface(spec, session)
        if source == "civitai":
            return await self._civitai(spec, session)
        if source != "url":
            raise invalid("source", f"must be url, huggingface or civitai, got {str(source)[:40]!r}")
        url = check_http_url(spec.get("url"))
        host = urlsplit(url)
        if _same_site(url, self.hf) and _HF_RESOLVE.match(host.path):
            return await self._huggingface({**spec, "url": url}, session)
        if _same_site(url, self.civitai) and (_CIVITAI_MODEL.match(host.path) or _CIVITAI_DOWNLOAD.match(host.path)):
            return await self._civitai({**spec, "url": url}, session)
        return Resolved(url=url, source="direct", filename=filename_from_url(url))

    async def _huggingface(self, spec: Mapping[str, object], session: aiohttp.ClientSession) -> Resolved:
        if spec.get("repo"):
            repo, file = spec.get("repo"), spec.get("file")
            rev = spec.get("revision") or "main"
            if not isinstance(repo, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
                raise invalid("repo", "must look like owner/name")
            if not isinstance(file, str) or not file or ".." in file.split("/") or file.startswith("/"):
                raise invalid("file", "must be a path inside the repository")
            if not isinstance(rev, str) or "/" in rev or not rev:
                raise invalid("revision", "must be a branch, tag or commit")
            url = f"{self.hf}/{repo}/resolve/{rev}/{file}"
        else:
            url = check_http_url(spec.get("url"))
            if not _HF_RESOLVE.match(urlsplit(url).path):
                raise invalid("url", "a Hugging Face link must look like .../<owner>/<repo>/resolve/<revision>/<file>")
        sha256, size = await self._hf_metadata(url, session)
        return Resolved(
            url=url,
            source="huggingface",
            secret="huggingface",
            filename=filename_from_url(url),
            sha256=sha256,
            size=size,
        )

    async def _hf_metadata(self, url: str, session: aiohttp.ClientSession) -> tuple[str | None, int | None]:
        """Hugging Face answers a HEAD on ``resolve`` with the LFS file's sha256 in ``X-Linked-Etag``."""
        try:
            async with session.head(
                url, headers=self.secrets.headers("huggingface"), allow_redirects=False, timeout=_METADATA_TIMEOUT
            ) as resp:
                if resp.status in (401, 403):
                    raise AikoreError(
                        "source_refused",
                        f"Hugging Face refused {url} ({resp.status}): a gated repo needs an access token",
                        400,
                        field="url",
                    )
                if resp.status == 404:
                    raise AikoreError("source_not_found", f"Hugging Face has no file at {url}", 400, field="url")
                etag = (resp.headers.get("X-Linked-Etag") or resp.headers.get("ETag") or "").strip('W/"')
                size = resp.headers.get("X-Linked-Size")
        except aiohttp.ClientError as exc:
            raise AikoreError("source_unreachable", f"url: could not reach {url}: {exc}", 400, field="url") from None
        return (etag.lower() if _SHA256.match(etag) else None), (int(size) if size and size.isdigit() else None)

    async def _civitai(self, spec: Mapping[str, object], session: aiohttp.ClientSession) -> Resolved:
        version_id, model_id = _civitai_ids(spec)
        if version_id is None:
            model = await self._civitai_get(f"/api/v1/models/{model_id}", session)
            versions = model.get("modelVersions") or []
            if not versions or not isinstance(versions[0], dict) or "id" not in versions[0]:
                raise AikoreError("source_not_found", f"CivitAI model {model_id} has no versions", 400, field="url")
            version_id = int(versions[0]["id"])
        version = await self._civitai_get(f"/api/v1/model-versions/{version_id}", session)
        files = [f for f in version.get("files") or [] if isinstance(f, dict)]
        chosen = next((f for f in files if f.get("primary")), files[0] if files else {})
        hashes = chosen.get("hashes") or {}
        sha = hashes.get("SHA256") if isinstance(hashes, dict) else None
        url = (
            chosen.get("downloadUrl")
            or version.get("downloadUrl")
            or f"{self.civitai}/api/download/models/{version_id}"
        )
        size_kb = chosen.get("sizeKB")
        return Resolved(
            url=check_http_url(url),
            source="civitai",
            secret="civitai",
            filename=chosen.get("name") if isinstance(chosen.get("name"), str) else None,
            sha256=sha.lower() if isinstance(sha, str) and _SHA256.match(sha) else None,
            size=int(size_kb * 1024) if isinstance(size_kb, (int, float)) else None,
        )

    async def _civitai_get(self, path: str, session: aiohttp.ClientSession) -> dict:
        url = self.civitai + path
        try:
            async with session.get(url, headers=self.secrets.headers("civitai"), timeout=_METADATA_TIMEOUT) as resp:
                if resp.status in (401, 403):
                    raise AikoreError(
                        "source_refused",
                        f"CivitAI refused {path} ({resp.status}): an API key is needed",
                        400,
                        field="url",
                    )
                if resp.status == 404:
                    raise AikoreError("source_not_found", f"CivitAI has nothing at {path}", 400, field="url")
                if resp.status != 200:
                    raise AikoreError("source_error", f"CivitAI answered {resp.status} for {path}", 400, field="url")
                data = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise AikoreError("source_unreachable", f"url: could not reach CivitAI: {exc}", 400, field="url") from None
        except ValueError:
            raise AikoreError(
                "source_error", f"CivitAI answered {path} with something that is not JSON", 400, field="url"
            ) from None
        if not isinstance(data, dict):
            raise AikoreError("source_error", f"CivitAI answered {path} with something unexpected", 400, field="url")
        return data


def _civitai_ids(spec: Mapping[str, object]) -> tuple[int | None, int | None]:
    """(version id, model id) from a page URL, a download URL, or a bare id (a model id)."""
    for key in ("version_id", "model_id"):
        value = spec.get(key)
        if value not in (None, ""):
            if not str(value).isdigit():
                raise AikoreError("invalid_field", f"{key}: must be a number", 400, field=key)
            return (int(str(value)), None) if key == "version_id" else (None, int(str(value)))
    raw = spec.get("url")
    if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()):
        return None, int(str(raw).strip())
    url = check_http_url(raw)
    parts = urlsplit(url)
    if match := _CIVITAI_DOWNLOAD.match(parts.path):
        return int(match.group("id")), None
    if match := _CIVITAI_MODEL.match(parts.path):
        version = parse_qs(parts.query).get("modelVersionId", [""])[0]
        return (int(version), None) if version.isdigit() else (None, int(match.group("id")))
    raise invalid("url", "a CivitAI link must be a model page (.../models/<id>) or a download link")


def _same_site(url: str, endpoint: str) -> bool:
    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.hostname, a.port) == (b.hostname, b.port)
