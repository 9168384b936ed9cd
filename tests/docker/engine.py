"""A Docker engine for the container tests: found or started, a stand-in base image, the image built.

The image is the shipped Dockerfile, built with one change at most: its base image. The public base
(`ARG BASE_IMAGE`'s default) is used when the engine has it or can pull it; where Docker Hub cannot
be reached, a Debian of the same release is bootstrapped with mmdebstrap from the machine's apt
mirror and imported. Where the machine reaches package registries through a CA of its own, that
CA bundle is added in a test-only layer on top of the base. Build and containers use host
networking, so they reach exactly what the machine reaches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
# Every container the tests start carries this label, valued with the pid of the pytest process that
# started it: a run removes its own containers, and those of runs that are gone, never another's.
LABEL = "org.aikore.test"
OWNER = str(os.getpid())
IMAGE = "aikore-test:latest"
CA_IN_IMAGE = "/usr/local/share/aikore-test/ca-bundle.crt"
# The variables pip, uv, requests, curl, git and node read a CA bundle from.
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO",
                "NODE_EXTRA_CA_CERTS")


@dataclass
class Docker:
    """The docker CLI, talking to one engine."""

    cli: str

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        # The classic builder: the same on Debian's engine and on Docker CE without buildx.
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        proc = subprocess.run([self.cli, *args], capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def answers(self) -> bool:
        try:
            return self("info", timeout=30, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def has_image(self, ref: str) -> bool:
        return self("image", "inspect", ref, check=False).returncode == 0

    def remove(self, *containers: str) -> None:
        """``docker rm -f``; a container already gone, or being removed, counts as removed."""
        if not containers:
            return
        proc = self("rm", "-f", *containers, timeout=180, check=False)
        errors = [line for line in proc.stderr.splitlines()
                  if line.strip() and "No such container" not in line and "already in progress" not in line]
        assert proc.returncode == 0 or not errors, f"docker rm -f {' '.join(containers)}:\n{proc.stderr}"

    def labelled_containers(self) -> dict[str, str]:
        """Every container the tests started (id -> owner pid), this run's and others'."""
        listed = self("ps", "-a", "--filter", f"label={LABEL}", "--format", f'{{{{.ID}}}} {{{{.Label "{LABEL}"}}}}')
        return dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)

    def remove_own_and_orphaned_containers(self) -> None:
        """This run's containers, and those whose run has ended (an interrupted one's leftovers)."""
        self.remove(*[cid for cid, owner in self.labelled_containers().items() if owner == OWNER or not _alive(owner)])

    def others_in_use(self) -> bool:
        """Whether another, still running, test run has containers on this engine."""
        return any(owner != OWNER and _alive(owner) for owner in self.labelled_containers().values())


def _alive(owner: str) -> bool:
    return owner.isdigit() and psutil.pid_exists(int(owner))


@dataclass
class Engine:
    """A docker CLI and, when these tests had to start it, the dockerd process they started."""

    docker: Docker
    dockerd: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        """Stop the dockerd started here, unless another test run still has containers on it."""
        if self.dockerd is None or self.dockerd.poll() is not None or self.docker.others_in_use():
            return
        self.dockerd.terminate()
        try:
            self.dockerd.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.dockerd.kill()
            self.dockerd.wait(timeout=30)


def open_engine(log: Path) -> Engine:
    """The engine the docker CLI reaches, or one started here (as root); skips where neither can be."""
    cli = shutil.which("docker")
    if cli is None:
        pytest.skip("no docker CLI: scripts/test-deps installs docker.io (as root)")
    docker = Docker(cli)
    if docker.answers():
        return Engine(docker)
    dockerd = shutil.which("dockerd")
    if os.geteuid() != 0 or dockerd is None:
        pytest.skip("no Docker engine answers, and starting dockerd needs root and the docker.io package")
    # Only host networking is used, so the engine leaves the machine's firewall and bridges alone.
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if docker.answers():
            return Engine(docker, proc)
        time.sleep(0.5)
    Engine(docker, proc).close()
    tail = log.read_text(errors="replace")[-2000:]
    pytest.skip(f"dockerd did not start (exit status {proc.returncode}); its log ends:\n{tail}")


def dockerfile_base() -> str:
    """The default of the Dockerfile's BASE_IMAGE argument, e.g. ``debian:bookworm-slim``."""
    found = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert found, "the Dockerfile declares ARG BASE_IMAGE=<image>"
    return found.group(1)


def release_of(base: str) -> str:
    """``debian:bookworm-slim`` -> ``bookworm``."""
    found = re.fullmatch(r"debian:([a-z]+)(?:-slim)?", base)
    assert found, f"the base image {base} is not a Debian release tag"
    return found.group(1)


def machine_ca_bundle() -> Path | None:
    """The CA bundle the machine's own tools are told to trust, when it has CAs beyond Debian's."""
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    local = Path("/usr/local/share/ca-certificates")
    if local.is_dir() and any(local.rglob("*.crt")):
        return Path("/etc/ssl/certs/ca-certificates.crt")
    return None


def stand_in_base(docker: Docker, workdir: Path) -> str:
    """The base image the test build uses: the public one, or a local bootstrap of its release."""
    public = dockerfile_base()
    if docker.has_image(public) or _pulled(docker, public):
        base = public
    else:
        base = f"aikore-test-base:{release_of(public)}"
        if not docker.has_image(base):
            bootstrap(docker, release_of(public), base, workdir)
    bundle = machine_ca_bundle()
    return with_ca_bundle(docker, base, bundle, workdir) if bundle else base


def _pulled(docker: Docker, ref: str) -> bool:
    try:
        return docker("pull", ref, timeout=120, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _host_debian_sources(release: str) -> list[str]:
    """The machine's own Debian mirror list, when the machine runs that release (else Debian's default)."""
    os_release = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if f"VERSION_CODENAME={release}" in os_release.split() and sources.is_file():
        return [str(sources)]
    return []


def bootstrap(docker: Docker, release: str, tag: str, workdir: Path) -> None:
    """Debian ``release`` as the slim image is made (minbase, no docs, man pages or locales), imported."""
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        pytest.skip(f"{dockerfile_base()} cannot be pulled and mmdebstrap is missing (scripts/test-deps installs it)")
    tarball = workdir / f"debian-{release}.tar"
    excludes = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
                "/usr/share/groff/*", "/usr/share/lintian/*"]
    options = [f"--dpkgopt=path-exclude={path}" for path in excludes]
    options += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", '--aptopt=Acquire::Languages "none"']
    proc = subprocess.run(
        [mmdebstrap, "--variant=minbase", *options, release, str(tarball), *_host_debian_sources(release)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"mmdebstrap failed:\n{proc.stderr[-4000:]}"
    docker("import", "--change", 'CMD ["bash"]', str(tarball), tag, timeout=300)
    tarball.unlink()


def with_ca_bundle(docker: Docker, base: str, bundle: Path, workdir: Path) -> str:
    """``base`` plus the machine's CA bundle, named by the variables TLS clients read (test-only layer)."""
    context = workdir / "ca-layer"
    context.mkdir(exist_ok=True)
    shutil.copyfile(bundle, context / "ca-bundle.crt")
    variables = " ".join(f"{name}={CA_IN_IMAGE}" for name in CA_VARIABLES)
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY ca-bundle.crt {CA_IN_IMAGE}\nENV {variables}\n")
    tag = f"aikore-test-base-ca:{base.rsplit(':', 1)[-1]}"
    docker("build", "--network", "host", "-t", tag, str(context), timeout=300)
    return tag


def build_image(docker: Docker, base: str, workdir: Path) -> str:
    """The shipped Dockerfile built on ``base``: the image's id (the tag may move to a later build)."""
    iidfile, log = workdir / "image.id", workdir / "build.log"
    args = ["build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "--iidfile", str(iidfile),
            "-t", IMAGE, str(REPO)]
    proc = docker(*args, timeout=1200, check=False)
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"docker build failed; the end of {log}:\n{(proc.stdout + proc.stderr)[-6000:]}"
    return iidfile.read_text().strip()
