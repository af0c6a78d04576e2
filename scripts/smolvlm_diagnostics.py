"""Does a `shapes-smolvlm` model read its image? Two measurements on a training run or a trained folder.

    python3 scripts/smolvlm_diagnostics.py runs/smolvlm-train-3000        # the run's latest checkpoint
    python3 scripts/smolvlm_diagnostics.py runs/smolvlm-600-folder         # a folder `ukmp zoo train` wrote

1. Answers on *training* questions (images the model was trained on, the training instruction), by
   teacher forcing: the mean answer loss and how often the first answer token is the argmax, with the
   real images, with the images shuffled across the batch, and with a grey image. A model that reads
   its image loses much more with shuffled images than it gains from the question alone; a model that
   fails here underfits, so its val score is not a train/val mismatch.
2. The scale of the image tokens the connector writes against the LM's word embeddings: the LM adds
   every layer's update to these vectors, so tokens far larger than words are barely changed by it.
3. With ``--probe-images N``: linear probes from an image's tokens to what each of its four cells
   holds (shape, colour, size; "empty" a class of its own), on the tower's pixel-shuffled output and on
   the connector's tokens, held-out accuracy beside the majority class. Where the probes are near
   perfect, the image reaches the LM and the bottleneck is the LM's use of it; where they are not, the
   vision side is.

Why a script: it reads a training checkpoint, which no `ukmp` command loads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from probe_visual_features import HELD_OUT, probe_accuracy

from ukmp.zoo.smolvlm_checkpoint import load_state
from ukmp.zoo.smolvlm_data import CAPTION_INSTRUCTION, VQA_INSTRUCTION, encode_examples
from ukmp.zoo.smolvlm_ship import config_from_recipe, load_shapes_smolvlm, model_with_trained
from ukmp.zoo.smolvlm_text import smollm2_text_model
from ukmp.zoo.smolvlm_training import CHECKPOINT_DIR


def load_run(folder: Path):
    """(model, processor, where): a trained folder, or the latest checkpoint of a training run, merged."""
    state = load_state(folder / CHECKPOINT_DIR)
    if state is None:
        model, processor = load_shapes_smolvlm(folder)
        return model, processor, "trained folder"
    config = config_from_recipe(state.recipe["config"])
    source = folder / CHECKPOINT_DIR
    model, processor = model_with_trained(smollm2_text_model(), config, state.trained, merge=True, source=source)
    return model, processor, f"checkpoint at stage {state.stage}, step {state.step}"


def answer_scores(model, processor, images, instructions, answers, batch: int = 16) -> tuple[float, float]:
    """(mean answer loss per token, first-token accuracy) by teacher forcing."""
    losses, hits = [], []
    for s in range(0, len(answers), batch):
        inputs = encode_examples(processor, images[s : s + batch], instructions[s : s + batch], answers[s : s + batch])
        with torch.no_grad():
            logits = model(**inputs).logits[:, :-1]
        labels = inputs["labels"][:, 1:]
        mask = labels != -100
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, reduction="none", ignore_index=-100)
        losses += ((nll * mask).sum(1) / mask.sum(1)).tolist()
        first = mask.float().argmax(1)
        rows = torch.arange(len(first))
        hits += (logits[rows, first].argmax(-1) == labels[rows, first]).tolist()
    return float(np.mean(losses)), float(np.mean(hits))


def image_token_scale(model, processor, images) -> dict[str, float]:
    """Mean norm of the connector's image tokens and of the LM's word embeddings."""
    inputs = encode_examples(processor, images, [CAPTION_INSTRUCTION] * len(images), ["x"] * len(images))
    with torch.no_grad():
        patches = model.model.vision_model(pixel_values=inputs["pixel_values"].flatten(0, 1)).last_hidden_state
        tokens = model.model.connector(patches)
    words = model.model.text_model.get_input_embeddings().weight[: len(processor.tokenizer)]
    return {
        "image_token_norm": tokens.norm(dim=-1).mean().item(),
        "word_embedding_norm": words.norm(dim=-1).mean().item(),
    }


def cell_probes(model, processor, data, count: int) -> dict[str, dict[str, dict[str, float]]]:
    """{features: {attribute: {probe, majority}}}: mean held-out accuracy over the four cells, in %."""
    from ukmp.zoo.vision_pretraining import ATTRIBUTES

    shuffled, tokens = [], []
    for s in range(0, count, 64):
        images = data.images[s : min(s + 64, count)]
        inputs = encode_examples(processor, images, [CAPTION_INSTRUCTION] * len(images), ["x"] * len(images))
        with torch.no_grad():
            patches = model.model.vision_model(pixel_values=inputs["pixel_values"].flatten(0, 1)).last_hidden_state
            shuffled.append(model.model.connector.pixel_shuffle(patches, model.model.connector.scale_factor))
            tokens.append(model.model.connector(patches))
    features = {"tower, pixel-shuffled": torch.cat(shuffled), "connector tokens": torch.cat(tokens)}
    labels = data.cell_labels[:count]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, x in features.items():
        x = x.flatten(1)
        out[name] = {}
        for k, (attribute, classes) in enumerate(ATTRIBUTES):
            probes, majority = [], []
            for cell in range(labels.shape[1]):
                y = labels[:, cell, k]
                probes.append(probe_accuracy(x, y, classes))
                held = y[-HELD_OUT:]
                majority.append(float((held == torch.bincount(y[:-HELD_OUT]).argmax()).float().mean()) * 100)
            out[name][attribute] = {"probe": float(np.mean(probes)), "majority": float(np.mean(majority))}
    return out


def main() -> None:
    from ukmp.zoo.train_shapes import WorldExamples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a training --out folder (with checkpoint/) or a trained folder")
    parser.add_argument("--questions", type=int, default=64, help="training questions to score")
    parser.add_argument("--probe-images", type=int, default=0, help="training images for the cell probes (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, processor, where = load_run(args.run)
    data = WorldExamples(max(args.questions, args.probe_images))
    rng = np.random.default_rng(0)
    pairs = [data.questions[i][int(rng.integers(len(data.questions[i])))] for i in range(args.questions)]
    instructions = [VQA_INSTRUCTION.format(q) for q, _ in pairs]
    answers = [a for _, a in pairs]
    images = data.images[: args.questions]
    generator = torch.Generator().manual_seed(0)
    variants = {
        "real images": images,
        "images shuffled across the batch": images[torch.randperm(len(images), generator=generator)],
        "grey images": torch.full_like(images, 128),
    }
    figures: dict = {"model": f"{args.run} ({where})", "questions": args.questions}
    for name, pictures in variants.items():
        loss, accuracy = answer_scores(model, processor, pictures, instructions, answers)
        figures[name] = {"answer_loss": loss, "first_token_accuracy": accuracy}
        print(f"{name}: answer loss {loss:.3f}, first answer token right {accuracy:.1%}", flush=True)
    figures["scale"] = image_token_scale(model, processor, images[:8])
    scale = figures["scale"]
    print(
        f"image tokens: mean norm {scale['image_token_norm']:.1f} against the LM's word embeddings' "
        f"{scale['word_embedding_norm']:.2f} ({scale['image_token_norm'] / scale['word_embedding_norm']:.0f}x)"
    )
    if args.probe_images:
        figures["cell_probes"] = cell_probes(model, processor, data, args.probe_images)
        for features, per in figures["cell_probes"].items():
            cells = ", ".join(f"{a} {v['probe']:.1f}% (majority {v['majority']:.1f}%)" for a, v in per.items())
            print(f"cell probes on the {features}: {cells}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
