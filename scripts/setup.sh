#!/usr/bin/env bash
# One command to get a working checkout (Debian/Raspberry Pi OS bookworm, or any Linux with
# Python >= 3.10):
#
#   bash scripts/setup.sh
#
#  1. system packages (apt-get, when root or passwordless sudo): python3-venv, mosquitto,
#     mosquitto-clients, openssl (test CAs), systemd (systemd-analyze for the unit tests),
#     shellcheck (tests/test_install.py lints the shell scripts), chromium and chromium-driver
#     (tests/test_console_browser.py drives the web console in a real headless browser).
#     (opencv-python-headless needs no libGL/libglib from the system.)
#  2. .venv            - the project, editable, with the test extra (ai-edge-litert runtime;
#                        on 32-bit Pi OS the tflite-runtime extra instead).
#  3. .venv-tflite214  - tflite-runtime 2.14.0 + numpy<2, the runtime of 32-bit Pi OS, used by
#                        scripts/build/check_runtimes.py to prove every model loads there too
#                        (needs CPython 3.10 or 3.11; skipped with a warning when there is none).
#
# Safe to re-run: each step is skipped when already done. Environment: PYTHON (interpreter
# for .venv, default python3), EDGE_SKIP_APT=1 (no apt-get).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

say() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# --- 1. system packages ------------------------------------------------------------------------
APT_PACKAGES=(python3-venv mosquitto mosquitto-clients openssl systemd shellcheck chromium chromium-driver)
if [[ "${EDGE_SKIP_APT:-0}" == 1 ]]; then
    say "EDGE_SKIP_APT=1: not installing system packages"
elif ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    warn "no apt-get here: install ${APT_PACKAGES[*]} (or equivalents) yourself"
else
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "system packages present (${APT_PACKAGES[*]})"
    else
        if [[ $(id -u) == 0 ]]; then
            as_root=env
        elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            as_root="sudo -n env"
        else
            as_root=""
        fi
        if [[ -z "$as_root" ]]; then
            warn "cannot install ${missing[*]} (needs root or passwordless sudo): sudo apt-get install ${missing[*]}"
        else
            say "apt-get install ${missing[*]}"
            $as_root DEBIAN_FRONTEND=noninteractive apt-get update -qq
            $as_root DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
        fi
    fi
fi

# --- helpers -------------------------------------------------------------------------------------
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

# A venv is usable when its python starts; a broken one (its base interpreter gone) is rebuilt.
make_venv() {  # make_venv PYTHON DIR
    local python=$1 dir=$2
    if [[ -x "$dir/bin/python" ]] && "$dir/bin/python" -c 'import sys' 2>/dev/null; then
        return 0
    fi
    say "creating $dir with $python ($(py_version "$python"))"
    "$python" -m venv --clear "$dir" \
        || die "could not create $dir with $python (on Debian: apt-get install python3-venv)"
}

# Stamp = hash of what an install depends on; the install is skipped while it matches and the
# check command passes.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- 2. .venv: the project ------------------------------------------------------------------------
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python >= 3.10"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is Python $(py_version "$PYTHON"); edge needs >= 3.10 (set PYTHON=...)"

EXTRAS=test,http
SUMMARY="Offline face verification appliance for Raspberry Pi and Jetson (TFLite)"  # pyproject's description
case "$(uname -m)" in
    armv7l | armv6l) EXTRAS=test,http,tflite ;;  # 32-bit Pi OS: no ai-edge-litert wheels
esac

make_venv "$PYTHON" .venv
want="$(stamp_of pyproject.toml setup.py)-$EXTRAS"
if [[ "$(cat .venv/.edge-setup 2>/dev/null)" == "$want" ]] \
    && .venv/bin/python -c 'import edge.cli, numpy, cv2, nacl, paho.mqtt, pytest, skimage, starlette, uvicorn, multipart, httpx, gpiod' 2>/dev/null; then
    say ".venv up to date"
else
    say "installing edge[$EXTRAS] into .venv (editable)"
    .venv/bin/python -m pip install -q --upgrade pip
    # The distribution was called `edge` until it was renamed edge-face-verify (`edge` on PyPI is
    # another project): remove this project's old editable install, which maps the same package.
    old_dist=$(.venv/bin/python -m pip show edge 2>/dev/null || true)  # not piped into grep -q (SIGPIPE)
    if grep -qxF "Summary: $SUMMARY" <<<"$old_dist"; then
        say "removing the old distribution name \`edge\` from .venv (now edge-face-verify)"
        .venv/bin/python -m pip uninstall -q -y edge
    fi
    .venv/bin/python -m pip install -q -e ".[$EXTRAS]"
    .venv/bin/python -c 'import edge.cli, edge.runtime; edge.runtime.available_backend()' \
        || die ".venv has no working TFLite runtime"
    echo "$want" >.venv/.edge-setup
fi

# --- 3. .venv-tflite214: the 32-bit Pi OS runtime, for scripts/build/check_runtimes.py -----------
TFLITE_PYTHON=""
for candidate in "$PYTHON" python3.11 python3.10; do
    if command -v "$candidate" >/dev/null && [[ "$(py_version "$candidate")" =~ ^3\.1[01]$ ]]; then
        TFLITE_PYTHON=$candidate
        break
    fi
done
if [[ -z "$TFLITE_PYTHON" ]]; then
    warn "no CPython 3.10/3.11 found: skipping .venv-tflite214 (tflite-runtime 2.14 has wheels for" \
        "3.10/3.11 only); scripts/build/check_runtimes.py and tests/test_runtimes.py need it"
else
    make_venv "$TFLITE_PYTHON" .venv-tflite214
    check='import numpy, tflite_runtime, tflite_runtime.interpreter, sys; sys.exit(not (numpy.__version__.startswith("1.") and tflite_runtime.__version__.startswith("2.14")))'
    if .venv-tflite214/bin/python -c "$check" 2>/dev/null; then
        say ".venv-tflite214 up to date"
    else
        say "installing tflite-runtime 2.14.0 and numpy<2 into .venv-tflite214"
        .venv-tflite214/bin/python -m pip install -q "tflite-runtime==2.14.0" "numpy<2"
        .venv-tflite214/bin/python -c "$check" || die ".venv-tflite214 does not import tflite-runtime 2.14"
    fi
fi

say "done: run the tests with  .venv/bin/python -m pytest -q   (in $ROOT)"
