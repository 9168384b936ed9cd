"""One AiKore container on host networking, and the ways the tests look into it."""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.docker.engine import LABEL, OWNER, Docker
from tests.helpers import AikoreProcess, free_port, wait_until

LOGIN_URL = re.compile(r"AiKore login URL: (http://\S+/\?token=([0-9a-f]+))")
# s6's view of the AiKore service inside the container (aikore-entrypoint copies the tree there).
SERVICE = "/run/aikore/s6/aikore"


def free_port_range(count: int) -> tuple[int, int]:
    """``count`` consecutive loopback ports that are free now (the public-port pool of a container)."""
    for _ in range(50):
        first = free_port()
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first, first + count - 1
    raise AssertionError(f"no {count} consecutive free ports found")


@dataclass
class Process:
    """A process of the container as the host sees it."""

    pid: int
    uid: int
    gid: int
    args: str

    @property
    def role(self) -> str:
        """``supervisor`` (s6), ``aikore``, or ``instance`` (everything AiKore started)."""
        if self.args.startswith(("s6-svscan", "s6-supervise")):
            return "supervisor"
        return "aikore" if self.args.endswith("/bin/aikore") else "instance"


@dataclass
class Container:
    """An AiKore container: its name, its /config on the host, and AiKore's port on loopback."""

    docker: Docker
    name: str
    config: Path
    port: int

    def logs(self) -> str:
        proc = self.docker("logs", self.name)
        return proc.stdout + proc.stderr

    def login_url(self) -> tuple[str, str]:
        """The login URL AiKore printed to the container's log, and its token (the last one printed)."""
        found = wait_until(lambda: LOGIN_URL.findall(self.logs()), timeout=60, what="the login URL in docker logs")
        return found[-1]

    def api(self) -> AikoreProcess:
        """AiKore's API through the container's port, with the token from the login URL."""
        return AikoreProcess(data_dir=self.config, port=self.port, token=self.login_url()[1])

    def inspect(self, template: str) -> str:
        return self.docker("inspect", "-f", template, self.name).stdout.strip()

    def exec(self, *command: str) -> str:
        return self.docker("exec", self.name, *command).stdout

    def aikore_pid(self) -> int:
        """AiKore's pid inside the container, as s6 supervises it (0 while it is down)."""
        return int(self.exec("s6-svstat", "-o", "pid", SERVICE).strip() or 0)

    def processes(self) -> list[Process]:
        out = self.docker("top", self.name, "-eo", "pid,uid,gid,args").stdout.splitlines()[1:]
        return [Process(int(pid), int(uid), int(gid), args) for pid, uid, gid, args in
                (line.split(None, 3) for line in out)]

    def wait_healthy(self) -> None:
        """Until AiKore answers /api/health through the container's port."""
        wait_until(lambda: self.api().request("GET", "/api/health", auth=False).status == 200, timeout=90,
                   interval=0.5, what=f"AiKore in {self.name} to answer /api/health")


def run_container(docker: Docker, image: str, config: Path, env: dict[str, str] | None = None) -> Container:
    """Start the image as a user would, but on host networking with free ports; wait for AiKore."""
    config.mkdir(parents=True, exist_ok=True)
    port = free_port()
    first, last = free_port_range(2)
    name = f"aikore-test-{uuid.uuid4().hex[:10]}"
    variables = {"AIKORE_PORT": str(port), "AIKORE_PUBLIC_PORTS": f"{first}-{last}", **(env or {})}
    options = [item for key, value in variables.items() for item in ("-e", f"{key}={value}")]
    docker("run", "-d", "--name", name, "--label", f"{LABEL}={OWNER}", "--network", "host", "--shm-size", "1g",
           *options, "-v", f"{config}:/config", image)
    container = Container(docker, name, config, port)
    container.wait_healthy()
    return container


def start_demo(api: AikoreProcess, name: str, **fields: Any) -> dict[str, Any]:
    """Create an instance of the demo blueprint, start it and wait until it runs."""
    created = api.request("POST", "/api/instances", {"name": name, "blueprint": "demo", **fields})
    assert created.status == 201, created.body
    instance_id = created.json()["id"]
    started = api.request("POST", f"/api/instances/{instance_id}/start")
    assert started.status == 200, started.body

    def running() -> dict[str, Any] | None:
        data = api.request("GET", f"/api/instances/{instance_id}").json()
        assert data["status"] in ("starting", "running"), data
        return data if data["status"] == "running" else None

    return wait_until(running, timeout=120, interval=0.25, what=f"instance {name} to run")
