"""What every architecture adapter provides, and the helpers they share.

An adapter is the only code that knows module names. It is built from *parts*: one part per
architecture family (BLIP-2 vision encoder, T5, OPT, Llama, Q-Former), each living under a
module prefix of the whole model. A standalone ``LlamaForCausalLM`` is one part at prefix "";
``Blip2ForConditionalGeneration`` is a vision part at ``vision_model.`` plus a language part at
``language_model.`` (plus an opt-in Q-Former part). Everything downstream (scoring, planning,
surgery, accounting) talks to the adapter, never to module names directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import torch
from torch import nn

from ukmp.adapters.inputs import ModelInputs
from ukmp.components import modality_of
from ukmp.errors import UserError
from ukmp.groups import Member, PrunableGroup, linear_unit_params


def get_module(model: nn.Module, path: str) -> nn.Module:
    """``model.get_submodule`` with "" meaning the model itself."""
    return model.get_submodule(path) if path else model


def make_group(
    model: nn.Module,
    *,
    name: str,
    component: str,
    kind: str,
    layer: int,
    owner: str,
    producers: Iterable[Member],
    consumers: Iterable[Member],
    unit_size: int,
    num_units: int,
    queries_per_unit: int = 1,
) -> PrunableGroup:
    """Build a group and compute its exact per-unit parameter cost from the Linears themselves.

    The non-pruned dimension of every member (``in_features`` of producers, ``out_features`` of
    consumers) is the hidden size, which pruning never changes, so the cost is the same whether
    the model is dense or already sliced.
    """
    producers, consumers = tuple(producers), tuple(consumers)
    cost = 0
    for member in producers + consumers:
        module = get_module(model, member.module)
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{member.module} is {type(module).__name__}, expected nn.Linear")
        cost += linear_unit_params(module, member)
    return PrunableGroup(
        name=name,
        component=component,
        modality=modality_of(component),
        kind=kind,
        layer=layer,
        owner=owner,
        producers=producers,
        consumers=consumers,
        unit_size=unit_size,
        num_units=num_units,
        params_per_unit=cost,
        queries_per_unit=queries_per_unit,
    )


def attention_group(
    model: nn.Module,
    *,
    component: str,
    layer: int,
    owner: str,
    producers: Iterable[Member],
    consumers: Iterable[Member],
    head_dim: int,
    num_units: int,
    queries_per_unit: int = 1,
    suffix: str = "attn",
) -> PrunableGroup:
    """The heads (or key/value groups) of one attention block: ``<component>.layers.<layer>.<suffix>``."""
    return make_group(
        model,
        name=f"{component}.layers.{layer}.{suffix}",
        component=component,
        kind="attention",
        layer=layer,
        owner=owner,
        producers=producers,
        consumers=consumers,
        unit_size=head_dim,
        num_units=num_units,
        queries_per_unit=queries_per_unit,
    )


def channel_group(
    model: nn.Module,
    *,
    component: str,
    layer: int,
    owner: str,
    producers: Iterable[str],
    consumers: Iterable[str],
    num_units: int,
    suffix: str = "mlp",
) -> PrunableGroup:
    """The hidden channels of one MLP: rows of each producer Linear, columns of each consumer."""
    return make_group(
        model,
        name=f"{component}.layers.{layer}.{suffix}",
        component=component,
        kind="mlp",
        layer=layer,
        owner=owner,
        producers=[Member(p, 0, 1) for p in producers],
        consumers=[Member(c, 1, 1) for c in consumers],
        unit_size=1,
        num_units=num_units,
    )


def describe(model: nn.Module) -> str:
    """How messages name a model: its class, and its config's model_type when it has one."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return f"{type(model).__name__} (model_type {model_type!r})" if model_type else type(model).__name__


def join(prefix: str, path: str) -> str:
    return f"{prefix}{path}" if not prefix or prefix.endswith(".") else f"{prefix}.{path}"


class Part(ABC):
    """One architecture family found at ``prefix`` inside the whole model."""

    #: the prunable components this part can yield, e.g. ("lm_encoder", "lm_decoder")
    components: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, prefix: str = "") -> None:
        self.prefix = prefix
        self.root = get_module(model, prefix.rstrip("."))

    def path(self, rel: str) -> str:
        return join(self.prefix, rel)

    @abstractmethod
    def groups(self, model: nn.Module) -> list[PrunableGroup]:
        """All prunable groups of this part, in model order, sized from the (dense) config."""

    @abstractmethod
    def param_component(self, rel_name: str) -> str:
        """Accounting bucket of a parameter, given its name relative to ``prefix``."""

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        """Fix the attributes forward/generate read after ``group`` was sliced (default: none)."""
        return None

    @abstractmethod
    def block_path(self, group: PrunableGroup) -> str:
        """Module path of the transformer block that holds ``group`` (recovery taps block outputs)."""

    @abstractmethod
    def module_paths(self) -> dict[str, str]:
        """Accounting bucket -> module path whose FLOPs (children included) count for it."""


class ModelAdapter:
    """Groups, accounting buckets, post-slice fixes and inputs for one whole model.

    ``extra_buckets`` maps parameter-name prefixes outside every part (``query_tokens``,
    ``language_projection``) to accounting buckets. ``inputs`` (a ``ModelInputs``) builds every
    input a command feeds the model: calibration batches, generation, retrieval, bench.
    """

    #: components returned by ``groups()`` when none are requested (the Q-Former is opt-in)
    default_components: tuple[str, ...] = ()

    def __init__(
        self,
        model: nn.Module,
        parts: list[Part],
        *,
        default_components: tuple[str, ...] | None = None,
        extra_buckets: dict[str, str] | None = None,
        extra_paths: dict[str, str] | None = None,
        inputs: ModelInputs | None = None,
    ) -> None:
        self.architecture = type(model).__name__
        self.parts = parts
        self.extra_buckets = extra_buckets or {}
        self.extra_paths = extra_paths or {}
        self.inputs = inputs if inputs is not None else ModelInputs(model)
        all_components = tuple(c for p in parts for c in p.components)
        self.available_components = all_components
        self.default_components = default_components if default_components is not None else all_components

    def groups(self, model: nn.Module, components: Iterable[str] | None = None) -> list[PrunableGroup]:
        """Prunable groups of the requested components (default: ``default_components``)."""
        wanted = tuple(components) if components is not None else self.default_components
        unknown = [c for c in wanted if c not in self.available_components]
        if unknown:
            raise UserError(
                f"{self.architecture} has no component {unknown[0]!r}; "
                f"choose from {', '.join(self.available_components)}."
            )
        out: list[PrunableGroup] = []
        for part in self.parts:
            out.extend(g for g in part.groups(model) if g.component in wanted)
        return out

    def all_groups(self, model: nn.Module) -> list[PrunableGroup]:
        return self.groups(model, self.available_components)

    def part_of(self, group: PrunableGroup) -> Part:
        for part in self.parts:
            if group.component in part.components:
                return part
        raise KeyError(group.component)

    def after_slice(self, model: nn.Module, group: PrunableGroup, kept: list[int]) -> None:
        self.part_of(group).after_slice(model, group, kept)

    def param_component(self, name: str) -> str:
        """Accounting bucket of a full parameter name (longest matching prefix wins)."""
        for prefix, bucket in self.extra_buckets.items():
            if name == prefix or name.startswith(prefix + "."):
                return bucket
        best: Part | None = None
        for part in self.parts:
            if name.startswith(part.prefix) and (best is None or len(part.prefix) > len(best.prefix)):
                best = part
        if best is None:
            return "other"
        return best.param_component(name[len(best.prefix) :])

    def block_paths(self, model: nn.Module, components: Iterable[str]) -> dict[str, list[str]]:
        """Component -> module path of each of its transformer blocks, in depth order."""
        wanted = set(components)
        found: dict[str, dict[int, str]] = {}
        for group in self.all_groups(model):
            if group.component in wanted:
                found.setdefault(group.component, {})[group.layer] = self.part_of(group).block_path(group)
        return {c: [blocks[i] for i in sorted(blocks)] for c, blocks in found.items()}

    def component_paths(self) -> dict[str, str]:
        """Accounting bucket -> module path, for per-component FLOP counts."""
        paths: dict[str, str] = {}
        for part in self.parts:
            paths.update(part.module_paths())
        paths.update(self.extra_paths)
        return paths

    def example_inputs(self, model: nn.Module, *, batch: int = 1, text_len: int = 16) -> dict[str, torch.Tensor]:
        """A deterministic synthetic input of realistic shape (FLOP counts, benchmarks, smoke checks)."""
        gen = torch.Generator().manual_seed(0)
        text_config = getattr(model.config, "text_config", model.config)
        ids = torch.randint(4, max(text_config.vocab_size - 1, 5), (batch, text_len), generator=gen)
        device = next(model.parameters()).device
        return {k: v.to(device) for k, v in self.inputs.example_inputs(model, ids, gen).items()}
