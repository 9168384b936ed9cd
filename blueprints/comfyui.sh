#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: ComfyUI
# aikore.category: Image generation
# aikore.description: Node-based Stable Diffusion / Flux UI with ComfyUI-Manager. Installs ComfyUI v0.3.64, ComfyUI-Manager and torch 2.7.1 (CUDA 12.8) in a Python 3.12 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: COMFYUI_REF ComfyUI's version: a git tag, branch or commit
# aikore.var: MANAGER_REF ComfyUI-Manager's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   ComfyUI/                         github.com/comfyanonymous/ComfyUI at COMFYUI_REF
#   ComfyUI/custom_nodes/ComfyUI-Manager   github.com/ltdrdata/ComfyUI-Manager at MANAGER_REF
#   env/                             Python 3.12 (uv): torch, torchvision, torchaudio pinned below,
#                                    then ComfyUI's and the Manager's requirements under those pins
# Shares ComfyUI/models/* with $AIKORE_MODELS_DIR/* and writes images to $INSTANCE_OUTPUT_DIR.
# ComfyUI builds every URL relative to the page, so it works under /app/<name>/ as it is.

COMFYUI_REF=${COMFYUI_REF:-v0.3.64}
MANAGER_REF=${MANAGER_REF:-main}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1 torchaudio==2.7.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/ComfyUI
manager=$app/custom_nodes/ComfyUI-Manager
aik_git_checkout https://github.com/comfyanonymous/ComfyUI.git "$app" "$COMFYUI_REF"
aik_git_checkout https://github.com/ltdrdata/ComfyUI-Manager.git "$manager" "$MANAGER_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.12
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements.txt "$manager/requirements.txt"

aik_link_models "$app/models" \
	checkpoints=checkpoints loras=loras vae=vae controlnet=controlnet embeddings=embeddings \
	upscale_models=upscale_models clip=clip clip_vision=clip_vision unet=unet \
	diffusion_models=diffusion_models text_encoders=text_encoders hypernetworks=hypernetworks \
	vae_approx=vae_approx

aik_launch python main.py --listen "$WEBUI_HOST" --port "$WEBUI_PORT" \
	--output-directory "$INSTANCE_OUTPUT_DIR"
