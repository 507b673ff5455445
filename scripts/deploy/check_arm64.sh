#!/usr/bin/env bash
# The arm64 proof: install edge with scripts/deploy/install.sh into a Debian bookworm arm64 root
# and run the test suite there, on an x86_64 machine, under qemu user-mode emulation.
#
#   sudo bash scripts/deploy/check_arm64.sh            # about 3 min to build the root, then the suite
#                                                      # (tens of minutes under emulation)
#
#  1. host packages (apt-get, when missing): debootstrap, qemu-user-static, binfmt-support
#  2. binfmt_misc: qemu-aarch64 registered with the F (fix-binary) flag, so arm64 programs run
#     inside the chroot, subprocesses included
#  3. the root: debootstrap --arch=arm64 --variant=minbase bookworm into .cache/arm64-root
#     (reused when complete; ARM64_ROOT=... to put it elsewhere)
#  4. a copy of this checkout (git's tracked + untracked files) at /srv/edge-check/main in the
#     root; ../shared/data, when present, bind-mounted read-only at /srv/edge-check/shared/data
#  5. inside: bash scripts/deploy/install.sh --extras test  (apt-get, the edge user, /opt/edge/venv,
#     /etc/edge, /var/lib/edge, the device key; systemd is not running there, so the unit is
#     installed but not enabled), then .venv-tflite214 in the copy (tflite-runtime 2.14, so
#     tests/test_runtimes.py compares both runtimes on arm64; EDGE_CHECK_TFLITE=0 skips it)
#     The tests' other needs go in too: mosquitto, openssl, git (the copy becomes a repository),
#     the shellcheck linter and systemd (for systemd-analyze; nothing is started).
#  6. inside: /opt/edge/venv/bin/python -m pytest -q  in the copy (PYTEST_ARGS=... adds arguments),
#     with the venv's edge switched to an editable install of the copy, as in a developer's .venv
#  7. a summary: arch, Python, ai-edge-litert, the pytest result line, wall time; the exit status
#     is non-zero when any step or any test failed.
#
# /proc, /sys and /dev are mounted in the root for the run and unmounted at exit (trap). Under
# emulation, an arm64 /proc/cpuinfo (Cortex-A72) is bind-mounted over the host's x86 one, which
# crashes LiteRT's XNNPACK, and qemu emulates a Cortex-A72 (QEMU_CPU; ARM64_CPU=... overrides).
# Needs root and network access to the Debian archive and PyPI.
set -euo pipefail

PROG=check_arm64
say() { printf '%s: [%s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*"; }
die() {
    printf '%s: ERROR: %s\n' "$PROG" "$*" >&2
    exit 1
}

case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    "") ;;
    *) die "unknown argument: $1 (see --help)" ;;
esac

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"  # scripts/deploy/ -> the checkout
ROOT=${ARM64_ROOT:-$REPO/.cache/arm64-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
CHECK_TFLITE=${EDGE_CHECK_TFLITE:-1}
INNER=/srv/edge-check          # inside the root
START_TIME=$(date +%s)

[[ $(id -u) == 0 ]] || die "run as root (debootstrap, chroot and mounts need it)"
[[ "$ROOT" == /* && "$ROOT" != / ]] || die "ARM64_ROOT must be an absolute path, not / (got '$ROOT')"

# --- 1. host packages ---------------------------------------------------------------------------
missing=()
for pkg in debootstrap qemu-user-static binfmt-support; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. binfmt_misc -------------------------------------------------------------------------------
HOST_ARCH=$(uname -m)
if [[ "$HOST_ARCH" != aarch64 ]]; then
    BINFMT=/proc/sys/fs/binfmt_misc
    if [[ ! -e $BINFMT/register ]]; then
        say "mounting binfmt_misc on $BINFMT"
        mount -t binfmt_misc binfmt_misc "$BINFMT" \
            || die "cannot mount binfmt_misc (a container without it?): arm64 programs cannot run here"
    fi
    if [[ ! -e $BINFMT/qemu-aarch64 ]] || ! grep -qx enabled $BINFMT/qemu-aarch64; then
        say "registering qemu-aarch64 with binfmt_misc"
        update-binfmts --enable qemu-aarch64 2>/dev/null || true
    fi
    if [[ ! -e $BINFMT/qemu-aarch64 ]]; then
        # By hand: ELF64 little-endian, machine EM_AARCH64 (0xb7); F = open the interpreter now,
        # so it works inside the chroot too.
        say "update-binfmts did not register qemu-aarch64: registering it directly"
        interp=$(command -v qemu-aarch64-static || true)
        [[ -n "$interp" ]] || die "qemu-aarch64-static not found (apt-get install qemu-user-static)"
        printf '%s' ":qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:$interp:F" \
            >$BINFMT/register || die "cannot register qemu-aarch64 with binfmt_misc"
    fi
    grep -q '^flags:.*F' $BINFMT/qemu-aarch64 \
        || die "qemu-aarch64 is registered without the F flag: it cannot run inside a chroot ($(grep flags $BINFMT/qemu-aarch64))"
    say "binfmt: $(tr '\n' ' ' <$BINFMT/qemu-aarch64 | cut -c1-120)"
fi

# --- mounts, torn down at exit ----------------------------------------------------------------------
MOUNTED=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local status=$? pid i target
    # processes still running inside the root (ours: nothing else uses it)
    for pid in /proc/[0-9]*; do
        pid=${pid#/proc/}
        if [[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$ROOT" ]]; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        target=${MOUNTED[i]}
        umount -R "$target" 2>/dev/null || umount -R -l "$target" 2>/dev/null \
            || printf '%s: WARNING: could not unmount %s\n' "$PROG" "$target" >&2
    done
    if grep -q " $ROOT/" /proc/mounts; then
        printf '%s: WARNING: still mounted below %s:\n' "$PROG" "$ROOT" >&2
        grep " $ROOT/" /proc/mounts >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mounted_below_root() { grep -q " $ROOT/" /proc/mounts; }

# --- 3. the root ------------------------------------------------------------------------------------
if [[ -x "$ROOT/bin/sh" && -f "$ROOT/etc/debian_version" && ! -e "$ROOT/debootstrap" ]]; then
    say "reusing the arm64 root $ROOT (Debian $(cat "$ROOT/etc/debian_version"))"
else
    mounted_below_root && die "something is mounted below $ROOT: unmount it first (grep $ROOT /proc/mounts)"
    if [[ -e "$ROOT" ]]; then
        say "removing the incomplete root $ROOT"
        rm -rf --one-file-system -- "$ROOT"
    fi
    mkdir -p "$(dirname "$ROOT")"
    say "debootstrap --arch=arm64 --variant=minbase $SUITE $ROOT $MIRROR"
    t0=$(date +%s)
    debootstrap --arch=arm64 --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR" \
        >"$ROOT.debootstrap.log" 2>&1 \
        || {
            tail -30 "$ROOT.debootstrap.log" >&2
            die "debootstrap failed (full log: $ROOT.debootstrap.log)"
        }
    say "debootstrap done in $(($(date +%s) - t0)) s"
fi
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
# no daemons started by package scripts inside the chroot
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# pip inside trusts what the host trusts (a network that intercepts TLS has its own CA in the
# host's bundle); the root's own bundle is left as Debian made it.
PIP_CERT_ENV=()
if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-ca-certificates.crt"
    PIP_CERT_ENV=(PIP_CERT=/etc/ssl/host-ca-certificates.crt)
fi

mounted_below_root && die "something is already mounted below $ROOT (another run?): $(grep " $ROOT/" /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')"
mount -t proc proc "$ROOT/proc" && MOUNTED+=("$ROOT/proc")
EMULATION_ENV=()
if [[ "$HOST_ARCH" != aarch64 ]]; then
    # qemu-user (7.2) shows the host's x86 /proc/cpuinfo to arm64 programs. The cpuinfo library
    # in LiteRT's XNNPACK cannot parse it and then crashes in allocate_tensors (SIGSEGV) once
    # /sys lists the CPUs; no real arm64 machine has that file. So: an arm64 /proc/cpuinfo (one
    # Cortex-A72 per host core: a Raspberry Pi 4), and qemu emulating that CPU (QEMU_CPU), so
    # the kernels XNNPACK picks are the ones a Pi 4 runs (no SVE/SME). ARM64_CPU=... overrides
    # the emulated CPU (the cpuinfo file stays Cortex-A72).
    for ((i = 0; i < $(nproc); i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$i"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done >"$ROOT.cpuinfo"
    mount --bind "$ROOT.cpuinfo" "$ROOT/proc/cpuinfo" && MOUNTED+=("$ROOT/proc/cpuinfo")
    EMULATION_ENV=(QEMU_CPU="${ARM64_CPU:-cortex-a72}")
fi
mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys" && MOUNTED+=("$ROOT/sys")
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev" && MOUNTED+=("$ROOT/dev")

in_root() {  # in_root COMMAND...: run in the root with a clean environment
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 \
        "${PIP_CERT_ENV[@]}" "${EMULATION_ENV[@]}" "$@"
}
ROOT_ARCH=$(in_root uname -m) || die "cannot run programs in the arm64 root (binfmt?)"
[[ "$ROOT_ARCH" == aarch64 ]] || die "the root runs as $ROOT_ARCH, not aarch64"
say "the root runs: $(in_root uname -srm)${EMULATION_ENV[*]:+ (${EMULATION_ENV[*]})}"

# --- 4. a copy of the checkout -------------------------------------------------------------------
IS_GIT=0
COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null) && IS_GIT=1 || COMMIT="not a git checkout"
say "checkout $REPO at commit $COMMIT"
if ((IS_GIT)); then
    changes=$(git -C "$REPO" status --porcelain --untracked-files=all)
    if [[ -n "$changes" ]]; then
        say "uncommitted changes in the copy (git status --porcelain):"
        printf '%s\n' "$changes" | sed 's/^/    /'
    else
        say "no uncommitted changes"
    fi
fi
COPY=$ROOT$INNER/main
rm -rf -- "$ROOT$INNER"
mkdir -p "$COPY"
if ((IS_GIT)); then
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -C "$COPY" -xf -
else
    tar -C "$REPO" --exclude=./.git --exclude='./.venv*' --exclude=./.cache -cf - . | tar -C "$COPY" -xf -
fi
say "copied $(find "$COPY" -type f | wc -l) files to $INNER/main"
if [[ -d "$REPO/../shared/data" ]]; then
    mkdir -p "$ROOT$INNER/shared/data"
    mount --bind "$REPO/../shared/data" "$ROOT$INNER/shared/data" \
        && MOUNTED+=("$ROOT$INNER/shared/data")
    mount -o remount,bind,ro "$ROOT$INNER/shared/data"
    say "../shared/data bind-mounted read-only at $INNER/shared/data"
else
    say "no ../shared/data beside the checkout: the tests that need it will skip"
fi

# --- 5. install -------------------------------------------------------------------------------------
say "inside: bash $INNER/main/scripts/deploy/install.sh --extras test"
t0=$(date +%s)
in_root bash "$INNER/main/scripts/deploy/install.sh" --extras test || die "scripts/deploy/install.sh failed in the arm64 root"
INSTALL_S=$(($(date +%s) - t0))
say "install.sh done in $INSTALL_S s"
in_root runuser -u edge -- /opt/edge/venv/bin/edge models >/dev/null || die "edge models fails as user edge"
in_root runuser -u edge -- /opt/edge/venv/bin/edge --version

# What the tests need besides the test extra, as scripts/setup.sh and the dev machine have it:
# mosquitto and openssl (the MQTT tests start their own broker, some with TLS), git (tests list
# the checkout's files with git, so the copy becomes a repository of its own), shellcheck
# (tests/test_install.py) and systemd (systemd-analyze, for tests/test_systemd.py; nothing runs).
TEST_PACKAGES="mosquitto openssl git shellcheck systemd"
say "inside: apt-get install $TEST_PACKAGES (test dependencies); the copy as a git repository"
in_root bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $TEST_PACKAGES >/dev/null" \
    || die "could not install the test dependencies ($TEST_PACKAGES) in the root"
in_root git -C "$INNER/main" init -q
in_root git -C "$INNER/main" add -A
in_root git -C "$INNER/main" -c user.name=check_arm64 -c user.email=check_arm64@localhost \
    commit -q -m "copy of $COMMIT with the uncommitted changes listed in the log"

# The suite is written for a developer's .venv, where edge is an editable install of the
# checkout (tests/test_packaging.py relies on that to keep the venv's own edge out of the
# throwaway venv it installs the wheel into). The installed, non-editable package has been
# checked above (install.sh: import, runtime, `edge models`; `edge models` again as user edge),
# so for the tests the venv's edge becomes an editable install of the copy; nothing else changes.
say "inside: pip install --no-deps -e $INNER/main (the suite runs against the copy, as in a developer's .venv)"
in_root /opt/edge/venv/bin/python -m pip install -q --no-deps --no-build-isolation -e "$INNER/main" \
    || die "could not install the copy editable for the tests"

if [[ "$CHECK_TFLITE" == 1 ]]; then
    say "inside: .venv-tflite214 (tflite-runtime 2.14.0, numpy<2) in the copy"
    in_root python3 -m venv "$INNER/main/.venv-tflite214"
    in_root "$INNER/main/.venv-tflite214/bin/python" -m pip install -q "tflite-runtime==2.14.0" "numpy<2" \
        || die "could not install tflite-runtime 2.14.0 in the arm64 root"
fi

# --- 6. the test suite ------------------------------------------------------------------------------
PY=/opt/edge/venv/bin/python
PY_VERSION=$(in_root $PY -c 'import platform; print(platform.python_version())')
LITERT=$(in_root $PY -c 'from importlib.metadata import version; print(version("ai-edge-litert"))' 2>/dev/null || echo "not installed")
NUMPY=$(in_root $PY -c 'import numpy; print(numpy.__version__)')
EDGE_VERSION=$(in_root $PY -c 'import edge; print(edge.__version__)')
read -r -a pytest_args <<<"${PYTEST_ARGS:-}"
say "inside: cd $INNER/main && $PY -m pytest -q ${pytest_args[*]}"
t0=$(date +%s)
set +e
# shellcheck disable=SC2016  # expanded by the inner bash
in_root bash -c 'cd "$1" && shift && exec "$@"' - "$INNER/main" $PY -m pytest -q -p no:cacheprovider "${pytest_args[@]}" \
    2>&1 | tee "$ROOT$INNER/pytest.log"
PYTEST_STATUS=${PIPESTATUS[0]}
set -e
PYTEST_S=$(($(date +%s) - t0))
RESULT=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|errors|skipped|deselected)|^(=+ )?no tests ran' "$ROOT$INNER/pytest.log" | tail -1 || true)

# --- 7. summary -------------------------------------------------------------------------------------
WALL=$(($(date +%s) - START_TIME))
echo
echo "================ check_arm64 summary ================"
echo "commit:          $COMMIT"
echo "arch:            $ROOT_ARCH (Debian $(cat "$ROOT/etc/debian_version"), qemu user-mode on $HOST_ARCH${EMULATION_ENV[*]:+, ${EMULATION_ENV[*]}})"
echo "python:          $PY_VERSION"
echo "ai-edge-litert:  $LITERT"
echo "numpy:           $NUMPY"
echo "edge:            $EDGE_VERSION (scripts/deploy/install.sh: $INSTALL_S s)"
echo "pytest:          ${RESULT:-no result line} (exit $PYTEST_STATUS, $PYTEST_S s)"
echo "wall time:       $((WALL / 60)) min $((WALL % 60)) s"
echo "====================================================="
exit "$PYTEST_STATUS"
