# remoteenv's Jupyter servers on a host, run as `sh -s -- ACTION READY ...` (arguments on stdin, never
# argv; READY is the text of remote/jupyter_ready.py, kept as ~/.remoteenv/jupyter/ready.py):
#   start NAME ENV APP DIR SOCKET TOKEN VERSION WAIT GPUS RESTART [LAUNCH]
#       make sure a Jupyter server NAME runs from ENV's own bin/ (no activate, no shell init files) and
#       answers; a live managed server for the same env build, app and settings is reused as it is.
#       APP lab | notebook; DIR the folder it serves (made when missing); SOCKET 1: a Unix socket in
#       the 0700 state folder, 0: 127.0.0.1 on a port the host picks; TOKEN the token a new server
#       gets (256 bits, hex; a reused server keeps its own); WAIT seconds for a new server to answer;
#       GPUS CUDA_VISIBLE_DEVICES for the server and its kernels ("-": as it is); RESTART 1: stop a
#       running server NAME first. LAUNCH: the text of remote/jupyter_launch.py, kept as
#       ~/.remoteenv/jupyter/launch.py, which starts the app with its slow unused imports deferred
#       (empty: the app's script is run as it is).
#       Output: progress, then "remoteenv-jupyter<TAB>STATE-JSON<TAB>reused|started".
#   status [NAME...]   one "server<TAB>NAME<TAB>alive<TAB>answers<TAB>uptime<TAB>STATE-JSON" line each
#   stop NAME...       stop these servers ("" = every managed one): only a recorded pid with its start
#                      time and a jupyter command line, never another user's or an unmanaged Jupyter;
#                      one "stopped<TAB>NAME<TAB>PID" or "gone<TAB>NAME" line each
#   logs NAME LINES    the last LINES lines of NAME's log
# Everything lives in ~/.remoteenv/jupyter (0700): NAME.json (state), NAME.token (0600, read by the
# server through JUPYTER_TOKEN_FILE: the token is in no argv and no environment), jupyter-NAME.pid and
# .log (0600), runtime-NAME/ (JUPYTER_RUNTIME_DIR), NAME.sock.
# Failures end with "remoteenv-error<TAB>KIND<TAB>why" and exit 1.
set -eu
umask 077
export LC_ALL=C.UTF-8
action=$1 ready_source=$2
shift 2

say() { printf 'remoteenv: %s\n' "$*"; }
fail() {
    printf 'remoteenv-error\t%s\t%s\n' "$1" "$2"
    exit 1
}
json_str() {  # a JSON string of $1 (paths may hold quotes and backslashes)
    printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

state_dir=$HOME/.remoteenv/jupyter
mkdir -p "$state_dir"
chmod 700 "$state_dir"
ready=$state_dir/ready.py
[ "$(cat "$ready" 2>/dev/null)" = "$ready_source" ] || printf '%s\n' "$ready_source" >"$ready"

# files NAME: set the paths of server NAME's files
files() {
    name=$1
    state=$state_dir/$name.json
    tokenfile=$state_dir/$name.token
    keyfile=$state_dir/$name.key
    pidfile=$state_dir/jupyter-$name.pid
    log=$state_dir/jupyter-$name.log
    runtime=$state_dir/runtime-$name
    sock=$state_dir/$name.sock
}

# managed_pid: the pid of our running server NAME (its pid file's pid, with the start time recorded and
# a jupyter command line), or nothing
managed_pid() {
    [ -f "$pidfile" ] || return 0
    read -r m_pid m_start <"$pidfile" || return 0
    [ -n "$m_start" ] && [ "$(start_time "$m_pid")" = "$m_start" ] || return 0
    tr '\0' ' ' <"/proc/$m_pid/cmdline" 2>/dev/null | grep -q jupyter || return 0
    printf '%s' "$m_pid"
}

python_of() {  # the python of the env server NAME runs from, from its state
    printf '%s/bin/python' "$(sed -n 's/^ *"env": *"\(.*\)",$/\1/p' "$state" | head -n 1)"
}
stop_pid() {  # TERM, up to 10 s to end (it stops its kernels), then KILL
    kill -TERM "$1" 2>/dev/null || true
    i=0
    while [ -n "$(start_time "$1")" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    kill -KILL "$1" 2>/dev/null || true
}

start() {
    name=$1 env=$(home_path "$2") app=$3 dir=$(home_path "$4") socket=$5 token=$6 version=$7 wait=$8 gpus=$9
    shift 9
    restart=${1:-0} launch_source=${2:-}
    files "$name"
    hold_lock "$state"  # two `up`s at once must not start two servers
    [ -d "$env" ] || fail env "no environment at $env: push one first (remoteenv env push)"
    target=$(cd "$env" && pwd -P)  # the build in use
    case "$app" in
        lab) bin=$env/bin/jupyter-lab ;;
        notebook) bin=$env/bin/jupyter-notebook ;;
        *) fail usage "app must be lab or notebook, not $app" ;;
    esac
    [ -x "$env/bin/python" ] || fail env "$env has no bin/python"
    key=$("$env/bin/python" "$ready" key "$name" "$env" "$app" "$socket" "$dir" "$gpus")

    pid=$(managed_pid)
    if [ -n "$pid" ] && [ "$restart" != 1 ] && [ -f "$state" ] && [ "$(cat "$keyfile" 2>/dev/null)" = "$key" ]; then
        if "$env/bin/python" "$ready" ping "$name"; then
            printf 'remoteenv-jupyter\t%s\treused\n' "$(tr -d '\n' <"$state")"
            exit 0
        fi
        say "jupyter $name (pid $pid) does not answer: starting it again"
    fi
    if [ -n "$pid" ]; then
        if [ "$restart" = 1 ]; then say "stopping jupyter $name (pid $pid) to restart it"
        else say "stopping jupyter $name (pid $pid): the env, app or settings changed"
        fi
        stop_pid "$pid"
    fi
    rm -f "$state" "$keyfile" "$sock"
    rm -rf "$runtime"

    [ -x "$bin" ] || fail app "$env has no ${bin##*/}: add $( [ "$app" = lab ] && echo jupyterlab || echo notebook ) to the environment"
    mkdir -p "$dir"
    printf '%s' "$token" >"$tokenfile"
    chmod 600 "$tokenfile"
    mkdir -p "$runtime"
    chmod 700 "$runtime"

    export JUPYTER_TOKEN_FILE="$tokenfile" JUPYTER_RUNTIME_DIR="$runtime"
    unset JUPYTER_TOKEN
    [ "$gpus" = - ] || export CUDA_VISIBLE_DEVICES="$gpus"
    launch=$state_dir/launch.py
    if [ -n "$launch_source" ]; then
        [ "$(cat "$launch" 2>/dev/null)" = "$launch_source" ] || printf '%s\n' "$launch_source" >"$launch"
        set -- "$env/bin/python" "$launch" "$bin"
    else
        set -- "$bin"
    fi
    if [ "$socket" = 1 ]; then
        set -- "$@" --no-browser "--ServerApp.sock=$sock" --ServerApp.sock_mode=0600
    else
        # Port 0: the host picks a free one (a fixed 8888 may be another person's on a shared box).
        set -- "$@" --no-browser --ip=127.0.0.1 --port=0 --port-retries=0
    fi
    set -- "$@" "--ServerApp.root_dir=$dir"
    [ "$(id -u)" != 0 ] || set -- "$@" --allow-root
    say "starting jupyter $app from $env in $dir"
    : >"$log"
    detach_start "jupyter-$name" "$state_dir" "$dir" "$@"
    pid=$detached_pid
    started=$(date +%s)

    # Ready when its runtime file names where it listens and it answers there: one python process
    # polls both (a new one every turn would cost more than the turn).
    rc=0
    where=$("$env/bin/python" "$ready" wait "$name" "$runtime/jpserver-$pid.json" "$wait") || rc=$?
    if [ "$rc" != 0 ]; then
        tail -n 15 "$log" | sed 's/^/  | /'
        if [ "$rc" = 3 ]; then fail start "jupyter exited at start (log: ~/.remoteenv/jupyter/jupyter-$name.log)"; fi
        kill -TERM "$pid" 2>/dev/null || true
        fail start "jupyter did not answer within ${wait}s (log: ~/.remoteenv/jupyter/jupyter-$name.log)"
    fi

    port=0
    sockval=
    if [ "$socket" = 1 ]; then sockval=$sock; else port=$where; fi
    {
        printf '{\n'
        printf '  "name": %s,\n' "$(json_str "$name")"
        printf '  "pid": %s,\n' "$pid"
        printf '  "start_time": %s,\n' "$(json_str "$detached_start")"
        printf '  "app": %s,\n' "$(json_str "$app")"
        printf '  "env": %s,\n' "$(json_str "$env")"
        printf '  "env_build": %s,\n' "$(json_str "$target")"
        printf '  "dir": %s,\n' "$(json_str "$dir")"
        printf '  "port": %s,\n' "$port"
        printf '  "sock": %s,\n' "$(json_str "$sockval")"
        printf '  "gpus": %s,\n' "$(json_str "$gpus")"
        printf '  "started": %s,\n' "$started"
        printf '  "log": %s,\n' "$(json_str "$state_dir/jupyter-$name.log")"
        printf '  "remoteenv": %s\n' "$(json_str "$version")"
        printf '}\n'
    } >"$state.tmp"
    mv -f "$state.tmp" "$state"
    printf '%s\n' "$key" >"$keyfile"
    say "jupyter $name answers (pid $pid, $( [ "$socket" = 1 ] && echo "socket $sock" || echo "port $port"))"
    printf 'remoteenv-jupyter\t%s\tstarted\n' "$(tr -d '\n' <"$state")"
}

status() {
    for state in "$state_dir"/*.json; do
        [ -f "$state" ] || continue
        n=${state##*/}
        n=${n%.json}
        if [ $# -gt 0 ]; then
            wanted=0
            for w in "$@"; do [ "$w" = "$n" ] && wanted=1; done
            [ $wanted = 1 ] || continue
        fi
        files "$n"
        pid=$(managed_pid)
        alive=0 answers=0 uptime=
        if [ -n "$pid" ]; then
            alive=1
            if "$(python_of)" "$ready" ping "$n"; then answers=1; fi
            started=$(sed -n 's/^ *"started": *\([0-9]*\),$/\1/p' "$state")
            [ -z "$started" ] || uptime=$(( $(date +%s) - started ))
        fi
        printf 'server\t%s\t%s\t%s\t%s\t%s\n' "$n" "$alive" "$answers" "$uptime" "$(tr -d '\n' <"$state")"
    done
}

stop() {
    if [ $# -eq 0 ]; then
        for state in "$state_dir"/*.json; do
            [ -f "$state" ] || continue
            n=${state##*/}
            set -- "$@" "${n%.json}"
        done
    fi
    for n in "$@"; do
        files "$n"
        hold_lock "$state"
        pid=$(managed_pid)
        if [ -n "$pid" ]; then
            stop_pid "$pid"
            printf 'stopped\t%s\t%s\n' "$n" "$pid"
        else
            printf 'gone\t%s\n' "$n"
        fi
        rm -f "$state" "$keyfile" "$tokenfile" "$sock" "$pidfile"
        rm -rf "$runtime"
    done
}

logs() {
    files "$1"
    [ -f "$log" ] || fail logs "no log of a jupyter server named $1 here"
    tail -n "$2" "$log"
}

case "$action" in
    start | status | stop | logs) "$action" "$@" ;;
    *) fail usage "unknown action $action" ;;
esac
