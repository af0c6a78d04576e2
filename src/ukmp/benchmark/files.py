"""``bench.json`` and its Markdown twin, read and written atomically."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ukmp.atomic import write_text_atomic
from ukmp.benchmark.markdown import bench_markdown
from ukmp.benchmark.options import BENCH_FORMAT
from ukmp.errors import UserError
from ukmp.evaluation.harness import write_results


def read_bench(path: str | Path) -> dict[str, Any]:
    """A ``bench.json``, with a one-sentence error when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read benchmark results {path} ({exc}).") from None
    if not isinstance(data, dict) or data.get("format") != BENCH_FORMAT:
        raise UserError(f"{path} is not a `ukmp bench` results file (format {BENCH_FORMAT}).")
    return data


def write_bench(results: Mapping[str, Any], path: str | Path) -> tuple[Path, Path]:
    """``path`` (JSON) and the same name with ``.md`` (the tables), each written atomically."""
    path = Path(path)
    json_path = write_results(dict(results), path)
    md_path = path.with_suffix(".md")
    write_text_atomic(md_path, bench_markdown(results))
    return json_path, md_path
