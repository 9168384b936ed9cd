#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: SD.Next
# aikore.category: Image generation
# aikore.description: SD.Next, the all-in-one WebUI for many diffusion models. Installs vladmandic/sdnext and torch 2.7.1 (CUDA 12.8) in a Python 3.12 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: SDNEXT_REF SD.Next's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   sdnext/   github.com/vladmandic/sdnext at SDNEXT_REF (the commit of the first clone stays until
#             AIKORE_UPDATE_APP=1 or SDNEXT_REF changes)
#   env/      Python 3.12 (uv): torch, torchvision, torchaudio pinned below, then requirements.txt
#             under those pins; SD.Next's launcher adds optional packages on first start
# Shares models/{Stable-diffusion,Lora,VAE,ESRGAN,ControlNet,embeddings} with $AIKORE_MODELS_DIR
# and writes outputs/ to $INSTANCE_OUTPUT_DIR.
# --subpath: Gradio builds its URLs under /app/<name> while serving at /; the proxy strips it.

SDNEXT_REF=${SDNEXT_REF:-master}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1 torchaudio==2.7.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/sdnext
aik_git_checkout https://github.com/vladmandic/sdnext.git "$app" "$SDNEXT_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.12
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements.txt

aik_link_models "$app/models" \
	Stable-diffusion=checkpoints Lora=loras VAE=vae ESRGAN=upscale_models \
	ControlNet=controlnet embeddings=embeddings
aik_link_dir "$INSTANCE_OUTPUT_DIR" "$app/outputs"

# --skip-git: never let the launcher update the pinned checkout; --skip-torch: torch is pinned above.
aik_launch python launch.py --server-name "$WEBUI_HOST" --port "$WEBUI_PORT" \
	--subpath "${AIKORE_ROOT_PATH#/}" --skip-git --skip-torch
