"""Shared test settings.

The suite runs on every core through pytest-xdist (`addopts` in `pyproject.toml`), one worker per
core. Tiny models gain nothing from several threads, and extra intra-op threads would only fight
the other workers (and whatever else runs), so each worker, and every process a test starts, is
single-threaded: `OMP_NUM_THREADS` is set here, before torch is imported, because child processes
read it at their own start.

The suite is hermetic, so that two workers (or two runs) never share a folder they write:

- `HF_HUB_OFFLINE` is set before anything imports `huggingface_hub`, which reads it once at import;
  a test that names a hub id then meets the offline refusal at once instead of network time-outs
  (no test downloads anything);
- the built-in world's data cache (`UKMP_CACHE`) is a folder of each worker's own, not the user's
  `~/.cache/ukmp`, which a test would otherwise grow (and which runs beside the suite may read).

It also holds the fixtures several test files share: a tiny standalone Llama saved like a
downloaded model, and a text file to calibrate it on.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from tiny_lm import save_tiny_lm, write_corpus  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def own_data_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point `UKMP_CACHE` at this worker's own folder for the whole run (a test may still override it)."""
    folder = tmp_path_factory.mktemp("ukmp-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UKMP_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny-llama")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("text") / "corpus.txt")
