#!/usr/bin/env bash
# The Raspberry Pi path on arm64, emulated: an arm64 Debian Bookworm userland (what Raspberry Pi
# OS Bookworm is built on; Python 3.11) run through qemu-user with -L (no binfmt, no chroot), the
# device install resolved for aarch64 as the README's Pi section resolves it (`.[mavlink]`, wheels
# only), and four checks, one result line each:
#   1/4 run      `edgeliquid run models/nav_cfc.onnx --source sim`: commands, final hold, exit 0
#   2/4 golden   tests/golden/nav_cfc.npz through the shipped model vs the stored x86 commands
#   3/4 install  no torch / onnx / ray (the whole training stack) in the device install
#   4/4 info     import time, ms/step and peak RSS under emulation (reported, not gated)
#
# Cached outside the repo (EDGELIQUID_ARM64_CACHE, default ~/.cache/edgeliquid/arm64): the
# userland (~230 MB) and one install per pyproject.toml (~430 MB). Only a cold cache needs the
# network (apt for qemu-user-static/debootstrap, the Debian mirror, PyPI) and root; a warm run
# needs neither and takes well under a minute.
#
# Exit status: 0 all checks passed; 1 a check failed, or the device install does not resolve
# for aarch64; 2 this machine cannot run it (not root for a cold build, no pip); 3 a download
# failed (apt, Debian mirror, PyPI): not a test failure, retry when the network is back.
#
# Settings: EDGELIQUID_ARM64_CPU (cortex-a72 = Pi 4, default; cortex-a76 = Pi 5),
# EDGELIQUID_ARM64_ORT (pin onnxruntime, e.g. 1.27.0; default: what the Pi resolves),
# EDGELIQUID_ARM64_MIRROR (Debian mirror), PYTHON (host Python with pip; make passes .venv's).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EDGELIQUID_ARM64_CACHE:-$HOME/.cache/edgeliquid/arm64}
CPU=${EDGELIQUID_ARM64_CPU:-cortex-a72}
ORT=${EDGELIQUID_ARM64_ORT:-}
MIRROR=${EDGELIQUID_ARM64_MIRROR:-http://deb.debian.org/debian}
HOST_PY=${PYTHON:-python3}
RECIPE=1  # bump when the userland recipe below changes: a cached one is rebuilt
ROOT=$CACHE/bookworm
WORK=$CACHE/last-run  # logs and the daemon's output of the latest run

say() { echo "arm64 smoke: $*"; }
fail() { say "FAIL: $*"; exit 1; }
setup_fail() { say "SETUP FAILED: $*"; exit 2; }
fetch_fail() { say "FETCH FAILED ($1; not a test failure, retry later): $2"; exit 3; }

case $CPU in
  cortex-a72) BOARD="Raspberry Pi 4 Model B Rev 1.4" REV=d03114 PART=0xd08 VAR=0x0 CPUREV=3
              FEATURES="fp asimd evtstrm crc32 cpuid" ;;
  cortex-a76) BOARD="Raspberry Pi 5 Model B Rev 1.0" REV=d04170 PART=0xd0b VAR=0x4 CPUREV=1
              FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid"
              FEATURES+=" asimdrdm lrcpc dcpop asimddp" ;;
  *) setup_fail "EDGELIQUID_ARM64_CPU must be cortex-a72 (Pi 4) or cortex-a76 (Pi 5), got '$CPU'" ;;
esac

START=$SECONDS
mkdir -p "$CACHE" && rm -rf "$WORK" && mkdir -p "$WORK"

# -- tools -------------------------------------------------------------------------------------

install_tools() {
  local pkgs=()
  command -v qemu-aarch64-static >/dev/null || pkgs+=(qemu-user-static)
  if [[ $(cat "$ROOT/.edgeliquid-ready" 2>/dev/null) != "$RECIPE" ]]; then
    command -v debootstrap >/dev/null || pkgs+=(debootstrap)
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || pkgs+=(debian-archive-keyring)
  fi
  ((${#pkgs[@]} == 0)) && return
  [[ $(id -u) == 0 ]] || setup_fail "needs ${pkgs[*]}: run as root, or apt-get install them first"
  say "tools: apt-get install ${pkgs[*]}"
  timeout 300 apt-get update -q >"$WORK/apt.log" 2>&1 || true  # one dead source must not stop it
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q --no-install-recommends \
    "${pkgs[@]}" >>"$WORK/apt.log" 2>&1 ||
    fetch_fail apt "apt-get install ${pkgs[*]} failed (log: $WORK/apt.log)"
}

# -- the arm64 userland ----------------------------------------------------------------------

pi_cpuinfo() {  # what the Pi's kernel shows; qemu-user 7.2 would show the host's x86 one instead
  local n i
  n=$(nproc --all)
  for ((i = 0; i < n; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$i" "$FEATURES"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\n' "$VAR"
    printf 'CPU part\t: %s\nCPU revision\t: %s\n\n' "$PART" "$CPUREV"
  done
  printf 'Revision\t: %s\nSerial\t\t: 0000000000000000\nModel\t\t: %s\n' "$REV" "$BOARD"
}

build_userland() {
  if [[ $(cat "$ROOT/.edgeliquid-ready" 2>/dev/null) == "$RECIPE" ]]; then
    say "userland: reused $ROOT"
    return
  fi
  [[ $(id -u) == 0 ]] || setup_fail "building the userland needs root (debootstrap, device nodes)"
  rm -rf "$ROOT" "$ROOT.tmp"
  say "userland: debootstrap --foreign arm64 bookworm (minbase + python3) into $ROOT"
  timeout 900 debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 \
    bookworm "$ROOT.tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    fetch_fail "Debian mirror $MIRROR" "debootstrap failed (log: $WORK/debootstrap.log)"
  # The second stage would run every maintainer script under emulation; unpacking the
  # downloaded packages is all Python needs (the first stage unpacked only the required ones).
  timeout 600 bash -c 'set -o pipefail; for deb in "$1"/var/cache/apt/archives/*.deb; do
      dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$1" -f - || exit 1
    done' _ "$ROOT.tmp" || setup_fail "unpacking the packages into $ROOT.tmp failed"
  rm -f "$ROOT.tmp"/var/cache/apt/archives/*.deb
  # /proc is a directory holding only cpuinfo: with -L qemu looks a path up in ROOT first and
  # falls back to the host's, so /proc/self/... stays the real one.
  rm -f "$ROOT.tmp/proc" && mkdir "$ROOT.tmp/proc"
  mv "$ROOT.tmp" "$ROOT"
  # Without its own cache the arm64 loader reads the host's /etc/ld.so.cache.
  timeout 120 qemu-aarch64-static "$ROOT/sbin/ldconfig" -r "$ROOT" ||
    setup_fail "ldconfig in $ROOT failed"
  pi_cpuinfo >"$ROOT/proc/cpuinfo"
  say "userland: compiling the standard library (maintainer scripts would have)"
  timeout 900 qemu-aarch64-static -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" -m compileall \
    -q -x '/(test|idlelib|tkinter|lib2to3|turtledemo|ensurepip)/' "$ROOT/usr/lib/python3.11" \
    >"$WORK/compileall.log" 2>&1 ||
    setup_fail "compileall under qemu failed (log: $WORK/compileall.log)"
  echo "$RECIPE" >"$ROOT/.edgeliquid-ready"
}

# -- the device install, resolved for aarch64 -----------------------------------------------------

PLATFORMS=()  # Bookworm's glibc is 2.36: every manylinux tag up to it, as pip on the Pi accepts
for glibc in $(seq 36 -1 17); do PLATFORMS+=(--platform "manylinux_2_${glibc}_aarch64"); done
PLATFORMS+=(--platform manylinux2014_aarch64)

device_requirements() {  # what the install depends on: a comment or README edit keeps the cache
  "$HOST_PY" -c 'import json, sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(json.dumps([p["dependencies"], p["optional-dependencies"]["mavlink"]]))' \
    "$REPO/pyproject.toml" 2>/dev/null || cat "$REPO/pyproject.toml"
}

install_device() {
  local key src
  key=$( (echo "$RECIPE $ORT ${PLATFORMS[*]}"; device_requirements) | sha256sum | cut -c1-12)
  SITE=$CACHE/site-$key
  if [[ -f $SITE/.edgeliquid-ready ]]; then
    say "install: reused $SITE"
    return
  fi
  "$HOST_PY" -m pip --version >/dev/null 2>&1 || setup_fail "no pip for $HOST_PY (set PYTHON)"
  rm -rf "$SITE.tmp"
  # pip builds the project in its source tree; build a copy so the checkout stays clean.
  src=$WORK/src && mkdir -p "$src"
  cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/edgeliquid" "$src/"
  say "install: pip --platform aarch64 --only-binary=:all: \".[mavlink]\"${ORT:+ onnxruntime==$ORT}"
  if ! timeout 900 "$HOST_PY" -m pip install --quiet --disable-pip-version-check \
    --target "$SITE.tmp" "${PLATFORMS[@]}" --only-binary=:all: --python-version 3.11 \
    --implementation cp --abi cp311 "$src[mavlink]" ${ORT:+"onnxruntime==$ORT"} \
    >"$WORK/pip.log" 2>&1; then
    # A download failure or a real one (a dependency without an aarch64 wheel)? Ask the index
    # for one small wheel the install needs, uncached.
    if grep -qiE "connection (broken|refused|reset)|timed out|name resolution|SSLError" \
      "$WORK/pip.log" || ! timeout 120 "$HOST_PY" -m pip download --quiet --no-cache-dir \
      --no-deps --only-binary=:all: --python-version 3.11 -d "$WORK/probe" typer \
      >/dev/null 2>&1; then
      fetch_fail PyPI "pip could not download (log: $WORK/pip.log)"
    fi
    fail "the device install does not resolve for aarch64: $(grep -m1 ERROR "$WORK/pip.log")"
  fi
  touch "$SITE.tmp/.edgeliquid-ready"
  find "$CACHE" -maxdepth 1 -name 'site-*' ! -name "site-$key*" -exec rm -rf {} +  # older installs
  mv "$SITE.tmp" "$SITE"
}

# -- the checks -----------------------------------------------------------------------------------

install_tools
build_userland
install_device
if ! cmp -s <(pi_cpuinfo) "$ROOT/proc/cpuinfo"; then  # this host's core count, $CPU's board
  pi_cpuinfo >"$ROOT/proc/cpuinfo" || setup_fail "cannot write $ROOT/proc/cpuinfo"
fi
# The arm64 Python, emulated; the repo first on the path, as `pip install -e` has it; its
# bytecode cached beside the userland, not in the checkout.
GUEST=(env -u PYTHONDONTWRITEBYTECODE -u PYTHONHOME PYTHONPYCACHEPREFIX="$CACHE/pycache"
  PYTHONPATH="$REPO:$SITE" qemu-aarch64-static -cpu "$CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" -s)
say "arm64 Debian $(cat "$ROOT/etc/debian_version"), $(qemu-aarch64-static --version | head -1)," \
  "-cpu $CPU; ready after $((SECONDS - START)) s"

# Compile the checkout's modules first (cached; seconds when nothing changed), so the daemon's
# start-up below is not a first-time compile under emulation.
timeout 300 "${GUEST[@]}" -m compileall -q "$REPO/edgeliquid" "$REPO/scripts/arm64_checks.py" \
  >"$WORK/compileall-repo.log" 2>&1 ||
  setup_fail "compiling the checkout under qemu failed (log: $WORK/compileall-repo.log)"

failed=0
# 2 Hz and a 1 s frame age: under emulation a step takes 30-250 ms (loaded 2-core host), over
# the 80 ms budget of 10 Hz, and the simulator renders a frame every ~0.5 s.
"$HOST_PY" "$REPO/scripts/arm64_checks.py" run "$WORK" 240 "${GUEST[@]}" -m edgeliquid.cli run \
  "$REPO/models/nav_cfc.onnx" --source sim --sink stdout --rate 2 --max-frame-age 1 --duration 6 ||
  failed=1
timeout 300 "${GUEST[@]}" "$REPO/scripts/arm64_checks.py" device "$WORK" || {
  rc=$?  # 1: the checks said why; anything else: the process died or hung before they could
  ((rc == 1)) || say "FAIL 2/4 golden, 3/4 device install: the arm64 process ended with" \
    "status $rc$( ((rc == 124)) && echo ' (timed out after 300 s)')"
  failed=1
}
if [[ -f $WORK/run.json && -f $WORK/device.json ]]; then
  "$HOST_PY" "$REPO/scripts/arm64_checks.py" report "$WORK" || true
fi

if ((failed)); then
  fail "a check failed after $((SECONDS - START)) s (logs and the daemon's output in $WORK)"
fi
say "OK: all checks passed in $((SECONDS - START)) s"
