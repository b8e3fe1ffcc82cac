# remoteenv's shell library, put in front of every script it sends (transport.remote_script).
# home_path PATH: print PATH with a leading "~" as the home folder (remoteenv/remotepath.py's rule).
home_path() {
    case "$1" in "~") printf '%s' "$HOME" ;; "~/"*) printf '%s/%s' "$HOME" "${1#"~/"}" ;; *) printf '%s' "$1" ;; esac
}
