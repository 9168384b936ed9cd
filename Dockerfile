# AiKore on Debian 12 (bookworm), supervised by Debian's s6.
#   docker compose up -d        (see docker-compose.yml and the README's "Docker" section)
# Everything comes from Debian packages and PyPI, so the image builds wherever those two are
# reachable. There is no CUDA base image: each blueprint installs its own torch build, whose wheels
# bring the CUDA libraries it needs, and the NVIDIA Container Toolkit injects the driver and NVML
# at run time (`--gpus all`, or the compose file's `deploy` block).
# BASE_IMAGE: any Debian bookworm image (the tests pass one bootstrapped locally with mmdebstrap).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG UV_VERSION=0.13.9

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# What AiKore, blueprints and persistent mode need:
#   s6                                           the supervision tree: s6-svscan as PID 1 restarts
#                                                AiKore if it dies and stops it on `docker stop`
#   python3, python3-venv                        AiKore's own environment (Python 3.11)
#   git, git-lfs, build-essential, python3-dev   cloning apps, building wheels without binaries
#   libgl1, libglib2.0-0, ffmpeg                 OpenCV and video nodes in the image apps
#   nodejs, npm                                  AI-Toolkit's web UI
#   xvfb, openbox, chromium, python3-tk, fonts   persistent mode: a virtual X display, a window
#                                                manager and the browser AiKore opens the app in
#                                                (desktop apps such as OneTrainer draw there too);
#                                                Debian's chromium is a plain .deb
#   libxtst6 ... libxdamage1                     what Selkies' screen capture loads
#   curl                                         the HEALTHCHECK
#   tzdata, procps, ca-certificates              TZ, ps/kill for whoever debugs, TLS for downloads
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        s6 ca-certificates curl tzdata procps \
        git git-lfs build-essential pkg-config \
        python3 python3-venv python3-dev python3-tk \
        libgl1 libglib2.0-0 ffmpeg \
        nodejs npm \
        xvfb openbox chromium dbus-x11 fonts-dejavu-core \
        libxtst6 libxfixes3 libxrandr2 libxdamage1 \
    && rm -rf /var/lib/apt/lists/*

# The unprivileged user AiKore and its instances run as; init-aikore remaps it to PUID/PGID at start.
RUN groupadd --gid 1000 aikore \
    && useradd --uid 1000 --gid aikore --home-dir /config/home --no-create-home --shell /bin/bash aikore

# AiKore in its own environment with the [persistent] extra (the Selkies desktop streamer), and uv
# there too, since every blueprint makes its instance's environment with it. The dependencies are
# a layer of their own, rebuilt only when pyproject.toml changes. The source tree stays beside the
# environment: blueprints source blueprints/lib from it (AIKORE_BLUEPRINTS_LIB).
WORKDIR /opt/aikore
RUN python3 -m venv /opt/aikore/venv \
    && /opt/aikore/venv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
COPY pyproject.toml ./src/
RUN /opt/aikore/venv/bin/uv pip install --python /opt/aikore/venv/bin/python --no-cache \
        --requirements ./src/pyproject.toml --extra persistent
COPY README.md ./src/
COPY aikore ./src/aikore
COPY proxy ./src/proxy
COPY static ./src/static
COPY blueprints ./src/blueprints
RUN /opt/aikore/venv/bin/uv pip install --python /opt/aikore/venv/bin/python --no-cache --no-deps ./src

COPY docker/rootfs/ /

# NVIDIA_*: what the NVIDIA Container Toolkit mounts in: CUDA and NVML (compute, utility), and the
# OpenGL and NVENC libraries a persistent desktop's browser and Selkies' encoder use (graphics, video).
ENV PATH="/opt/aikore/venv/bin:${PATH}" \
    AIKORE_PYTHON=/opt/aikore/venv/bin/python \
    AIKORE_BLUEPRINTS_LIB=/opt/aikore/src/blueprints/lib \
    AIKORE_HOST=0.0.0.0 \
    AIKORE_PORT=9000 \
    AIKORE_DATA_DIR=/config \
    AIKORE_PUBLIC_PORTS=19001-19020 \
    PUID=1000 \
    PGID=1000 \
    TZ=Etc/UTC \
    UV_CACHE_DIR=/config/cache/uv \
    UV_PYTHON_INSTALL_DIR=/config/cache/python \
    npm_config_cache=/config/cache/npm \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics,video

VOLUME ["/config"]
EXPOSE 9000 19001-19020

HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/bin/bash", "-c", "curl -fsS \"http://127.0.0.1:${AIKORE_PORT}/api/health\" || exit 1"]

# Runs init-aikore as root, then becomes s6-svscan (PID 1), which supervises AiKore.
ENTRYPOINT ["/usr/local/sbin/aikore-entrypoint"]
