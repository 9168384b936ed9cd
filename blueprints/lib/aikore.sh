# shellcheck shell=bash
# AiKore blueprint library: the one file a blueprint sources.
#
#   AIKORE_BLUEPRINTS_LIB=${AIKORE_BLUEPRINTS_LIB:-$("${AIKORE_PYTHON:-python3}" -c \
#       'from aikore.resources import builtin_blueprints_dir as d; print(d() / "lib")')}
#   source "$AIKORE_BLUEPRINTS_LIB/aikore.sh"
#
# It checks the environment AiKore gives every blueprint (DESIGN.md, "Blueprint contract"), fills
# in defaults so a script can also be run by hand from its instance folder, and loads the helpers:
#   log.sh     aik_log, aik_die
#   progress.sh aik_phase         install phases AiKore shows while an instance starts
#   gitref.sh  aik_git_checkout   clone an app at a pinned ref; update only when asked
#   pyenv.sh   aik_python_env, aik_torch, aik_pip_install, aik_pip_requirements
#   models.sh  aik_link_models, aik_link_dir   shared model folders under AIKORE_MODELS_DIR
#   run.sh     aik_gradio_env, aik_launch      listen on WEBUI_HOST:WEBUI_PORT under the sub-path
#   satellite.sh  aik_is_satellite              a satellite runs its parent's install, changing nothing
#
# Knobs a user may set (in the instance's launch.sh or AiKore's environment):
#   AIKORE_REBUILD_ENV=1      delete and recreate the instance's Python environment (AiKore sets it
#                             once after a "rebuild" request)
#   AIKORE_UPDATE_APP=1       fetch the app and check out its ref again (a branch moves forward)
#   AIKORE_VENV_PYTHON=...    interpreter for new environments (a version like 3.12, or a path)
#   AIKORE_TORCH_INDEX=...    wheel index for torch (default: PyTorch's CUDA 12.8 index)
#   AIKORE_TORCH_PINS=...     torch pins in place of the blueprint's, space-separated
#                             ("torch==2.14.1 torchvision==0.29.1"): a machine that needs another build
#   AIKORE_LAUNCH_ARGS        extra launch arguments, one per line (AiKore sets it from the
#                             instance's settings); $AIKORE_OWN_CONF_DIR/launch_args.txt, the older
#                             form (words), is still read until AiKore moves it into the settings
# uv and git read their own settings from the environment AiKore passes on, e.g. UV_FIND_LINKS (a
# folder of wheels, such as a torch build kept on disk), UV_CACHE_DIR, GIT_CONFIG_GLOBAL (a
# url.<mirror>.insteadOf for machines that cannot reach GitHub).

set -euo pipefail

AIK_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# shellcheck source=log.sh
source "$AIK_LIB_DIR/log.sh"
# shellcheck source=progress.sh
source "$AIK_LIB_DIR/progress.sh"
# shellcheck source=satellite.sh
source "$AIK_LIB_DIR/satellite.sh"
# shellcheck source=gitref.sh
source "$AIK_LIB_DIR/gitref.sh"
# shellcheck source=pyenv.sh
source "$AIK_LIB_DIR/pyenv.sh"
# shellcheck source=models.sh
source "$AIK_LIB_DIR/models.sh"
# shellcheck source=run.sh
source "$AIK_LIB_DIR/run.sh"

aik_init_env() {
	: "${WEBUI_PORT:?WEBUI_PORT is not set: AiKore gives every instance its internal port}"
	export WEBUI_HOST=${WEBUI_HOST:-127.0.0.1}
	export INSTANCE_NAME=${INSTANCE_NAME:-$(basename "$PWD")}
	export INSTANCE_CONF_DIR=${INSTANCE_CONF_DIR:-$PWD/config}
	# A satellite's own settings folder; INSTANCE_CONF_DIR is then its parent's install folder.
	export AIKORE_OWN_CONF_DIR=${AIKORE_OWN_CONF_DIR:-$INSTANCE_CONF_DIR}
	export INSTANCE_OUTPUT_DIR=${INSTANCE_OUTPUT_DIR:-$PWD/output}
	export AIKORE_ROOT_PATH=${AIKORE_ROOT_PATH:-/app/$INSTANCE_NAME}
	export GRADIO_ROOT_PATH=${GRADIO_ROOT_PATH:-$AIKORE_ROOT_PATH}
	export AIKORE_DATA_DIR=${AIKORE_DATA_DIR:-$(cd ../.. && pwd)}
	export AIKORE_MODELS_DIR=${AIKORE_MODELS_DIR:-$AIKORE_DATA_DIR/models}
	export AIKORE_REBUILD_ENV=${AIKORE_REBUILD_ENV:-0}
	export CUDA_DEVICE_ORDER=${CUDA_DEVICE_ORDER:-PCI_BUS_ID}
	# Hugging Face downloads (text encoders, base models of the trainers) are shared like models.
	export HF_HOME=${HF_HOME:-$AIKORE_MODELS_DIR/huggingface}
	# Python output straight to the log file, not held in a buffer until the app exits.
	export PYTHONUNBUFFERED=1
	mkdir -p "$INSTANCE_CONF_DIR" "$AIKORE_OWN_CONF_DIR" "$INSTANCE_OUTPUT_DIR" "$AIKORE_MODELS_DIR"
	aik_log "instance $INSTANCE_NAME: $WEBUI_HOST:$WEBUI_PORT under $AIKORE_ROOT_PATH," \
		"GPUs ${CUDA_VISIBLE_DEVICES-all}"
}

aik_init_env
