# remoteenv detach: start a process that outlives the SSH session, and return at once.
# Run as `sh -s -- NAME DIR CWD NENV [KEY VALUE]... [--] ARGV...` (arguments arrive on stdin, never argv).
# The KEY=VALUE pairs go into the process's environment only: secrets (a token) never appear in any
# process's argv, nor in a file. The process gets its own session (setsid: the SSH session's end does
# not reach it), stdin from /dev/null and its output appended to DIR/NAME.log (0600); DIR is 0700.
# Output: "pid<TAB>PID<TAB>STARTTIME<TAB>DIR" (STARTTIME from /proc/PID/stat, so that a reused PID is
# not taken for the process; DIR absolute).
set -eu
umask 077
# What is started here outlives the run: a cancel of the run must not reach it.
unset REMOTEENV_RUN
name=$1 dir=$2 cwd=$3 n=$4
shift 4
dir=$(home_path "$dir")
cwd=$(home_path "${cwd:-~}")
mkdir -p "$dir"
chmod 700 "$dir"
while [ "$n" -gt 0 ]; do
    export "$1=$2"
    shift 2
    n=$((n - 1))
done
log="$dir/$name.log"
: >>"$log"
chmod 600 "$log"
cd "$cwd"
if command -v setsid >/dev/null 2>&1; then
    # A background job of a non-interactive shell is no group leader, so setsid execs in place: $! is
    # the process itself.
    setsid "$@" </dev/null >>"$log" 2>&1 &
else
    nohup "$@" </dev/null >>"$log" 2>&1 &
fi
pid=$!
start=""
if read -r stat < "/proc/$pid/stat" 2>/dev/null; then
    # Field 22 is the start time, counted after the command name (which may hold spaces).
    set -f
    set -- ${stat##*) }
    start=${20}
fi
printf '%s\t%s\n' "$pid" "$start" >"$dir/$name.pid"
printf 'pid\t%s\t%s\t%s\n' "$pid" "$start" "$dir"
