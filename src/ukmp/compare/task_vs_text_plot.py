"""Task quality against the language model's text perplexity: does a pruned VLM stay a language model?

Why a figure of its own: the quality-vs-ratio plot shows each axis alone; whether a method buys its
task accuracy with the language model's knowledge (or keeps both) shows only when the two are read
together. One panel per task metric against the first held-out text's perplexity (log scale: pruning
moves it by factors), one line per method through its ratios, the dense model as a star.
"""

from __future__ import annotations

from pathlib import Path

from ukmp.compare.figures import finish_figure
from ukmp.compare.metrics import lower_is_better

#: file name of the figure, beside quality_vs_ratio.png
TASK_VS_TEXT_PLOT = "task_vs_text.png"

Series = dict[str, list[tuple[float, dict[str, float]]]]


def task_vs_text_figure(dense: dict[str, float], series: Series, path: Path) -> bool:
    """Draw ``series`` (method -> [(ratio, metrics)]) into ``path``; False when there is no task and perplexity pair."""
    perplexities = [m for m in dense if lower_is_better(m)]
    tasks = [m for m in dense if not lower_is_better(m)]
    if not perplexities or not tasks or not series:
        return False
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    x_metric = perplexities[0]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10" if len(series) <= 10 else "tab20")
    for ax, task in zip(axes[0], tasks):
        ax.scatter([dense[x_metric]], [dense[task]], marker="*", s=160, color="black", label="dense", zorder=3)
        for i, (method, points) in enumerate(sorted(series.items())):
            shown = [(r, m) for r, m in sorted(points) if task in m and x_metric in m]
            if not shown:
                continue
            xs, ys = [m[x_metric] for _, m in shown], [m[task] for _, m in shown]
            ax.plot(xs, ys, marker="o", color=colours(i), label=method)
            for (ratio, _), x, y in zip(shown, xs, ys):
                ax.annotate(f"{ratio:.0%}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(f"{x_metric} (lower is better)")
        ax.set_ylabel(task)
        ax.grid(alpha=0.3, which="both")
    return finish_figure(
        fig, axes, "task quality vs the language model's text perplexity (labels: fraction removed)", path
    )
