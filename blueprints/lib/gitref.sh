# shellcheck shell=bash
# Apps are cloned at a pinned ref (tag, branch or commit) and then left alone: a restart never
# pulls. The ref that was checked out is remembered beside the clone; the app is fetched again
# only when the blueprint's ref changes (the user edited it) or AIKORE_UPDATE_APP=1 asks for it.

aik_git_checkout() {
	local url=$1 dir=$2 ref=$3
	local stamp=$dir/.git/aikore-ref
	if aik_is_satellite; then
		_aik_satellite_uses "$dir/.git" "app checkout"
		return 0
	fi
	if [[ ! -d $dir/.git ]]; then
		# Never clone over files someone put there; an empty leftover folder is fine.
		if [[ -d $dir ]]; then
			rmdir -- "$dir" 2>/dev/null ||
				aik_die "$dir exists but is not a git checkout; move it away to let AiKore clone $url"
		fi
		aik_log "cloning $url at $ref into $dir"
		aik_phase cloning
		git clone --progress --no-checkout "$url" "$dir" 2>&1 | _aik_git_progress cloning
		_aik_git_switch "$dir" "$ref"
	elif [[ ${AIKORE_UPDATE_APP:-0} == 1 || "$(cat "$stamp" 2>/dev/null)" != "$ref" ]]; then
		aik_log "updating $dir to $ref"
		# The checkout below is forced; edits someone made to the app's own files must not vanish.
		local changed=()
		mapfile -t changed < <(_aik_git_changes "$dir")
		if ((${#changed[@]})); then
			aik_die "$dir has local changes (${changed[*]:0:5}); commit or stash them" \
				"(git -C '$dir' stash) before updating"
		fi
		aik_phase fetching
		git -C "$dir" fetch --progress --tags --force origin 2>&1 | _aik_git_progress fetching
		_aik_git_switch "$dir" "$ref"
	else
		aik_log "keeping $dir at $ref ($(git -C "$dir" rev-parse --short HEAD))"
		return 0
	fi
	printf '%s\n' "$ref" >"$stamp"
}

# A branch name resolves to the remote's tip; tags and commits to themselves. The checkout is
# detached either way, so nothing moves the app until the next explicit update.
_aik_git_switch() {
	local dir=$1 ref=$2 commit
	commit=$(git -C "$dir" rev-parse --verify --quiet "origin/$ref^{commit}" ||
		git -C "$dir" rev-parse --verify --quiet "$ref^{commit}") ||
		aik_die "ref $ref not found in $dir"
	git -C "$dir" checkout --force --detach "$commit"
	if [[ -f $dir/.gitmodules ]]; then
		git -C "$dir" submodule update --init --recursive
	fi
}

# Files of the app someone changed. A tracked file behind a folder the library turned into a link
# (aik_link_dir: models, outputs) reads as deleted to git; it is not an edit, and git's forced
# checkout never writes through that link, so it does not count.
_aik_git_changes() {
	local dir=$1 entry
	while IFS= read -r -d '' entry; do
		if [[ ${entry:0:1} == [RC] ]]; then
			IFS= read -r -d '' _ # a rename's or copy's source path follows as its own entry
		fi
		if [[ ${entry:0:2} == " D" ]] && _aik_behind_link "$dir" "${entry:3}"; then
			continue
		fi
		printf '%s\n' "${entry:3}"
	done < <(git -C "$dir" status --porcelain -z --untracked-files=no)
}

_aik_behind_link() {
	local dir=$1 path=$2
	while [[ $path == */* ]]; do
		path=${path%/*}
		[[ -L $dir/$path ]] && return 0
	done
	return 1
}
