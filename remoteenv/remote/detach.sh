# remoteenv detach: start a process that outlives the SSH session, and return at once.
# Run as `sh -s -- NAME DIR CWD NENV [KEY VALUE]... [--] ARGV...` (arguments arrive on stdin, never argv).
# The KEY=VALUE pairs go into the process's environment only: secrets (a token) never appear in any
# process's argv, nor in a file. lib.sh's detach_start does the rest (own session, 0600 log in a
# 0700 DIR, pid file with the start time).
# Output: "pid<TAB>PID<TAB>STARTTIME<TAB>DIR" (STARTTIME from /proc/PID/stat, so that a reused PID is
# not taken for the process; DIR absolute).
set -eu
umask 077
name=$1 dir=$(home_path "$2") cwd=$(home_path "${3:-~}") n=$4
shift 4
while [ "$n" -gt 0 ]; do
    export "$1=$2"
    shift 2
    n=$((n - 1))
done
detach_start "$name" "$dir" "$cwd" "$@"
printf 'pid\t%s\t%s\t%s\n' "$detached_pid" "$detached_start" "$dir"
