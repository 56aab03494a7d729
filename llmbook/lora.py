"""LoRA, low-rank adaptation (Hu et al., 2022), written from scratch (chapter 9).

LoRA freezes a pre-trained weight matrix ``W`` (shape ``(d_out, d_in)``) and learns a low-rank update

    W' = W + (alpha / r) * B @ A,    A: (r, d_in),  B: (d_out, r),  r << min(d_in, d_out),

so a layer's output becomes ``x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T``. ``A`` starts random (uniform, as
``nn.Linear`` initialises its weights) and ``B`` starts at zero, so at the start the update is exactly zero and
the wrapped model computes what the original computed. Only ``A`` and ``B`` are trained: ``r * (d_in + d_out)``
numbers per layer instead of ``d_in * d_out``. After training the update can be **merged** into ``W`` (no extra
cost at inference), **unmerged** again, or **removed** to get the original model back.

- :class:`LoRALinear`: one ``nn.Linear`` with a LoRA update.
- :func:`add_lora`: wrap the linear layers of a model whose names end with given targets; freeze the rest.
- :func:`merge_lora`, :func:`unmerge_lora`, :func:`remove_lora`, :func:`set_lora_enabled`, :func:`lora_layers`.
- :func:`lora_parameter_count`: the trainable count of a LoRA layer, ``r * (d_in + d_out)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmbook.utils import check_int, check_positive, check_probability

__all__ = ["LoRALinear", "add_lora", "lora_layers", "lora_parameter_count", "merge_lora", "remove_lora",
           "set_lora_enabled", "unmerge_lora"]


def lora_parameter_count(d_in: int, d_out: int, rank: int) -> int:
    """Trainable numbers of a rank-``rank`` LoRA update of a ``d_in -> d_out`` layer: ``rank * (d_in + d_out)``."""
    check_int("d_in", d_in, minimum=1)
    check_int("d_out", d_out, minimum=1)
    check_int("rank", rank, minimum=1)
    return rank * (d_in + d_out)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / rank) * B @ A``.

    ``rank`` must be between 1 and ``min(d_in, d_out)`` (a larger rank adds parameters but no expressive power);
    ``alpha`` defaults to ``rank`` (scaling 1). ``dropout`` is applied to the input of the low-rank path only.
    The base layer's parameters are frozen (``requires_grad=False``) and kept as ``self.base``.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRA wraps a torch.nn.Linear layer, got {type(base).__name__}")
        check_int("rank", rank, minimum=1)
        d_out, d_in = base.weight.shape
        if rank > min(d_in, d_out):
            raise ValueError(f"rank must be at most min(d_in, d_out) = {min(d_in, d_out)} for a {d_in} -> {d_out} "
                             f"layer, got {rank}")
        alpha = float(rank) if alpha is None else check_positive("alpha", alpha)
        check_probability("dropout", dropout)
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, d_in, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(d_out, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # what nn.Linear does to its weight
        self.dropout = nn.Dropout(dropout)
        self.merged = False
        self.enabled = True

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / rank) * B @ A``, shape (d_out, d_in), of rank at most ``rank``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)  # (..., d_out); already includes the update if merged
        if self.enabled and not self.merged:
            out = out + self.scaling * ((self.dropout(x) @ self.lora_A.T) @ self.lora_B.T)  # (..., r) -> (..., d_out)
        return out

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight (``W <- W + (alpha/r) B A``); the LoRA path is then skipped."""
        if self.merged:
            raise RuntimeError("this LoRA layer is already merged")
        self.base.weight += self.delta_weight()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update from the base weight again (exact up to floating-point rounding)."""
        if not self.merged:
            raise RuntimeError("this LoRA layer is not merged")
        self.base.weight -= self.delta_weight()
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}, merged={self.merged}, enabled={self.enabled}"


def _check_module(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def add_lora(model: nn.Module, target_modules, rank: int, alpha: float | None = None, dropout: float = 0.0,
             trainable_modules=()) -> list[str]:
    """Freeze ``model`` and wrap its linear layers named by ``target_modules`` with :class:`LoRALinear`, in place.

    A target matches a module whose full name equals it or ends with ``"." + target`` (as in Hugging Face PEFT):
    ``"qkv"`` matches ``blocks.0.attn.qkv`` and ``blocks.1.attn.qkv``. Every parameter of the model is frozen
    except the new ``lora_A``/``lora_B`` matrices and the parameters of modules named in ``trainable_modules``
    (e.g. a new classification head). Returns the names of the wrapped layers, in model order.

    Raises ValueError if a target matches no module, a matched module is not ``nn.Linear`` (or is already
    wrapped), a rank is larger than a layer allows, or ``trainable_modules`` names a missing module.
    """
    _check_module(model)
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    target_modules = list(target_modules)
    if not target_modules or not all(isinstance(t, str) and t for t in target_modules):
        raise ValueError(f"target_modules must be a non-empty list of module names, got {target_modules!r}")
    if isinstance(trainable_modules, str):
        trainable_modules = [trainable_modules]
    named = dict(model.named_modules())
    for target in target_modules:
        if not any(_matches(name, target) for name in named if name):
            linear = sorted(name for name, module in named.items() if isinstance(module, nn.Linear))
            raise ValueError(f"target module {target!r} matches no module of the model; its linear layers are "
                             f"{linear}")
    for name in trainable_modules:
        if name not in named:
            raise ValueError(f"trainable module {name!r} is not a module of the model")
    chosen = [name for name in named if name and any(_matches(name, t) for t in target_modules)]
    for name in chosen:
        module = named[name]
        if isinstance(module, LoRALinear):
            raise ValueError(f"module {name!r} already has a LoRA update")
        if not isinstance(module, nn.Linear):
            raise ValueError(f"module {name!r} is a {type(module).__name__}; LoRA here wraps nn.Linear layers only")
    wrapped = {name: LoRALinear(named[name], rank, alpha, dropout) for name in chosen}  # checks every rank first
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name, layer in wrapped.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
        layer.lora_A.requires_grad_(True)
        layer.lora_B.requires_grad_(True)
    for name in trainable_modules:
        for parameter in model.get_submodule(name).parameters():
            parameter.requires_grad_(True)
    return chosen


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """The :class:`LoRALinear` layers of ``model``, by name."""
    _check_module(model)
    return {name: module for name, module in model.named_modules() if isinstance(module, LoRALinear)}


def _require_lora(model: nn.Module) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRA layers; call add_lora first")
    return layers


def merge_lora(model: nn.Module) -> int:
    """Merge every LoRA update into its base weight (layers already merged are left alone). Returns the count."""
    layers = [layer for layer in _require_lora(model).values() if not layer.merged]
    for layer in layers:
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    """Undo :func:`merge_lora` on every merged LoRA layer. Returns how many layers were unmerged."""
    layers = [layer for layer in _require_lora(model).values() if layer.merged]
    for layer in layers:
        layer.unmerge()
    return len(layers)


def set_lora_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch the (unmerged) LoRA updates of ``model`` off or on, e.g. to compare with the original model."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {enabled!r}")
    for layer in _require_lora(model).values():
        if layer.merged and not enabled:
            raise RuntimeError("cannot disable a merged LoRA layer; call unmerge_lora first")
        layer.enabled = enabled


def remove_lora(model: nn.Module, merge: bool = False) -> nn.Module:
    """Replace every LoRA layer by its base ``nn.Linear``, in place, and return ``model``.

    With ``merge=False`` (default) the update is discarded and the original weights come back (merged layers are
    unmerged first); with ``merge=True`` the update is kept inside the plain layer. The base layers' parameters
    stay frozen; call ``requires_grad_(True)`` to train them again.
    """
    for name, layer in _require_lora(model).items():
        if merge and not layer.merged:
            layer.merge()
        if not merge and layer.merged:
            layer.unmerge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer.base)
    return model
