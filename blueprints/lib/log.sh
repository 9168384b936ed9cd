# shellcheck shell=bash
# Log lines go to the instance log (AiKore appends the script's stdout and stderr there); the
# prefix tells the blueprint's own steps apart from the app's output.

aik_log() {
	printf '[aikore] %s\n' "$*"
}

aik_die() {
	printf '[aikore] error: %s\n' "$*" >&2
	exit 1
}
