"""Which attention units a plan search's candidates cut, next to each candidate's selection loss.

    python3 scripts/attention_cuts.py --work work/smollm2-s6 --seed 6 \
        --out results/smollm2-plan-search/attention-cuts-6.md

Reads a `scripts/lm_replan_study.py --variant search` draw: the bench's saved UKMP scores and the
searched artifact's recorded candidate losses. Re-draws the same perturbed candidates (same seed and
spread, in the same order as `ukmp prune --plan-search`), plans each one with UKMP's schedule (planner
only: no model forward) and lists, per candidate, the layers whose attention lost key/value groups.
It is how the collapse of a draw is traced to the layers that pay for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ukmp.atomic import write_text_atomic
from ukmp.method_scores import MethodScores
from ukmp.planning.schedules import plan_from_scores
from ukmp.planning.search import perturbed_scores
from ukmp.pruning import PruneConfig, load_dense


def layer_of(group: str) -> int:
    """`lm.layers.12.attn` -> 12."""
    parts = group.split(".")
    return int(parts[parts.index("layers") + 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="the bench's --work folder of one draw")
    parser.add_argument("--seed", type=int, required=True, help="the draw's seed (the search's seed)")
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--gguf", default="SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--of", default="all")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tag = f"{round(args.ratio * 100)}"
    searched = json.loads((args.work / "pruned" / f"ukmp-search-{tag}" / "pruning.json").read_text())
    trace = searched["method"]["options"]["plan_search"]
    model = str(args.work / "model" / args.gguf)
    config = PruneConfig(model=model, out=args.out, method="ukmp", ratio=args.ratio, of=args.of)
    dense = load_dense(config, runs=False)
    scores = MethodScores.load(next(args.work.glob("pruned/ukmp-*/scores.safetensors"))).scores
    generator = torch.Generator().manual_seed(args.seed)
    attention = [g for g in dense.groups if g.name.endswith(".attn")]
    mlp = [g for g in dense.groups if g.name.endswith(".mlp")]
    lines = [
        f"# Attention cut by each plan-search candidate: `{args.work.name}`, UKMP at {args.ratio:.0%} of {args.of}",
        "",
        f"`python3 scripts/attention_cuts.py --work {args.work} --seed {args.seed} --out {args.out}`",
        "",
        f"Candidate 0 is the scores' own plan; the search kept candidate {trace['chosen']}. Selection loss: mean",
        f"next-token loss on {trace['samples']} held-out calibration windows. A layer is listed with the",
        "key/value groups its attention keeps (of its total) when it lost any.",
        "",
        "| candidate | selection loss | layers whose attention was cut (layer: kept/total) | MLP channels kept |",
        "|---|---|---|---|",
    ]
    for k, loss in enumerate(trace["losses"]):
        candidate = scores if k == 0 else perturbed_scores(scores, trace["spread"], generator)
        result = plan_from_scores(
            candidate, dense.groups, schedule="iterative", target_ratio=args.ratio, basis_params=dense.basis
        )
        plan = result.plan
        cut = [
            f"{layer_of(g.name)}: {len(plan.kept[g.name])}/{g.num_units}"
            for g in attention
            if len(plan.kept[g.name]) < g.num_units
        ]
        kept = sum(len(plan.kept[g.name]) for g in mlp) / sum(g.num_units for g in mlp)
        if k == trace["chosen"]:  # the re-drawn candidates are the search's own: its artifact has this plan
            saved = {name: group["kept"] for name, group in searched["groups"].items()}
            if saved != {name: kept for name, kept in plan.kept.items() if name in saved}:
                print(f"error: candidate {k} does not re-plan to {args.work}'s searched artifact.")
                return 1
        chosen = " (kept)" if k == trace["chosen"] else ""
        lines.append(f"| {k}{chosen} | {loss:.3f} | {', '.join(cut)} | {kept:.1%} |")
    write_text_atomic(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
