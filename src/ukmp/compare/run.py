"""The entry point of `ukmp compare`: one calibration draw into OUT, or N draws with their aggregate.

Each seed is an ordinary draw in OUT/seed-<s>/ (its own scores, artifacts, evaluations and results,
so a single seed can be read and resumed on its own); all of them share one loaded model and one
dense evaluation. OUT/results.json, results.md and quality_vs_ratio.png then aggregate them
(`ukmp.compare.seeds_report`); OUT/examples.html shows every draw's captions and answers on the same
images, one draw at a time (a switch; the first draw by default), and each seed folder has the page
of its own draw.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from ukmp.compare.config import CompareConfig
from ukmp.compare.draw import CompareRun
from ukmp.compare.layout import check_compare_output, seed_folder
from ukmp.compare.report import results_data
from ukmp.compare.seeds_report import write_seed_results
from ukmp.examples_page.from_compare import write_compare_examples


def run_compare(config: CompareConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """One comparison (seeds = 1, into OUT as always) or N of them with the aggregate in OUT."""
    config.validate()
    if config.seeds == 1:
        return CompareRun(config, overwrite=overwrite).run()
    out = Path(config.out)
    check_compare_output(config, overwrite=overwrite)
    if overwrite and out.exists():
        shutil.rmtree(out)
    runs: list[CompareRun] = []
    seeds = [config.seed + k for k in range(config.seeds)]
    for k, seed in enumerate(seeds):
        print(f"=== seed {seed} ({k + 1} of {len(seeds)}) ===", flush=True)
        one = dataclasses.replace(config, seed=seed, seeds=1, out=str(seed_folder(out, seed)))
        run = CompareRun(one, shared=runs[0] if runs else None)
        run.run()
        runs.append(run)
        files = write_seed_results(config, [results_data(r) for r in runs])
        files += write_compare_examples(runs, out, by_draw=True)  # every draw's outputs; the page switches between them
    print(f"wrote {', '.join(str(f) for f in files)}")
    return {"seeds": seeds, "files": [str(f) for f in files]}
