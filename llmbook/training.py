"""Training a small language model: batches, baselines, the training loop and perplexity (chapter 6).

A language model is trained to predict the next token. For a sequence of token ids ``data``, every
training example is a window ``x = data[i : i + n_ctx]`` with targets ``y = data[i + 1 : i + n_ctx + 1]``:
the same window shifted by one, so position t of ``y`` is the token that follows position t of ``x``.

The loss is the mean cross-entropy in nats (natural logarithm) per token. Two counting models give
the baselines a neural model must beat: the unigram model (how often each token occurs) and the bigram
model (how often each token follows the previous one). Perplexity is ``exp(loss)``.

The book has **one training loop**, :func:`optimise`: zero the gradients, back-propagate, clip, step, in that
order, on a loss that a function computes. Every trainer is built on it: :func:`train` (chapter 6's language
model), :func:`train_on_batches` (chapter 7: the same settings with batches from any function, for an encoder,
a decoder or an encoder-decoder), :func:`llmbook.finetune.train_classifier` (chapter 9) and the trainers of
:mod:`llmbook.rlhf` (chapter 10). Where a trainer reports ``seconds``, it is wall-clock time
(``time.perf_counter``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from llmbook.utils import (
    check_causal,
    check_int,
    check_positive,
    check_probability,
    check_token_ids,
    eval_mode,
    train_mode,
)

__all__ = ["LN2", "IGNORE_INDEX", "get_batch", "unigram_probabilities", "bigram_probabilities", "unigram_loss",
           "bigram_loss", "perplexity", "bits_per_token", "learning_rate", "parameter_groups", "evaluate_loss",
           "optimise", "train", "train_on_batches", "GPTRecipe", "TINY_GPT_RECIPE"]

#: ln 2, to convert nats into bits.
LN2 = math.log(2.0)

#: Target value that ``torch.nn.functional.cross_entropy`` ignores (its default ``ignore_index``): positions
#: that carry no loss. Chapter 7 uses it for the unmasked positions of a masked language model and for padding,
#: chapter 9 for the prompt of an instruction-tuning pair.
IGNORE_INDEX = -100


# The token-id check is shared with llmbook.generation (one definition, in llmbook.utils).
_check_ids = check_token_ids


def get_batch(data, batch_size: int, n_ctx: int, generator: torch.Generator | None = None):
    """Draw ``batch_size`` random windows of ``n_ctx`` tokens from ``data`` (1-D token ids).

    Returns ``(inputs, targets)``, both of shape (batch_size, n_ctx); ``targets`` is ``inputs`` shifted
    one position to the left, i.e. ``targets[b, t] == data[start_b + t + 1]``. Pass a seeded
    ``torch.Generator`` to make the sequence of batches reproducible.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("n_ctx", n_ctx, minimum=1)
    data = _check_ids("data", data, min_length=n_ctx + 1)
    starts = torch.randint(len(data) - n_ctx, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(n_ctx)  # (T,)
    inputs = data[starts[:, None] + offsets]  # (B, T)
    targets = data[starts[:, None] + offsets + 1]  # (B, T): the next token at every position
    return inputs, targets


def unigram_probabilities(ids, vocab_size: int, smoothing: float = 1.0) -> torch.Tensor:
    """P(token) estimated by counting, with add-``smoothing`` (Laplace) smoothing. Shape (vocab_size,)."""
    check_int("vocab_size", vocab_size, minimum=1)
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    ids = _check_ids("ids", ids)
    counts = torch.bincount(ids, minlength=vocab_size).double()[:vocab_size] + smoothing
    return counts / counts.sum()


def bigram_probabilities(ids, vocab_size: int, smoothing: float = 1.0) -> torch.Tensor:
    """P(next | previous) estimated by counting pairs, add-``smoothing`` smoothed. Shape (vocab_size, vocab_size).

    Row ``a`` is the distribution of the token that follows token ``a``; every row sums to 1.
    """
    check_int("vocab_size", vocab_size, minimum=1)
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    ids = _check_ids("ids", ids, min_length=2)
    counts = torch.full((vocab_size, vocab_size), float(smoothing), dtype=torch.float64)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1, dtype=torch.float64), accumulate=True)
    totals = counts.sum(dim=1, keepdim=True)
    if torch.any(totals == 0):
        raise ValueError("a token never occurs as a previous token; use smoothing > 0")
    return counts / totals


def unigram_loss(train_ids, eval_ids, vocab_size: int, smoothing: float = 1.0) -> float:
    """Mean cross-entropy (nats per token) of ``eval_ids`` under the unigram model counted on ``train_ids``."""
    probs = unigram_probabilities(train_ids, vocab_size, smoothing)
    eval_ids = _check_ids("eval_ids", eval_ids)
    return float(-torch.log(probs[eval_ids]).mean())


def bigram_loss(train_ids, eval_ids, vocab_size: int, smoothing: float = 1.0) -> float:
    """Mean cross-entropy (nats per token) of ``eval_ids[1:]`` given the previous token, under the bigram model.

    The first token of ``eval_ids`` has no previous token, so it is only used as context.
    """
    probs = bigram_probabilities(train_ids, vocab_size, smoothing)
    eval_ids = _check_ids("eval_ids", eval_ids, min_length=2)
    return float(-torch.log(probs[eval_ids[:-1], eval_ids[1:]]).mean())


def perplexity(loss: float) -> float:
    """Perplexity = exp(mean cross-entropy in nats): the 'effective number of choices' per token."""
    if isinstance(loss, torch.Tensor):
        loss = float(loss)
    if not isinstance(loss, (int, float)) or isinstance(loss, bool) or math.isnan(loss) or loss < 0:
        raise ValueError(f"loss must be a mean cross-entropy in nats (a number >= 0), got {loss!r}")
    return math.exp(loss)


def bits_per_token(loss: float) -> float:
    """Convert a loss in nats per token into bits per token (divide by ln 2)."""
    if isinstance(loss, torch.Tensor):
        loss = float(loss)
    if not isinstance(loss, (int, float)) or isinstance(loss, bool) or math.isnan(loss) or loss < 0:
        raise ValueError(f"loss must be a mean cross-entropy in nats (a number >= 0), got {loss!r}")
    return loss / LN2


def learning_rate(step: int, max_steps: int, peak_lr: float, warmup_steps: int = 0,
                  min_fraction: float = 0.1) -> float:
    """Linear warm-up to ``peak_lr`` over ``warmup_steps``, then cosine decay to ``min_fraction * peak_lr``.

    "Warm-up" is this learning-rate ramp at the start of training; it has nothing to do with prompts.
    """
    check_int("step", step, minimum=0)
    check_int("max_steps", max_steps, minimum=1)
    check_positive("peak_lr", peak_lr)
    check_int("warmup_steps", warmup_steps, minimum=0)
    check_probability("min_fraction", min_fraction)
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    decay_steps = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return peak_lr * (min_fraction + (1.0 - min_fraction) * cosine)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split a model's trainable parameters into two AdamW groups: decayed matrices and undecayed vectors.

    Parameters with two or more dimensions (weights of linear layers, embeddings) get ``weight_decay``; 1-D
    parameters (biases, LayerNorm gains and shifts) get none, as in most Transformer training recipes. A
    parameter shared by two modules (tied embeddings) appears once. Frozen parameters (``requires_grad`` False)
    are left out. Raises ``ValueError`` if ``weight_decay`` is negative or nothing is trainable.
    """
    if not hasattr(model, "named_parameters"):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    trainable = [p for p in model.parameters() if p.requires_grad]  # .parameters() yields shared ones once
    if not trainable:
        raise ValueError("model has no trainable parameters (every parameter has requires_grad=False)")
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    return [{"params": decay, "weight_decay": float(weight_decay)},
            {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate_loss(model: nn.Module, data, n_ctx: int, batch_size: int = 256, max_windows: int | None = None) -> float:
    """Mean cross-entropy (nats per token) of ``model`` on ``data``, cut into consecutive windows of ``n_ctx``.

    Deterministic: the windows do not overlap and are taken in order (the first ``max_windows`` if given).
    The model is put in eval mode and restored to its previous mode afterwards. Raises ValueError for a model
    that is not causal (a :class:`llmbook.architectures.MaskedLM` would see the tokens it is asked to predict).
    """
    check_causal(model, "evaluate_loss")
    check_int("n_ctx", n_ctx, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    data = _check_ids("data", data, min_length=n_ctx + 1)
    n_windows = (len(data) - 1) // n_ctx
    if max_windows is not None:
        n_windows = min(n_windows, check_int("max_windows", max_windows, minimum=1))
    starts = torch.arange(n_windows) * n_ctx
    offsets = torch.arange(n_ctx)
    total = 0.0
    with eval_mode(model):
        for first in range(0, n_windows, batch_size):
            rows = starts[first:first + batch_size, None] + offsets  # (b, T)
            _, loss = model(data[rows], data[rows + 1])
            total += float(loss) * len(rows)
    return total / n_windows


def optimise(optimizer: torch.optim.Optimizer, step_loss: Callable[[], torch.Tensor], steps: int, *,
             schedule: Callable[[int], float] | None = None, grad_clip: float | None = None,
             clip_parameters: Sequence[torch.Tensor] | None = None,
             after_step: Callable[[int, list[float]], None] | None = None) -> list[float]:
    """The book's one training loop: ``steps`` optimiser steps on the loss that ``step_loss()`` returns.

    Every step does, in this order:

    1. if ``schedule`` is given, set the learning rate of every parameter group to ``schedule(step)``
       (steps counted from 0);
    2. ``loss = step_loss()``: the function draws its own batch and runs the model;
    3. ``optimizer.zero_grad(set_to_none=True)`` and ``loss.backward()``;
    4. if ``grad_clip`` is given, ``torch.nn.utils.clip_grad_norm_(clip_parameters, grad_clip)``: the gradients'
       total norm over ``clip_parameters`` is scaled down to at most ``grad_clip``;
    5. ``optimizer.step()``, then ``loss.item()`` is recorded;
    6. if given, ``after_step(step + 1, losses)`` is called with the number of steps done and the losses so far
       (to print progress, evaluate, or record anything else).

    Returns the loss of every step. The loop sets neither the model's mode nor a seed: the trainers built on it
    do (:func:`train`, :func:`train_on_batches`, :func:`llmbook.finetune.train_classifier`, and those of
    :mod:`llmbook.rlhf`), so that each keeps its own order of random draws.
    """
    check_int("steps", steps, minimum=0)
    if not callable(step_loss):
        raise TypeError("step_loss must be a function that returns the loss of one batch")
    if grad_clip is not None:
        check_positive("grad_clip", grad_clip)
        if clip_parameters is None:
            raise ValueError("grad_clip needs clip_parameters, the parameters whose gradients are clipped")
    losses: list[float] = []
    for step in range(steps):
        if schedule is not None:
            lr = schedule(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
        loss = step_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(clip_parameters, grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if after_step is not None:
            after_step(step + 1, losses)
    return losses


def train(model: nn.Module, train_data, val_data, *, steps: int, batch_size: int, lr: float,
          warmup_steps: int = 100, min_lr_fraction: float = 0.1, weight_decay: float = 0.01,
          grad_clip: float | None = 1.0, eval_every: int = 100, eval_windows: int | None = None,
          seed: int = 0, verbose: bool = True,
          on_eval: Callable[[int, nn.Module], None] | None = None) -> dict:
    """Train a language model ``model(inputs, targets) -> (logits, loss)`` with AdamW.

    Every step draws a batch with :func:`get_batch` from a ``torch.Generator`` seeded with ``seed``, so two
    runs with the same settings (and the same number of threads) see the same batches. The learning rate
    follows :func:`learning_rate` (warm-up, then cosine decay). Every ``eval_every`` steps (and after the last
    step) the validation loss is measured with :func:`evaluate_loss` and, if ``verbose``, one line is printed:
    the step, the mean training loss since the previous report and the validation loss, rounded to 3 decimals.
    ``on_eval(step, model)`` is called at the same moments (step 0 is reported before any update).

    Weight decay follows standard practice: it applies to matrices (weights of linear layers, embeddings) and
    not to 1-D parameters (biases, LayerNorm gains and shifts). Only parameters with ``requires_grad`` are
    trained, so a model with frozen parts (a probe, LoRA) can be passed as it is. The model is left in the mode
    (training or evaluation) it was in before the call. The steps are :func:`optimise`'s. Raises ValueError for
    a model that is not causal (e.g. a :class:`llmbook.architectures.MaskedLM`; train it with
    :func:`train_on_batches` on masked batches instead).

    Returns a dict with ``steps`` and ``train_loss`` (one entry per step), ``eval_steps``, ``val_loss``
    (one entry per evaluation) and ``seconds`` (wall-clock time of the whole loop, evaluations included,
    measured with ``time.perf_counter``).
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_positive("lr", lr)
    check_int("eval_every", eval_every, minimum=1)
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    n_ctx = model.config.n_ctx if hasattr(model, "config") else None
    if n_ctx is None:
        raise TypeError("model must have a .config with n_ctx (e.g. llmbook.transformer.GPT)")
    check_causal(model, "train")
    train_data = _check_ids("train_data", train_data, min_length=n_ctx + 1)
    val_data = _check_ids("val_data", val_data, min_length=n_ctx + 1)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=(0.9, 0.99))
    history = {"steps": [], "train_loss": [], "eval_steps": [], "val_loss": [], "seconds": 0.0}

    def report(step: int, recent: list[float]) -> None:
        val_loss = evaluate_loss(model, val_data, n_ctx, max_windows=eval_windows)
        history["eval_steps"].append(step)
        history["val_loss"].append(val_loss)
        if verbose:
            train_text = f"{sum(recent) / len(recent):.3f}" if recent else "  -  "
            print(f"step {step:5d}/{steps}  train loss {train_text}  val loss {val_loss:.3f}", flush=True)
        if on_eval is not None:
            on_eval(step, model)

    def step_loss() -> torch.Tensor:
        inputs, targets = get_batch(train_data, batch_size, n_ctx, generator)
        return model(inputs, targets)[1]

    def after_step(step: int, losses: list[float]) -> None:
        history["steps"].append(step)
        history["train_loss"].append(losses[-1])
        if step % eval_every == 0 or step == steps:
            report(step, losses[history["eval_steps"][-1]:])  # the losses since the previous report

    start = time.perf_counter()
    with train_mode(model):
        report(0, [])
        optimise(optimizer, step_loss, steps,
                 schedule=lambda step: learning_rate(step, steps, lr, warmup_steps, min_lr_fraction),
                 grad_clip=grad_clip, clip_parameters=[p for p in model.parameters() if p.requires_grad],
                 after_step=after_step)
    history["seconds"] = time.perf_counter() - start
    return history


def train_on_batches(model: nn.Module, next_batch: Callable[[], tuple], *, steps: int, lr: float,
                     warmup_steps: int = 50, min_lr_fraction: float = 0.1, weight_decay: float = 0.01,
                     grad_clip: float | None = 1.0, report_every: int | None = None,
                     label: str = "") -> dict:
    """Train ``model`` with AdamW on the batches that ``next_batch()`` returns; ``model(*batch)`` -> (out, loss).

    The same settings as :func:`train` (warm-up then cosine learning rate, no weight decay on 1-D parameters,
    gradient clipping) and the same loop (:func:`optimise`), but the batches come from any function and there is
    no validation, so that a causal LM, a masked LM and an encoder-decoder can be trained by exactly the same loop
    (chapter 7). Every ``report_every`` steps (and at the end) it prints ``label``, the step and the mean
    training loss since the previous report, rounded to 3 decimals. Returns a dict with ``train_loss`` (one value
    per step) and ``seconds`` (wall-clock time, ``time.perf_counter``). The model is left in the mode (training
    or evaluation) it was in before the call.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(next_batch):
        raise TypeError("next_batch must be a function that returns a tuple of model inputs")
    check_int("steps", steps, minimum=1)
    check_positive("lr", lr)
    if report_every is not None:
        check_int("report_every", report_every, minimum=1)
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=(0.9, 0.99))
    history = {"train_loss": [], "seconds": 0.0}
    reported = [0]  # the step of the previous report

    def after_step(step: int, losses: list[float]) -> None:
        if report_every is not None and (step % report_every == 0 or step == steps):
            recent = losses[reported[0]:]
            print(f"{label}step {step:4d}/{steps}  train loss {sum(recent) / len(recent):.3f}", flush=True)
            reported[0] = step

    start = time.perf_counter()
    with train_mode(model):
        history["train_loss"] = optimise(
            optimizer, lambda: model(*next_batch())[1], steps,
            schedule=lambda step: learning_rate(step, steps, lr, warmup_steps, min_lr_fraction),
            grad_clip=grad_clip, clip_parameters=[p for p in model.parameters() if p.requires_grad],
            after_step=after_step)
    history["seconds"] = time.perf_counter() - start
    return history


@dataclass(frozen=True)
class GPTRecipe:
    """How a chapter builds and trains its GPT, in one place that the chapter and its benchmark both import.

    The first eight fields are the knobs a chapter names in capitals, in this order (:attr:`knobs`):
    ``D_MODEL, N_LAYERS, N_HEADS, N_CTX, BATCH_SIZE, STEPS, LR, WARMUP = TINY_GPT_RECIPE.knobs``. The others are
    the model's choices (``attention``, ``tie_weights``, ``init``: :class:`~llmbook.transformer.GPTConfig` fields),
    the evaluation interval and seed of :func:`train`, and the share of the text held out for validation.
    """

    d_model: int
    n_layers: int
    n_heads: int
    n_ctx: int
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    attention: str = "scratch"
    tie_weights: bool = True
    init: str = "normal"
    eval_every: int = 100
    seed: int = 0
    val_fraction: float = 0.1

    def __post_init__(self):
        for name in ("d_model", "n_layers", "n_heads", "n_ctx", "batch_size", "steps", "eval_every"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("warmup_steps", self.warmup_steps, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_positive("lr", self.lr)
        check_probability("val_fraction", self.val_fraction)

    @property
    def knobs(self) -> tuple:
        """``(d_model, n_layers, n_heads, n_ctx, batch_size, steps, lr, warmup_steps)``, the chapter's capitals."""
        return (self.d_model, self.n_layers, self.n_heads, self.n_ctx, self.batch_size, self.steps, self.lr,
                self.warmup_steps)

    def config(self, vocab_size: int, **overrides):
        """The :class:`~llmbook.transformer.GPTConfig` of this recipe; ``overrides`` change any of its fields."""
        from llmbook.transformer import GPTConfig  # here, so that importing llmbook.training stays light

        fields = {key: value for key, value in asdict(self).items()
                  if key in ("n_ctx", "d_model", "n_layers", "n_heads", "attention", "tie_weights", "init")}
        return GPTConfig(vocab_size=vocab_size, **{**fields, **overrides})

    def train_kwargs(self) -> dict:
        """The keyword arguments of :func:`train` that this recipe fixes (steps, batches, schedule, evaluation)."""
        return {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                "warmup_steps": self.warmup_steps, "eval_every": self.eval_every, "seed": self.seed}


#: Chapter 6's tiny character-level GPT and how it is trained on the Lee news corpus, shared by
#: notebooks/06_tiny_gpt_and_generation.ipynb and benchmarks/tiny_gpt.py (tests/test_benchmarks.py checks that
#: the notebook agrees): fused attention, an untied output layer and PyTorch's default initialisation.
TINY_GPT_RECIPE = GPTRecipe(d_model=64, n_layers=2, n_heads=4, n_ctx=64, batch_size=32, steps=550, lr=1.5e-2,
                            warmup_steps=50, eval_every=200, attention="builtin", tie_weights=False, init="pytorch")
