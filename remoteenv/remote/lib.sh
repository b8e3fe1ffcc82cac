# remoteenv's shell library, put in front of every script it sends (transport.remote_script).
# home_path PATH: print PATH with a leading "~" as the home folder (remoteenv/remotepath.py's rule).
home_path() {
    case "$1" in "~") printf '%s' "$HOME" ;; "~/"*) printf '%s/%s' "$HOME" "${1#"~/"}" ;; *) printf '%s' "$1" ;; esac
}
# sha256_of FILE: its SHA-256 in hex, by whichever tool the host has ("" when it has none).
sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= *//'
    fi
}
