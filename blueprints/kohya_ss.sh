#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: Kohya_ss
# aikore.category: Training
# aikore.description: Gradio GUI for kohya-ss sd-scripts (LoRA, DreamBooth and fine-tuning of SD, SDXL and Flux). Installs bmaltais/kohya_ss v25.2.1 with its sd-scripts submodule and torch 2.7.1 (CUDA 12.8) in a Python 3.11 uv environment.
# aikore.proxy: strip-prefix
# aikore.health: /
# aikore.var: KOHYA_REF Kohya_ss' version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   kohya_ss/   github.com/bmaltais/kohya_ss at KOHYA_REF, with its sd-scripts submodule
#   env/        Python 3.11 (uv): torch, torchvision pinned below, then requirements.txt (which
#               installs ./sd-scripts in editable mode) under those pins
# Base models are read from $AIKORE_MODELS_DIR (choose them in the GUI); Hugging Face downloads go
# to the shared $AIKORE_MODELS_DIR/huggingface; trained LoRAs go where each training config says
# (point its output folder at $INSTANCE_OUTPUT_DIR).
# Gradio 5 reads GRADIO_ROOT_PATH, so the GUI works under /app/<name>/ with the prefix stripped.

KOHYA_REF=${KOHYA_REF:-v25.2.1}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/kohya_ss
aik_git_checkout https://github.com/bmaltais/kohya_ss.git "$app" "$KOHYA_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.11
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements.txt

aik_gradio_env
# --headless: no buttons that open file dialogs on the server's own (absent) screen.
aik_launch python kohya_gui.py --listen "$WEBUI_HOST" --server_port "$WEBUI_PORT" --headless
