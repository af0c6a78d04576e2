"""The built-in world's calibration draw does not depend on how many images its cache holds."""

from __future__ import annotations

from ukmp.data.calibration import load_calibration_samples
from ukmp.data.index import resolve_data_dir
from ukmp.data.world_writer import write_split


def _texts(samples) -> list[str]:
    return [f"{s.image_path.name} {s.text_input} | {s.text_output}" for s in samples]


def test_a_grown_world_cache_draws_what_a_fresh_one_draws(tmp_path, monkeypatch):
    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "fresh"))
    fresh = resolve_data_dir("shapes", "alttext", 8)
    drawn_fresh = _texts(load_calibration_samples(fresh, "alttext", seed=3, pool=8))

    monkeypatch.setenv("UKMP_CACHE", str(tmp_path / "grown"))
    grown = resolve_data_dir("shapes", "alttext", 20)  # an earlier, larger run filled the cache
    assert resolve_data_dir("shapes", "alttext", 8) == grown
    drawn_grown = _texts(load_calibration_samples(grown, "alttext", seed=3, pool=8))
    assert drawn_grown == drawn_fresh
    # without the pool the whole grown cache is shuffled, and the same seed draws other samples
    assert _texts(load_calibration_samples(grown, "alttext", seed=3))[:8] != drawn_fresh


def test_a_users_folder_is_drawn_from_whole(tmp_path):
    write_split("alttext", 12, tmp_path)
    assert len(load_calibration_samples(tmp_path, "alttext", seed=0, pool=4)) == 12
