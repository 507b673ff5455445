#!/usr/bin/env bash
# Device installer: one command, as root, on the device, from a checkout or unpacked source tree.
#
#   sudo bash scripts/deploy/install.sh            # install, or upgrade to this tree
#   sudo bash scripts/deploy/install.sh --start    # ... and (re)start edge.service
#   sudo bash scripts/deploy/install.sh --uninstall [--purge]
#
# Supported: Raspberry Pi OS bookworm (arm64; armhf with tflite-runtime), Ubuntu 22.04 /
# JetPack 6 (arm64), and plain Debian 12 / Ubuntu 22.04+ on arm64 or x86_64. docs/install.md
# says what goes where; in short:
#
#   /opt/edge/venv                    the package (non-editable) and its runtime, a venv that sees
#                                     the system site-packages (python3-picamera2, libcamera)
#   /etc/edge/edge.toml               the configuration (root:edge 0640), copied once, never overwritten;
#   /etc/edge/edge.toml.default       the shipped default of this version, refreshed on every run
#   /var/lib/edge/{vault,outbox}      state (edge:edge 0700); the device key pair in vault/
#   /etc/systemd/system/edge.service  the unit, enabled (not started unless --start)
#
# Safe to re-run: the venv is reused while it works, the package is reinstalled from this tree
# (that is the upgrade), the configuration and the device key are never replaced.
#
# Environment (for tests and unusual layouts): EDGE_OPT (/opt/edge), EDGE_ETC (/etc/edge),
# EDGE_STATE (/var/lib/edge), EDGE_UNIT_DIR (/etc/systemd/system), PYTHON (/usr/bin/python3),
# EDGE_PIP_ARGS (extra `pip install` arguments, e.g. "--no-index --find-links /media/wheels").
# systemctl is only called when EDGE_UNIT_DIR is /etc/systemd/system and systemd is running.
set -euo pipefail

PROG=install.sh
say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: WARNING: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage() {
    cat <<'EOF'
usage: install.sh [--start] [--extras LIST] [--no-apt] [--no-user]
       install.sh --uninstall [--purge] [--no-user]

Install (or upgrade) the edge appliance from this source tree. Run as root on the device.

  --start          (re)start edge.service after installing (default: enable only)
  --extras LIST    extra pip extras to add, comma-separated (e.g. "test"); the runtime extra
                   (tflite on 32-bit ARM) is chosen automatically
  --no-apt         do not install system packages (python3-venv, python3-pip,
                   mosquitto-clients, python3-picamera2 where the archive has it)
  --no-user        do not create the `edge` user; files belong to whoever runs this
                   (with --no-apt: an unprivileged install into EDGE_* directories, for tests)
  --uninstall      stop, disable and remove edge.service, remove the venv (EDGE_OPT) and the
                   configuration (EDGE_ETC); KEEP the state (EDGE_STATE: vault, outbox, audit
                   log) and the `edge` user that owns it
  --purge          with --uninstall: also delete the state directory and the `edge` user/group
  -h, --help       this text

Environment: EDGE_OPT (/opt/edge), EDGE_ETC (/etc/edge), EDGE_STATE (/var/lib/edge),
EDGE_UNIT_DIR (/etc/systemd/system), PYTHON (/usr/bin/python3), EDGE_PIP_ARGS (extra pip
arguments).
EOF
}

# --- arguments --------------------------------------------------------------------------------
START=0 UNINSTALL=0 PURGE=0 DO_APT=1 DO_USER=1 USER_EXTRAS=""
while (($#)); do
    case "$1" in
        --start) START=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        --no-apt) DO_APT=0 ;;
        --no-user) DO_USER=0 ;;
        --extras)
            (($# >= 2)) || die "--extras needs a value (e.g. --extras test)"
            USER_EXTRAS=$2
            shift
            ;;
        --extras=*) USER_EXTRAS=${1#--extras=} ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
done
((PURGE == 0 || UNINSTALL == 1)) || die "--purge only goes with --uninstall"
[[ "$USER_EXTRAS" =~ ^[A-Za-z0-9_,-]*$ ]] || die "--extras: a comma-separated list of extra names, got '$USER_EXTRAS'"

EDGE_OPT=${EDGE_OPT:-/opt/edge}
EDGE_ETC=${EDGE_ETC:-/etc/edge}
EDGE_STATE=${EDGE_STATE:-/var/lib/edge}
EDGE_UNIT_DIR=${EDGE_UNIT_DIR:-/etc/systemd/system}
# The system interpreter by default: edge.service runs with ProtectHome=yes, so a venv whose
# base Python lives under /home or /root (pyenv, conda) cannot start there.
if [[ -z "${PYTHON:-}" ]]; then
    PYTHON=python3
    [[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
fi
read -r -a PIP_ARGS <<<"${EDGE_PIP_ARGS:-}"
VENV=$EDGE_OPT/venv
UNIT=edge.service
EDGE_USER=edge

# The directories are removed with rm -rf on --uninstall: refuse anything that is not a plain
# absolute path below the root.
for var in EDGE_OPT EDGE_ETC EDGE_STATE EDGE_UNIT_DIR; do
    value=${!var}
    [[ "$value" == /* && "$value" != *'/..'* && "$value" =~ ^/+[^/]+ ]] \
        || die "$var must be an absolute path below / (got '$value')"
done
for var in EDGE_OPT EDGE_ETC EDGE_STATE; do
    case "${!var%/}" in
        /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /var | /var/lib)
            die "$var=${!var} is a system directory; give the edge directory itself (e.g. /opt/edge)"
            ;;
    esac
done

# systemctl only for the real unit directory on a system booted with systemd (not in a chroot,
# a container without systemd, or a test writing into a temporary directory).
use_systemctl() {
    [[ "${EDGE_UNIT_DIR%/}" == /etc/systemd/system && -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

if [[ $(id -u) != 0 ]]; then
    if ((DO_USER)) || { ((DO_APT)) && ((UNINSTALL == 0)); }; then
        die "run as root (sudo bash $0 ...); an unprivileged test install needs --no-apt --no-user and EDGE_* directories you can write"
    fi
fi

# --- uninstall --------------------------------------------------------------------------------
if ((UNINSTALL)); then
    if use_systemctl; then
        if systemctl list-unit-files "$UNIT" >/dev/null 2>&1; then
            say "stopping and disabling $UNIT"
            systemctl disable --now "$UNIT" >/dev/null 2>&1 || warn "could not stop/disable $UNIT"
        fi
    fi
    if [[ -e "$EDGE_UNIT_DIR/$UNIT" ]]; then
        say "removing $EDGE_UNIT_DIR/$UNIT"
        rm -f "$EDGE_UNIT_DIR/$UNIT"
    fi
    if use_systemctl; then
        systemctl daemon-reload
        systemctl reset-failed "$UNIT" >/dev/null 2>&1 || true
    fi
    for dir in "$EDGE_OPT" "$EDGE_ETC"; do
        if [[ -e "$dir" ]]; then
            say "removing $dir"
            rm -rf -- "$dir"
        fi
    done
    if ((PURGE)); then
        if [[ -e "$EDGE_STATE" ]]; then
            say "purging $EDGE_STATE (vault, device key, outbox, audit log)"
            rm -rf -- "$EDGE_STATE"
        fi
        if ((DO_USER)) && getent passwd "$EDGE_USER" >/dev/null; then
            say "removing user $EDGE_USER"
            userdel "$EDGE_USER" || warn "could not remove user $EDGE_USER (still logged in or running?)"
        fi
        if ((DO_USER)) && getent group "$EDGE_USER" >/dev/null; then
            groupdel "$EDGE_USER" 2>/dev/null || true
        fi
        say "uninstalled and purged"
    else
        kept="$EDGE_STATE (vault, device key, outbox, audit log)"
        if ((DO_USER)); then
            kept+=" and the user $EDGE_USER that owns it"
        fi
        say "uninstalled; kept $kept"
        say "to delete those too: bash $0 --uninstall --purge"
    fi
    exit 0
fi

# --- the source tree --------------------------------------------------------------------------
TREE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"  # scripts/deploy/ -> the checkout
[[ -f "$TREE/pyproject.toml" && -f "$TREE/setup.py" && -d "$TREE/edge" ]] \
    || die "$TREE does not look like the edge source tree (pyproject.toml, setup.py, edge/)"
grep -q '^name = "edge-face-verify"' "$TREE/pyproject.toml" || die "$TREE/pyproject.toml is not the edge project"
CONFIG_SRC=$TREE/firmware_config/edge.toml
UNIT_SRC=$TREE/systemd/$UNIT
[[ -f "$CONFIG_SRC" ]] || die "missing $CONFIG_SRC"
[[ -f "$UNIT_SRC" ]] || die "missing $UNIT_SRC (the service unit) in $TREE"

# --- platform ---------------------------------------------------------------------------------
ARCH=$(uname -m)
OS_ID=unknown OS_VERSION="" OS_NAME=unknown
if [[ -r /etc/os-release ]]; then
    # Read in a subshell, so that os-release's variables (NAME, VERSION ...) stay out of ours.
    # shellcheck disable=SC1091
    { IFS= read -r OS_ID && IFS= read -r OS_VERSION && IFS= read -r OS_NAME; } < <(
        . /etc/os-release && printf '%s\n%s\n%s\n' "${ID:-unknown}" "${VERSION_ID:-}" "${PRETTY_NAME:-${ID:-unknown}}"
    )
fi
model=""
[[ -r /proc/device-tree/model ]] && model=$(tr -d '\0' </proc/device-tree/model 2>/dev/null || true)
if [[ -e /etc/rpi-issue || "$OS_ID" == raspbian || "$model" == *"Raspberry Pi"* ]]; then
    PLATFORM="Raspberry Pi OS"
elif [[ -e /etc/nv_tegra_release || "$model" == *Jetson* ]]; then
    PLATFORM="Jetson (JetPack)"
else
    PLATFORM="generic"
fi
say "platform: $PLATFORM; $OS_NAME; $ARCH${model:+; $model}"
case "$PLATFORM:$OS_ID:$OS_VERSION" in
    "Raspberry Pi OS:"*:12 | generic:debian:12 | generic:debian:13) ;;
    "Jetson (JetPack)":ubuntu:22.04 | generic:ubuntu:22.04 | generic:ubuntu:24.04) ;;
    "Jetson (JetPack)":ubuntu:20.04 | generic:ubuntu:20.04)
        warn "Ubuntu 20.04 (JetPack 5) ships Python 3.8; edge needs Python >= 3.10: give one with PYTHON=/path/to/python3.10"
        ;;
    *) warn "untested system ($OS_NAME); supported: Raspberry Pi OS bookworm, Debian 12, Ubuntu 22.04 / JetPack 6" ;;
esac

case "$ARCH" in
    aarch64 | x86_64 | armv7l | armv6l) ;;
    *) die "unsupported CPU architecture $ARCH (supported: aarch64, x86_64, armv7l)" ;;
esac

# --- 1. system packages -----------------------------------------------------------------------
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    [[ -n "$candidate" && "$candidate" != "(none)" ]]
}
if ((DO_APT == 0)); then
    say "--no-apt: not installing system packages"
elif ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    die "no apt-get on this system: install python3-venv, python3-pip, mosquitto-clients and procps yourself, then re-run with --no-apt"
else
    missing=()
    # procps: /bin/kill, which the unit's ExecReload= runs (`systemctl reload edge`); Raspberry
    # Pi OS and Ubuntu have it, a minimal Debian root (debootstrap --variant=minbase) does not.
    for pkg in python3-venv python3-pip mosquitto-clients procps; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    export DEBIAN_FRONTEND=noninteractive
    if ((${#missing[@]})); then
        say "apt-get update"
        apt-get update -qq || die "apt-get update failed"
    fi
    # The Pi camera stack (python3-picamera2 and its libcamera bindings) comes from the
    # distribution (Raspberry Pi OS archive), never from pip; elsewhere it does not exist.
    if is_installed python3-picamera2; then
        :
    elif has_candidate python3-picamera2; then
        missing+=(python3-picamera2)
    else
        say "python3-picamera2 is not in this system's archive: no Pi camera support (other sources work)"
    fi
    if ((${#missing[@]})); then
        say "apt-get install --no-install-recommends ${missing[*]}"
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    else
        say "system packages present"
    fi
fi

# --- 2. the venv and the package --------------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (install python3, or set PYTHON=...)"
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || die "$PYTHON does not run"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$PYTHON is Python $PY_VERSION; edge needs >= 3.10 (set PYTHON=/path/to/python3.10 or newer)"
# The runtime follows the interpreter, not the kernel: 32-bit Raspberry Pi OS on a Pi 4/5 boots
# a 64-bit kernel (uname -m: aarch64) under a 32-bit (armhf) userland. pip then runs under
# `setarch linux32`, so platform_machine is armv8l and pyproject.toml's markers leave out
# ai-edge-litert, which has no 32-bit wheels; pip >= 24.1 takes armv7l wheels there.
PIP_PREFIX=()
PY_BITS=$("$PYTHON" -c 'import struct; print(struct.calcsize("P") * 8)')
if [[ "$ARCH" == aarch64 && "$PY_BITS" == 32 ]]; then
    say "64-bit kernel with a 32-bit userland: installing for armv7l"
    ARCH=armv7l
    PIP_PREFIX=(setarch linux32)
fi
RUNTIME_EXTRA=""
case "$ARCH" in
    aarch64 | x86_64) ;;                        # ai-edge-litert: a base dependency (pyproject.toml)
    armv7l | armv6l) RUNTIME_EXTRA=tflite ;;    # 32-bit ARM: tflite-runtime 2.14 (the tflite extra)
esac
if [[ "$RUNTIME_EXTRA" == tflite && ! "$PY_VERSION" =~ ^3\.1[01]$ ]]; then
    die "32-bit ARM needs tflite-runtime 2.14, which exists for Python 3.10/3.11 only (this is $PY_VERSION; set PYTHON=...)"
fi

base_of() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'; }
PY_BASE=$(base_of "$PYTHON")
case "$PY_BASE" in
    /home/* | /root/*)
        warn "$PYTHON is $PY_BASE: edge.service runs with ProtectHome=yes (/home and /root invisible) and cannot" \
            "start from a venv based on it; use the system python3 (PYTHON=/usr/bin/python3)"
        ;;
esac
# Reused while it runs, sees the system site-packages, and has the wanted base interpreter.
venv_ok() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null \
        && grep -Eq '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null \
        && [[ "$(base_of "$VENV/bin/python")" == "$PY_BASE" ]]
}
mkdir -p "$EDGE_OPT"
chmod 0755 "$EDGE_OPT"
if venv_ok; then
    say "reusing $VENV (Python $PY_VERSION)"
else
    [[ -e "$VENV" ]] && say "$VENV is broken, lacks the system site-packages or has another base Python: re-creating it"
    say "creating $VENV ($PY_BASE, Python $PY_VERSION, --system-site-packages)"
    "$PYTHON" -m venv --clear --system-site-packages "$VENV" \
        || die "could not create $VENV with $PYTHON (on Debian/Ubuntu: apt-get install python3-venv)"
fi

# pip builds from a clean copy: no build/ or *.egg-info left in the tree, and none of a previous
# build's stale files (build/lib) in the package.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/edge-install.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
tar -C "$TREE" -cf - \
    --exclude=./.git --exclude='./.venv*' --exclude=./.cache --exclude=./build --exclude=./dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    --exclude=./tests --exclude=./.ci . | tar -C "$WORK" -xf - \
    || die "could not copy $TREE to $WORK"

extras=$RUNTIME_EXTRA
[[ -n "$USER_EXTRAS" ]] && extras=${extras:+$extras,}$USER_EXTRAS
requirement="$WORK${extras:+[$extras]}"
constraints=()
# python3-picamera2's compiled helpers (simplejpeg, PyAV, ...) are built against the system's
# NumPy 1.x; a NumPy 2 in the venv would shadow it and break them. With picamera2 visible, keep
# the system NumPy (pip then resolves packages that accept it, e.g. an older opencv).
if "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("picamera2") is None)' 2>/dev/null; then
    say "python3-picamera2 is visible in the venv: constraining numpy<2 (its compiled modules need NumPy 1.x)"
    printf 'numpy<2\n' >"$WORK/constraints.txt"
    constraints=(-c "$WORK/constraints.txt")
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# The distribution was called `edge` until it was renamed edge-face-verify (`edge` on PyPI is
# another project). An install under the old name is removed first: left in place, its record
# of files would later uninstall the package the new name puts at the same paths.
summary=$(sed -n 's/^description = "\(.*\)"$/\1/p' "$TREE/pyproject.toml")
old_dist=$("$VENV/bin/python" -m pip show edge 2>/dev/null || true)  # not piped into grep -q: SIGPIPE, pipefail
if [[ -n "$summary" ]] && grep -qxF "Summary: $summary" <<<"$old_dist"; then
    say "removing the previous install's distribution name, edge (now edge-face-verify); if the install below fails, run this script again"
    "${PIP_PREFIX[@]}" "$VENV/bin/python" -m pip uninstall -q -y edge || die "could not uninstall the old distribution edge from $VENV"
fi
say "installing edge${extras:+[$extras]} from $TREE into $VENV"
if ((${#PIP_PREFIX[@]})); then
    "${PIP_PREFIX[@]}" "$VENV/bin/python" -m pip install -q --upgrade "${PIP_ARGS[@]}" "pip>=24.1" \
        || die "could not upgrade pip in $VENV (needed for armv7l wheels under a 64-bit kernel)"
fi
"${PIP_PREFIX[@]}" "$VENV/bin/python" -m pip install -q --upgrade "${constraints[@]}" "${PIP_ARGS[@]}" "$requirement" \
    || die "pip install of $TREE failed (see above); the previous install, if any, is unchanged unless pip said otherwise"
version=$("$VENV/bin/python" -c 'import edge; print(edge.__version__)') || die "edge does not import from $VENV"
backend=$("$VENV/bin/python" -c 'import edge.runtime as r; print(r.available_backend())' 2>&1) \
    || die "no TFLite runtime works in $VENV: $backend"
"$VENV/bin/edge" models >/dev/null || die "$VENV/bin/edge models failed: a shipped model is missing or damaged"
say "edge $version installed in $VENV (runtime: $backend)"

# --- 3. user, directories, configuration, device key ------------------------------------------
if ((DO_USER)); then
    if ! getent passwd "$EDGE_USER" >/dev/null; then
        say "creating system user $EDGE_USER (home $EDGE_STATE, no login shell)"
        nologin=/usr/sbin/nologin
        [[ -x $nologin ]] || nologin=/sbin/nologin
        getent group "$EDGE_USER" >/dev/null || groupadd --system "$EDGE_USER"
        useradd --system --gid "$EDGE_USER" --home-dir "$EDGE_STATE" --no-create-home \
            --shell "$nologin" --comment "edge face-verification appliance" "$EDGE_USER" \
            || die "could not create user $EDGE_USER"
    fi
    for group in video render; do
        if getent group "$group" >/dev/null && ! id -nG "$EDGE_USER" | tr ' ' '\n' | grep -qx "$group"; then
            say "adding $EDGE_USER to group $group"
            usermod -aG "$group" "$EDGE_USER"
        fi
    done
    OWNER=$EDGE_USER GROUP=$EDGE_USER ROOT_OWNER=root
else
    OWNER=$(id -un) GROUP=$(id -gn) ROOT_OWNER=$(id -un)
    say "--no-user: files belong to $OWNER:$GROUP"
fi

mkdir -p "$EDGE_ETC" "$EDGE_STATE/vault" "$EDGE_STATE/outbox"
chown "$ROOT_OWNER:$GROUP" "$EDGE_ETC"
chmod 0750 "$EDGE_ETC"
for dir in "$EDGE_STATE" "$EDGE_STATE/vault" "$EDGE_STATE/outbox"; do
    chown "$OWNER:$GROUP" "$dir"
    chmod 0700 "$dir"
done

if [[ -e "$EDGE_ETC/edge.toml" ]]; then
    say "keeping the existing $EDGE_ETC/edge.toml (this version's default: $EDGE_ETC/edge.toml.default)"
else
    say "installing the default configuration $EDGE_ETC/edge.toml"
    install -m 0640 -o "$ROOT_OWNER" -g "$GROUP" "$CONFIG_SRC" "$EDGE_ETC/edge.toml"
fi
install -m 0640 -o "$ROOT_OWNER" -g "$GROUP" "$CONFIG_SRC" "$EDGE_ETC/edge.toml.default"

as_owner() {
    if ((DO_USER)); then
        (cd / && runuser -u "$EDGE_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}
if [[ -e "$EDGE_STATE/vault/device.key" ]]; then
    say "keeping the existing device key ($EDGE_STATE/vault/device.key)"
else
    say "creating the device key pair in $EDGE_STATE/vault"
    as_owner "$VENV/bin/edge" keys init --vault "$EDGE_STATE/vault" >/dev/null \
        || die "edge keys init --vault $EDGE_STATE/vault failed"
fi
# A vault from before its index (edge < 2026.12) is refused until it has one; the installer
# is the administrator's upgrade, so it accepts the enrolments on disk as they are.
if [[ -d "$EDGE_STATE/vault/people" && ! -e "$EDGE_STATE/vault/index.rec" ]]; then
    say "indexing the existing vault's enrolments ($EDGE_STATE/vault: it has no index yet)"
    as_owner "$VENV/bin/edge" vault reindex --vault "$EDGE_STATE/vault" \
        || die "edge vault reindex --vault $EDGE_STATE/vault failed"
fi
pubkey=$(as_owner "$VENV/bin/edge" keys show --vault "$EDGE_STATE/vault") \
    || die "edge keys show --vault $EDGE_STATE/vault failed (owner or mode of the key wrong?)"

# --- 4. the systemd unit ----------------------------------------------------------------------
mkdir -p "$EDGE_UNIT_DIR"
if cmp -s "$UNIT_SRC" "$EDGE_UNIT_DIR/$UNIT"; then
    say "$EDGE_UNIT_DIR/$UNIT up to date"
else
    say "installing $EDGE_UNIT_DIR/$UNIT"
    install -m 0644 "$UNIT_SRC" "$EDGE_UNIT_DIR/$UNIT"
fi
if use_systemctl; then
    systemctl daemon-reload
    systemctl enable "$UNIT" >/dev/null 2>&1 || die "systemctl enable $UNIT failed"
    say "$UNIT enabled (starts at boot)"
    if ((START)); then
        say "restarting $UNIT"
        systemctl restart "$UNIT" || die "$UNIT did not start: journalctl -u $UNIT"
    elif systemctl is-active --quiet "$UNIT"; then
        say "$UNIT is running the previous version: systemctl restart $UNIT (or re-run with --start)"
    else
        say "start it with: systemctl start $UNIT (or re-run with --start)"
    fi
else
    ((START)) && warn "--start: systemd is not running here (or EDGE_UNIT_DIR is not /etc/systemd/system); nothing started"
    say "systemd is not managing this system (chroot, container or test directory): on the device run"
    say "  systemctl daemon-reload && systemctl enable --now $UNIT"
fi

say "done: edge $version; configuration $EDGE_ETC/edge.toml; device public key $pubkey"
if ((DO_USER)); then
    say "check the device: runuser -u $EDGE_USER -- $VENV/bin/edge doctor --config $EDGE_ETC/edge.toml"
else
    say "check the device: $VENV/bin/edge doctor --config $EDGE_ETC/edge.toml"
fi
