"""Scale, compute and emergence: the measurements of chapter 8.

- :func:`training_flops` (C = 6 N D), :func:`gpu_days` and :func:`compute_optimal`: the arithmetic of training
  compute, and the compute-optimal split of a budget between parameters and tokens (Hoffmann et al., 2022).
- :func:`non_embedding_parameters`: the parameter count N that scaling laws use (Kaplan et al., 2020).
- :func:`fit_power_law`: fit L(N) = a N^(-alpha) + c to losses measured at several sizes.
- :func:`train_family`: train a family of small GPTs of different sizes with one recipe, using
  :func:`llmbook.training.train`.
- :func:`score_next_tokens`, :func:`span_scores` and :func:`exact_match_from_per_token`: score a model on
  k-token answers per token and by exact match (the "mirage" of Schaeffer et al., 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from llmbook.utils import check_int, check_positive, check_probability, check_token_ids, count_parameters, set_seed

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "PowerLawFit",
    "compute_optimal",
    "exact_match_from_per_token",
    "fit_power_law",
    "gpu_days",
    "non_embedding_parameters",
    "score_next_tokens",
    "span_scores",
    "train_family",
    "training_flops",
]

#: Training FLOPs per parameter per token: 2 for the forward pass and about 4 for the backward pass.
FLOPS_PER_PARAM_TOKEN = 6
SECONDS_PER_DAY = 86_400


# ----------------------------------------------------------------------------------------------------------------
# Compute
# ----------------------------------------------------------------------------------------------------------------

def training_flops(n_params, n_tokens) -> float:
    """Approximate training compute C = 6 N D in FLOPs, for ``n_params`` parameters and ``n_tokens`` tokens.

    The forward pass costs about 2 FLOPs per parameter per token (one multiply and one add per weight, chapter 5)
    and the backward pass about twice that, so training costs about 6. The attention term (4 T d per block and
    token in the forward pass) is neglected, as in Kaplan et al. (2020). Both arguments must be finite and > 0.
    """
    n = check_positive("n_params", n_params)
    d = check_positive("n_tokens", n_tokens)
    return FLOPS_PER_PARAM_TOKEN * n * d


def gpu_days(flops, peak_flops_per_second, utilisation: float = 0.4) -> float:
    """Days that one accelerator needs for ``flops`` FLOPs at ``utilisation`` (a fraction in (0, 1]) of its peak.

    Divide the result by the number of accelerators to get the wall-clock days of a cluster (assuming perfect
    parallel scaling). Example: an A100 GPU's dense BF16 peak is 312e12 FLOP/s.
    """
    total = check_positive("flops", flops)
    peak = check_positive("peak_flops_per_second", peak_flops_per_second)
    fraction = check_probability("utilisation", utilisation, allow_zero=False)
    return total / (peak * fraction) / SECONDS_PER_DAY


def compute_optimal(compute, tokens_per_param: float = 20.0) -> tuple[float, float]:
    """Split a compute budget C (FLOPs) into ``(n_params, n_tokens)`` with D = r N and C = 6 N D.

    With the ratio r = ``tokens_per_param`` (about 20 for the compute-optimal models of Hoffmann et al., 2022)
    the solution is N = sqrt(C / (6 r)) and D = r N. Both arguments must be finite and > 0.
    """
    c = check_positive("compute", compute)
    r = check_positive("tokens_per_param", tokens_per_param)
    n_params = math.sqrt(c / (FLOPS_PER_PARAM_TOKEN * r))
    return n_params, r * n_params


def non_embedding_parameters(model: nn.Module) -> int:
    """Parameters of ``model`` outside its vocabulary and position tables: the N of Kaplan et al. (2020).

    Left out: the weights of every ``nn.Embedding`` (token and learned position embeddings) and of an output
    projection named ``lm_head`` (the unembedding, which has one row per vocabulary entry). For
    :class:`llmbook.transformer.GPT` this leaves the blocks and the final layer norm, i.e.
    ``n_layers * (12 d^2 + 13 d) + 2 d`` (see :mod:`llmbook.params`). A shared (tied) matrix is counted once.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    vocabulary = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding) or name.split(".")[-1] == "lm_head":
            vocabulary.update(id(p) for p in module.parameters(recurse=False))
    return sum(p.numel() for p in model.parameters() if id(p) not in vocabulary)


# ----------------------------------------------------------------------------------------------------------------
# Power-law fits
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerLawFit:
    """L(N) = a * N^(-alpha) + c, fitted by :func:`fit_power_law`; ``rmse`` is the root-mean-square residual."""

    a: float
    alpha: float
    c: float
    rmse: float

    def predict(self, n) -> np.ndarray:
        """The fitted loss at size(s) ``n`` (numbers > 0); returns a NumPy array (a 0-d array for a number)."""
        n = np.asarray(n, dtype=float)
        if n.size and (not np.all(np.isfinite(n)) or np.any(n <= 0)):
            raise ValueError("sizes n must be finite and > 0")
        return self.a * n ** (-self.alpha) + self.c

    def __str__(self) -> str:
        return f"L(N) = {self.a:.3g} * N^(-{self.alpha:.3f}) + {self.c:.3f}"


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y against x."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _fit_for_offset(log_n: np.ndarray, loss: np.ndarray, c: float) -> tuple[float, float, float]:
    """For a fixed offset c, fit log(L - c) = log a - alpha log N; return (a, alpha, sum of squared errors of L)."""
    slope, intercept = _line_fit(log_n, np.log(loss - c))
    a, alpha = math.exp(intercept), -slope
    residuals = a * np.exp(-alpha * log_n) + c - loss
    return a, alpha, float(residuals @ residuals)


def fit_power_law(n, loss, *, fit_offset: bool = True) -> PowerLawFit:
    """Fit L(N) = a N^(-alpha) + c to losses ``loss`` measured at sizes ``n`` (for example parameter counts).

    For a fixed offset c the fit is a straight line of log(L - c) against log N; the offset c (the part of the
    loss that more parameters do not remove) is chosen in [0, min(loss)) to minimise the squared error of L,
    first on a grid and then by golden-section search, so the result is deterministic. With
    ``fit_offset=False`` c is 0 and the fit is a straight line on log-log axes.

    Checks: ``n`` and ``loss`` are 1-D, of equal length, finite and > 0; there are at least 3 points (2 without
    an offset) and at least 2 different sizes. Raises ValueError if the fitted exponent is not positive, i.e. if
    the loss does not fall with size.
    """
    n = np.asarray(n, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if n.ndim != 1 or loss.ndim != 1:
        raise ValueError(f"n and loss must be 1-D sequences, got shapes {n.shape} and {loss.shape}")
    if len(n) != len(loss):
        raise ValueError(f"n and loss must have the same length, got {len(n)} and {len(loss)}")
    needed = 3 if fit_offset else 2
    if len(n) < needed:
        raise ValueError(f"need at least {needed} points to fit a power law"
                         f"{' with an offset' if fit_offset else ''}, got {len(n)}")
    for name, values in (("n", n), ("loss", loss)):
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"every value of {name} must be finite and > 0, got {values.tolist()}")
    if len(np.unique(n)) < 2:
        raise ValueError("n must contain at least 2 different sizes")
    log_n = np.log(n)
    if not fit_offset:
        a, alpha, sse = _fit_for_offset(log_n, loss, 0.0)
    else:
        top = float(loss.min())
        grid = top * (1.0 - np.geomspace(1.0, 1e-6, 400))  # from 0 up to just below min(loss)
        errors = [_fit_for_offset(log_n, loss, c)[2] for c in grid]
        best = int(np.argmin(errors))
        low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(60):  # golden-section search between the grid neighbours of the best offset
            left, right = high - ratio * (high - low), low + ratio * (high - low)
            if _fit_for_offset(log_n, loss, left)[2] <= _fit_for_offset(log_n, loss, right)[2]:
                high = right
            else:
                low = left
        candidates = [grid[best], (low + high) / 2.0]
        c = min(candidates, key=lambda value: _fit_for_offset(log_n, loss, value)[2])
        a, alpha, sse = _fit_for_offset(log_n, loss, c)
        if alpha > 0:
            return PowerLawFit(a=a, alpha=alpha, c=float(c), rmse=math.sqrt(sse / len(n)))
    if alpha <= 0:
        raise ValueError(f"the loss does not fall with n (fitted alpha = {alpha:.3g} <= 0); "
                         "a power law with a positive exponent does not describe these points")
    return PowerLawFit(a=a, alpha=alpha, c=0.0, rmse=math.sqrt(sse / len(n)))


# ----------------------------------------------------------------------------------------------------------------
# A family of tiny GPTs
# ----------------------------------------------------------------------------------------------------------------

def train_family(sizes: Sequence[tuple[int, int]], train_data, val_data, *, vocab_size: int, n_ctx: int,
                 steps: int, batch_size: int, lr: float, warmup_steps: int = 0, eval_every: int | None = None,
                 eval_windows: int | None = 64, head_width: int = 8, tie_weights: bool = False,
                 seed: int = 0, verbose: bool = True) -> list[dict]:
    """Train one :class:`llmbook.transformer.GPT` per ``(n_layers, d_model)`` in ``sizes`` with the same recipe.

    Every model gets the same context ``n_ctx``, batches (``seed``), number of ``steps``, learning-rate schedule
    and heads of width ``head_width`` (at least one head), and is trained with :func:`llmbook.training.train`
    (built-in attention, which computes the same function as the from-scratch code, only faster). The weights
    are initialised after ``set_seed(seed)``. Each model therefore sees D = steps * batch_size * n_ctx tokens.
    Intermediate validation losses (every ``eval_every`` steps, on the first ``eval_windows`` windows) are kept
    in ``history``; the final ``val_loss`` is measured on the whole of ``val_data``.

    Returns one dict per size with ``n_layers``, ``d_model``, ``params`` (all parameters), ``non_embedding``
    (:func:`non_embedding_parameters`), ``tokens``, ``flops`` (6 N D with the non-embedding N), ``val_loss``,
    ``history`` (from ``train``) and ``model``. With ``verbose`` one line per model is printed.
    """
    from llmbook.training import evaluate_loss, train
    from llmbook.transformer import GPT, GPTConfig

    sizes = list(sizes)
    if not sizes:
        raise ValueError("sizes must list at least one (n_layers, d_model) pair")
    for i, size in enumerate(sizes):
        if not (isinstance(size, (tuple, list)) and len(size) == 2):
            raise ValueError(f"sizes[{i}] must be a pair (n_layers, d_model), got {size!r}")
        check_int(f"sizes[{i}][0] (n_layers)", size[0], minimum=1)
        check_int(f"sizes[{i}][1] (d_model)", size[1], minimum=1)
    check_int("head_width", head_width, minimum=1)
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("n_ctx", n_ctx, minimum=1)
    train_data = check_token_ids("train_data", train_data, min_length=n_ctx + 1)
    val_data = check_token_ids("val_data", val_data, min_length=n_ctx + 1)
    results = []
    for n_layers, d_model in sizes:
        n_heads = max(1, d_model // head_width)
        while d_model % n_heads:  # the heads must split d_model evenly
            n_heads -= 1
        set_seed(seed)
        config = GPTConfig(vocab_size=vocab_size, n_ctx=n_ctx, d_model=d_model, n_layers=n_layers,
                           n_heads=n_heads, attention="builtin", tie_weights=tie_weights)
        model = GPT(config)
        history = train(model, train_data, val_data, steps=steps, batch_size=batch_size, lr=lr,
                        warmup_steps=warmup_steps, eval_every=eval_every or steps, eval_windows=eval_windows,
                        seed=seed, verbose=False)
        n_non_embedding = non_embedding_parameters(model)
        tokens = steps * batch_size * n_ctx
        result = {"n_layers": n_layers, "d_model": d_model, "params": count_parameters(model),
                  "non_embedding": n_non_embedding, "tokens": tokens,
                  "flops": training_flops(n_non_embedding, tokens),
                  "val_loss": evaluate_loss(model, val_data, n_ctx), "history": history, "model": model}
        results.append(result)
        if verbose:
            print(f"{n_layers} blocks, d_model {d_model:3d}: {result['params']:6,d} parameters, "
                  f"{n_non_embedding:6,d} non-embedding, val loss {result['val_loss']:.3f}", flush=True)
    return results


# ----------------------------------------------------------------------------------------------------------------
# Scoring k-token answers: per token and by exact match
# ----------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def score_next_tokens(model: nn.Module, data, n_ctx: int, stride: int | None = None, starts=None,
                      batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Score every next-token prediction of ``model`` in windows of ``n_ctx`` tokens cut from ``data``.

    Windows start every ``stride`` tokens (default ``n_ctx``: no overlap), or at the positions listed in
    ``starts`` (each in [0, len(data) - n_ctx - 1]) if given. Window w holds the inputs
    ``data[s : s + n_ctx]`` and the targets ``data[s + 1 : s + n_ctx + 1]``. Returns ``(correct, log_prob)``,
    both of shape (windows, n_ctx): whether the most probable token (the greedy choice) equals the target, and
    the natural log of the probability the model gives the target. This is teacher forcing: every prediction is
    conditioned on the true previous tokens. The model is put in eval mode and restored afterwards.
    """
    check_int("n_ctx", n_ctx, minimum=1)
    stride = n_ctx if stride is None else check_int("stride", stride, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    data = check_token_ids("data", data, min_length=n_ctx + 1)
    if starts is None:
        starts = torch.arange(0, len(data) - n_ctx, stride)  # every window has n_ctx inputs and n_ctx targets
    else:
        starts = check_token_ids("starts", starts, min_length=1)
        if starts.min() < 0 or starts.max() > len(data) - n_ctx - 1:
            raise ValueError(f"every start must lie in [0, {len(data) - n_ctx - 1}] so that the window and its "
                             f"targets fit in data, got values from {int(starts.min())} to {int(starts.max())}")
    offsets = torch.arange(n_ctx)
    was_training = model.training
    model.eval()
    correct, log_prob = [], []
    for first in range(0, len(starts), batch_size):
        rows = starts[first:first + batch_size, None] + offsets  # (b, T)
        logits, _ = model(data[rows])  # (b, T, V)
        targets = data[rows + 1]  # (b, T)
        correct.append(logits.argmax(dim=-1) == targets)
        log_prob.append(torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0])
    model.train(was_training)
    return torch.cat(correct), torch.cat(log_prob)


def span_scores(correct, k: int) -> dict[str, float]:
    """Score k-token answers: the last ``k`` positions of every window of ``correct`` form one answer.

    ``correct`` is a boolean (windows, T) tensor or array, e.g. from :func:`score_next_tokens`. Returns
    ``{"per_token": ..., "exact_match": ...}``: the fraction of answer tokens that are right, and the fraction
    of answers whose k tokens are all right. Under greedy decoding an answer is generated exactly right if and
    only if every one of its k teacher-forced predictions is right, so exact match here equals the exact match
    of greedy generation from the same prompt. Requires 1 <= k <= T.
    """
    correct = torch.as_tensor(np.asarray(correct) if not isinstance(correct, torch.Tensor) else correct)
    if correct.dtype != torch.bool:
        raise TypeError(f"correct must hold booleans (True = right token), got dtype {correct.dtype}")
    if correct.dim() != 2 or correct.shape[0] == 0:
        raise ValueError(f"correct must have shape (windows, time) with at least one window, "
                         f"got {tuple(correct.shape)}")
    check_int("k", k, minimum=1)
    if k > correct.shape[1]:
        raise ValueError(f"k must be at most the window length {correct.shape[1]}, got {k}")
    answers = correct[:, -k:]  # (windows, k)
    return {"per_token": float(answers.float().mean()), "exact_match": float(answers.all(dim=1).float().mean())}


def exact_match_from_per_token(per_token, k: int):
    """Exact match of k-token answers if each token is right independently with probability ``per_token``: p^k.

    ``per_token`` is a number or an array of numbers in [0, 1]; returns the same kind (a float or an array).
    """
    check_int("k", k, minimum=1)
    p = np.asarray(per_token, dtype=float)
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"per_token accuracies must lie in [0, 1], got {per_token!r}")
    result = p ** k
    return float(result) if result.ndim == 0 else result
