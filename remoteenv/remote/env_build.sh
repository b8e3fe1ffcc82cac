# remoteenv env push, run on the host as
#   sh -s -- DIST PREFIX NAME HASH SPEC KIND VERIFY KERNEL STAMP [PIPSPEC]
# (arguments on stdin). Builds environment NAME from SPEC (an environment.yml, KIND=conda; a
# requirements.txt, KIND=pip; or an @EXPLICIT list, KIND=explicit, then PIPSPEC's pins with pip)
# beside the one in use, tests it, and only then swaps it in:
#   PREFIX/envs/NAME            a symlink, the env's stable path (kernels and people use it)
#   PREFIX/envs/.remoteenv/NAME-HASH   each build; the one before stays as NAME.previous (rollback)
# Conda environments are not relocatable, so builds are never moved: the symlink is what changes.
# A build that fails leaves the env in use untouched and says at which stage (solve, conda install,
# pip, verify). Output: progress; failures end with "remoteenv-error<TAB>STAGE<TAB>why", exit 1.
set -eu
dist=$1 prefix=$(home_path "$2") name=$3 hash=$4 spec=$(home_path "$5") kind=$6 verify=$7 kernel=$8 stamp=$9
shift 9
pipspec=${1:+$(home_path "$1")}
export LC_ALL=C.UTF-8
umask 022

say() { printf 'remoteenv: %s\n' "$*"; }
fail() {
    printf 'remoteenv-error\t%s\t%s\n' "$1" "$2"
    exit 1
}

logged() {  # run a command, its output to the step and to $log; its exit code in $code
    # `|| rc=$?`: under set -e a failing command would end the group before its code is written.
    { rc=0; "$@" </dev/null 2>&1 || rc=$?; echo "$rc" >"$log.code"; } | tee "$log"
    code=$(cat "$log.code")
    rm -f "$log.code"
}

hold_lock "$prefix"  # one build or install at a time in a prefix
envs="$prefix/envs"
store="$envs/.remoteenv"
build="$store/$name-$hash"
link="$envs/$name"
mkdir -p "$store"
if [ -e "$link" ] && [ ! -L "$link" ]; then
    fail exists "$link is an environment remoteenv did not make; remove or rename it, or push under another --name"
fi
# pip reads the install's managed settings (mirror or wheelhouse) in every env.
if [ -f "$prefix/pip.conf" ]; then export PIP_CONFIG_FILE="$prefix/pip.conf"; fi
export CONDA_ALWAYS_YES=true PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -f "$build/.remoteenv/env.json" ]; then
    say "build $hash is complete already"
else
    rm -rf "$build"  # what is there is a build of ours that was cut short
    log="$store/$name-$hash.log"
    say "building $name ($hash) in $build"
    case "$kind" in
        conda | explicit)
            if [ -x "$prefix/bin/conda" ]; then
                tool="$prefix/bin/conda"
                if [ "$kind" = conda ]; then set -- env create -y -f "$spec" -p "$build"
                else set -- create -y -p "$build" --file "$spec"  # no solve: exactly these packages
                fi
            elif [ -x "$prefix/bin/micromamba" ]; then tool="$prefix/bin/micromamba"; set -- create -y -r "$prefix" -f "$spec" -p "$build"
            else fail conda "no conda in $prefix: run remoteenv conda install first"
            fi
            # Output goes to the step and to a log that tells which stage failed.
            logged "$tool" "$@"
            if [ "$code" != 0 ] || [ ! -x "$build/bin/python" ]; then
                if grep -q 'Pip subprocess error' "$log"; then stage=pip
                elif grep -qE 'PackagesNotFoundError|UnsatisfiableError|ResolvePackageNotFound|nothing provides' "$log"; then stage=solve
                else stage="conda install"
                fi
                why=$(grep -E 'Error|Exception|error:' "$log" | tail -n 1)
                rm -rf "$build"
                fail "$stage" "${why:-the build failed}"
            fi
            if [ -n "$pipspec" ]; then
                logged "$build/bin/python" -m pip install --no-deps -r "$pipspec"
                if [ "$code" != 0 ]; then
                    why=$(grep '^ERROR' "$log" | tail -n 1)
                    rm -rf "$build"
                    fail pip "${why:-pip exited $code}"
                fi
            fi
            ;;
        pip)
            python=$prefix/bin/python
            [ -x "$python" ] || python=$(command -v python3) || fail "conda install" "no python here to make a venv with"
            "$python" -m venv "$build" </dev/null || { rm -rf "$build"; fail "conda install" "python -m venv failed"; }
            logged "$build/bin/python" -m pip install -r "$spec"
            if [ "$code" != 0 ]; then
                why=$(grep '^ERROR' "$log" | tail -n 1)
                [ -n "$why" ] || why="pip exited $code"
                rm -rf "$build"
                fail pip "$why"
            fi
            ;;
    esac

    # Smoke test before anyone uses it.
    "$build/bin/python" -c 'import sys' || { rm -rf "$build"; fail verify "the new env's python does not start"; }
    if "$build/bin/python" -m pip --version >/dev/null 2>&1; then
        "$build/bin/python" -m pip check || { rm -rf "$build"; fail verify "pip check found broken requirements"; }
    fi
    for module in $verify; do
        "$build/bin/python" -c "import $module" || { rm -rf "$build"; fail verify "import $module failed in the new env"; }
    done
    mkdir -p "$build/.remoteenv"
    printf '%s\n' "$stamp" >"$build/.remoteenv/env.json"
fi

# Swap: one rename of a symlink, so NAME is always the old env or the new one, never neither.
old=$(readlink "$link" 2>/dev/null || true)
ln -sfn ".remoteenv/$name-$hash" "$envs/.$name.swap"
mv -Tf "$envs/.$name.swap" "$link"
if [ -n "$old" ] && [ "$old" != ".remoteenv/$name-$hash" ]; then
    ln -sfn "${old#.remoteenv/}" "$store/$name.previous"
    say "swapped $name to build $hash; the one before is kept for: remoteenv env rollback"
fi
# Builds older than the one before are remoteenv's own leftovers: they go.
keep=$(readlink "$store/$name.previous" 2>/dev/null || true)
for other in "$store/$name"-????????????????; do  # NAME-HASH: 16 hex digits, not another env's name
    [ -d "$other" ] || continue
    case "${other##*/}" in "$name-$hash" | "$keep") continue ;; esac
    rm -rf "$other" "$other.log"
done

if [ "$kernel" = 1 ]; then
    # Through the stable link: the kernel keeps working across rebuilds and rollbacks.
    "$link/bin/python" -m ipykernel install --user --name "$name" --display-name "Python ($name)" </dev/null \
        || fail kernel "registering the Jupyter kernel failed"
fi
say "ready: $link"
