# shellcheck shell=bash
# Satellites: AiKore sets AIKORE_SATELLITE_OF=<parent> for an instance that runs its parent's app
# and environment. INSTANCE_CONF_DIR is then the parent's install folder and the satellite changes
# nothing in it: the helpers that install (aik_git_checkout, aik_python_env, aik_torch,
# aik_pip_install, aik_link_dir inside that folder) only check that what they need is there. Its
# own settings (launch_args.txt) are in AIKORE_OWN_CONF_DIR; its port, GPUs and INSTANCE_OUTPUT_DIR
# are its own.

aik_is_satellite() {
	[[ -n ${AIKORE_SATELLITE_OF:-} ]]
}

# _aik_satellite_uses PATH WHAT: what the parent installed is used as it is, or its absence named.
_aik_satellite_uses() {
	local path=$1 what=$2
	[[ -e $path ]] ||
		aik_die "satellite of $AIKORE_SATELLITE_OF: its $what is not installed at $path;" \
			"start $AIKORE_SATELLITE_OF once to install it"
	aik_log "satellite of $AIKORE_SATELLITE_OF: using its $what at $path (installing nothing)"
}

# True for a path inside the parent's install folder, which a satellite leaves alone.
_aik_in_parent() {
	aik_is_satellite && [[ $1/ == "$INSTANCE_CONF_DIR"/* ]]
}
