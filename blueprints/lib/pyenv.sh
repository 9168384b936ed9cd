# shellcheck shell=bash
# One Python environment per instance, made by uv (fast, no conda). It is created once and reused
# on every start; AIKORE_REBUILD_ENV=1 deletes and recreates it. Installs are skipped when the
# same packages (and the same requirement files) were already installed into this environment,
# so a restart costs seconds, not a dependency resolution.

AIK_VENV=
AIK_CONSTRAINTS=
# The torch pins aik_torch installed: the blueprint's own, or AIKORE_TORCH_PINS in their place.
AIK_TORCH_PINS=()

aik_python_env() {
	local dir=$1 want=${2:-3.12}
	if aik_is_satellite; then
		_aik_satellite_uses "$dir/bin/python" "Python environment"
	elif [[ $AIKORE_REBUILD_ENV == 1 && -e $dir ]]; then
		aik_log "AIKORE_REBUILD_ENV=1: removing $dir"
		rm -rf -- "$dir"
	fi
	if [[ ! -x $dir/bin/python ]]; then
		command -v uv >/dev/null ||
			aik_die "uv is not installed: 'pip install uv' (it is in AiKore's Docker image)"
		# A folder without a python is what an interrupted creation leaves: start it again.
		rm -rf -- "$dir"
		aik_log "creating Python ${AIKORE_VENV_PYTHON:-$want} environment in $dir"
		aik_phase creating-env
		uv venv --seed --python "${AIKORE_VENV_PYTHON:-$want}" "$dir"
	else
		aik_log "reusing Python environment $dir"
	fi
	AIK_VENV=$dir
	AIK_CONSTRAINTS=$dir/aikore-constraints.txt
	export VIRTUAL_ENV=$dir
	export PATH=$dir/bin:$PATH
	unset PYTHONHOME
}

# Installs torch from its CUDA wheel index and pins it: every later install runs with these
# pins as constraints, so an app's requirements can never swap the CUDA build for another one.
# The pins also reach pip and uv when the app itself installs packages while it runs (ComfyUI-
# Manager installing a custom node's requirements, a launcher's first-start installs).
# AIKORE_TORCH_PINS (space-separated) replaces the blueprint's pins, for a machine that needs
# another torch build (with AIKORE_TORCH_INDEX, the index that has it).
aik_torch() {
	[[ -n $AIK_VENV ]] || aik_die "aik_torch before aik_python_env"
	AIK_TORCH_PINS=("$@")
	if [[ -n ${AIKORE_TORCH_PINS:-} ]]; then
		read -ra AIK_TORCH_PINS <<<"$AIKORE_TORCH_PINS"
		aik_log "AIKORE_TORCH_PINS: ${AIK_TORCH_PINS[*]} in place of the blueprint's $*"
	fi
	aik_is_satellite || printf '%s\n' "${AIK_TORCH_PINS[@]}" >"$AIK_CONSTRAINTS"
	local AIK_INSTALL_PHASE=installing-torch
	aik_pip_install --index-url "${AIKORE_TORCH_INDEX:-https://download.pytorch.org/whl/cu128}" \
		"${AIK_TORCH_PINS[@]}"
	export PIP_CONSTRAINT=$AIK_CONSTRAINTS UV_CONSTRAINT=$AIK_CONSTRAINTS
}

# uv pip install into the instance environment, with the torch pins, once per distinct request.
aik_pip_install() {
	[[ -n $AIK_VENV ]] || aik_die "aik_pip_install before aik_python_env"
	if aik_is_satellite; then
		aik_log "satellite of $AIKORE_SATELLITE_OF: not installing $*"
		return 0
	fi
	local key stamp args=(--python "$AIK_VENV/bin/python")
	if [[ -s $AIK_CONSTRAINTS ]]; then
		args+=(--constraint "$AIK_CONSTRAINTS")
	fi
	key=$(_aik_install_key "$@")
	stamp=$AIK_VENV/.aikore-installed/$key
	if [[ -e $stamp ]]; then
		aik_log "already installed: $*"
		return 0
	fi
	# The caller's phase (aik_torch's, dynamically scoped), reported only when something installs.
	aik_phase "${AIK_INSTALL_PHASE:-installing-requirements}" "${AIK_INSTALL_FRACTION:-}"
	uv pip install "${args[@]}" "$@"
	mkdir -p "${stamp%/*}"
	printf '%s\n' "$*" >"$stamp"
}

# Installs each existing requirements file; a file the app does not ship is skipped. The phase's
# fraction is the share of the files done (uv prints no progress of its own into a log).
aik_pip_requirements() {
	local file count=0 AIK_INSTALL_FRACTION
	for file in "$@"; do
		AIK_INSTALL_FRACTION=$((count * 100 / $#))
		AIK_INSTALL_FRACTION=$((AIK_INSTALL_FRACTION / 100)).$(printf '%02d' $((AIK_INSTALL_FRACTION % 100)))
		count=$((count + 1))
		if [[ -f $file ]]; then
			aik_pip_install -r "$file"
		else
			aik_log "no $file; skipped"
		fi
	done
}

# The key covers the folder (requirement files name paths relative to it), the arguments, the
# pins and the content of every requirements file named, so an app update that changes its
# requirements installs them again.
_aik_install_key() {
	local arg prev=
	{
		printf '%s\n' "$PWD" "$@"
		cat "$AIK_CONSTRAINTS" 2>/dev/null || true
		for arg in "$@"; do
			if [[ $prev == -r || $prev == --requirement ]]; then
				cat -- "$arg"
			fi
			prev=$arg
		done
	} | sha256sum | cut -c1-32
}
