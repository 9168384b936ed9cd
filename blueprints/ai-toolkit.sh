#!/usr/bin/env bash
### AIKORE-METADATA-START ###
# aikore.name: AI-Toolkit
# aikore.category: Training
# aikore.description: Ostris' AI-Toolkit for training Flux, Wan and SDXL LoRAs, with its web UI. Installs ostris/ai-toolkit, torch 2.7.1 (CUDA 12.8) in a Python 3.12 uv environment, and builds its Next.js UI with npm. Opened on its public port.
# aikore.proxy: port-only
# aikore.health: /
# aikore.var: AITOOLKIT_REF AI-Toolkit's version: a git tag, branch or commit
### AIKORE-METADATA-END ###
#
# Installs, under $INSTANCE_CONF_DIR:
#   ai-toolkit/      github.com/ostris/ai-toolkit at AITOOLKIT_REF (no release tags upstream: the
#                    commit of the first clone stays until AIKORE_UPDATE_APP=1)
#   ai-toolkit/ui/   its Next.js UI: npm install, prisma database, production build (rebuilt only
#                    when the checked-out commit changes)
#   env/             Python 3.12 (uv): torch, torchvision, torchaudio pinned below, then
#                    requirements.txt under those pins (the UI's worker runs jobs with this python)
# Trained LoRAs go to output/, linked to $INSTANCE_OUTPUT_DIR; base models come from the shared
# Hugging Face cache $AIKORE_MODELS_DIR/huggingface.
# The Next.js UI requests absolute paths, so it is served on its public port at /.
# Needs node and npm (the AiKore image has them).

AITOOLKIT_REF=${AITOOLKIT_REF:-main}
TORCH_PINS=(torch==2.7.1 torchvision==0.22.1 torchaudio==2.7.1)

AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
	'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
# shellcheck source=lib/aikore.sh
source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"

app=$INSTANCE_CONF_DIR/ai-toolkit
aik_git_checkout https://github.com/ostris/ai-toolkit.git "$app" "$AITOOLKIT_REF"

aik_python_env "$INSTANCE_CONF_DIR/env" 3.12
aik_torch "${TORCH_PINS[@]}"
cd "$app"
aik_pip_requirements requirements.txt
aik_link_dir "$INSTANCE_OUTPUT_DIR" "$app/output"

cd "$app/ui"
built=$(git -C "$app" rev-parse HEAD)
if [[ "$(cat .aikore-built 2>/dev/null)" != "$built" ]]; then
	aik_phase building-ui 0
	npm install
	aik_phase building-ui 0.5
	npm run update_db
	npm run build
	printf '%s\n' "$built" >.aikore-built
fi

# The UI's own start script pins port 8675; start its two parts on the instance's port instead.
aik_launch npx --no-install concurrently --kill-others -n WORKER,UI \
	"node dist/cron/worker.js" \
	"npx --no-install next start --hostname $WEBUI_HOST --port $WEBUI_PORT"
