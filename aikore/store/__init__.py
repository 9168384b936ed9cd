"""The store: SQLite, the instance model, instance folders and blueprints.

``setup_store(app, settings)`` puts the three on the application and opens the database for its
lifetime (after making the data dir's folders). Folders a crash left half-created or half-deleted
are finished by the supervisor at its start, which knows the rows they belong to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from aikore.config import Settings
from aikore.resources import builtin_blueprints_dir
from aikore.store.blueprints import BlueprintCatalog, CustomBlueprints
from aikore.store.db import Store
from aikore.store.private import private_data_dir
from aikore.store.workspace import Workspace

STORE = web.AppKey("store", Store)
WORKSPACE = web.AppKey("workspace", Workspace)
BLUEPRINTS = web.AppKey("blueprints", BlueprintCatalog)
CUSTOM_BLUEPRINTS = web.AppKey("custom_blueprints", CustomBlueprints)


def setup_store(app: web.Application, settings: Settings) -> None:
    app[STORE] = Store(settings.db_path, settings.instances_dir, settings.data_dir / "backups")
    app[WORKSPACE] = Workspace(settings.instances_dir, settings.data_dir / "trash")
    app[BLUEPRINTS] = BlueprintCatalog(builtin_blueprints_dir(), settings.blueprints_dir or settings.data_dir)
    app[CUSTOM_BLUEPRINTS] = CustomBlueprints(app[BLUEPRINTS], settings.data_dir / "trash")

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        for folder in (settings.data_dir, settings.instances_dir, settings.models_dir, settings.blueprints_dir):
            assert folder is not None
            folder.mkdir(parents=True, exist_ok=True)
        # Whatever the umask: the token, the database and every instance's logs live in here.
        private_data_dir(settings.data_dir, settings.instances_dir)
        await app[STORE].open()
        yield
        await app[STORE].close()

    app.cleanup_ctx.append(store_ctx)
