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
# start_time PID: the kernel's start time of PID (/proc/PID/stat field 22, counted after the command
# name, which may hold spaces); nothing when PID is gone or a zombie. A pid with the start time
# recorded for it is the same process: the kernel may have given the number to another since.
start_time() {
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    set -f
    set -- ${stat##*) }
    set +f
    [ "$1" = Z ] || printf '%s' "${20}"
}
# detach_start NAME DIR CWD ARGV...: start ARGV so that it outlives the SSH session: its own session
# (setsid), stdin from /dev/null, output appended to DIR/NAME.log (0600, DIR 0700), the lock fd
# closed. Writes "PID STARTTIME" to DIR/NAME.pid and sets $detached_pid and $detached_start.
detach_start() {
    d_name=$1 d_dir=$2 d_cwd=$3
    shift 3
    (umask 077 && mkdir -p "$d_dir")
    chmod 700 "$d_dir"
    (umask 077 && : >>"$d_dir/$d_name.log")
    chmod 600 "$d_dir/$d_name.log"
    # What is started here outlives the run: a cancel of the run must not reach it.
    if command -v setsid >/dev/null 2>&1; then
        # A background job of a non-interactive shell is no group leader, so setsid execs in place:
        # $! is the process itself.
        (cd "$d_cwd" && unset REMOTEENV_RUN && exec setsid "$@" </dev/null >>"$d_dir/$d_name.log" 2>&1 9>&-) &
    else
        (cd "$d_cwd" && unset REMOTEENV_RUN && exec nohup "$@" </dev/null >>"$d_dir/$d_name.log" 2>&1 9>&-) &
    fi
    detached_pid=$!
    detached_start=$(start_time "$detached_pid")
    printf '%s %s\n' "$detached_pid" "$detached_start" >"$d_dir/$d_name.pid"
}
# gpu_report: the GPUs and their compute processes, as nvidia-smi gives them (remoteenv/gpus.py joins
# them), one line each; nothing without nvidia-smi. A hung driver is cut off where timeout(1) exists.
#   gpu<TAB>index, uuid, name, memory.used, memory.total, utilization.gpu, temperature.gpu, power.draw,
#       power.limit, driver_version
#   app<TAB>gpu_uuid, pid, used_memory
#   ps<TAB>PID USER ARGS
#   gpuerr<TAB>EXIT<TAB>the first line nvidia-smi printed
gpu_report() {
    command -v nvidia-smi >/dev/null 2>&1 || return 0
    # Builtins where they do: on a fleet refreshed every few seconds each process counts.
    g_t=
    if command -v timeout >/dev/null 2>&1; then g_t="timeout 15"; fi
    # Every nvidia-smi starts the driver's library, a good part of a second on a large host: the
    # processes' query runs beside the GPUs', so a report waits for the slower, not for both. Each
    # line is one write, so the two never mix within a line.
    gpu_apps &
    g_rc=0
    g_out=$($g_t nvidia-smi --query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu,temperature.gpu,power.draw,power.limit,driver_version \
        --format=csv,noheader,nounits 2>&1) || g_rc=$?
    if [ "$g_rc" != 0 ]; then
        printf 'gpuerr\t%s\t%s\n' "$g_rc" "${g_out%%
*}"
    else
        g_nl='
'
        while [ -n "$g_out" ]; do  # no pipeline: two processes fewer
            g_line=${g_out%%"$g_nl"*}
            case $g_out in *"$g_nl"*) g_out=${g_out#*"$g_nl"} ;; *) g_out= ;; esac
            [ -z "$g_line" ] || printf 'gpu\t%s\n' "$g_line"
        done
    fi
    wait
    return 0
}
# gpu_apps: gpu_report's app and ps lines (run beside its GPU query; an app whose GPU the report
# lacks is dropped by the reader).
gpu_apps() {
    a_apps=$($g_t nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader,nounits \
        2>/dev/null) || a_apps=
    a_pids=
    a_nl='
'
    while [ -n "$a_apps" ]; do
        a_line=${a_apps%%"$a_nl"*}
        case $a_apps in *"$a_nl"*) a_apps=${a_apps#*"$a_nl"} ;; *) a_apps= ;; esac
        [ -n "$a_line" ] || continue
        printf 'app\t%s\n' "$a_line"
        a_pid=${a_line#*,}
        a_pid=${a_pid%%,*}
        a_pid=${a_pid# }
        case $a_pid in '' | *[!0-9]*) ;; *) a_pids="$a_pids${a_pids:+,}$a_pid" ;; esac
    done
    [ -n "$a_pids" ] || return 0
    # procps cuts `user` at 8 characters, so user:32; busybox knows only `user`.
    { ps -o pid=,user:32=,args= -p "$a_pids" 2>/dev/null || ps -o pid=,user=,args= -p "$a_pids" 2>/dev/null; } |
        while read -r a_line; do printf 'ps\t%s\n' "$a_line"; done
    return 0
}
