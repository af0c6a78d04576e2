"""Shared test settings.

Tiny models gain nothing from several threads, and on a 2-core machine extra intra-op threads
only fight with whatever else runs, so the suite runs single-threaded.

It also holds the fixtures several test files share: a tiny standalone Llama saved like a
downloaded model, and a text file to calibrate it on.
"""

from pathlib import Path

import pytest
import torch

from tiny_lm import save_tiny_lm, write_corpus

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny-llama")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("text") / "corpus.txt")
