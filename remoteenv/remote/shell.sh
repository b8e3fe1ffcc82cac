# remoteenv's shell on a kept connection: runs the scripts the keeper sends, one at a time, each in a
# fresh /bin/sh as `sh -s` would, without a new SSH session each (no sshd fork, no login shell).
# Started by the keeper as `/bin/sh -c "$(cat shell.sh)"`; it says "remoteenv-shell ready" first.
#
# In, per script: a line "ID MARKER SHA LENGTH", then LENGTH bytes: the script, kept as SHA
#   (LENGTH 0: a script this shell was sent before). MARKER goes into the script's environment
#   (REMOTEENV_RUN), by which the keeper finds the script and everything it started, to interrupt it
#   or to end it when its time is up. No `timeout` here: on a fleet, its process is a good part of
#   what each script costs the host.
# Out: the script's stdout and stderr as they come, then "\nID EXIT" on stdout and "\nID" on stderr,
#   each a line of its own; "\nID missing" (and "\nID" on stderr) when SHA is no longer kept here.
# The keeper sends the next script only after both ends came back, so nothing but this script is
# ever waiting on stdin while `head` reads it: no `head` can read past it.
set -u
umask 077
command -v head >/dev/null 2>&1 || exit 3
# A shell killed outright (SIGKILL, a reboot) leaves its folder: the next one removes those of this
# user whose shell is gone (the pid is in the name).
for old in "${TMPDIR:-/tmp}"/remoteenv-shell-*; do
    [ -d "$old" ] && [ ! -L "$old" ] && [ -O "$old" ] || continue
    pid=${old##*/remoteenv-shell-}
    pid=${pid%%.*}
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null || rm -rf "$old"
done
dir=$(mktemp -d "${TMPDIR:-/tmp}/remoteenv-shell-$$.XXXXXXXX") || exit 3
trap 'rm -rf "$dir"' EXIT
trap 'exit 0' HUP INT TERM PIPE
printf 'remoteenv-shell ready\n'
while read -r id marker sha length; do
    case "$sha" in *[!0-9a-f]* | '') exit 4 ;; esac
    case "$id$marker$length" in *[!0-9A-Za-z]* | '') exit 4 ;; esac
    if [ "$length" != 0 ]; then
        head -c "$length" >"$dir/$sha" || exit 4
    elif [ ! -f "$dir/$sha" ]; then
        printf '\n%s missing\n' "$id"
        printf '\n%s\n' "$id" >&2
        continue
    fi
    REMOTEENV_RUN=$marker /bin/sh "$dir/$sha" </dev/null
    rc=$?
    printf '\n%s %s\n' "$id" "$rc"
    printf '\n%s\n' "$id" >&2
done
