"""The weight-recalling LoRA layer (appendix Eq. 12), attaching it to a pruned model, and merging.

A pruned Linear keeps the rows R and columns C of its dense weight W. The layer computes, with one
scale s = alpha / r on every branch (as the reference code does)::

    y = W[R, C] x + b + s * P1 Q1 drop(x)                 ordinary LoRA (dropout on this branch only)
                      + s * P2 Q2 (W[R', C] x)             output-side recall: R' = pruned rows
                      + s * W[R, C'] (P3 Q3 x)             input-side recall:  C' = pruned columns

The output-side branch remixes the pre-activations the removed neurons would have produced (without
their biases) into the surviving outputs; it exists where rows were removed (q, k, v, qkv, fc1,
wi_0, wi_1). The input-side branch predicts the missing input channels from the kept ones and pushes
them through the frozen removed columns; it exists where columns were removed (o, projection, fc2,
wo). The appendix describes only the first; the authors' code has both, so both are on by default.

The frozen W[R', C] and W[R, C'] are *non-persistent buffers*: they are rebuilt from the dense base
model and the pruning plan whenever the adapter is attached, and never written to disk twice.
Trainable parameters are exactly those whose names contain ``lora_``; every B matrix (P1, P2, P3)
starts at zero, so a freshly attached model computes exactly what the pruned model computes.

BLIP-2's vision attention has one fused ``qkv`` Linear whose rows are three blocks (q, k, v). The
reference splits it into three Linears before attaching, so each of q, k and v gets its own rank-r
LoRA and its own recall branch fed by its own pruned rows. Here the fused Linear stays (the pruned
model's forward is unchanged) and the layer holds one set of branches per row block, which is the
same computation: the recall branch of the q block reads the pruned q rows, and so on.

Everything is linear, so ``merge()`` folds all branches into one plain ``nn.Linear`` of the pruned
shape: dW = s (P1 Q1 + P2 Q2 W[R', C] + W[R, C'] P3 Q3), computed per row block.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ukmp.errors import UserError
from ukmp.groups import PrunableGroup, PruningPlan

ADAPTER_PREFIX = "lora_"


@dataclass(frozen=True)
class RecallLoRAOptions:
    """Shapes and switches of the adapter (defaults: appendix, r1 = r2 = 8, alpha = 16)."""

    rank: int = 8
    recall_rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    output_recall: bool = True
    input_recall: bool = True

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def plain(self) -> bool:
        return not (self.output_recall or self.input_recall)

    def validate(self) -> None:
        if self.rank < 1 or self.recall_rank < 1:
            raise UserError(f"LoRA ranks must be positive, got r={self.rank}, recall r={self.recall_rank}.")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"--lora-dropout must be in [0, 1), got {self.dropout}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _kaiming_(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Kaiming-uniform with a = sqrt(5), as nn.Linear and the reference's LoRA A matrices."""
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)


class _RowBlock(nn.Module):
    """The LoRA and output-side recall branches of one row block (all rows, or q / k / v of qkv)."""

    def __init__(
        self,
        rows: int,
        in_features: int,
        recall: torch.Tensor | None,
        options: RecallLoRAOptions,
        generator: torch.Generator,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.lora_A = nn.Parameter(_kaiming_(torch.empty(options.rank, in_features, dtype=dtype), generator))
        self.lora_B = nn.Parameter(torch.zeros(rows, options.rank, dtype=dtype))
        if recall is not None:
            self.register_buffer("recall_weight", recall.detach().to(dtype).clone(), persistent=False)
            pruned = recall.shape[0]
            self.lora_recall_A = nn.Parameter(
                _kaiming_(torch.empty(options.recall_rank, pruned, dtype=dtype), generator)
            )
            self.lora_recall_B = nn.Parameter(torch.zeros(rows, options.recall_rank, dtype=dtype))
        else:
            self.recall_weight = None

    def delta(self, x: torch.Tensor, x_dropped: torch.Tensor) -> torch.Tensor:
        out = F.linear(F.linear(x_dropped, self.lora_A), self.lora_B)
        if self.recall_weight is not None:
            pruned_pre = F.linear(x, self.recall_weight)
            out = out + F.linear(F.linear(pruned_pre, self.lora_recall_A), self.lora_recall_B)
        return out

    def delta_weight(self) -> torch.Tensor:
        dw = self.lora_B @ self.lora_A
        if self.recall_weight is not None:
            dw = dw + (self.lora_recall_B @ self.lora_recall_A) @ self.recall_weight
        return dw


class RecallLoRALinear(nn.Module):
    """A frozen pruned ``nn.Linear`` plus trainable LoRA and weight-recalling branches.

    ``row_blocks`` are the kept row counts of consecutive row blocks of the pruned layer (one block
    for an ordinary Linear, three for a fused qkv); ``recall_out[b]`` is the frozen W[pruned rows of
    block b, kept columns] or None; ``recall_in`` is the frozen W[kept rows, pruned columns] or None.
    """

    def __init__(
        self,
        base: nn.Linear,
        options: RecallLoRAOptions,
        *,
        row_blocks: list[int] | None = None,
        recall_out: list[torch.Tensor | None] | None = None,
        recall_in: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        row_blocks = row_blocks or [base.out_features]
        recall_out = recall_out or [None] * len(row_blocks)
        if sum(row_blocks) != base.out_features or len(recall_out) != len(row_blocks):
            raise ValueError("row blocks do not cover the layer's output rows")
        generator = generator or torch.Generator().manual_seed(0)
        dtype = base.weight.dtype if base.weight.is_floating_point() else torch.float32
        self.base = base
        base.requires_grad_(False)
        self.options = options
        self.scaling = options.scaling
        self.dropout = nn.Dropout(options.dropout) if options.dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(
            _RowBlock(rows, base.in_features, rec, options, generator, dtype)
            for rows, rec in zip(row_blocks, recall_out)
        )
        if recall_in is not None:
            if recall_in.shape[0] != base.out_features:
                raise ValueError("the input-side recall matrix must have the pruned layer's output rows")
            self.register_buffer("recall_in_weight", recall_in.detach().to(dtype).clone(), persistent=False)
            pruned = recall_in.shape[1]
            self.lora_in_A = nn.Parameter(
                _kaiming_(torch.empty(options.recall_rank, base.in_features, dtype=dtype), generator)
            )
            self.lora_in_B = nn.Parameter(torch.zeros(pruned, options.recall_rank, dtype=dtype))
        else:
            self.recall_in_weight = None

    # What callers of the wrapped Linear read (T5's FFN checks ``wo.weight.dtype``).
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def branches(self) -> dict[str, int]:
        """How many branches of each kind the layer has (for reports and tests)."""
        return {
            "lora": len(self.blocks),
            "output_recall": sum(b.recall_weight is not None for b in self.blocks),
            "input_recall": int(self.recall_in_weight is not None),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        dtype = self.blocks[0].lora_A.dtype
        xa = x.to(dtype) if not torch.is_autocast_enabled(x.device.type) else x
        dropped = self.dropout(xa)
        parts = [block.delta(xa, dropped) for block in self.blocks]
        delta = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        if self.recall_in_weight is not None:
            missing = F.linear(F.linear(xa, self.lora_in_A), self.lora_in_B)
            delta = delta + F.linear(missing, self.recall_in_weight)
        return y + (self.scaling * delta).to(y.dtype)

    @torch.no_grad()
    def delta_weight(self) -> torch.Tensor:
        """s * (every branch as one matrix) of the pruned layer's shape."""
        parts = [block.delta_weight() for block in self.blocks]
        dw = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
        if self.recall_in_weight is not None:
            dw = dw + self.recall_in_weight @ (self.lora_in_B @ self.lora_in_A)
        return self.scaling * dw

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` of the pruned shape computing what this layer computes (no dropout)."""
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        merged.to(device=base.weight.device, dtype=base.weight.dtype)
        merged.weight.copy_((base.weight.float() + self.delta_weight().float()).to(base.weight.dtype))
        if base.bias is not None:
            merged.bias.copy_(base.bias)
        merged.requires_grad_(base.weight.requires_grad)
        return merged

    def extra_repr(self) -> str:
        b = self.branches
        return (
            f"in={self.in_features}, out={self.out_features}, r={self.options.rank}, "
            f"recall_r={self.options.recall_rank}, s={self.scaling:g}, row_blocks={b['lora']}, "
            f"output_recall={b['output_recall']}, input_recall={b['input_recall']}"
        )


# ------------------------------------------------------------------------------------------- attach


@dataclass(frozen=True)
class LayerSlices:
    """Dense-index bookkeeping of one target Linear: which rows/columns the plan kept, per row block."""

    name: str
    block_starts: tuple[int, ...]  # dense row offset of each row block
    out_dense: int
    in_dense: int
    removed_rows: torch.Tensor
    removed_cols: torch.Tensor

    def kept_cols(self) -> torch.Tensor:
        return _complement(self.in_dense, self.removed_cols)

    def blocks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(kept dense rows, removed dense rows) of each row block, in order."""
        ends = (*self.block_starts[1:], self.out_dense)
        out = []
        for start, end in zip(self.block_starts, ends):
            removed = self.removed_rows[(self.removed_rows >= start) & (self.removed_rows < end)]
            kept = _complement(end, removed)
            out.append((kept[kept >= start], removed))
        return out


def _complement(size: int, removed: torch.Tensor) -> torch.Tensor:
    keep = torch.ones(size, dtype=torch.bool)
    keep[removed] = False
    return keep.nonzero().reshape(-1)


def target_components(adapter, plan: PruningPlan, groups: list[PrunableGroup]) -> tuple[str, ...]:
    """The adapter's default components plus any other component the plan prunes (e.g. the Q-Former)."""
    comps = list(adapter.default_components)
    for g in groups:
        if g.name in plan.kept and g.component not in comps:
            comps.append(g.component)
    return tuple(comps)


def layer_slices(dense: nn.Module, plan: PruningPlan) -> dict[str, LayerSlices]:
    """Every Linear touched by a group of the target components, with what the plan removed from it.

    Indices are those of the dense model (plans always speak in dense indices). A Linear that no
    pruned group touches still appears (with nothing removed): it gets an ordinary LoRA branch, as
    every target Linear does in the reference.
    """
    from ukmp.adapters import find_adapter

    adapter = find_adapter(dense)
    every = adapter.all_groups(dense)
    wanted = set(target_components(adapter, plan, every))
    removed: dict[tuple[str, int], list[torch.Tensor]] = defaultdict(list)
    offsets: dict[str, set[int]] = defaultdict(set)
    names: list[str] = []
    for group in every:
        if group.component not in wanted:
            continue
        kept = set(plan.kept.get(group.name, range(group.num_units)))
        expected = plan.num_units.get(group.name, group.num_units)
        if expected != group.num_units:
            raise UserError(
                f"the pruning plan says {group.name} has {expected} units but the teacher has "
                f"{group.num_units}; --teacher is not the base model the pruned model came from."
            )
        gone = [u for u in range(group.num_units) if u not in kept]
        for member in group.members:
            if member.module not in names:
                names.append(member.module)
            if member.dim == 0:
                offsets[member.module].add(member.offset)
            if gone:
                removed[(member.module, member.dim)].append(member.indices(gone))
    out = {}
    for name in names:
        module = dense.get_submodule(name)
        rows = removed.get((name, 0))
        cols = removed.get((name, 1))
        empty = torch.zeros(0, dtype=torch.long)
        out[name] = LayerSlices(
            name=name,
            block_starts=tuple(sorted(offsets.get(name, {0}))),
            out_dense=module.out_features,
            in_dense=module.in_features,
            removed_rows=torch.cat(rows).unique(sorted=True) if rows else empty,
            removed_cols=torch.cat(cols).unique(sorted=True) if cols else empty,
        )
    return out


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


@torch.no_grad()
def attach_recall_lora(
    student: nn.Module,
    dense: nn.Module,
    plan: PruningPlan,
    options: RecallLoRAOptions,
    *,
    seed: int = 42,
) -> dict[str, RecallLoRALinear]:
    """Wrap every target Linear of the pruned ``student`` in a ``RecallLoRALinear``; returns them by name.

    ``dense`` is the unpruned base model the plan was made on (the teacher); the frozen recall
    matrices are sliced from its weights. Only ``lora_`` parameters are left trainable. The A
    matrices are drawn from one generator seeded with ``seed``, in a fixed layer order, so every
    process of a multi-process run starts from the same adapter.
    """
    options.validate()
    student.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    layers: dict[str, RecallLoRALinear] = {}
    for name, sl in layer_slices(dense, plan).items():
        try:
            pruned = student.get_submodule(name)
        except AttributeError:
            raise UserError(f"the pruned model has no layer {name}; it does not match --teacher.") from None
        if isinstance(pruned, RecallLoRALinear):
            raise UserError("the model already has recall-LoRA adapters attached.")
        if not isinstance(pruned, nn.Linear):
            raise UserError(f"{name} is {type(pruned).__name__} in the pruned model, expected a Linear.")
        weight = dense.get_submodule(name).weight.detach().to(device=pruned.weight.device, dtype=torch.float32)
        kept_cols = sl.kept_cols().to(weight.device)
        blocks = sl.blocks()
        kept_rows = torch.cat([kept for kept, _ in blocks]).to(weight.device)
        if tuple(pruned.weight.shape) != (kept_rows.numel(), kept_cols.numel()):
            raise UserError(
                f"{name} is {list(pruned.weight.shape)} in the pruned model but the plan applied to --teacher "
                f"gives {[kept_rows.numel(), kept_cols.numel()]}; --teacher is not its base model."
            )
        recall_out = []
        for _, gone in blocks:
            if options.output_recall and gone.numel():
                recall_out.append(weight.index_select(0, gone.to(weight.device)).index_select(1, kept_cols))
            else:
                recall_out.append(None)
        recall_in = None
        if options.input_recall and sl.removed_cols.numel():
            recall_in = weight.index_select(0, kept_rows).index_select(1, sl.removed_cols.to(weight.device))
        layer = RecallLoRALinear(
            pruned,
            options,
            row_blocks=[kept.numel() for kept, _ in blocks],
            recall_out=recall_out,
            recall_in=recall_in,
            generator=generator,
        ).to(pruned.weight.device)
        _set_submodule(student, name, layer)
        layers[name] = layer
    return layers


# ------------------------------------------------------------------------------- state, merge, info


def recall_layers(model: nn.Module) -> dict[str, RecallLoRALinear]:
    return {name: m for name, m in model.named_modules() if isinstance(m, RecallLoRALinear)}


def adapter_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The trainable adapter parameters by name (every parameter whose name contains ``lora_``)."""
    return {n: p for n, p in model.named_parameters() if ADAPTER_PREFIX in n.rsplit(".", 1)[-1]}


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous().clone() for n, p in adapter_parameters(model).items()}


@torch.no_grad()
def load_adapter_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy saved adapter tensors in; every name and shape must match exactly."""
    params = adapter_parameters(model)
    missing = sorted(set(params) - set(state))
    extra = sorted(set(state) - set(params))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which this model's adapter does not"
        raise UserError(f"the saved adapter {what}; it was trained with other options or on another model.")
    for name, param in params.items():
        if tuple(state[name].shape) != tuple(param.shape):
            raise UserError(
                f"the saved adapter's {name} is {list(state[name].shape)}, expected {list(param.shape)}; "
                "it was trained on another pruned model."
            )
        param.copy_(state[name].to(param.device, param.dtype))


@torch.no_grad()
def merge_recall_lora(model: nn.Module) -> nn.Module:
    """Replace every ``RecallLoRALinear`` by its merged plain Linear (in place); returns the model."""
    for name, layer in recall_layers(model).items():
        _set_submodule(model, name, layer.merge())
    return model


def adapter_summary(model: nn.Module) -> dict[str, int]:
    layers = recall_layers(model)
    return {
        "layers": len(layers),
        "lora_branches": sum(m.branches["lora"] for m in layers.values()),
        "output_recall_branches": sum(m.branches["output_recall"] for m in layers.values()),
        "input_recall_branches": sum(m.branches["input_recall"] for m in layers.values()),
        "trainable_parameters": sum(p.numel() for p in adapter_parameters(model).values()),
    }
