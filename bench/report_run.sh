#!/usr/bin/env bash
# A real run on the shipped model, reported by `ukmp report`: three methods (UKMP, magnitude,
# random) at 20% and 50% of all parameters, each evaluated on the shapes world's val split, plus
# `ukmp bench` of the UKMP artifacts; the report goes to results/shapes-run-report/.
#
#   bash bench/report_run.sh [RUN_DIR]      # default RUN_DIR: runs/shapes-report (git-ignored)
#
# LIMIT (default 200) caps the records per task; NUM_SAMPLES (default 500) the UKMI calibration
# samples per pass; TASKS (default "caption vqa") the evaluated tasks (retrieval costs 5 N^2
# decoder passes for N images). Every step is skipped when its output exists, so a stopped run continues.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/shapes-report}
LIMIT=${LIMIT:-200}
NUM_SAMPLES=${NUM_SAMPLES:-500}
TASKS=${TASKS:-caption vqa}
MODEL=shapes-blip2-t5
mkdir -p "$RUN"

prune() {  # name, then ukmp prune arguments
  local name=$1; shift
  [ -f "$RUN/$name/pruning.json" ] || ukmp prune "$MODEL" --out "$RUN/$name" "$@"
}
prune ukmp-50 --method ukmp --ratio 0.5 --calib shapes --num-samples "$NUM_SAMPLES"
prune ukmp-20 --method ukmp --ratio 0.2 --scores "$RUN/ukmp-50/scores.safetensors"
for method in magnitude random; do
  prune "$method-50" --method "$method" --ratio 0.5
  prune "$method-20" --method "$method" --ratio 0.2
done

evaluate() {  # model, results file
  local args=()
  for task in $TASKS; do args+=(--task "$task"); done
  [ -f "$2" ] || ukmp evaluate "$1" --data shapes "${args[@]}" --limit "$LIMIT" --no-progress --out "$2"
}
evaluate "$MODEL" "$RUN/dense_results.json"
for name in ukmp-20 ukmp-50 magnitude-20 magnitude-50 random-20 random-50; do
  evaluate "$RUN/$name" "$RUN/${name}_results.json"
done

# timing needs a quiet machine: NO_BENCH=1 stops here, so the quality part can run while others work
[ "${NO_BENCH:-0}" = 1 ] && exit 0
[ -f "$RUN/bench.json" ] || ukmp bench "$MODEL" "$RUN/ukmp-20" "$RUN/ukmp-50" --batch-sizes 1,8 --repeats 5 --round-to 8 \
  --out "$RUN/bench.json"
ukmp report "$RUN" --out results/shapes-run-report
