#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Fooocus
# aikore.category: Image generation
# aikore.description: Prompt-focused SDXL image generator. Installs Fooocus v2.5.5 and torch 2.1.0 (CUDA 12.1) in a Python 3.10 uv environment. Opened on its public port.
# aikore.proxy: port-only
# aikore.health: /
# aikore.var: FOOOCUS_REF Fooocus' version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   Fooocus/   github.com/lllyasviel/Fooocus at FOOOCUS_REF
#   env/       Python 3.10 (uv): torch, torchvision pinned below, then requirements_versions.txt
#              under those pins
# Shares models/{checkpoints,loras,vae,embeddings,upscale_models,controlnet,clip_vision} with
# $AIKORE_MODELS_DIR and writes images to $INSTANCE_OUTPUT_DIR.
# Fooocus (Gradio 3) has no sub-path setting, so it is served on its public port at /.
# It is started with launch.py, not entry_with_update.py, which would pull the latest code.

FOOOCUS_REF=${FOOOCUS_REF:-v2.5.5}
TORCH_PINS=(torch==2.1.0 torchvision==0.16.0)
export AIKORE_TORCH_INDEX=${AIKORE_TORCH_INDEX:-https://download.pytorch.org/whl/cu121}

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/Fooocus
aik_git_checkout https://github.com/lllyasviel/Fooocus.git "$app" "$FOOOCUS_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.10
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements_versions.txt

aik_link_models "$app/models" \
	checkpoints=checkpoints loras=loras vae=vae embeddings=embeddings \
	upscale_models=upscale_models controlnet=controlnet clip_vision=clip_vision

aik_launch python launch.py --listen "$WEBUI_HOST" --port "$WEBUI_PORT" \
	--output-path "$INSTANCE_OUTPUT_DIR" --disable-in-browser
