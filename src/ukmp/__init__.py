"""ukmp: structured pruning and recovery of vision-language models.

The public API is small on purpose: `save_pruned` / `load_pruned` for artifacts, `load_model` for any
model (zoo name, folder, hub id, GGUF, artifact, recovery output), and the `ukmp` command line for
everything else. Heavy imports (torch, transformers) happen lazily so that
`ukmp --help` stays fast.
"""

from __future__ import annotations

from typing import Any

from ukmp.version import __version__

__all__ = ["__version__", "save_pruned", "load_pruned", "load_model"]


def __getattr__(name: str) -> Any:
    if name in ("save_pruned", "load_pruned"):
        import ukmp.artifact as artifact

        return getattr(artifact, name)
    if name == "load_model":
        import ukmp.loading as loading

        return loading.load_model
    raise AttributeError(f"module 'ukmp' has no attribute {name!r}")
