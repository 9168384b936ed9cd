#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: AUTOMATIC1111
# aikore.category: Image generation
# aikore.description: The classic Stable Diffusion WebUI. Installs stable-diffusion-webui v1.10.1 and torch 2.1.2 (CUDA 12.1) in a Python 3.10 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: A1111_REF AUTOMATIC1111's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   stable-diffusion-webui/   github.com/AUTOMATIC1111/stable-diffusion-webui at A1111_REF
#   env/                      Python 3.10 (uv): torch, torchvision pinned below, then
#                             requirements_versions.txt under those pins; on its first start the
#                             WebUI's launch.py clones the helper repositories it needs
# Shares models/{Stable-diffusion,Lora,VAE,ESRGAN,ControlNet,hypernetworks} and embeddings/ with
# $AIKORE_MODELS_DIR and writes outputs/ to $INSTANCE_OUTPUT_DIR.
# --subpath makes Gradio build its URLs under /app/<name> while serving at /, so the proxy strips
# the prefix.

A1111_REF=${A1111_REF:-v1.10.1}
TORCH_PINS=(torch==2.1.2 torchvision==0.16.2)
export AIKORE_TORCH_INDEX=${AIKORE_TORCH_INDEX:-https://download.pytorch.org/whl/cu121}

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/stable-diffusion-webui
aik_git_checkout https://github.com/AUTOMATIC1111/stable-diffusion-webui.git "$app" "$A1111_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.10
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements_versions.txt

aik_link_models "$app" \
	models/Stable-diffusion=checkpoints models/Lora=loras models/VAE=vae \
	models/ESRGAN=upscale_models models/ControlNet=controlnet models/hypernetworks=hypernetworks \
	embeddings=embeddings
aik_link_dir "$INSTANCE_OUTPUT_DIR" "$app/outputs"

# Should launch.py ever judge torch missing, it reinstalls the same pinned build, not its own.
export TORCH_COMMAND="pip install ${AIK_TORCH_PINS[*]} --extra-index-url $AIKORE_TORCH_INDEX"
aik_launch python launch.py --server-name "$WEBUI_HOST" --port "$WEBUI_PORT" \
	--subpath "${AIKORE_ROOT_PATH#/}" --skip-python-version-check
