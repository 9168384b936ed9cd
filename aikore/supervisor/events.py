"""The supervisor's domain events: what happened to an instance, as objects, never as JSON.

Listeners derive their own state from these (the proxy's route table, the desktops' routes, the
monitor's metric labels); the API turns them into JSON for browsers at its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from aikore.store.instance import Instance
from aikore.store.variables import Variable
from aikore.supervisor.phases import Progress


@dataclass(frozen=True, slots=True)
class Runtime:
    """How the instance is served, from its own launch.sh header (edits take effect), and where
    its start is: the install phase its script reported (``starting``), or failed in (``error``)."""

    proxy_mode: str = "strip-prefix"
    health: str = "/"
    progress: Progress | None = None
    # The blueprint variables its launch.sh declares, with their values there.
    variables: tuple[Variable, ...] = ()


@dataclass(frozen=True, slots=True)
class InstanceChanged:
    """Created, or its state or settings changed."""

    instance: Instance
    runtime: Runtime


@dataclass(frozen=True, slots=True)
class InstanceRenamed:
    """Its name changed (same id, same process); ``old_name`` is gone from every table."""

    old_name: str
    instance: Instance
    runtime: Runtime


@dataclass(frozen=True, slots=True)
class InstanceDeleted:
    """Its row is gone and its folder moved to the trash; nothing of it runs."""

    instance: Instance


InstanceEvent = InstanceChanged | InstanceRenamed | InstanceDeleted
