#!/bin/sh
#
# NAME:  @NAME@
# VER:   @VER@
# PLAT:  @PLAT@
# MD5:   @MD5@
#
# A test stand-in for a constructor-made installer, built by remoteenv's tests/fakes/conda/build_installer.py.
# It behaves as /work/shared/CONDA_FACTS.md says the real one does: a POSIX sh header, a line @@END_HEADER@@,
# then the payload (a tar.gz: the stand-in conda and the base environment's packages).

# Like the real header: no "set -e" (a failed read at EOF makes the licence question ask again, forever).
unset LD_LIBRARY_PATH LD_PRELOAD CONDARC MAMBARC PYTHONPATH PYTHONHOME
DELAY=@DELAY@

if ! echo "$0" | grep '\.sh$' > /dev/null; then
    printf 'Please run using "bash"/"dash"/"sh"/"zsh", but not "." or "source".\n' >&2
    return 1 2>/dev/null || exit 1
fi

THIS_DIR=$(cd "$(dirname "$0")" && pwd)
THIS_FILE=$(basename "$0")
THIS_PATH="$THIS_DIR/$THIS_FILE"
PREFIX="${HOME:-/opt}/@DEFAULT_DIR@"
BATCH=0
FORCE=0
KEEP_PKGS=0
SKIP_SCRIPTS=0
TEST=0
REINSTALL=0
USAGE="
usage: $0 [options]

Installs @NAME@ @VER@

-b           run install in batch mode (without manual intervention),
             it is expected the license terms (if any) are agreed upon
-f           no error if install prefix already exists
-h           print this help message and exit
-k           do not clear the package cache after installation
-p PREFIX    install prefix, defaults to $PREFIX, must not contain spaces.
-s           skip running pre/post-link/install scripts
-u           update an existing installation
-t           run package tests after installation (may install conda-build)
"

while getopts "bifhkp:sut" x; do
    case "$x" in
        h)
            printf "%s\n" "$USAGE"
            exit 2
            ;;
        b) BATCH=1 ;;
        i) BATCH=0 ;;
        f) FORCE=1 ;;
        k) KEEP_PKGS=1 ;;
        p) PREFIX="$OPTARG" ;;
        s) SKIP_SCRIPTS=1 ;;
        u) FORCE=1 ;;
        t) TEST=1 ;;
        ?)
            printf "ERROR: did not recognize option '%s', please try -h\n" "$x"
            exit 1
            ;;
    esac
done
: "$SKIP_SCRIPTS" "$TEST"

if [ "$BATCH" = "0" ]; then
    printf "\n"
    printf "Welcome to @NAME@ @VER@\n"
    printf "\n"
    printf "In order to continue the installation process, please review the license\n"
    printf "agreement.\n"
    printf "Please, press ENTER to continue\n"
    printf ">>> "
    read -r dummy
    : "${dummy:=}"
    cat <<'LICENSE_EOF'
@LICENSE@
LICENSE_EOF
    printf "\n"
    printf "Do you accept the license terms? [yes|no]\n"
    printf ">>> "
    read -r ans
    ans=$(echo "${ans:-}" | tr '[:lower:]' '[:upper:]')
    while [ "$ans" != "YES" ] && [ "$ans" != "NO" ]; do
        printf "Please answer 'yes' or 'no':'\n"
        printf ">>> "
        read -r ans
        ans=$(echo "${ans:-}" | tr '[:lower:]' '[:upper:]')
    done
    if [ "$ans" != "YES" ]; then
        printf "The license agreement wasn't approved, aborting installation.\n"
        exit 2
    fi
    printf "\n"
    printf "@NAME@ will now be installed into this location:\n"
    printf "%s\n" "$PREFIX"
    printf "\n"
    printf "  - Press ENTER to confirm the location\n"
    printf "  - Press CTRL-C to abort the installation\n"
    printf "  - Or specify a different location below\n"
    printf "\n"
    printf "[%s] >>> " "$PREFIX"
    read -r user_prefix
    if [ "${user_prefix:-}" != "" ]; then
        case "$user_prefix" in
            *\ * )
                printf "ERROR: Cannot install into directories with spaces\n" >&2
                exit 1
                ;;
            *)
                eval PREFIX="$user_prefix"
                ;;
        esac
    fi
fi

case "$PREFIX" in
    *\ * )
        printf "ERROR: Cannot install into directories with spaces\n" >&2
        exit 1
        ;;
esac

if [ "$FORCE" = "0" ] && [ -e "$PREFIX" ]; then
    printf "ERROR: File or directory already exists: '%s'\n" "$PREFIX" >&2
    printf "If you want to update an existing installation, use the -u option.\n" >&2
    exit 1
elif [ "$FORCE" = "1" ] && [ -e "$PREFIX" ]; then
    REINSTALL=1
fi

if ! mkdir -p "$PREFIX"; then
    printf "ERROR: Could not create directory: '%s'\n" "$PREFIX" >&2
    exit 1
fi

total_installation_size_kb=@SIZE_KB@
free_disk_space_kb=$(df -Pk "$PREFIX" | tail -n 1 | awk '{print $4}')
free_disk_space_kb_with_buffer=$((free_disk_space_kb - 50 * 1024))
if [ "$free_disk_space_kb_with_buffer" -lt "$total_installation_size_kb" ]; then
    printf "ERROR: Not enough free disk space. Only %s kB are available, but %s kB are required (leaving a 50 MB buffer).\n" \
        "$free_disk_space_kb_with_buffer" "$total_installation_size_kb" >&2
    if [ "$REINSTALL" = "0" ]; then
        rmdir "$PREFIX" 2>/dev/null
    fi
    exit 1
fi

PREFIX=$(cd "$PREFIX" && pwd)
export PREFIX
printf "PREFIX=%s\n" "$PREFIX"

# The same glibc floor as the real installers.
glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //')
case "$glibc" in
    1.* | 2.[0-9] | 2.1[0-6] | 2.[0-9].* | 2.1[0-6].*)
        printf "ERROR: Installer requires GLIBC >=2.17, but system has %s.\n" "$glibc" >&2
        exit 1
        ;;
esac

if [ "$(uname -m)" != "@UNAME_ARCH@" ]; then
    printf "WARNING:\n"
    printf "    Your system is %s, but you are trying to install a @UNAME_ARCH@ version of @NAME@.\n" \
        "$(uname -m)"
fi

TMP="$PREFIX/install_tmp"
TMPDIR="$TMP"
mkdir -p "$TMP"
export TMP TMPDIR

printf "Unpacking payload ...\n"
md5=$(tail -n +@PAYLOAD_LINE@ "$THIS_PATH" | md5sum - | cut -d ' ' -f 1)
if [ "$md5" != "@MD5@" ]; then
    printf "WARNING: md5sum mismatch of tar archive\n" >&2
    printf "expected: @MD5@\n" >&2
    printf "     got: %s\n" "$md5" >&2
fi
if ! tail -n +@PAYLOAD_LINE@ "$THIS_PATH" | tar xzf - -C "$PREFIX" --no-same-owner; then
    printf "ERROR: could not extract tar starting at line @PAYLOAD_LINE@\n" >&2
    exit 1
fi
sleep "$DELAY"

CONDA_EXEC="$PREFIX/_conda"
if [ "$(uname -m)" != "@UNAME_ARCH@" ]; then
    printf "%s: cannot execute binary file: Exec format error\n" "$CONDA_EXEC" >&2
    exit 1
fi
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3) || {
    printf "ERROR: this stand-in installer needs python3 on the host\n" >&2
    exit 1
}

printf "\nInstalling base environment...\n\n"
keep=""
[ "$KEEP_PKGS" = "1" ] && keep="--keep-pkgs"
# shellcheck disable=SC2086
if ! "$PYTHON" -I "$CONDA_EXEC/fake_conda.py" constructor-install --prefix "$PREFIX" $keep; then
    printf "ERROR: could not install the base environment\n" >&2
    exit 1
fi
sleep "$DELAY"
@CONDARC@
rm -rf "$CONDA_EXEC" "$TMP"
printf "installation finished.\n"

if [ "$BATCH" = "0" ]; then
    printf "Do you wish to update your shell profile to automatically initialize conda?\n"
    printf "This will activate conda on startup and change the command prompt when activated.\n"
    printf "If you'd prefer that conda's base environment not be activated on startup,\n"
    printf "   run the following command when conda is activated:\n\n"
    printf "conda config --set auto_activate_base false\n\n"
    printf "You can undo this by running \`conda init --reverse \$SHELL\`? [yes|no]\n"
    printf "[no] >>> "
    read -r ans
    ans=$(echo "${ans:-}" | tr '[:lower:]' '[:upper:]')
    if [ "$ans" = "YES" ] || [ "$ans" = "Y" ]; then
        cat >> "$HOME/.bashrc" <<INIT_EOF

# >>> conda initialize >>>
# !! Contents within this block are managed by 'conda init' !!
export PATH="$PREFIX/bin:\$PATH"
# <<< conda initialize <<<
INIT_EOF
        printf "modified      %s\n" "$HOME/.bashrc"
    else
        printf "\nYou have chosen to not have conda modify your shell scripts at all.\n"
        printf "To activate conda's base environment in your current shell session:\n\n"
        printf "eval \"\$(%s/bin/conda shell.YOUR_SHELL_NAME hook)\" \n\n" "$PREFIX"
    fi
    printf "\nThank you for installing @NAME@!\n"
fi

exit 0
@@END_HEADER@@
