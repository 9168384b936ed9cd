#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: OneTrainer
# aikore.category: Training
# aikore.description: OneTrainer, a desktop trainer for SD, SDXL, Flux and more. Needs persistent mode (its window is shown on the instance's desktop). Installs Nerogar/OneTrainer and torch 2.7.1 (CUDA 12.8) in a Python 3.12 uv environment.
# aikore.proxy: port-only
# aikore.health: /
# aikore.desktop: true
# aikore.var: ONETRAINER_REF OneTrainer's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   OneTrainer/   github.com/Nerogar/OneTrainer at ONETRAINER_REF (no release tags upstream: the
#                 commit of the first clone stays until AIKORE_UPDATE_APP=1)
#   env/          Python 3.12 (uv, which ships tkinter): torch, torchvision pinned below, then
#                 requirements-global.txt under those pins
# Base models come from $AIKORE_MODELS_DIR or the shared Hugging Face cache; its workspace and
# trained models go to $INSTANCE_OUTPUT_DIR (workspace/ and models/ are linked there).
# OneTrainer is a Tk desktop program, not a web app: in persistent mode AiKore gives the instance
# an X display (DISPLAY) and streams that desktop to the browser.

ONETRAINER_REF=${ONETRAINER_REF:-master}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

[[ -n ${DISPLAY:-} ]] ||
	aik_die "OneTrainer is a desktop app: start this instance in persistent mode (no DISPLAY)"

app=$INSTANCE_CONF_DIR/OneTrainer
aik_git_checkout https://github.com/Nerogar/OneTrainer.git "$app" "$ONETRAINER_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.12
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements-global.txt

aik_link_dir "$INSTANCE_OUTPUT_DIR/workspace" "$app/workspace"
aik_link_dir "$INSTANCE_OUTPUT_DIR/models" "$app/models"

aik_launch python scripts/train_ui.py
