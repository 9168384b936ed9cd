"""What runs first inside an instance's Slurm batch job, on the compute node: find the address, pick a port.

The launch script's environment contract says ``WEBUI_HOST``/``WEBUI_PORT`` are where the app
listens. On a node that is the node's own address (AiKore passes the cluster's ``NodeAddr`` map,
since a test cluster's nodes share one host name) and a port free there, which only the node can
tell. This program picks both, writes them to the endpoint file AiKore reads (on the shared data
dir, written whole by a rename so a half-written file is never read), and execs the logwriter
that runs ``launch.sh``. Stdlib only and run by file path (``python -I``), like the logwriter.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path


def node_address(node: str, addresses: dict[str, str]) -> str:
    """The address this node is reached at: Slurm's NodeAddr, else what its name resolves to."""
    if node in addresses:
        return addresses[node]
    try:
        return socket.gethostbyname(node)
    except OSError:
        return socket.gethostbyname(socket.gethostname())


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_endpoint(path: Path, endpoint: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(endpoint))
    os.replace(part, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", type=Path, required=True)
    parser.add_argument("--addresses", default="", help="node=address,... (Slurm's NodeAddr of each node)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    addresses = dict(pair.split("=", 1) for pair in args.addresses.split(",") if "=" in pair)
    node = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    host = node_address(node, addresses)
    port = free_port(host)
    os.environ.update({"WEBUI_HOST": host, "WEBUI_PORT": str(port)})
    job = os.environ.get("SLURM_JOB_ID", "")
    # The pid is the logwriter's once this process execs it: its phase file names that pid.
    write_endpoint(args.endpoint, {"job": job, "node": node, "host": host, "port": port, "pid": os.getpid()})
    print(f"aikore: Slurm job {job} on {node}, the app listens on {host}:{port}", flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
