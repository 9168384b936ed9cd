#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: JupyterLab
# aikore.category: Development
# aikore.description: JupyterLab notebooks with a Python kernel on the instance's GPUs. Installs jupyterlab 4.4.10 and ipykernel from PyPI in a Python 3.12 uv environment (no torch: install what a notebook needs with %pip).
# aikore.proxy: keep-prefix
# aikore.health: /
# aikore.var: JUPYTERLAB_VERSION JupyterLab's version on PyPI
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   env/       Python 3.12 (uv): jupyterlab==JUPYTERLAB_VERSION and ipykernel from PyPI
#   jupyter/   Jupyter's config, data and runtime folders, private to this instance
# Notebooks live in $INSTANCE_OUTPUT_DIR/notebooks; $AIKORE_MODELS_DIR is reachable from it as
# models/.
# Jupyter serves everything under its base_url, so it is set to /app/<name>/ and the proxy keeps
# the prefix. AiKore's readiness probe asks for "/" without the prefix; Jupyter answers it with a
# 404 as soon as it listens, which is what the probe waits for.
# AiKore authenticates every request before it reaches Jupyter, so Jupyter's own token is off;
# its XSRF check stays on, and it listens on 127.0.0.1 only.

JUPYTERLAB_VERSION=${JUPYTERLAB_VERSION:-4.4.10}

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.12
aik_pip_install "jupyterlab==$JUPYTERLAB_VERSION" ipykernel

export JUPYTER_CONFIG_DIR=$INSTANCE_CONF_DIR/jupyter/config
export JUPYTER_DATA_DIR=$INSTANCE_CONF_DIR/jupyter/data
export JUPYTER_RUNTIME_DIR=$INSTANCE_CONF_DIR/jupyter/runtime
export IPYTHONDIR=$INSTANCE_CONF_DIR/jupyter/ipython
notebooks=$INSTANCE_OUTPUT_DIR/notebooks
mkdir -p "$notebooks"
aik_link_dir "$AIKORE_MODELS_DIR" "$notebooks/models"

# allow_remote_access: the proxy keeps the browser's Host header, which is not "localhost";
# trust_xheaders: links and redirects follow the X-Forwarded-Proto/Host that AiKore sets;
# --allow-root: Jupyter refuses root without it, and AiKore run as root runs its instances so.
as_root=()
if [[ $EUID == 0 ]]; then
	as_root=(--allow-root)
fi
aik_launch jupyter lab --no-browser --ip="$WEBUI_HOST" --port="$WEBUI_PORT" \
	--ServerApp.base_url="$AIKORE_ROOT_PATH/" --ServerApp.root_dir="$notebooks" \
	--IdentityProvider.token= --ServerApp.allow_remote_access=True \
	--ServerApp.trust_xheaders=True "${as_root[@]}"
