"""Stage 3 of the shipped recipe: teach the model where the objects are.

After stages 1 and 2 the model answers relative-position questions ("is the red circle left or
right of the blue square?") with a constant, although its ViT knows each object's cell (a linear
probe reads it at 98.5%). Two things stand in the way, and plain next-token loss did not get past
either in thousands of steps:

- the Q-Former's query outputs lose the cell (a probe reads it at 42%, chance 25%), and
- T5 sees token order only through attention biases, never in a token's content, and its
  decoder's cross-attention has no position bias at all. To answer, the decoder must find the
  cell of the question's *subject*, not of the other object it names, and mixing the two gives
  the same signal for "left" and "right", so the loss has no slope towards the answer.

Stage 3 therefore adds supervision from the scene annotations at three points of the path, with
small heads that are thrown away afterwards (the shipped model stays a plain
`Blip2ForConditionalGeneration`):

1. query grounding: an attention readout keyed by an object's shape and colour must find that
   object's cell in the Q-Former outputs, so the cell becomes part of the queries' content;
2. mention grounding: the T5 encoder state at each "colour shape" mention in the text names that
   object's cell, and whether it is the text's first mention (so the roles differ in content);
3. subject grounding: the encoder's last state and the decoder's first state (the one that emits
   the answer) name the cell of the question's first-mentioned object (captions have no subject,
   so only questions get this loss).

This is an approximation of no step of BLIP-2; it stands in for the grounding a model gets from
web-scale pretraining, which this 15M-parameter model trained on a CPU does not have.
"""

from __future__ import annotations

import torch

from ukmp.data.shapes_world import COLOURS, GRID, SHAPES
from ukmp.zoo.shapes_config import NUM_QUERY_TOKENS
from ukmp.zoo.vision_pretraining import ATTRIBUTES

CELLS = GRID * GRID


def mention_cells(
    input_ids: torch.Tensor, cell_labels: torch.Tensor, shape_ids: dict[int, int], colour_ids: dict[int, int]
) -> torch.Tensor:
    """B x L cell of the object named by the "colour shape" pair ending at each token, else -100.

    `shape_ids` / `colour_ids` map a token id to the class id used in `cell_labels` (1-based);
    a pair that names no object, or more than one, gets no target.
    """
    targets = torch.full(input_ids.shape, -100, dtype=torch.long)
    for row, ids in enumerate(input_ids.tolist()):
        for j in range(1, len(ids)):
            shape, colour = shape_ids.get(ids[j]), colour_ids.get(ids[j - 1])
            if shape is None or colour is None:
                continue
            hit = ((cell_labels[row, :, 0] == shape) & (cell_labels[row, :, 1] == colour)).nonzero()
            if len(hit) == 1:
                targets[row, j] = int(hit[0])
    return targets


def first_mention(targets: torch.Tensor) -> torch.Tensor:
    """Per row, the cell of the first grounded mention (-100 when there is none)."""
    found = targets >= 0
    first = found.float().argmax(dim=1)
    cells = targets.gather(1, first[:, None])[:, 0]
    return torch.where(found.any(dim=1), cells, torch.full_like(cells, -100))


def first_mention_flags(targets: torch.Tensor) -> torch.Tensor:
    """1 at each row's first grounded mention, 0 at its other mentions, -100 elsewhere."""
    found = targets >= 0
    flags = torch.where(found, torch.zeros_like(targets), torch.full_like(targets, -100))
    rows = found.any(dim=1).nonzero()[:, 0]
    flags[rows, found[rows].float().argmax(dim=1)] = 1
    return flags


class QueryGroundingHead(torch.nn.Module):
    """Find an object in the query outputs by its shape and colour, and read its cell from what it finds.

    The readout is a single attention over the queries with no notion of which query is which,
    so the cell can only be read if it is in the content of the query outputs.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.shape = torch.nn.Embedding(ATTRIBUTES[0][1], hidden_size)
        self.colour = torch.nn.Embedding(ATTRIBUTES[1][1], hidden_size)
        self.key = torch.nn.Linear(hidden_size, hidden_size)
        self.cell = torch.nn.Linear(hidden_size, CELLS)

    def loss(self, queries: torch.Tensor, cell_labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Cross-entropy of each present object's cell, and its accuracy."""
        probe = self.shape(cell_labels[..., 0]) + self.colour(cell_labels[..., 1])
        scores = probe @ self.key(queries).transpose(1, 2) / queries.shape[-1] ** 0.5
        logits = self.cell(torch.softmax(scores, dim=-1) @ queries)
        cells = torch.arange(CELLS).expand(len(cell_labels), CELLS)
        present = cell_labels[..., 0] > 0
        loss = torch.nn.functional.cross_entropy(logits[present], cells[present])
        return loss, float((logits[present].argmax(-1) == cells[present]).float().mean())


class GroundingLosses(torch.nn.Module):
    """The three auxiliary heads, fed by forward hooks on the model's Q-Former, T5 encoder and decoder."""

    def __init__(self, model, tokenizer) -> None:
        super().__init__()
        d_model = model.config.text_config.d_model
        self.queries = QueryGroundingHead(model.config.qformer_config.hidden_size)
        self.mention = torch.nn.Linear(d_model, CELLS + 2)  # the mention's cell, and whether it comes first
        self.encoder_subject = torch.nn.Linear(d_model, CELLS)
        self.subject = torch.nn.Linear(d_model, CELLS)
        self.shape_ids = {tokenizer.token_to_id(s): k + 1 for k, s in enumerate(SHAPES)}
        self.colour_ids = {tokenizer.token_to_id(c): k + 1 for k, c in enumerate(COLOURS)}
        self.question_id = tokenizer.token_to_id("question")
        self._seen: dict[str, torch.Tensor] = {}
        self._hooks = [
            module.register_forward_hook(self._keeper(name))
            for name, module in (
                ("queries", model.qformer),
                ("encoder", model.language_model.get_encoder()),
                ("decoder", model.language_model.get_decoder()),
            )
        ]

    def _keeper(self, name: str):
        def keep(module, args, output) -> None:
            self._seen[name] = output[0] if isinstance(output, tuple) else output.last_hidden_state

        return keep

    def remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()

    def loss(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cell_labels: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of the losses for the batch the model has just run, plus per-head accuracies."""
        query_loss, query_acc = self.queries.loss(self._seen["queries"], cell_labels)
        mentions = mention_cells(input_ids, cell_labels, self.shape_ids, self.colour_ids)
        mention_out = self.mention(self._seen["encoder"])
        subjects = first_mention(mentions)
        asked = input_ids[:, NUM_QUERY_TOKENS] == self.question_id  # only questions have a subject
        subjects = torch.where(asked, subjects, torch.full_like(subjects, -100))
        rows = torch.arange(len(input_ids))
        last = attention_mask.sum(dim=1) - 1
        total = query_loss
        stats = {"query_acc": query_acc}
        for name, logits, target in (
            ("mention", mention_out[..., :CELLS], mentions),
            ("role", mention_out[..., CELLS:], first_mention_flags(mentions)),
            ("encoder_subject", self.encoder_subject(self._seen["encoder"][rows, last]), subjects),
            ("subject", self.subject(self._seen["decoder"][:, 0]), subjects),
        ):
            chosen = target >= 0
            if chosen.any():
                total = total + torch.nn.functional.cross_entropy(logits[chosen], target[chosen])
                stats[f"{name}_acc"] = float((logits[chosen].argmax(-1) == target[chosen]).float().mean())
        return total, stats
