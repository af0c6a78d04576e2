"""Plain-text data: documents, the token stream, window cutting and prefix-LM calibration batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tiny_lm import tiny_tokenizer
from ukmp.data.calibration import TextCalibrationSource, calibration_batches, load_calibration_samples
from ukmp.data.text import cut_windows, is_text_data, read_documents, text_windows, token_stream
from ukmp.data.text_calibration import prefix_lm_windows, text_calibration_sets
from ukmp.errors import UserError


def test_text_file_documents_are_blank_line_separated(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("first line\nstill first\n\n\n  \nsecond\r\n\r\nthird\n")
    assert read_documents(path) == ["first line\nstill first", "second", "third"]
    assert is_text_data(path) and not is_text_data(tmp_path) and not is_text_data(None)


def test_jsonl_documents_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": " two ", "id": 3}) + "\n")
    assert read_documents(path) == ["one", "two"]
    path.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(UserError, match="line 1 .* no string 'text' field"):
        read_documents(path)
    path.write_text("{not json\n")
    with pytest.raises(UserError, match="line 1 .* not valid JSON"):
        read_documents(path)
    with pytest.raises(UserError, match="does not exist"):
        read_documents(tmp_path / "missing.txt")


def test_stream_joins_documents_with_eos() -> None:
    tok = tiny_tokenizer()
    ids = token_stream(tok, ["the cat", "the dog"])
    the, cat, dog = (tok.convert_tokens_to_ids(w) for w in ("the", "cat", "dog"))
    assert ids == [the, cat, tok.eos_token_id, the, dog, tok.eos_token_id]


def test_windows_are_consecutive_non_overlapping_and_keep_a_tail_of_two() -> None:
    ids = list(range(10))
    assert cut_windows(ids, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert cut_windows(list(range(9)), 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # a 1-token tail predicts nothing
    with pytest.raises(UserError, match="--seq-len"):
        cut_windows(ids, 1)


def test_text_windows_cover_the_whole_file(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    path = tmp_path / "t.txt"
    path.write_text("the cat sat on the mat\n\nthe dog sat on the log\n")
    windows = text_windows(tok, path, 5)
    assert [len(w) for w in windows] == [5, 5, 4]
    assert sum(windows, []) == token_stream(tok, read_documents(path))


def test_prefix_lm_windows_are_deterministic_and_split_in_the_first_half() -> None:
    windows = [list(range(i, i + 8)) for i in range(0, 80, 8)]
    a = prefix_lm_windows(windows, seed=3)
    assert a == prefix_lm_windows(windows, seed=3)
    assert a != prefix_lm_windows(windows, seed=4)
    assert sorted(s.ids for s in a) == sorted(tuple(w) for w in windows)
    assert all(1 <= s.prefix_len <= len(s.ids) // 2 for s in a)


def test_calibration_batches_label_only_the_target(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(["the cat sat on the mat and the dog sat on the log"] * 6))
    source = TextCalibrationSource(path, seq_len=6, tokenizer=tok)
    samples = load_calibration_samples(source, "train", seed=0)
    batch = next(calibration_batches(tok, samples[:3], 3, encoder_decoder=False))
    for row, sample in enumerate(samples[:3]):
        n = len(sample.ids)
        assert batch["input_ids"][row, :n].tolist() == list(sample.ids)
        assert batch["attention_mask"][row].sum() == n
        assert (batch["labels"][row, : sample.prefix_len] == -100).all()
        assert batch["labels"][row, sample.prefix_len : n].tolist() == list(sample.ids[sample.prefix_len :])
        assert (batch["labels"][row, n:] == -100).all()


def test_calibration_sets_are_disjoint_and_refuse_too_few_windows(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    path = tmp_path / "t.txt"
    path.write_text("\n\n".join(f"the cat sat on the mat {'and the dog ' * (i % 3)}" for i in range(20)))
    first, second = text_calibration_sets(tok, path, [3, 4], 2, seq_len=5, seed=0)
    rows = [tuple(r[m.bool()].tolist()) for b in first + second for r, m in zip(b["input_ids"], b["attention_mask"])]
    assert len(rows) == 7
    assert sum(len(b["input_ids"]) for b in first) == 3
    assert all(torch.is_tensor(b["labels"]) for b in first)
    with pytest.raises(UserError, match="calibration needs 1000 windows"):
        text_calibration_sets(tok, path, [500, 500], 2, seq_len=5)
