"""App versions of instances: what each runs, newer releases, updates with a snapshot, rollbacks.

``setup_versions(app)`` puts the ``Updater`` on the application; its cleanup context cancels a
running update or rollback (killing its git or uv) before the supervisor stops the instances.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from aikore.config import SETTINGS
from aikore.store import WORKSPACE
from aikore.supervisor import SUPERVISOR
from aikore.versions.updater import Updater

VERSIONS = web.AppKey("versions", Updater)


def setup_versions(app: web.Application) -> None:
    app[VERSIONS] = Updater(app[SETTINGS], app[SUPERVISOR], app[WORKSPACE])
    app.cleanup_ctx.append(_versions_ctx)


async def _versions_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[VERSIONS].close()
