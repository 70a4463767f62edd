#!/usr/bin/env bash
# Cross-compiles the llama-cpp-python wheel for arm64 boards on an x86 machine.
#
#   image-build/arm64-wheels.sh DIR
#
# llama-cpp-python is the one runtime package PyPI has no aarch64 wheel for, and compiling
# llama.cpp inside the arm64 chroot under qemu-user takes hours. Debian's cross compilers
# (apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu) do it in about 5 minutes on
# 2 cores. llama-cpp-python loads its libraries through ctypes, so no Python headers or
# libraries of the target are needed, only its C library, which the cross compiler carries.
#
# The wheel is built for plain ARMv8-A (GGML_CPU_ARM_ARCH=armv8-a): the Pi 4's Cortex-A72
# has no dot-product instructions, and one image serves the Pi 4, the Pi 5 and RK35xx boards.
# Built in a temporary directory; DIR gets the finished wheel or nothing. build.sh calls this
# for arm64 boards when --arm64-wheels is not given, and keeps the wheel for the next build.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
VENV=${VENV:-$REPO/.venv}
die() { printf 'arm64-wheels.sh: %s\n' "$*" >&2; exit 2; }

DEST=${1:-}
[ -n "$DEST" ] || die "usage: $0 DIR (where the aarch64 wheel goes)"
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install gcc-aarch64-linux-gnu \
g++-aarch64-linux-gnu (or build the wheel on an arm64 machine, see image-build/README.md)"
done
[ -x "$VENV/bin/python" ] || die "no appliance venv at $VENV: run ./setup.sh first"
pin=$(grep -E '^llama-cpp-python==' "$REPO/requirements.lock") \
  || die "requirements.lock pins no llama-cpp-python"
version=${pin#*==}

mkdir -p "$DEST"
WORK=$(mktemp -d "$DEST/.cross.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

cat > "$WORK/aarch64.cmake" <<'CMAKE'
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
CMAKE

started=$(date +%s)
echo "    cross-compiling $pin for aarch64 (about 5 min on 2 cores) …"
# OpenMP off: the cross toolchain's libgomp is not in the image; ggml's own thread pool is
# used instead. --no-cache-dir: pip's cache would hand back the host's x86 build.
CMAKE_ARGS="-DCMAKE_TOOLCHAIN_FILE=$WORK/aarch64.cmake -DGGML_NATIVE=OFF \
-DGGML_CPU_ARM_ARCH=armv8-a -DGGML_OPENMP=OFF" \
  "$VENV/bin/python" -m pip --disable-pip-version-check -q wheel --no-deps --no-cache-dir \
  --no-binary llama-cpp-python -w "$WORK/out" "$pin" > "$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; die "the cross build failed (log above)"; }

# The build tags the wheel with the host's platform (linux_x86_64) though every library in
# it is aarch64: retag it, after checking that this is so.
"$VENV/bin/python" - "$WORK/out" "$DEST" "$HERE" <<'PY'
import base64, hashlib, sys, zipfile
from pathlib import Path

out, dest = Path(sys.argv[1]), Path(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from inspect_image import elf_machine

(built,) = out.glob("llama_cpp_python-*.whl")
with zipfile.ZipFile(built) as src:
    libraries = [n for n in src.namelist() if ".so" in n.rsplit("/", 1)[-1]]
    if not libraries:
        sys.exit(f"{built.name} has no shared libraries")
    for name in libraries:
        if elf_machine(src.read(name)[:20]) != "aarch64":
            sys.exit(f"{name} in {built.name} is not an aarch64 library")
    new_name = built.name.replace("linux_x86_64", "linux_aarch64")
    target = dest / new_name
    partial = dest / (new_name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as new:
        records = []
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".dist-info/WHEEL"):
                data = data.replace(b"linux_x86_64", b"linux_aarch64")
            if info.filename.endswith(".dist-info/RECORD"):
                record_name = info.filename
                continue
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            records.append(f"{info.filename},sha256={digest.decode()},{len(data)}")
            new.writestr(info, data)
        records.append(f"{record_name},,")
        new.writestr(record_name, "\n".join(records) + "\n")
partial.rename(target)
print(f"    {target.name}: {len(libraries)} aarch64 libraries")
PY
echo "    built in $(( $(date +%s) - started )) s: $DEST/llama_cpp_python-$version-py3-none-linux_aarch64.whl"
