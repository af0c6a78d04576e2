"""Several calibration draws of `ukmp compare`, cell by cell: each metric's values over the seeds, and
every ordering between a UKMP method and another, paired by seed (`ukmp.seed_stats`).

Why paired: one draw can flip a ranking; the per-seed difference of two methods on the same draw
cancels what the draw shares, so an ordering is called only when its interval clears zero.
"""

from __future__ import annotations

from typing import Any

from ukmp.compare.metrics import lower_is_better
from ukmp.methods.registry import is_proposed
from ukmp.seed_stats import paired_ordering, spread

SEEDS_FORMAT = "ukmp-compare-seeds/1"
#: a run's metrics before and after recovery, as its results name them
STAGES = (("metrics", "before recovery"), ("recovered_metrics", "after recovery"))


def aggregate(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (method, ratio) with each metric's values over the seeds and their spread.

    A metric's values keep the seed each came from (``<stage>_seeds``, parallel to them), so that
    orderings pair by seed; the draws a metric is missing from are listed (``<stage>_lacking``).
    """
    drawn = [data["settings"]["seed"] for data in per_seed]
    cells: dict[tuple[str, float], dict[str, Any]] = {}
    for data, seed in zip(per_seed, drawn):
        for row in data["rows"]:
            cell = cells.setdefault(
                (row["method"], row["target_ratio"]),
                {"method": row["method"], "target_ratio": row["target_ratio"], "achieved": [], "seeds": []},
            )
            cell["achieved"].append(row["achieved_ratio"])
            cell["seeds"].append(seed)
            cell.setdefault("recovery", row.get("recovery"))
            for key, _ in STAGES:
                for metric, value in (row.get(key) or {}).items():
                    cell.setdefault(key, {}).setdefault(metric, []).append(value)
                    cell.setdefault(f"{key}_seeds", {}).setdefault(metric, []).append(seed)
    out = []
    for cell in cells.values():
        for key, _ in STAGES:
            if key in cell:
                cell[f"{key}_spread"] = {m: spread(v).as_dict() for m, v in cell[key].items()}
                lacking = {m: [s for s in drawn if s not in had] for m, had in cell[f"{key}_seeds"].items()}
                lacking = {m: seeds for m, seeds in lacking.items() if seeds}
                if lacking:
                    cell[f"{key}_lacking"] = lacking
        out.append(cell)
    return out


def by_seed(cell: dict[str, Any], key: str, metric: str) -> dict[int, float]:
    """``metric``'s value in each draw of ``cell`` that has it, by seed."""
    return dict(zip(cell[f"{key}_seeds"][metric], cell[key][metric], strict=True))


def orderings(cells: list[dict[str, Any]], key: str = "metrics") -> list[dict[str, Any]]:
    """Every (UKMP method, other method) pair at every ratio and metric, paired by seed.

    The difference is the UKMP method's gain over the other, per seed: its value minus the other's, or
    for a lower-is-better metric (perplexity) the other's minus its own. Only the draws where both
    have the metric pair up; where some do not, the ordering names the
    seeds it paired over and the ones left unpaired.
    """
    out = []
    for ratio in sorted({c["target_ratio"] for c in cells}):
        at = [c for c in cells if c["target_ratio"] == ratio and key in c]
        for a in at:
            if not is_proposed(a["method"]):
                continue
            for b in at:
                if b is a or (is_proposed(b["method"]) and b["method"] < a["method"]):
                    continue  # each pair of UKMP methods once
                for metric in a[key]:
                    if metric not in b[key]:
                        continue
                    va, vb = by_seed(a, key, metric), by_seed(b, key, metric)
                    common = sorted(va.keys() & vb.keys())
                    if not common:
                        continue
                    sign = -1.0 if lower_is_better(metric) else 1.0  # the difference is a's gain over b
                    a_values, b_values = [sign * va[s] for s in common], [sign * vb[s] for s in common]
                    verdict, diff = paired_ordering(a_values, b_values)
                    ordering = {
                        "ratio": ratio,
                        "better": a["method"],
                        "worse": b["method"],
                        "metric": metric,
                        "verdict": verdict,
                        "difference": diff.as_dict(),
                    }
                    unpaired = sorted((set(a["seeds"]) | set(b["seeds"])) - set(common))
                    if unpaired:
                        ordering.update(seeds=common, unpaired=unpaired)
                    out.append(ordering)
    return out
