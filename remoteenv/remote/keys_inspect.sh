# remoteenv keys check / harden: run as `sh -s` as the login user; changes nothing. Prints
# TAB-separated lines:
#   user NAME / uid N / connection "$SSH_CONNECTION"
#   mode WHAT MODE UID        (WHAT: home, ssh_dir, authorized_keys; "-" when missing)
#   listener PID / program PATH / config PATH   (the sshd serving this session, and its -f file)
#   sudo yes|no               (sudo -n works without a password)
#   T KEY VALUE               (sshd -T's effective settings for this connection, where allowed)
#   Terr LINE                 (why sshd -T could not run)
#   include LINE              (Include lines of the config, where it can be read)
set -eu
printf 'user\t%s\nuid\t%s\nconnection\t%s\n' "$(id -un)" "$(id -u)" "${SSH_CONNECTION:-}"
for what in home ssh_dir authorized_keys; do
    case $what in
        home) p=$HOME ;;
        ssh_dir) p=$HOME/.ssh ;;
        *) p=$HOME/.ssh/authorized_keys ;;
    esac
    if [ -e "$p" ]; then
        printf 'mode\t%s\t%s\t%s\n' "$what" "$(stat -c %a "$p")" "$(stat -c %u "$p")"
    else
        printf 'mode\t%s\t-\t-\n' "$what"
    fi
done

# The listener is the first ancestor that runs sshd under its own name: the session's own sshd
# processes retitle themselves ("sshd: user [priv]"); OpenSSH 9.8 and later retitle the listener
# too ("sshd: /usr/sbin/sshd -D [listener] ..."), keeping its command line in the title.
listener= words=
pid=$$
while [ "${pid:-0}" -gt 1 ]; do
    pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null) || break
    [ -n "$pid" ] || break
    arg0=$(tr '\000' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 1p) || continue
    case $arg0 in
        *" [listener] "* | *" [listener]")
            listener=$pid
            words=$(printf '%s\n' "${arg0#*: }" | sed 's/ \[listener\].*//' | tr ' ' '\n')
            break ;;
        *:*) continue ;;
        */sshd-session | sshd-session | */sshd-auth | sshd-auth) continue ;;
        */sshd | sshd | */sshd-* | sshd-*)
            listener=$pid
            words=$(tr '\000' '\n' <"/proc/$pid/cmdline")
            break ;;
    esac
done
config=/etc/ssh/sshd_config program=
if [ -n "$listener" ]; then
    printf 'listener\t%s\n' "$listener"
    next= n=0
    while IFS= read -r word; do
        n=$((n + 1))
        if [ "$n" = 1 ]; then program=$word; continue; fi
        if [ -n "$next" ]; then config=$word; next=; continue; fi
        case $word in -f) next=1 ;; -f?*) config=${word#-f} ;; esac
    done <<WORDS
$words
WORDS
fi
case $program in
    /*) ;;
    *) program=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd) ;;
esac
printf 'program\t%s\nconfig\t%s\n' "$program" "$config"

sudo=no
if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then sudo=yes; fi
printf 'sudo\t%s\n' "$sudo"
as_root() { if [ "$sudo" = yes ]; then sudo -n "$@"; else "$@"; fi; }

# sshd -T for this very connection (Match blocks apply): client address, our address and port.
set -f
set -- ${SSH_CONNECTION:-}
set +f
spec="user=$(id -un)"
[ $# -lt 4 ] || spec="$spec,host=$1,addr=$1,laddr=$3,lport=$4"
if out=$(as_root "$program" -T -f "$config" -C "$spec" 2>&1); then
    printf '%s\n' "$out" | while IFS= read -r line; do
        case $line in
            passwordauthentication\ * | kbdinteractiveauthentication\ * | authenticationmethods\ * | \
                usepam\ * | pubkeyauthentication\ * | permitemptypasswords\ *)
                printf 'T\t%s\t%s\n' "${line%% *}" "${line#* }" ;;
        esac
    done
else
    printf 'Terr\t%s\n' "$(printf '%s\n' "$out" | sed -n 1p)"
fi
if as_root test -r "$config" 2>/dev/null; then
    as_root grep -i -E '^[[:space:]]*include[[:space:]]' "$config" 2>/dev/null | while IFS= read -r line; do
        printf 'include\t%s\n' "$line"
    done
    printf 'config_read\tyes\n'
else
    printf 'config_read\tno\n'
fi
