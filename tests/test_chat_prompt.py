"""Generation wraps a prompt in the processor's chat template when it has one: an instruction-tuned VLM is asked
in the turn format it was trained in (shapes-smolvlm's is its training prompt), and a processor without a
template keeps the bare prompt with its image placeholder."""

from __future__ import annotations

from pathlib import Path

from tiny_llava import save_tiny_llava_with_processor
from tiny_smolvlm import tiny_text_model
from ukmp.adapters import find_adapter
from ukmp.data.calibration import chat_prompt, with_image_placeholder
from ukmp.loading import load_model
from ukmp.processors import load_processor
from ukmp.zoo.smolvlm import assemble_smolvlm
from ukmp.zoo.smolvlm_data import CAPTION_INSTRUCTION, PROMPT


def test_shapes_smolvlm_is_asked_in_its_training_format(tmp_path: Path) -> None:
    model, processor = assemble_smolvlm(tiny_text_model(), vision_layers=1, seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = load_processor(str(tmp_path))  # the template travels with the processor files
    expected = PROMPT.format(CAPTION_INSTRUCTION)
    assert chat_prompt(processor, CAPTION_INSTRUCTION) == chat_prompt(reloaded, CAPTION_INSTRUCTION) == expected
    inputs = find_adapter(model).inputs
    assert inputs.generation_prompt(reloaded, CAPTION_INSTRUCTION) == expected


def test_a_processor_without_a_template_keeps_the_bare_prompt(tmp_path: Path) -> None:
    folder = save_tiny_llava_with_processor(tmp_path / "llava")
    model, processor = load_model(folder), load_processor(str(folder))
    assert chat_prompt(processor, "Question: what is it? Short answer:") is None
    inputs = find_adapter(model).inputs
    prompt = "Question: what is it? Short answer:"
    assert inputs.generation_prompt(processor, prompt) == with_image_placeholder(processor, prompt)
