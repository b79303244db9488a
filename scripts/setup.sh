#!/usr/bin/env bash
# Creates .venv/ in the repo and installs Fine-Tune Studio into it. Safe to run again (fast when
# everything is there). Usage: bash scripts/setup.sh [--dev]
#   --dev  also installs the test tools (pytest, hypothesis, playwright) and Debian's Chromium.
# torch: a CUDA build only where an NVIDIA GPU is visible; otherwise the CPU build, so a laptop
# or CI machine never downloads gigabytes of CUDA libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
PIP="$VPY -m pip install -q --disable-pip-version-check"
TORCH=2.13.0
if ! $VPY -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "NVIDIA GPU found: installing torch $TORCH with CUDA"
    $PIP "torch==$TORCH"
  else
    echo "No NVIDIA GPU: installing the CPU build of torch $TORCH"
    # A local/mirrored +cpu wheel when there is one; else PyTorch's CPU index (never PyPI's CUDA build).
    $PIP "torch==$TORCH+cpu" 2>/dev/null || \
      $PIP "torch==$TORCH" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
$PIP -r requirements.txt
[ -s requirements-extra.txt ] && $PIP -r requirements-extra.txt
if [ "${1:-}" = "--dev" ]; then
  $PIP -r requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's Chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) || \
      echo "Could not install chromium: browser tests will be skipped"
  fi
fi
echo "Setup done: $($VPY -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
