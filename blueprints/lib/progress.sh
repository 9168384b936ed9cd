# shellcheck shell=bash
# Install progress (README, "Install progress"): a line `::aikore-phase NAME [FRACTION]` in the
# script's output tells AiKore what a start is doing. The library reports its own steps:
#   cloning, fetching            aik_git_checkout (with git's own fraction)
#   creating-env                 aik_python_env, when the environment is made
#   installing-torch             aik_torch, when the pins are not installed yet
#   installing-requirements      aik_pip_requirements / aik_pip_install
#   linking-models               aik_link_models
#   launching                    aik_launch: from here on AiKore's ready timeout counts
# A blueprint may report steps of its own the same way (aik_phase building-ui).

# aik_phase NAME [FRACTION]: FRACTION is how far the phase is, 0 to 1, where it is known.
aik_phase() {
	printf '::aikore-phase %s%s\n' "$1" "${2:+ $2}"
}

# _aik_git_progress PHASE: git's --progress output on stdin becomes PHASE markers with a fraction
# (receiving objects up to 0.9, resolving deltas the rest), one per 5 % step; git's other lines
# (and its errors) pass through to the log. Git redraws a progress line with carriage returns.
_aik_git_progress() {
	local phase=$1 chunk line step=-1 percent
	while IFS= read -r -d $'\r' chunk || [[ -n $chunk ]]; do
		while IFS= read -r line; do
			if [[ $line =~ ^(remote:\ )?[A-Za-z\ ]+:\ +([0-9]{1,3})%\ \( ]]; then
				percent=${BASH_REMATCH[2]}
				case $line in
				"Receiving objects"*) percent=$((percent * 9 / 10)) ;;
				"Resolving deltas"*) percent=$((90 + percent / 10)) ;;
				*) continue ;; # the remote's own counting and compressing: not this clone's share
				esac
				if ((percent / 5 != step)); then
					step=$((percent / 5))
					aik_phase "$phase" "$((percent / 100)).$(printf '%02d' $((percent % 100)))"
				fi
			elif [[ -n $line ]]; then
				printf '%s\n' "$line"
			fi
		done <<<"$chunk"
	done
}
