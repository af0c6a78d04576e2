"""The finish every compare figure shares: the legend outside the last panel, a title, saved and closed."""

from __future__ import annotations

from pathlib import Path


def finish_figure(fig, axes, title: str, path: Path) -> bool:
    """Legend to the right of the last panel (it never hides a point), ``title`` on top, PNG to ``path``."""
    import matplotlib.pyplot as plt

    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True
