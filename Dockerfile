# AiKore on an NVIDIA CUDA runtime base, supervised by s6-overlay.
#   docker compose up -d        (see docker-compose.yml and the README's "Docker" section)
# The CUDA runtime comes from the base image; each blueprint installs its own torch build, with the
# CUDA libraries it needs, into its instance's environment, so the host needs only the NVIDIA driver
# and the NVIDIA Container Toolkit.
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

ARG S6_OVERLAY_VERSION=3.2.1.0
ARG UV_VERSION=0.13.8

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# What blueprints and persistent mode need:
#   git, git-lfs, build-essential, python3-dev   cloning apps, building wheels without binaries
#   libgl1, libglib2.0-0, ffmpeg                 OpenCV and video nodes in the image apps
#   nodejs, npm                                  AI-Toolkit's web UI
#   xvfb, openbox, chromium, python3-tk, fonts   persistent mode: a virtual X display, a window
#                                                manager and the browser AiKore opens the app in
#                                                (desktop apps such as OneTrainer draw there too);
#                                                Ubuntu's own chromium is a snap, which cannot run in
#                                                a container, so it comes from the xtradeb PPA's .deb
#   curl                                         the HEALTHCHECK
#   xz-utils                                     unpacking s6-overlay
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl gnupg software-properties-common tzdata xz-utils \
    && add-apt-repository -y ppa:xtradeb/apps \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        git git-lfs build-essential pkg-config \
        python3 python3-venv python3-dev python3-tk \
        libgl1 libglib2.0-0 ffmpeg \
        nodejs npm \
        xvfb openbox chromium dbus-x11 fonts-dejavu-core \
        libxtst6 libxfixes3 libxrandr2 libxdamage1 \
    && rm -rf /var/lib/apt/lists/*

# s6-overlay as PID 1: reaps orphans, runs the init step, supervises AiKore and stops it gracefully.
ADD https://github.com/just-containers/s6-overlay/releases/download/v${S6_OVERLAY_VERSION}/s6-overlay-noarch.tar.xz /tmp/
ADD https://github.com/just-containers/s6-overlay/releases/download/v${S6_OVERLAY_VERSION}/s6-overlay-x86_64.tar.xz /tmp/
RUN tar -C / -Jxpf /tmp/s6-overlay-noarch.tar.xz \
    && tar -C / -Jxpf /tmp/s6-overlay-x86_64.tar.xz \
    && rm /tmp/s6-overlay-*.tar.xz

# The unprivileged user AiKore and its instances run as; init-aikore remaps it to PUID/PGID at
# start. Ubuntu's image ships a "ubuntu" user holding uid 1000, the usual PUID.
RUN userdel --remove ubuntu \
    && groupadd --gid 1000 aikore \
    && useradd --uid 1000 --gid aikore --home-dir /config/home --no-create-home --shell /bin/bash aikore

# AiKore in its own environment, with the [persistent] extra (the Selkies desktop streamer); uv
# there too, since every blueprint makes its instance's environment with it. The source tree stays beside it: blueprints source blueprints/lib from it.
WORKDIR /opt/aikore
COPY pyproject.toml README.md ./src/
COPY aikore ./src/aikore
COPY proxy ./src/proxy
COPY static ./src/static
COPY blueprints ./src/blueprints
RUN python3 -m venv /opt/aikore/venv \
    && /opt/aikore/venv/bin/pip install --no-cache-dir "uv==${UV_VERSION}" "./src[persistent]"

COPY docker/rootfs/ /

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
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    S6_BEHAVIOUR_IF_STAGE2_FAILS=2 \
    S6_CMD_WAIT_FOR_SERVICES_MAXTIME=0 \
    S6_SERVICES_GRACETIME=60000 \
    S6_KILL_GRACETIME=5000

VOLUME ["/config"]
EXPOSE 9000 19001-19020

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/bin/bash", "-c", "curl -fsS \"http://127.0.0.1:${AIKORE_PORT}/api/health\" || exit 1"]

ENTRYPOINT ["/init"]
