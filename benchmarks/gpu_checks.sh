#!/usr/bin/env bash
# The one prepared GPU run (issues 5 and 6): the CPU-vs-CUDA check of the pixel families on
# sample_corpus/, then the MaxSim kernels (they score the stored bits on the CPU) beside the
# machine's matrix-multiply peak.
# On the lent GPU machine (PyTorch there; PyMuPDF carried as a wheel in .whl/):
#   bash benchmarks/gpu_checks.sh
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ] && ! python3 -c "import pymupdf" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
echo "== pixel families, CPU vs CUDA"; python3 benchmarks/gpu_vision_check.py
echo "== MaxSim kernels, CPU of the same machine"; python3 benchmarks/maxsim_kernel.py --device cpu
