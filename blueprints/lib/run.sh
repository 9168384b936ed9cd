# shellcheck shell=bash
# Launching: the app replaces the script's shell (exec), so AiKore's stop signal reaches it
# directly and its exit code is the instance's exit code.

# Gradio reads these itself; apps that call launch() without arguments then listen where AiKore
# expects and build their URLs under the instance's sub-path.
aik_gradio_env() {
	export GRADIO_SERVER_NAME=$WEBUI_HOST
	export GRADIO_SERVER_PORT=$WEBUI_PORT
	export GRADIO_ROOT_PATH
	export GRADIO_ANALYTICS_ENABLED=False
}

# aik_launch CMD ARGS...: runs the app with the instance's launch arguments appended: those set in
# AiKore (AIKORE_LAUNCH_ARGS, one argument per line, spaces kept), then the words of
# $AIKORE_OWN_CONF_DIR/launch_args.txt (a satellite's own, not its parent's), the older form AiKore
# moves into its settings at its next start (split on whitespace). Neither is ever evaluated by a shell.
aik_launch() {
	local extra=() line words
	local args_file=${AIKORE_OWN_CONF_DIR:-$INSTANCE_CONF_DIR}/launch_args.txt
	# Each argument ends with a line break; printf adds none, so nothing set means no argument.
	mapfile -t extra < <(printf '%s' "${AIKORE_LAUNCH_ARGS:-}")
	if [[ -f $args_file ]]; then
		while IFS= read -r line || [[ -n $line ]]; do
			[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
			read -ra words <<<"$line"
			extra+=("${words[@]}")
		done <"$args_file"
	fi
	aik_log "launching: $* ${extra[*]}"
	aik_phase launching
	exec "$@" "${extra[@]}"
}
