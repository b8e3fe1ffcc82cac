# remoteenv shell step, run as `sh -s -- CHDIR CREATES REMOVES UNLESS ONLY_IF COMMAND [NAME=VALUE...]`
# ("" = not given).
# The guards are evaluated here, at apply time, in the same round trip as the command: a plan made
# from older facts can never run a guarded command twice.
# The command and guards run through `eval`, not `sh -c`: other users of the host can read every
# process's argv (`ps`), and a command may carry a secret. The arguments themselves arrive on stdin.
# Output: the command's stdout and stderr merged in order, or the single line "remoteenv-skip<TAB>why".
set -eu
exec 2>&1
chdir=$1 creates=$2 removes=$3 unless=$4 only_if=$5 command=$6
shift 6
# The rest are NAME=VALUE pairs for the command's environment (and its guards').
for pair in "$@"; do export "$pair"; done

skip() {
    printf 'remoteenv-skip\t%s\n' "$1"
    exit 0
}

# Relative paths and commands start in the home folder unless chdir says otherwise.
cd "$HOME"
if [ -n "$chdir" ]; then cd "$(home_path "$chdir")"; fi
if [ -n "$creates" ] && [ -e "$(home_path "$creates")" ]; then skip "$creates exists"; fi
if [ -n "$removes" ] && [ ! -e "$(home_path "$removes")" ]; then skip "$removes does not exist"; fi
if [ -n "$unless" ] && (set +eu; eval "$unless") </dev/null >/dev/null 2>&1; then skip "unless: exited 0"; fi
if [ -n "$only_if" ]; then
    if (set +eu; eval "$only_if") </dev/null >/dev/null 2>&1; then :; else skip "only_if: exited $?"; fi
fi
# As under `sh -c`: no -e, no -u, no positional parameters. stdin is this script: not the command's.
unset chdir creates removes unless only_if pair
set +eu --
eval "$command" </dev/null
