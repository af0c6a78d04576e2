"""Training examples of `shapes-smolvlm`: world images with a caption or a question, in SmolLM2's chat format.

The LM is an instruction-tuned chat model, so every example is one user turn holding the image and an
instruction, and one assistant turn holding the answer, in the format SmolLM2-Instruct was tuned on::

    <|im_start|>user\\n<image>{instruction}<|im_end|>\\n<|im_start|>assistant\\n{answer}<eos>

The processor expands ``<image>`` into the image's tokens; only the answer and the end token are
targets (the prompt and padding are -100). Captions ask for a description; questions are the world's
VQA questions, whose answers are one word or a number.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PROMPT = "<|im_start|>user\n<image>{}<|im_end|>\n<|im_start|>assistant\n"
CAPTION_INSTRUCTION = "Describe the image in one sentence."
VQA_INSTRUCTION = "{} Answer with one word."


def sample_examples(data, rng: np.random.Generator, batch: int, vqa_fraction: float) -> tuple[np.ndarray, list, list]:
    """(image indices, instructions, answers) for one batch of `data` (a `train_shapes.WorldExamples`).

    A share `vqa_fraction` of the examples is a question about the image, the rest a caption.
    """
    idx = rng.integers(0, len(data.captions), size=batch)
    instructions, answers = [], []
    for i in idx:
        if rng.random() < vqa_fraction:
            question, answer = data.questions[i][int(rng.integers(len(data.questions[i])))]
            instructions.append(VQA_INSTRUCTION.format(question))
            answers.append(answer)
        else:
            instructions.append(CAPTION_INSTRUCTION)
            answers.append(data.captions[i][int(rng.integers(len(data.captions[i])))])
    return idx, instructions, answers


def encode_examples(processor, images: torch.Tensor, instructions: list[str], answers: list[str]) -> dict:
    """The model's inputs for uint8 `images` (N x 3 x H x W) with their instructions and answers.

    The processor builds each prompt with its image tokens and the pixels; the answer's ids and the end
    token follow, right-padded, and `labels` keep only them.
    """
    tokenizer = processor.tokenizer
    pictures = [[Image.fromarray(image.permute(1, 2, 0).numpy())] for image in images]
    prompts = processor(
        text=[PROMPT.format(text) for text in instructions], images=pictures, return_tensors="pt", padding=True
    )
    targets = tokenizer([answer + tokenizer.eos_token for answer in answers], add_special_tokens=False)["input_ids"]
    rows = []
    for r, target in enumerate(targets):
        prompt = prompts["input_ids"][r][prompts["attention_mask"][r].bool()]
        rows.append((prompt, torch.tensor(target, dtype=torch.long)))
    length = max(len(p) + len(t) for p, t in rows)
    input_ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    labels = torch.full((len(rows), length), -100, dtype=torch.long)
    for r, (prompt, target) in enumerate(rows):
        n, m = len(prompt), len(target)
        input_ids[r, : n + m] = torch.cat([prompt, target])
        attention_mask[r, : n + m] = 1
        labels[r, n : n + m] = target
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "pixel_values": prompts["pixel_values"],
        "pixel_attention_mask": prompts["pixel_attention_mask"],
    }
