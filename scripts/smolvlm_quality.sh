#!/usr/bin/env bash
# shapes-smolvlm's two kinds of quality for its model card: VQA and captions on the world's val split,
# and its language model's perplexity on held-out English beside SmolLM2-135M-Instruct's own (the same
# GGUF, the same windows). Usage: bash scripts/smolvlm_quality.sh [OUT] (default runs/smolvlm-eval).
set -euo pipefail
cd "$(dirname "$0")/.."
E="${1:-runs/smolvlm-eval}"
mkdir -p "$E"
python3 bench/smollm2_corpora.py --out "$E/corpora"
GGUF=$(python3 -c "from ukmp.zoo.smolvlm_text import find_smollm2_gguf; print(find_smollm2_gguf())")
for set in fortunes-eval wordnet-eval; do
    for model in shapes-smolvlm "$GGUF"; do
        name=$([ "$model" = shapes-smolvlm ] && echo smolvlm || echo smollm2)
        python3 -m ukmp evaluate "$model" --task perplexity --data "$E/corpora/$set.jsonl" --seq-len 256 \
            --limit 100 --batch-size 4 --no-progress --out "$E/$name-$set.json"
    done
done
python3 -m ukmp evaluate shapes-smolvlm --data shapes --split val --task vqa --limit 1000 --no-progress \
    --out "$E/smolvlm-vqa.json"
python3 -m ukmp evaluate shapes-smolvlm --data shapes --split val --task caption --limit 200 --no-progress \
    --out "$E/smolvlm-caption.json"
