"""``GET /api/cluster``: the Slurm cluster instances may run on - its partitions and nodes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aikore.api.common import json_response
from aikore.errors import AikoreError
from aikore.supervisor import SUPERVISOR
from aikore.supervisor.slurm import SlurmError


async def get_cluster(request: web.Request) -> web.Response:
    """Partitions (``sinfo``) and nodes (``scontrol show node``) as Slurm reports them now."""
    slurm = request.app[SUPERVISOR].slurm
    if slurm is None:
        return json_response({"enabled": False, "partitions": [], "nodes": []})
    try:
        partitions = await slurm.partitions()
        nodes = await slurm.nodes()
    except SlurmError as exc:
        raise AikoreError("slurm_unavailable", f"Slurm does not answer: {exc}", 503) from None
    return json_response({"enabled": True, "partitions": partitions, "nodes": nodes})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/cluster", get_cluster)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NULL_INT = {"type": ["integer", "null"]}
_NULL_NUMBER = {"type": ["number", "null"]}
OPENAPI_SCHEMAS: dict[str, Any] = {
    "Partition": {
        "type": "object",
        "required": ["name", "available", "nodes", "gpus_per_node", "time_limit"],
        "properties": {
            "name": {"type": "string", "description": "what an instance's slurm_partition names"},
            "available": {"type": "boolean"},
            "nodes": {"type": "integer"},
            "gpus_per_node": {"type": "integer"},
            "time_limit": {"type": "string", "description": "Slurm's form, e.g. infinite or 1-00:00:00"},
        },
    },
    "ClusterNode": {
        "type": "object",
        "required": ["name", "address", "state", "partitions", "gpus", "gpus_allocated"],
        "properties": {
            "name": {"type": "string"},
            "address": {"type": "string", "description": "NodeAddr: where the proxy reaches its instances"},
            "state": {"type": "string", "description": "Slurm's node state, lowercase (idle, mixed, down...)"},
            "partitions": {"type": "array", "items": {"type": "string"}},
            "cpus": _NULL_INT,
            "cpus_allocated": _NULL_INT,
            "cpu_load": _NULL_NUMBER,
            "memory_mb": _NULL_INT,
            "memory_free_mb": _NULL_INT,
            "gpus": {"type": "integer"},
            "gpus_allocated": {"type": "integer"},
            "reason": {"type": ["string", "null"], "description": "why the node is down or drained"},
        },
    },
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/cluster": {
        "get": {
            "summary": "The Slurm cluster (with --slurm): partitions instances may choose, and every node's "
            "CPUs, memory and GPUs in use",
            "responses": {
                "200": {
                    "description": "enabled is false (and the lists empty) without --slurm",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["enabled", "partitions", "nodes"],
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "partitions": {"type": "array", "items": _ref("Partition")},
                                    "nodes": {"type": "array", "items": _ref("ClusterNode")},
                                },
                            }
                        }
                    },
                },
                "503": {
                    "description": "Slurm's commands do not answer",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
    }
}
