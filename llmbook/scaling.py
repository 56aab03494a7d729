"""Scale, compute and emergence: the measurements of chapter 8.

- :func:`training_flops` (C = 6 N D), :func:`gpu_days` and :func:`compute_optimal`: the arithmetic of training
  compute, and the compute-optimal split of a budget between parameters and tokens (Hoffmann et al., 2022).
- :func:`non_embedding_parameters`: the parameter count N that scaling laws use (Kaplan et al., 2020).
- :func:`fit_power_law`: fit L(N) = a N^(-alpha) + c to losses measured at several sizes.
- :func:`train_family`: train a family of small GPTs of different sizes with one recipe, using
  :func:`llmbook.training.train`.
- :func:`fit_power_law_nls`: the same law fitted by nonlinear least squares, with standard errors.
- :class:`WittenBell`: a smoothed character n-gram model, the baseline the family is compared with.
- :func:`score_next_tokens`, :func:`span_scores` and :func:`exact_match_from_per_token`: score a model on
  k-token answers per token, by exact match and by the log-probability of the answer (the "mirage" of
  Schaeffer et al., 2023); :func:`bootstrap_by_group` gives an interval that resamples words, not items.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from llmbook.utils import (
    check_causal,
    check_int,
    check_positive,
    check_probability,
    check_token_ids,
    count_parameters,
    eval_mode,
    set_seed,
)

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "PowerLawFit",
    "WittenBell",
    "bootstrap_by_group",
    "compute_optimal",
    "exact_match_from_per_token",
    "fit_power_law",
    "fit_power_law_nls",
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
    """L(N) = a * N^(-alpha) + c, fitted by :func:`fit_power_law` or :func:`fit_power_law_nls`.

    ``rmse`` is the root-mean-square residual of L. ``stderr`` is ``None``, or, from :func:`fit_power_law_nls`,
    the standard errors ``(se_a, se_alpha, se_c)`` of the three parameters.
    """

    a: float
    alpha: float
    c: float
    rmse: float
    stderr: tuple[float, float, float] | None = None

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

    What is fitted in log space and what is not: for a fixed offset c, ``a`` and ``alpha`` come from a
    least-squares straight line of log(L - c) against log N (squared errors of *log(L - c)*); the offset c (the
    part of the loss that more parameters do not remove) is then chosen in [0, min(loss)) to minimise the
    squared error of *L itself*, first on a grid and then by golden-section search, so the result is
    deterministic. This is close to, but not exactly, the least-squares fit of L; :func:`fit_power_law_nls`
    refines it to that fit and gives standard errors. With ``fit_offset=False`` c is 0 and the fit is a
    straight line on log-log axes (squared errors of log L).

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


def fit_power_law_nls(n, loss) -> PowerLawFit:
    """The least-squares fit of L(N) = a N^(-alpha) + c in L itself, with standard errors of a, alpha and c.

    Starts from :func:`fit_power_law` and minimises the sum of squared errors of L over (a, alpha, c)
    (nonlinear least squares, Levenberg-Marquardt, ``scipy.optimize.least_squares``). The standard errors are
    the square roots of the diagonal of s^2 (J^T J)^-1, where J is the Jacobian of the residuals at the fit and
    s^2 = (sum of squared residuals) / (points - 3). They assume independent errors of equal size and a locally
    linear model, so with few points read them as a rough interval: alpha +- 2 se, say. Needs at least 4
    points (3 parameters and one degree of freedom); raises ValueError otherwise, and for the bad input that
    :func:`fit_power_law` rejects.
    """
    from scipy.optimize import least_squares

    start = fit_power_law(n, loss)
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if len(n) < 4:
        raise ValueError(f"need at least 4 points for standard errors of 3 parameters, got {len(n)}")

    def residuals(params):
        a, alpha, c = params
        return a * n ** (-alpha) + c - loss

    def jacobian(params):
        a, alpha, _ = params
        power = n ** (-alpha)
        return np.stack([power, -a * np.log(n) * power, np.ones_like(n)], axis=1)

    result = least_squares(residuals, [start.a, start.alpha, start.c], jac=jacobian, method="lm")
    a, alpha, c = (float(v) for v in result.x)
    sse = float(result.fun @ result.fun)
    j = jacobian(result.x)
    try:
        covariance = sse / (len(n) - 3) * np.linalg.inv(j.T @ j)
    except np.linalg.LinAlgError:
        raise ValueError("the fit's parameters are not determined by these points (singular Jacobian)") from None
    stderr = tuple(float(v) for v in np.sqrt(np.clip(np.diag(covariance), 0.0, None)))
    if alpha <= 0:
        raise ValueError(f"the least-squares exponent is not positive (alpha = {alpha:.3g})")
    return PowerLawFit(a=a, alpha=alpha, c=c, rmse=math.sqrt(sse / len(n)), stderr=stderr)


# ----------------------------------------------------------------------------------------------------------------
# A smoothed n-gram baseline
# ----------------------------------------------------------------------------------------------------------------

class WittenBell:
    """A character n-gram model with interpolated Witten-Bell smoothing (Witten and Bell, 1991).

    Counted on ``train_text`` (a string) for contexts of 0 to ``order - 1`` characters. For a context h and a
    next character w,

        P(w | h) = (c(hw) + T(h) P(w | h')) / (c(h) + T(h)),

    where c(hw) counts h followed by w, c(h) counts h followed by anything, T(h) is the number of different
    characters seen after h, and h' is h without its first character. A context never seen uses P(w | h')
    alone; below the empty context is the uniform distribution over ``vocab_size`` characters, so every
    character of the vocabulary gets a probability > 0 and the probabilities over the vocabulary sum to 1.
    Taught in chapter 8 as the baseline of the family of tiny GPTs.
    """

    def __init__(self, train_text: str, order: int, vocab_size: int):
        if not isinstance(train_text, str) or not train_text:
            raise ValueError("train_text must be a non-empty string")
        self.order = check_int("order", order, minimum=1)
        self.vocab_size = check_int("vocab_size", vocab_size, minimum=1)
        if len(set(train_text)) > vocab_size:
            raise ValueError(f"train_text has {len(set(train_text))} different characters, more than vocab_size "
                             f"= {vocab_size}")
        self.counts: dict[str, int] = {}  # c(hw) for every string hw of 1 to `order` characters
        for length in range(1, order + 1):
            grams = (train_text[i:i + length] for i in range(len(train_text) - length + 1))
            for gram, count in Counter(grams).items():
                self.counts[gram] = count
        self.totals: dict[str, int] = {}  # c(h)
        self.types: dict[str, int] = {}  # T(h)
        for gram, count in self.counts.items():
            self.totals[gram[:-1]] = self.totals.get(gram[:-1], 0) + count
            self.types[gram[:-1]] = self.types.get(gram[:-1], 0) + 1

    def probability(self, context: str, char: str) -> float:
        """P(char | the last ``order - 1`` characters of ``context``), by the recursion above."""
        if not isinstance(context, str) or not isinstance(char, str) or len(char) != 1:
            raise TypeError("context must be a string and char a single character")
        context = context[max(0, len(context) - self.order + 1):] if self.order > 1 else ""
        p = 1.0 / self.vocab_size
        for start in range(len(context), -1, -1):  # the empty context first, then longer ones
            h = context[start:]
            total = self.totals.get(h, 0)
            if total:
                types = self.types[h]
                p = (self.counts.get(h + char, 0) + types * p) / (total + types)
        return p

    def loss(self, text: str, n_ctx: int | None = None) -> float:
        """Mean cross-entropy (nats per character) of ``text[1:]``, each character given the ones before it.

        With ``n_ctx`` the text is cut as :func:`llmbook.training.evaluate_loss` cuts it for a model with that
        context: windows of ``n_ctx`` targets that do not overlap, each target seeing only the characters of its
        own window, so the n-gram and the GPTs predict the same characters from the same information.
        """
        if not isinstance(text, str) or len(text) < 2:
            raise ValueError("text must be a string of at least 2 characters")
        if n_ctx is None:
            targets, window = range(1, len(text)), len(text)
        else:
            check_int("n_ctx", n_ctx, minimum=1)
            targets, window = range(1, (len(text) - 1) // n_ctx * n_ctx + 1), n_ctx
        total = 0.0
        for i in targets:
            first = (i - 1) // window * window  # where this target's window starts
            total -= math.log(self.probability(text[max(first, i - self.order + 1):i], text[i]))
        return total / len(targets)


# ----------------------------------------------------------------------------------------------------------------
# A family of tiny GPTs
# ----------------------------------------------------------------------------------------------------------------

def train_family(sizes: Sequence[tuple[int, int]], train_data, val_data, *, vocab_size: int, n_ctx: int,
                 steps: int, batch_size: int, lr: float, warmup_steps: int = 0, eval_every: int | None = None,
                 eval_windows: int | None = 64, head_width: int = 8, tie_weights: bool = False,
                 init: str = "normal", seed: int = 0, verbose: bool = True) -> list[dict]:
    """Train one :class:`llmbook.transformer.GPT` per ``(n_layers, d_model)`` in ``sizes`` with the same recipe.

    Every model gets the same context ``n_ctx``, batches (``seed``), number of ``steps``, learning-rate schedule
    and heads of width ``head_width`` (at least one head; a model narrower than ``head_width`` gets one head
    of width ``d_model``) and the initialisation ``init`` (see :class:`llmbook.transformer.GPT`). It is trained
    with :func:`llmbook.training.train` (built-in attention, which computes the same function as the
    from-scratch code, only faster). The weights are initialised after ``set_seed(seed)``. Each model
    therefore sees D = steps * batch_size * n_ctx tokens. Intermediate validation losses (every ``eval_every``
    steps, on the first ``eval_windows`` windows) are kept in ``history``; the final ``val_loss`` is measured on
    the whole of ``val_data``.

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
                           n_heads=n_heads, attention="builtin", tie_weights=tie_weights, init=init)
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
    conditioned on the true previous tokens. The model is put in eval mode and restored afterwards. Raises
    ValueError for a model that is not causal.
    """
    check_causal(model, "score_next_tokens")
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
    correct, log_prob = [], []
    with eval_mode(model):
        for first in range(0, len(starts), batch_size):
            rows = starts[first:first + batch_size, None] + offsets  # (b, T)
            logits, _ = model(data[rows])  # (b, T, V)
            targets = data[rows + 1]  # (b, T)
            correct.append(logits.argmax(dim=-1) == targets)
            log_prob.append(torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0])
    return torch.cat(correct), torch.cat(log_prob)


def span_scores(correct, k: int, log_prob=None) -> dict[str, float]:
    """Score k-token answers: the last ``k`` positions of every window of ``correct`` form one answer.

    ``correct`` is a boolean (windows, T) tensor or array, e.g. from :func:`score_next_tokens`. Returns
    ``{"per_token": ..., "exact_match": ...}``: the fraction of answer tokens that are right, and the fraction
    of answers whose k tokens are all right. Under greedy decoding an answer is generated exactly right if and
    only if every one of its k teacher-forced predictions is right, so exact match here equals the exact match
    of greedy generation from the same prompt. Requires 1 <= k <= T.

    With ``log_prob`` (the second output of :func:`score_next_tokens`, same shape) the dict also holds
    ``"log_prob"``: the mean over answers of log P(answer) = the sum of the log-probabilities of its k tokens
    (nats, <= 0). Unlike the two accuracies it has no threshold: it moves whenever the right answer becomes
    more or less probable (the kind of continuous metric Schaeffer et al., 2023, argue for).
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
    scores = {"per_token": float(answers.float().mean()), "exact_match": float(answers.all(dim=1).float().mean())}
    if log_prob is not None:
        log_prob = torch.as_tensor(log_prob, dtype=torch.float64)
        if log_prob.shape != correct.shape:
            raise ValueError(f"log_prob must have the shape of correct {tuple(correct.shape)}, "
                             f"got {tuple(log_prob.shape)}")
        if not torch.all(torch.isfinite(log_prob)) or torch.any(log_prob > 0):
            raise ValueError("log_prob must hold finite log-probabilities (<= 0)")
        scores["log_prob"] = float(log_prob[:, -k:].sum(dim=1).mean())
    return scores


def bootstrap_by_group(values, groups, n_resamples: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean of ``values`` that resamples whole groups, not items.

    ``values`` holds one number per item (e.g. 1.0 for an exact match, 0.0 otherwise) and ``groups`` one label
    per item (e.g. the word the item tests). Items of one group are not independent (a model that knows a word
    spells all its occurrences), so each resample draws as many groups as there are, with replacement, and
    takes the mean over all items of the drawn groups. Returns the ``(low, high)`` quantiles of those means at
    ``(1 - level) / 2`` and ``(1 + level) / 2``. Deterministic for a given ``seed``.
    """
    values = np.asarray(values, dtype=float)
    labels = list(groups)
    if values.ndim != 1 or len(values) == 0 or len(values) != len(labels):
        raise ValueError(f"values must be a non-empty 1-D sequence with one group label per value, got "
                         f"{values.shape} values and {len(labels)} labels")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    check_int("n_resamples", n_resamples, minimum=1)
    check_probability("level", level, allow_zero=False)
    if level >= 1:
        raise ValueError(f"level must be below 1, got {level}")
    names = sorted(set(labels), key=str)
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([index[label] for label in labels])
    sums = np.bincount(codes, weights=values, minlength=len(names))
    sizes = np.bincount(codes, minlength=len(names)).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(names), size=(n_resamples, len(names)))
    means = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


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
