"""The `alttext` calibration split: CC595K format, unmemorised phrasings, every colour-shape pair."""

from __future__ import annotations

import json

from ukmp.data.alt_text import alt_text_captions
from ukmp.data.calibration import load_calibration_samples
from ukmp.data.shapes_world import HELDOUT_PAIRS, captions, make_scene
from ukmp.data.world_writer import write_split


def test_alttext_split_is_cc595k_metadata_read_by_the_calibration_loader(tmp_path):
    write_split("alttext", 12, tmp_path)
    records = json.loads((tmp_path / "cc595k_alttext.json").read_text())
    assert len(records) == 12
    for record in records:
        assert set(record) == {"id", "image", "caption", "blip_caption"}
        assert (tmp_path / record["image"]).is_file()
        assert record["caption"] != record["blip_caption"]
    samples = load_calibration_samples(tmp_path, "alttext", seed=0)
    assert len(samples) == 12
    blip = {" ".join(r["blip_caption"].replace(",", " ").replace(":", " ").split()) for r in records}
    assert {" ".join(f"{s.text_input} {s.text_output}".split()) for s in samples} == blip


def test_alttext_phrasings_are_not_the_training_templates_and_are_true_of_the_scene():
    seen_pairs = set()
    for index in range(60):
        scene = make_scene("alttext", index)
        alt = alt_text_captions(scene)
        assert len(alt) >= 3 and len(set(alt)) == len(alt)
        assert not set(alt) & set(captions(scene))
        words = {w for text in alt for w in text.split()}
        for colour in words & {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}:
            assert colour in {o.colour for o in scene.objects}  # never names a colour that is not there
        seen_pairs |= {(o.colour, o.shape) for o in scene.objects}
        assert alt == alt_text_captions(make_scene("alttext", index))  # deterministic
    assert seen_pairs & HELDOUT_PAIRS  # pairs the training split never shows
