# remoteenv keys check / harden: run as `sh -s` as the login user; changes nothing. Prints
# TAB-separated lines:
#   user NAME / uid N / connection "$SSH_CONNECTION" / home "$HOME"
#   mode WHAT MODE UID        (WHAT: home, ssh_dir, authorized_keys; "-" when missing; ssh_dir only
#                              when sshd reads keys from ~/.ssh)
#   keys_file PATH            (the authorized keys file the mode is of: sshd's AuthorizedKeysFile,
#                              the first that exists, else the first)
#   listener PID / program PATH / config PATH   (the sshd serving this session, and its -f file)
#   sudo yes|no               (sudo -n works without a password)
#   T KEY VALUE               (sshd -T's effective settings for this connection, where allowed)
#   Terr LINE                 (why sshd -T could not run)
#   include LINE              (Include lines of the config, where it can be read)
set -eu
printf 'user\t%s\nuid\t%s\nconnection\t%s\nhome\t%s\n' "$(id -un)" "$(id -u)" "${SSH_CONNECTION:-}" "$HOME"

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
keys_files=".ssh/authorized_keys .ssh/authorized_keys2"  # sshd's default
if out=$(as_root "$program" -T -f "$config" -C "$spec" 2>&1); then
    printf '%s\n' "$out" | while IFS= read -r line; do
        case $line in
            passwordauthentication\ * | kbdinteractiveauthentication\ * | authenticationmethods\ * | \
                usepam\ * | pubkeyauthentication\ * | permitemptypasswords\ *)
                printf 'T\t%s\t%s\n' "${line%% *}" "${line#* }" ;;
        esac
    done
    found=$(printf '%s\n' "$out" | sed -n 's/^authorizedkeysfile //p')
    [ -z "$found" ] || keys_files=$found
else
    printf 'Terr\t%s\n' "$(printf '%s\n' "$out" | sed -n 1p)"
fi

# The modes sshd's StrictModes looks at: ~, ~/.ssh when keys are read from there, and the keys file.
me=$(id -un) my_uid=$(id -u)
keys_file= in_ssh_dir=no
set -f
for word in $keys_files; do
    word=$(printf '%s\n' "$word" | sed -e "s|%h|$HOME|g" -e "s|%u|$me|g" -e "s|%U|$my_uid|g" -e 's/%%/%/g')
    case $word in /*) ;; *) word=$HOME/$word ;; esac
    case $word in "$HOME/.ssh/"*) in_ssh_dir=yes ;; esac
    if [ -z "$keys_file" ] || { [ ! -e "$keys_file" ] && [ -e "$word" ]; }; then keys_file=$word; fi
done
set +f
printf 'keys_file\t%s\n' "$keys_file"
for what in home ssh_dir authorized_keys; do
    case $what in
        home) p=$HOME ;;
        ssh_dir) [ "$in_ssh_dir" = yes ] || continue; p=$HOME/.ssh ;;
        *) p=$keys_file ;;
    esac
    if [ -e "$p" ]; then
        printf 'mode\t%s\t%s\t%s\n' "$what" "$(stat -c %a "$p")" "$(stat -c %u "$p")"
    else
        printf 'mode\t%s\t-\t-\n' "$what"
    fi
done
if as_root test -r "$config" 2>/dev/null; then
    as_root grep -i -E '^[[:space:]]*include[[:space:]]' "$config" 2>/dev/null | while IFS= read -r line; do
        printf 'include\t%s\n' "$line"
    done
    printf 'config_read\tyes\n'
else
    printf 'config_read\tno\n'
fi
