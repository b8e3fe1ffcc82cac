# remoteenv probe: everything remoteenv needs to know about a host, in one round trip.
# Output: one fact per line, "key<TAB>value[<TAB>value...]". Read by remoteenv/facts.py.
# Runs under any POSIX sh as the login user; never fails as a whole (a missing tool is a missing fact).
set -u
LC_ALL=C
export LC_ALL
T='	'  # a literal tab

# Lines are kept and printed at the end in one write: each write would be a packet of its own on
# the way back, and on a fleet every packet is paid for by the host and by remoteenv.
probe_out=
emit() { probe_out="$probe_out$*
"; }
have() { command -v "$1" >/dev/null 2>&1; }

emit "schema${T}1"
# Builtins and /proc where they suffice: on a fleet, every process started here is paid for by each host.
if read -r name < /proc/sys/kernel/hostname 2>/dev/null; then :; else name=$(uname -n); fi
emit "hostname${T}${name}"
# sshd sets USER (and LOGNAME) for every session; `id` is only for shells that lack both.
user=${USER:-${LOGNAME:-}}
[ -n "$user" ] || user=$(id -un 2>/dev/null)
emit "user${T}${user}"
emit "home${T}${HOME:-}"
emit "shell${T}${SHELL:-}"
if read -r kernel < /proc/sys/kernel/osrelease 2>/dev/null; then :; else kernel=$(uname -r); fi
emit "kernel${T}${kernel}"
if read -r arch < /proc/sys/kernel/arch 2>/dev/null; then :; else arch=$(uname -m); fi
emit "arch${T}${arch}"

if [ -r /etc/os-release ]; then
    # Its names are all upper case; none of ours are.
    . /etc/os-release
    emit "os_id${T}${ID:-}"
    emit "os_version${T}${VERSION_ID:-}"
    emit "os_name${T}${PRETTY_NAME:-${NAME:-}}"
fi

# Facts only people read (probe's table and --json), each costing a process or a slow read: a run's
# probe (remoteenv sets this to brief) leaves them out, since on a fleet each host pays for them.
probe_detail=full
if [ "$probe_detail" = full ]; then
    # CPUs this user may run on (affinity and cpusets, as nproc counts them), e.g. "0-3,8-11" -> 8.
    cpus=""
    while read -r key value; do
        if [ "$key" = "Cpus_allowed_list:" ]; then
            cpus=0 old_ifs=$IFS IFS=,
            for range in $value; do cpus=$((cpus + ${range#*-} - ${range%-*} + 1)); done
            IFS=$old_ifs
            break
        fi
    done < /proc/self/status 2>/dev/null
    [ -n "$cpus" ] || cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)
    emit "cpus${T}${cpus}"
    if [ -r /proc/meminfo ]; then
        while read -r key value _; do
            if [ "$key" = "MemTotal:" ]; then emit "memory_kib${T}${value}"; break; fi
        done < /proc/meminfo
    fi
    avail=$(df -Pk "${HOME:-/}" 2>/dev/null | { read -r _; read -r _ _ _ avail _ && printf '%s' "$avail"; })
    [ -z "$avail" ] || emit "disk_free_kib${T}${avail}"
    glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null) && emit "glibc${T}${glibc#glibc }"
    python=$(command -v python3) && version=$("$python" --version 2>&1) &&
        emit "python3${T}${python}${T}${version#Python }"
fi
for tool in curl wget timeout sha256sum setsid nohup bash; do
    if have "$tool"; then emit "tool${T}${tool}"; fi
done

if have nvidia-smi; then
    # The CUDA version is only in nvidia-smi's banner: asked beside gpu_report's queries, as they are
    # beside each other (lines keyed gpu, app, ps, gpuerr; lib.sh), one write per line.
    report=$({
        nvidia-smi 2>/dev/null | sed -n "/CUDA Version: *[0-9]/{s/.*CUDA Version: *\([0-9][0-9.]*\).*/cuda${T}\1/p;q;}" &
        gpu_report
        wait
    })
    [ -z "$report" ] || emit "$report"
fi

# Conda installs: the usual prefixes, `conda` on PATH, and prefixes conda itself recorded.
candidates="$HOME/miniconda3 $HOME/miniforge3 $HOME/mambaforge $HOME/anaconda3 $HOME/micromamba
/opt/conda /opt/miniconda3 /opt/miniforge3 /opt/anaconda3"
if have conda; then
    candidates="$candidates $(dirname "$(dirname "$(command -v conda)")")"
fi
seen=" "
for prefix in $candidates; do
    case "$seen" in *" $prefix "*) continue ;; esac
    seen="$seen$prefix "
    if [ -d "$prefix/conda-meta" ] || [ -x "$prefix/bin/micromamba" ]; then
        version=""
        for meta in "$prefix"/conda-meta/conda-[0-9]*.json; do
            [ -e "$meta" ] || continue
            version=$(basename "$meta" | sed 's/^conda-\([^-]*\)-.*/\1/')
        done
        if [ -z "$version" ] && [ -x "$prefix/bin/micromamba" ]; then
            version="micromamba-$("$prefix/bin/micromamba" --version 2>/dev/null)"
        fi
        emit "conda${T}${prefix}${T}${version}"
        for env in "$prefix"/envs/*; do
            if [ -d "$env/conda-meta" ]; then emit "conda_env${T}${prefix}${T}$(basename "$env")${T}${env}"; fi
        done
    fi
done

# Jupyter servers that remoteenv started: one state file each.
for state in "$HOME"/.remoteenv/jupyter/*.json; do
    [ -f "$state" ] || continue
    emit "jupyter${T}$(tr -d '\n' < "$state")"
done

# Processes remoteenv started detached (lib.sh's detach_start; Jupyter servers keep theirs beside
# their state): alive when the pid runs with the start time recorded for it.
for pidfile in "$HOME"/.remoteenv/run/*.pid "$HOME"/.remoteenv/jupyter/*.pid; do
    [ -f "$pidfile" ] || continue
    read -r pid start < "$pidfile" || continue
    now=$(start_time "$pid")
    alive=0
    if [ -n "$now" ] && { [ -z "$start" ] || [ "$now" = "$start" ]; }; then alive=1; fi
    name=${pidfile##*/}
    emit "proc${T}${name%.pid}${T}${pid}${T}${alive}"
done

# Questions steps asked (appended by remoteenv after this script): q_* print "q<TAB>id<TAB>answer".
q_path() {  # home_path's rule into $p, with no subshell: a fleet's guards ask this of every host
    case "$1" in "~") p=$HOME ;; "~/"*) p=$HOME/${1#"~/"} ;; *) p=$1 ;; esac
}
q_exists() {
    q_path "$2"
    if [ -e "$p" ]; then emit "q${T}$1${T}1"; else emit "q${T}$1${T}0"; fi
}
q_file() {
    q_path "$2"
    if [ -f "$p" ]; then
        emit "q${T}$1${T}$(sha256sum "$p" 2>/dev/null | awk '{print $1}') $(stat -c %a "$p" 2>/dev/null)"
    else
        emit "q${T}$1${T}-"
    fi
}
q_read() {
    # A small file's bytes, base64 on one line: "big:" when it holds more than the first 64 KiB.
    q_path "$2"
    if [ -f "$p" ] && [ -r "$p" ]; then
        size=$(wc -c < "$p" | tr -d ' ')
        tag=b64
        [ "$size" -le 65536 ] || tag=big
        emit "q${T}$1${T}${tag}:$(head -c 65536 "$p" | base64 | tr -d '\n')"
    else
        emit "q${T}$1${T}-"
    fi
}
q_cmd() {
    if (set +u; eval "$2") </dev/null >/dev/null 2>&1; then emit "q${T}$1${T}0"; else emit "q${T}$1${T}$?"; fi
}
