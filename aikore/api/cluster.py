"""``GET /api/cluster``: the Slurm cluster instances may run on - its partitions, nodes and AiKore's jobs."""

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
        return json_response({"enabled": False, "partitions": [], "nodes": [], "jobs": []})
    try:
        partitions = await slurm.partitions()
        nodes = await slurm.nodes()
        jobs = await slurm.jobs()
    except SlurmError as exc:
        raise AikoreError("slurm_unavailable", f"Slurm does not answer: {exc}", 503) from None
    return json_response({"enabled": True, "partitions": partitions, "nodes": nodes, "jobs": jobs})


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
OPENAPI_SCHEMAS["ClusterJob"] = {
    "type": "object",
    "required": ["job_id", "name", "state", "node", "reason", "cpu_seconds", "memory_bytes"],
    "properties": {
        "job_id": {"type": "integer"},
        "name": {"type": "string", "description": "aikore-<instance name>"},
        "state": {"type": "string", "description": "Slurm's job state, lowercase (pending, running...)"},
        "node": {"type": ["string", "null"]},
        "reason": {"type": ["string", "null"], "description": "why a pending job waits"},
        "cpu_seconds": {**_NULL_NUMBER, "description": "CPU time of the job's processes (sstat; null without "
                        "job accounting on the nodes)"},
        "memory_bytes": {**_NULL_INT, "description": "peak memory of the job's processes (sstat MaxRSS)"},
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
                                "required": ["enabled", "partitions", "nodes", "jobs"],
                                "properties": {
                                    "enabled": {"type": "boolean"},
                                    "partitions": {"type": "array", "items": _ref("Partition")},
                                    "nodes": {"type": "array", "items": _ref("ClusterNode")},
                                    "jobs": {"type": "array", "items": _ref("ClusterJob")},
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
