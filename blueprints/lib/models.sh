# shellcheck shell=bash
# Models are big: every instance links its app's model folders to one shared tree under
# AIKORE_MODELS_DIR, so ten instances hold one copy. The shared tree uses ComfyUI's folder names
# (checkpoints, loras, vae, controlnet, embeddings, upscale_models, clip, clip_vision, unet,
# diffusion_models, text_encoders, hypernetworks, vae_approx); each blueprint maps its app's
# names onto them.

# aik_link_models APP_MODELS_DIR app_folder=shared_folder ...
aik_link_models() {
	local base=$1 pair
	shift
	aik_phase linking-models
	for pair in "$@"; do
		aik_link_dir "$AIKORE_MODELS_DIR/${pair#*=}" "$base/${pair%%=*}"
	done
}

# aik_link_dir SHARED LINK: LINK becomes a symlink to SHARED. Files an app shipped or a user
# put in a real folder at LINK are moved into SHARED first (never over an existing file), so
# switching an instance to shared folders loses nothing.
aik_link_dir() {
	local shared=$1 link=$2 item
	if _aik_in_parent "$link"; then
		aik_log "satellite of $AIKORE_SATELLITE_OF: leaving $link as its parent links it"
		return 0
	fi
	mkdir -p -- "$shared" "$(dirname -- "$link")"
	if [[ -L $link ]]; then
		[[ $(readlink -- "$link") == "$shared" ]] && return 0
		rm -f -- "$link"
	elif [[ -d $link ]]; then
		for item in "$link"/* "$link"/.[!.]*; do
			[[ -e $item || -L $item ]] || continue
			if [[ ! -e $shared/${item##*/} ]]; then
				mv -- "$item" "$shared/"
			elif [[ -f $item ]] && cmp -s -- "$item" "$shared/${item##*/}"; then
				rm -f -- "$item" # the same placeholder every clone of the app ships
			else
				aik_log "not linking $link: $shared already holds a different ${item##*/}"
				return 0
			fi
		done
		rmdir -- "$link"
	elif [[ -e $link ]]; then
		aik_die "$link is a file; expected a folder to link to $shared"
	fi
	ln -s -- "$shared" "$link"
}
