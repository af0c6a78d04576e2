#!/usr/bin/env bash
# Everything the project measures on one CUDA GPU, in bf16, in one prepared run (about 10 minutes on a
# data-centre GPU, most of it building models on the CPU; nothing to install beyond the project, and
# torch with CUDA must already be importable):
#
# 1. bench/speedup.py: the shipped model and the real-width BLIP-2 FlanT5-XL (2 layers per stack),
#    dense vs pruned 20% / 50% vs masked, widths rounded up to multiples of 64, batch 1/8/32
#    -> results/bench/cuda-bfloat16/*.json|.md (and results/bench/README.md);
# 2. scoring and pruning the shipped model on the GPU in bf16 (UKMP, FLAP, magnitude): each step's
#    time and peak GPU memory, as `ukmp prune` prints them -> results/bench/gpu-shipped.log;
# 3. bench/real_size.py on the GPU: the FlanT5-XL-size model (3.88B, bf16) scored, pruned, reloaded
#    and benched dense vs pruned at batch 1/8/32 -> results/bench/gpu-real-size.md|.json.
#
#   bash bench/gpu.sh [WORK_DIR]      # default WORK_DIR: a fresh temporary folder
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "bench/gpu.sh: torch sees no CUDA device.")'
work="${1:-$(mktemp -d)}"
python3 bench/speedup.py --device cuda --dtype bfloat16 --batch-sizes 1,8,32 --repeats 10 --round-to 64
: > results/bench/gpu-shipped.log
for method in ukmp flap magnitude; do
    python3 -m ukmp prune shapes-blip2-t5 --method "$method" --ratio 0.5 --calib shapes --num-samples 256 \
        --device cuda --score-dtype bfloat16 --out "$work/shipped-$method" --overwrite --no-progress \
        2>&1 | grep -E "^ukmp prune|^target|^steps" | tee -a results/bench/gpu-shipped.log
done
python3 bench/real_size.py --work "$work/real-size" --device cuda --batch-sizes 1,8,32 --repeats 10 \
    --out results/bench/gpu-real-size.md
