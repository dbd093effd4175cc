#!/usr/bin/env bash
# Installs the pinned stack (requirements.txt) and gluon-tricks into a virtual environment.
# Used by the Makefile (hence CI) and by the Dockerfile, so that every install takes one path.
#   scripts/install_env.sh [VENV_DIR]     (default .venv; VENV_DIR=system installs into the current python)
# Each step names itself; the first that fails stops the script with its own message.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-python3}

step() { echo "==> install: $*"; }
fail() { echo "install failed: $*" >&2; exit 1; }

if [ "$venv" != system ]; then
  if [ ! -x "$venv/bin/python" ]; then
    step "creating the virtual environment $venv"
    "$python" -m venv "$venv" || fail "could not create $venv with $python (needs python3-venv)"
  fi
  python="$venv/bin/python"
fi
pip=("$python" -m pip --disable-pip-version-check)

step "build tools (setuptools<70, wheel: horovod's setup.py needs both)"
"${pip[@]}" install -q "setuptools>=65,<70" wheel || fail "pip could not install setuptools/wheel"

# MXNET_PACKAGE replaces the mxnet pin: the GPU image sets mxnet-cu112==1.9.1 (same version, CUDA).
mxnet_package=${MXNET_PACKAGE:-$(grep '^mxnet==' requirements.txt)}
step "the pinned stack from requirements.txt, $mxnet_package (--no-deps: nothing outside the pins)"
{ grep -v -e '^horovod==' -e '^mxnet==' requirements.txt; echo "$mxnet_package"; } \
  > "${TMPDIR:-/tmp}/gluon_tricks_reqs.txt"
"${pip[@]}" install -q --no-deps -r "${TMPDIR:-/tmp}/gluon_tricks_reqs.txt" \
  || fail "pip could not install requirements.txt"
"$python" -c "import mxnet, gluoncv, cv2, numpy; cv2.circle" \
  || fail "the stack does not import (see the error above); is numpy still 1.23.5?"

horovod_pin=$(grep '^horovod==' requirements.txt)
if "$python" -c "import horovod.mxnet" 2>/dev/null \
   && [ "$("$python" -c 'import horovod; print(horovod.__version__)')" = "${horovod_pin#horovod==}" ]; then
  step "$horovod_pin already built"
else
  command -v cmake >/dev/null || fail "horovod's build needs cmake>=3.13 (apt-get install cmake)"
  step "$horovod_pin from source with MXNet and Gloo (about 4 minutes on 2 cores)"
  # The system cmake is used on purpose: the cmake 4.x wheel rejects the bundled gloo's CMakeLists.
  # A GPU image sets HOROVOD_GPU_OPERATIONS=NCCL (and HOROVOD_CUDA_HOME) before calling this script.
  env HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
      HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 CMAKE_POLICY_VERSION_MINIMUM=3.5 MAKEFLAGS="-j$(nproc)" \
    "${pip[@]}" install -q --no-deps --no-build-isolation --no-cache-dir "$horovod_pin" \
    || fail "horovod's build failed (see the compiler output above)"
fi
"$python" -c "import horovod.mxnet" || fail "horovod.mxnet does not import after the build"

step "gluon-tricks itself (editable)"
"${pip[@]}" install -q --no-deps --no-build-isolation -e . || fail "pip could not install the package"
step "done: $("$python" -c 'import mxnet, gluoncv, horovod; print("mxnet", mxnet.__version__, "gluoncv", gluoncv.__version__, "horovod", horovod.__version__)')"
