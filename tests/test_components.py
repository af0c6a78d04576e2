"""One table of components: a family that brings its own component registers it once and every command knows it."""

from __future__ import annotations

import pytest

from ukmp import components
from ukmp.components import Component, forward_order, modality_of, prunable_components, register_component, title_of
from ukmp.recovery.phases import feature_weights, make_schedule


def test_the_table_holds_the_paper_s_values_in_forward_order() -> None:
    assert prunable_components() == ("vision", "qformer", "lm_encoder", "lm_decoder", "lm")
    assert forward_order().index("projection") == forward_order().index("qformer") + 1
    assert [modality_of(c) for c in ("vision", "qformer", "lm_encoder", "lm")] == ["vision"] * 2 + ["language"] * 2
    assert feature_weights() == {"vision": 1e6, "lm_encoder": 1e9, "lm_decoder": 1e8, "lm": 1e8}
    with pytest.raises(KeyError, match="nothing prunable"):
        modality_of("lm_head")


def test_a_registered_component_reaches_grouping_recovery_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(components, "_TABLE", list(components._TABLE))  # the registration ends with the test
    with pytest.raises(ValueError, match="progress"):  # not a phase name
        register_component(Component("audio", "Audio encoder", "vision", "progress"))
    with pytest.raises(Exception, match="cannot supervise component 'audio'"):
        make_schedule("lpd", {"audio": 4, "lm": 4})
    register_component(Component("audio", "Audio encoder", "vision", "visual"), before="qformer")
    assert forward_order()[:3] == ("vision", "audio", "qformer") and "audio" in prunable_components()
    assert modality_of("audio") == "vision" and title_of("audio") == "Audio encoder"
    assert feature_weights()["audio"] == 1e6
    phases = make_schedule("lpd", {"audio": 4, "lm": 4})
    assert [p.name for p in phases] == ["low_visual", "high_visual", "low_decoder", "high_decoder", "top"]
    assert phases[1].supervised == {"audio": (1, 3)}
    with pytest.raises(ValueError, match="already registered"):
        register_component(Component("audio", "Another", "language"))
