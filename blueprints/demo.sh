#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Demo
# aikore.category: Example
# aikore.description: Offline demo app shipped with AiKore: a page, a websocket echo, an SSE ticker and an upload form. Installs nothing.
# aikore.proxy: strip-prefix
# aikore.health: /health
### AIKORE-METADATA-END ###
# Runs with the Python that runs AiKore (AIKORE_PYTHON), so it works on a fresh machine offline.
set -euo pipefail
echo "demo: starting ${INSTANCE_NAME:-demo} on ${WEBUI_HOST:-127.0.0.1}:${WEBUI_PORT:-7860}"
exec "${AIKORE_PYTHON:-python3}" -m aikore.demo --host "${WEBUI_HOST:-127.0.0.1}" --port "${WEBUI_PORT:-7860}"
