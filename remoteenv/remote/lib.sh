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
# hold_lock KEY: hold remoteenv's lock KEY (a path, for example the prefix) for the rest of this
# script and the processes it starts; another run that holds it is waited for. A run whose client
# was cut off goes on until its output pipe breaks: starting over beside it would delete files it
# is still writing. The lock is flock(1) on fd 9 where the host has it, else a directory with a pid.
hold_lock() {
    locks="$HOME/.remoteenv/locks"
    (umask 077 && mkdir -p "$locks")
    lockfile="$locks/$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_')"
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$lockfile"
        if ! flock -n 9; then
            printf 'remoteenv: waiting for another remoteenv run on %s to end (pid %s)\n' "$1" \
                "$(cat "$lockfile.pid" 2>/dev/null || echo '?')"
            flock 9
        fi
        echo $$ >"$lockfile.pid"
    else
        waited=
        until mkdir "$lockfile.d" 2>/dev/null; do
            holder=$(cat "$lockfile.d/pid" 2>/dev/null || true)
            if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
                rm -rf "$lockfile.d"  # its holder is gone
                continue
            fi
            if [ -z "$waited" ]; then
                printf 'remoteenv: waiting for another remoteenv run on %s to end (pid %s)\n' "$1" "${holder:-?}"
                waited=1
            fi
            sleep 1
        done
        echo $$ >"$lockfile.d/pid"
        trap 'rm -rf "$lockfile.d"' EXIT
    fi
}
