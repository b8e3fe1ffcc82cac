# remoteenv conda install, run on the host as
#   sh -s -- DIST PREFIX FILE URL SHA256 SHA256_URL NEED_KIB FORCE TOS STAMP CONDARC PIPCONF INIT_SHELL
# (arguments on stdin; "" = not given). Makes PREFIX a working DIST install with remoteenv's managed
# settings, in stages that are each safe to repeat: a run cut short anywhere is finished by running
# it again.
#   DIST      miniconda | miniforge | micromamba | venv
#   FILE      where the installer is (uploaded), or is to be downloaded to (URL given)
#   SHA256    the installer's expected SHA-256; "" = read it from SHA256_URL
#   NEED_KIB  free space needed where PREFIX goes, checked before anything is fetched
#   FORCE     1: a PREFIX that is not ours is moved aside (PREFIX.old-TIME), never deleted
#   TOS       1: accept Anaconda's terms for the configured default channels (the person agreed)
#   STAMP     the text of PREFIX/.remoteenv/install.json, written last: a prefix with it is complete
#   CONDARC, PIPCONF  the managed PREFIX/.condarc and PREFIX/pip.conf ("" = none)
#   INIT_SHELL  a shell name: run `conda init` for it (the person asked; it edits that shell's rc file)
# Output: progress lines "remoteenv: ..."; failures end with one line "remoteenv-error<TAB>KIND<TAB>why"
# and exit 1 (KIND: exists, disk, download, checksum, install, tos), download failures exit 10.
set -eu
dist=$1 prefix=$(home_path "$2") file=$(home_path "$3") url=$4 sum=$5 sum_url=$6 need_kib=$7
force=$8 tos=$9
shift 9
stamp=$1 condarc=$2 pipconf=$3 init_shell=${4:-}
export LC_ALL=C.UTF-8  # installers and conda misbehave under ASCII locales
umask 022

say() { printf 'remoteenv: %s\n' "$*"; }
fail() {
    printf 'remoteenv-error\t%s\t%s\n' "$1" "$2"
    exit "${3:-1}"
}
fetch() {  # fetch URL FILE: resumes a partial FILE.part; honours the proxy variables
    if command -v curl >/dev/null 2>&1; then
        curl -fL --connect-timeout 15 --retry 2 -C - --progress-bar -o "$2.part" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q --show-progress --progress=bar:force -c -T 15 -O "$2.part" "$1"
    else
        fail download "neither curl nor wget is installed on the host" 10
    fi
    mv -f "$2.part" "$2"
}

hold_lock "$prefix"  # one install or build at a time in a prefix
marker="$prefix.remoteenv-installing"  # beside PREFIX: the installer refuses a PREFIX that exists
stampfile="$prefix/.remoteenv/install.json"

# 1. What is at PREFIX now.
resume=0
if [ -f "$stampfile" ] && [ -x "$prefix/$(case $dist in micromamba) echo bin/micromamba ;; venv) echo bin/python ;; *) echo bin/conda ;; esac)" ]; then
    say "$prefix is installed; checking its settings"
    installed=1
else
    installed=0
    if [ -e "$prefix" ] || [ -L "$prefix" ]; then
        if [ -f "$marker" ]; then
            say "finishing the install that was cut short in $prefix"
            resume=1
        elif [ "$force" = 1 ]; then
            aside="$prefix.old-$(date +%Y%m%d-%H%M%S)"
            mv "$prefix" "$aside"
            say "moved the existing $prefix aside to $aside"
        else
            fail exists "$prefix exists and is not a $dist install made by remoteenv"
        fi
    fi
fi

if [ "$installed" = 0 ]; then
    # 2. Room for it, before a byte is fetched.
    parent=$(dirname "$prefix")
    mkdir -p "$parent"
    free=$(df -Pk "$parent/" 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [ -n "$free" ] && [ "$free" -lt "$need_kib" ]; then
        fail disk "not enough free space in $parent: $((free / 1024)) MiB free, $((need_kib / 1024)) MiB needed"
    fi

    # 3. The installer, checked before it runs.
    if [ "$dist" != venv ]; then
        mkdir -p "$(dirname "$file")"
        if [ -z "$sum" ] && [ -n "$sum_url" ]; then
            say "reading the published SHA-256 ($sum_url)"
            if command -v curl >/dev/null 2>&1; then text=$(curl -fsL --connect-timeout 15 "$sum_url") || text=""
            else text=$(wget -qO- -T 15 "$sum_url") || text=""
            fi
            sum=$(printf '%s\n' "$text" | awk 'NF { print tolower($1); exit }')
            [ -n "$sum" ] || fail download "cannot read the installer's published SHA-256 at $sum_url" 10
        fi
        [ -n "$sum" ] || fail checksum "no SHA-256 to check the installer against"
        if [ -f "$file" ] && [ "$(sha256_of "$file")" = "$sum" ]; then
            say "installer already on the host: $file"
        elif [ -n "$url" ]; then
            say "downloading $url"
            fetch "$url" "$file" || { [ -f "$file.part" ] && say "partial download kept for a resume: $file.part"
                                       fail download "download of $url failed" 10; }
        else
            fail download "the installer is not on the host ($file)"
        fi
        got=$(sha256_of "$file")
        if [ "$got" != "$sum" ]; then
            rm -f "$file" "$file.part"
            fail checksum "the installer's SHA-256 is $got, not $sum: removed it, nothing was installed"
        fi
    fi

    # 4. Install (batch: no prompts, no dotfile edits).
    : >"$marker"
    case "$dist" in
        miniconda | miniforge)
            say "installing $dist into $prefix"
            if [ "$resume" = 1 ]; then flags="-b -u -p"; else flags="-b -p"; fi
            # shellcheck disable=SC2086
            bash "$file" $flags "$prefix" </dev/null || fail install "the installer failed (exit $?)"
            ;;
        micromamba)
            mkdir -p "$prefix/bin"
            cp "$file" "$prefix/bin/micromamba.part"
            chmod 755 "$prefix/bin/micromamba.part"
            mv -f "$prefix/bin/micromamba.part" "$prefix/bin/micromamba"
            mkdir -p "$prefix/conda-meta" "$prefix/envs"
            ;;
        venv)
            say "making a venv of $(command -v python3) in $prefix"
            command -v python3 >/dev/null 2>&1 || fail install "the host has no python3"
            if python3 -c 'import ensurepip' 2>/dev/null; then
                python3 -m venv --clear "$prefix" || fail install "python3 -m venv failed"
            else
                fail install "the host's python3 cannot make venvs with pip (ensurepip is missing): ask the admin to install python3-venv"
            fi
            ;;
    esac
fi

# 5. Managed settings (rewritten only when they differ: plans compare them by checksum).
write_if_changed() {  # write_if_changed FILE TEXT
    if [ -z "$2" ]; then
        return 0
    fi
    if [ -f "$1" ] && [ "$(cat "$1"; echo x)" = "$(printf '%s\n' "$2"; echo x)" ]; then
        return 0
    fi
    printf '%s\n' "$2" >"$1.remoteenv-new"
    mv -f "$1.remoteenv-new" "$1"
    say "wrote $1"
}
if [ "$dist" != venv ]; then write_if_changed "$prefix/.condarc" "$condarc"; fi
write_if_changed "$prefix/pip.conf" "$pipconf"

# 6. Anaconda's terms, only with consent.
if [ "$tos" = 1 ] && [ -x "$prefix/bin/conda" ]; then
    for channel in https://repo.anaconda.com/pkgs/main https://repo.anaconda.com/pkgs/r; do
        "$prefix/bin/conda" tos accept --override-channels --channel "$channel" </dev/null \
            || fail tos "conda tos accept for $channel failed"
    done
fi

# 7. Shell start-up files, only when asked: `conda init` edits that one shell's rc file.
if [ -n "$init_shell" ] && [ -x "$prefix/bin/conda" ]; then
    "$prefix/bin/conda" init "$init_shell" </dev/null || fail install "conda init $init_shell failed"
    say "ran conda init $init_shell (your $init_shell start-up file now sets up conda)"
fi

# 8. Complete: the stamp, then the marker goes.
mkdir -p "$prefix/.remoteenv"
write_if_changed "$stampfile" "$stamp"
rm -f "$marker"
say "ready: $prefix"
