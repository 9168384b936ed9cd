#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: FluxGym
# aikore.category: Training
# aikore.description: Simple Flux LoRA trainer with low-VRAM presets. Installs cocktailpeanut/fluxgym, kohya-ss sd-scripts (sd3 branch) and torch 2.7.1 (CUDA 12.8) in a Python 3.11 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: FLUXGYM_REF FluxGym's version: a git tag, branch or commit
# aikore.var: SDSCRIPTS_REF sd-scripts' version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   fluxgym/              github.com/cocktailpeanut/fluxgym at FLUXGYM_REF (no release tags
#                         upstream: the commit of the first clone stays until AIKORE_UPDATE_APP=1)
#   fluxgym/sd-scripts/   github.com/kohya-ss/sd-scripts at SDSCRIPTS_REF
#   env/                  Python 3.11 (uv): torch, torchvision, torchaudio pinned below, then
#                         sd-scripts' and FluxGym's requirements under those pins
# Shares models/{clip,unet,vae} with $AIKORE_MODELS_DIR (FluxGym downloads Flux dev, CLIP-L, T5
# and the VAE there once) and writes outputs/ (trained LoRAs) to $INSTANCE_OUTPUT_DIR.
# FluxGym calls Gradio's launch() without arguments: host, port and root path come from the
# GRADIO_* variables, so it works under /app/<name>/ with the prefix stripped.

FLUXGYM_REF=${FLUXGYM_REF:-main}
SDSCRIPTS_REF=${SDSCRIPTS_REF:-sd3}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1 torchaudio==2.7.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/fluxgym
aik_git_checkout https://github.com/cocktailpeanut/fluxgym.git "$app" "$FLUXGYM_REF"
aik_git_checkout https://github.com/kohya-ss/sd-scripts.git "$app/sd-scripts" "$SDSCRIPTS_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.11
aik_torch "${TORCH_PINS[@]}"
# sd-scripts' requirements install "-e ." relative to its own folder.
cd "$app/sd-scripts"
aik_pip_requirements requirements.txt
cd "$app"
aik_pip_requirements requirements.txt

aik_link_models "$app/models" clip=clip unet=unet vae=vae
aik_link_dir "$INSTANCE_OUTPUT_DIR" "$app/outputs"

aik_gradio_env
aik_launch python app.py
