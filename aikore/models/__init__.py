"""The shared model library: the tree under ``models_dir`` and downloads into it.

``setup_models(app, settings)`` puts the library, the secrets and the download queue on the
application; the queue's workers and HTTP session live in its cleanup context, so unfinished
downloads stop with AiKore and resume at its next start. Where Hugging Face and CivitAI are
reached is ``AIKORE_HF_ENDPOINT`` / ``AIKORE_CIVITAI_ENDPOINT`` (tests point them at local servers).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from aikore.config import Settings
from aikore.events import EVENTS
from aikore.models.downloads import Downloads
from aikore.models.library import ModelLibrary
from aikore.models.sources import CIVITAI_DEFAULT, HF_DEFAULT, Secrets, Sources

LIBRARY = web.AppKey("model_library", ModelLibrary)
SOURCES = web.AppKey("model_sources", Sources)
DOWNLOADS = web.AppKey("model_downloads", Downloads)
# Downloads at once; the rest wait in the queue.
CONCURRENT_DOWNLOADS = 2


def setup_models(app: web.Application, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    assert settings.models_dir is not None
    data = settings.data_dir
    library = ModelLibrary(settings.models_dir, data / "trash", data / "models-index.json")
    secrets = Secrets(data / "secrets")
    app[LIBRARY] = library
    app[SOURCES] = Sources(
        env.get("AIKORE_HF_ENDPOINT") or HF_DEFAULT, env.get("AIKORE_CIVITAI_ENDPOINT") or CIVITAI_DEFAULT, secrets
    )
    app[DOWNLOADS] = Downloads(library, secrets, data / "downloads.json", app[EVENTS], CONCURRENT_DOWNLOADS)

    async def models_ctx(app: web.Application) -> AsyncIterator[None]:
        await app[DOWNLOADS].start()
        yield
        await app[DOWNLOADS].stop()

    app.cleanup_ctx.append(models_ctx)
