#!/usr/bin/env bash
# The speed benchmark of bench/speedup.py in bf16 on one CUDA GPU: the shipped model and the
# real-width BLIP-2 FlanT5-XL (2 layers per stack), each dense vs pruned 20% / 50% vs masked, plus
# widths rounded up to multiples of 64 (what tensor-core kernels prefer). About 3 minutes on one
# data-centre GPU, most of it building the real-width model on the CPU; nothing to install beyond
# the project (torch with CUDA must already be importable).
#
#   bash bench/gpu.sh            # writes results/bench/cuda-bfloat16/*.json|.md and rewrites results/bench/README.md
#
# Extra arguments go to bench/speedup.py (e.g. --repeats 20, --work DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no CUDA device.")'
exec python3 bench/speedup.py --device cuda --dtype bfloat16 --batch-sizes 1,8,32 --repeats 10 --round-to 64 "$@"
