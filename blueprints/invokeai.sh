#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: InvokeAI
# aikore.category: Image generation
# aikore.description: Canvas-centred creative engine for SD and Flux. Installs invokeai 5.6.0 from PyPI and torch 2.4.1 (CUDA 12.4) in a Python 3.11 uv environment. Opened on its public port.
# aikore.proxy: port-only
# aikore.health: /
# aikore.var: INVOKEAI_VERSION InvokeAI's version on PyPI
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   env/        Python 3.11 (uv): torch, torchvision pinned below, then invokeai==INVOKEAI_VERSION
#               from PyPI under those pins
#   invokeai/   InvokeAI's root: invokeai.yaml, its database and its model store
# Images go to $INSTANCE_OUTPUT_DIR. InvokeAI keeps its own model database: add shared models with
# its Model Manager's "Scan Folder" pointed at $AIKORE_MODELS_DIR (it links, it does not copy).
# The web app requests absolute paths (/api/..., /ws), so it is served on its public port at /.

INVOKEAI_VERSION=${INVOKEAI_VERSION:-5.6.0}
TORCH_PINS=(torch==2.4.1 torchvision==0.19.1)
export AIKORE_TORCH_INDEX=${AIKORE_TORCH_INDEX:-https://download.pytorch.org/whl/cu124}

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.11
aik_torch "${TORCH_PINS[@]}"
aik_pip_install "invokeai==$INVOKEAI_VERSION"

# InvokeAI reads any setting of invokeai.yaml from INVOKEAI_<NAME>.
export INVOKEAI_ROOT=$INSTANCE_CONF_DIR/invokeai
export INVOKEAI_HOST=$WEBUI_HOST
export INVOKEAI_PORT=$WEBUI_PORT
export INVOKEAI_OUTPUTS_DIR=$INSTANCE_OUTPUT_DIR
mkdir -p "$INVOKEAI_ROOT"
aik_launch invokeai-web --root "$INVOKEAI_ROOT"
