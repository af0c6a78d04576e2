"""A method's flags come from its options class: a new method's flag reaches `ukmp prune` and `ukmp compare`
with no edit to either command, is recorded with the scores, and a shared flag sets every method that reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from safetensors.torch import load_file

from eval_tiny_model import tiny_model_dir
from ukmp.cli import build_parser, main
from ukmp.method_scores import MethodScores
from ukmp.methods import base, registry
from ukmp.methods.base import Scorer, ScoringInputs
from ukmp.methods.flags import method_options_from
from ukmp.methods.magnitude import magnitude_scores
from ukmp.methods.option_flag import option_flag


@dataclass
class _PowerOptions:
    flag_group: ClassVar[str] = "power magnitude (a method defined in a test)"

    power: str = option_flag("1", "--power", "exponent of the unit's weight magnitude", choices=("1", "2"))
    signed: bool = option_flag(False, "--signed", "remove the largest units first")

    def validate(self) -> None:
        pass


class _PowerMagnitude(Scorer):
    name = "power-magnitude-test"
    calibrated = False
    options_name = "power"
    options_type = _PowerOptions

    def compute(self, inputs: ScoringInputs) -> MethodScores:
        opts = self.own_options
        sign = -1.0 if opts.signed else 1.0
        scores = {k: sign * v ** int(opts.power) for k, v in magnitude_scores(inputs.model, inputs.groups).items()}
        return MethodScores(self.name, scores, {"options": dict(opts.__dict__)})


@pytest.fixture
def power_method():
    registry.register_scorer(_PowerMagnitude)
    yield _PowerMagnitude.name
    registry._SCORERS.pop(_PowerMagnitude.name)
    base._OPTION_TYPES.pop(_PowerMagnitude.options_name)


def _parse(argv: list[str]):
    return build_parser().parse_args(argv)


def test_a_new_methods_flags_reach_both_commands_and_its_scores(power_method: str, tmp_path: Path, capsys) -> None:
    for command in ("prune", "compare"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert "power magnitude (a method defined in a test)" in shown and "--power {1,2}" in shown, command
    model = str(tiny_model_dir())
    argv = ["prune", model, "--method", power_method, "--ratio", "0.3", "--no-progress"]
    assert main([*argv, "--power", "2", "--signed", "--out", str(tmp_path / "p2")]) == 0
    scored = MethodScores.load(tmp_path / "p2" / "scores.safetensors")
    assert scored.settings["--power"] == "2" and scored.settings["--signed"] is True
    assert scored.stats["options"] == {"power": "2", "signed": True}
    assert main([*argv, "--out", str(tmp_path / "p1")]) == 0
    assert MethodScores.load(tmp_path / "p1" / "scores.safetensors").settings["--power"] == "1"
    a, b = load_file(str(tmp_path / "p2" / "model.safetensors")), load_file(str(tmp_path / "p1" / "model.safetensors"))
    assert any(a[k].shape != b[k].shape for k in a)  # the flag changed the plan
    # the flag decides scores, so it cannot apply to saved ones: one sentence, exit 2, nothing written
    again = [*argv, "--scores", str(tmp_path / "p2" / "scores.safetensors"), "--out", str(tmp_path / "again")]
    assert main([*again, "--power", "1"]) == 2
    assert "--power 1 cannot apply to saved scores" in capsys.readouterr().err
    assert not (tmp_path / "again").exists()
    assert main(again) == 0 and json.loads((tmp_path / "again" / "pruning.json").read_text())


def test_a_shared_flag_sets_every_method_that_reads_it_in_both_commands() -> None:
    prune_args = _parse(["prune", "M", "--method", "ukmp", "--ratio", "0.5", "--out", "o", "--taylor", "second"])
    compare_args = _parse(["compare", "M", "--out", "o", "--taylor", "second"])
    for args in (prune_args, compare_args):
        options = method_options_from(args)
        assert options.ukmi.taylor == "second" and options.llm_pruner.taylor == "second"
    untyped = method_options_from(_parse(["compare", "M", "--out", "o"]), defaults={"ukmi": {"threshold": 0.4}})
    assert untyped.ukmi.threshold == 0.4 and untyped.llm_pruner.taylor == "first"


def test_a_method_flag_that_does_not_parse_is_one_sentence(tmp_path: Path, capsys) -> None:
    argv = ["compare", str(tiny_model_dir()), "--methods", "ukmp", "--out", str(tmp_path / "c"), "--threshold", "q2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--threshold must be in (0, 1]" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()
