#!/usr/bin/env bash
# Everything this project checks on a lent CUDA GPU, in one call (see bench/README.md):
# the gpu-marked tests, then the training-speed benchmark. Needs the wheels in .whl/ (trl,
# datasets, dill, multiprocess, bitsandbytes, liger-kernel) that the GPU image lacks.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:${PYTHONPATH:-} || exit 1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, trl, peft, datasets, bitsandbytes; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'bnb', bitsandbytes.__version__)" | tee -a "$OUT/gpu.txt"
case "${1:-all}" in
  tests|all) python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" ;;
esac
case "${1:-all}" in
  speed|all) python3 bench/bench_train_speed.py --model "${MODEL:-llama-3.1-8b}" --steps "${STEPS:-10}" --out "$OUT" 2>&1 | tee "$OUT/speed.log" ;;
esac
