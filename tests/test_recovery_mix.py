"""The recovery data mix (captions + VQA pairs): counts, prompt form, determinism, bad fractions."""

from __future__ import annotations

import pytest

from ukmp.data.calibration import load_calibration_samples
from ukmp.data.recovery_mix import mix_vqa
from ukmp.data.world_writer import write_split
from ukmp.errors import UserError


def test_mix_replaces_a_fraction_of_captions_by_prompted_vqa_pairs(tmp_path):
    data = write_split("train", 10, tmp_path)
    captions = load_calibration_samples(data, "train", seed=0)
    mixed = mix_vqa(captions, data, "train", 0.3, seed=1)
    assert len(mixed) == len(captions) == 10
    vqa = [s for s in mixed if s.text_input.startswith("Question: ")]
    assert len(vqa) == 3
    assert all(s.text_input.endswith("Short answer:") and s.text_output for s in vqa)
    assert [s for s in mixed if s not in vqa] != [] and set(captions[:7]) == {s for s in mixed if s not in vqa}
    assert mixed == mix_vqa(captions, data, "train", 0.3, seed=1)
    assert mix_vqa(captions, data, "train", 0.0, seed=1) == captions
    with pytest.raises(UserError, match="--vqa-fraction must be between 0 and 1"):
        mix_vqa(captions, data, "train", 1.5, seed=1)
