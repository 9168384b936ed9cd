#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Stable Diffusion WebUI Forge
# aikore.category: Image generation
# aikore.description: Forge, the faster A1111-style WebUI with Flux support. Installs stable-diffusion-webui-forge and torch 2.3.1 (CUDA 12.1) in a Python 3.10 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: FORGE_REF Forge's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   stable-diffusion-webui-forge/   github.com/lllyasviel/stable-diffusion-webui-forge at FORGE_REF
#                                   (no release tags upstream: the commit of the first clone stays
#                                   until AIKORE_UPDATE_APP=1 or FORGE_REF changes)
#   env/                            Python 3.10 (uv): torch, torchvision pinned below, then
#                                   requirements_versions.txt under those pins
# Shares models/{Stable-diffusion,Lora,VAE,ESRGAN,ControlNet,text_encoder} and embeddings/ with
# $AIKORE_MODELS_DIR and writes outputs/ to $INSTANCE_OUTPUT_DIR.
# --subpath: Gradio builds its URLs under /app/<name> while serving at /; the proxy strips it.

FORGE_REF=${FORGE_REF:-main}
TORCH_PINS=(torch==2.3.1 torchvision==0.18.1)
export AIKORE_TORCH_INDEX=${AIKORE_TORCH_INDEX:-https://download.pytorch.org/whl/cu121}

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/stable-diffusion-webui-forge
aik_git_checkout https://github.com/lllyasviel/stable-diffusion-webui-forge.git "$app" "$FORGE_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.10
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements_versions.txt

aik_link_models "$app" \
	models/Stable-diffusion=checkpoints models/Lora=loras models/VAE=vae \
	models/ESRGAN=upscale_models models/ControlNet=controlnet models/text_encoder=text_encoders \
	embeddings=embeddings
aik_link_dir "$INSTANCE_OUTPUT_DIR" "$app/outputs"

# Should launch.py ever judge torch missing, it reinstalls the same pinned build, not its own.
export TORCH_COMMAND="pip install ${AIK_TORCH_PINS[*]} --extra-index-url $AIKORE_TORCH_INDEX"
aik_launch python launch.py --server-name "$WEBUI_HOST" --port "$WEBUI_PORT" \
	--subpath "${AIKORE_ROOT_PATH#/}" --skip-python-version-check
