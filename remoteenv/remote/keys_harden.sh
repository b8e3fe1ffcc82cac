# remoteenv keys harden, the root part: run as `sudo -n /bin/sh -s -- ACTION CONFIG DIR NAME PROGRAM PID SPEC`.
#   apply:    keep the drop-in DIR/NAME as it is (or note that there is none), write the key-only
#             drop-in, check it with `sshd -t` and that `sshd -T` (for SPEC, this connection) then
#             says no to passwords, and reload sshd; on any failure put the old state back first.
#   commit:   forget the kept state (the change stays).
#   rollback: put the kept state back, check it with `sshd -t`, and reload sshd.
# The main config file is never edited. Prints TAB-separated `KEY VALUE` lines; `failed WHY` and
# exit 1 on failure.
set -eu
action=$1 config=$2 dir=$3 name=$4 program=$5 pid=$6 spec=$7
file=$dir/$name
kept=$dir/.$name.remoteenv-kept
none=$dir/.$name.remoteenv-none

say() { printf '%s\t%s\n' "$1" "$2"; }
first_line() { printf '%s\n' "$1" | sed -n 1p; }
fail() { say failed "$1"; exit 1; }

restore() {
    if [ -e "$kept" ]; then
        mv -f "$kept" "$file"
    elif [ -e "$none" ]; then
        rm -f "$file" "$none"
    fi
}

reload() {
    # The listener must still be an sshd: its pid may have gone to another process since.
    arg0=$(tr '\000' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 1p) || arg0=
    case ${arg0##*/} in sshd* | "sshd: "*) ;; *) fail "process $pid is no longer sshd; reload sshd by hand" ;; esac
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        for unit in ssh sshd; do
            main=$(systemctl show -p MainPID --value "$unit" 2>/dev/null || true)
            if [ "$main" = "$pid" ]; then
                systemctl reload "$unit" || fail "systemctl reload $unit failed"
                say reloaded "systemctl reload $unit"
                return 0
            fi
        done
    fi
    # What systemd's ExecReload does too: sshd re-executes itself and reads its config again.
    kill -HUP "$pid" || fail "kill -HUP $pid failed"
    say reloaded "kill -HUP $pid"
}

case $action in
    apply)
        [ -d "$dir" ] || mkdir -p -m 755 "$dir"
        rm -f "$kept" "$none"
        if [ -e "$file" ]; then cp -p "$file" "$kept"; else : >"$none"; fi
        tmp=$dir/.$name.remoteenv-new
        {
            echo "# Written by remoteenv keys harden: key-only logins."
            echo "# To undo: remove this file, check with sshd -t, and reload sshd."
            echo "PasswordAuthentication no"
            echo "KbdInteractiveAuthentication no"
        } >"$tmp"
        chmod 644 "$tmp"
        mv -f "$tmp" "$file"
        if ! out=$("$program" -t -f "$config" 2>&1); then
            restore
            fail "sshd -t refused the new config: $(first_line "$out")"
        fi
        if ! out=$("$program" -T -f "$config" -C "$spec" 2>&1); then
            restore
            fail "sshd -T failed: $(first_line "$out")"
        fi
        pa=$(printf '%s\n' "$out" | sed -n 's/^passwordauthentication //p')
        ki=$(printf '%s\n' "$out" | sed -n 's/^kbdinteractiveauthentication //p')
        if [ "$pa" != no ] || [ "$ki" != no ]; then
            restore
            fail "with the drop-in, sshd still says PasswordAuthentication $pa, KbdInteractiveAuthentication $ki: a line read before $file sets them (Include it first in $config)"
        fi
        say written "$file"
        reload
        ;;
    commit)
        rm -f "$kept" "$none"
        say committed "$file"
        ;;
    rollback)
        restore
        if ! out=$("$program" -t -f "$config" 2>&1); then
            fail "the restored config fails sshd -t: $(first_line "$out")"
        fi
        say restored "$file"
        reload
        ;;
    *) fail "unknown action $action" ;;
esac
