"""Self-checks for the coding exercises: ``check("ex-05-rope", rope_attention)`` says pass, or what is wrong.

A check runs the student's answer on inputs of its own (small random tensors, the book's data) and compares it
with a reference computed here. When the answer is wrong it names the symptom (a wrong shape, the rotation
applied to the values, a gradient that does not stop at the clip, the prompt returned with the text, ...) and
gives a hint, never the answer itself. The checks are used in three places:

- in a student notebook (``make student`` writes the call, commented out, into each answer cell; the table
  :data:`CHECK_CALLS` says how each check is called);
- by the autograder (``make autograde-check``), whose tests call :func:`check` and look at ``.passed``;
- in ``tests/test_checks.py``, which runs every chapter's worked solution (it must pass) and plausible wrong
  answers (each must fail with a helpful message).

The exercises are the coding exercises of chapters 1-11 and one calculation of chapter 2 (see
:data:`CHECK_CALLS`).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["CheckResult", "check", "CHECK_CALLS", "CHECKS"]


class CheckResult:
    """The result of a check: ``passed`` (bool) and ``message`` (str); truthy when it passed."""

    def __init__(self, label: str, passed: bool, message: str):
        self.label, self.passed, self.message = label, bool(passed), message
        self.printed = False  # set by check() once it has printed the verdict

    def _ipython_display_(self) -> None:
        # a notebook cell that ends with check(...) shows the verdict once, not twice
        if not self.printed:
            print(self)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"{self.label}: {'pass' if self.passed else 'not yet'}. {self.message}".rstrip()

    __str__ = __repr__


class _Wrong(Exception):
    """Raised inside a check with the message for the student."""


def _call(function: Callable, *args, **kwargs):
    """Call the student's function, turning an exception into a message about it."""
    try:
        return function(*args, **kwargs)
    except Exception as error:  # the student's code failed: say how, without a traceback
        raise _Wrong(f"calling your function raised {type(error).__name__}: {error}") from None


def _need_callable(answer, what: str) -> None:
    if not callable(answer):
        raise _Wrong(f"expected {what}, a function; got {type(answer).__name__}")


# ------------------------------------------------------------------------------------------------- chapter 1

BERT_LARGE = dict(vocab_size=30522, d_model=1024, n_layers=24, n_ctx=512)


def _bert_large_reference() -> dict:
    from llmbook.params import transformer_params

    return transformer_params(BERT_LARGE["vocab_size"], BERT_LARGE["d_model"], BERT_LARGE["n_layers"],
                              BERT_LARGE["n_ctx"], n_segments=2, embedding_layernorm=True,
                              final_layernorm=False, pooler=True)


def check_bert_large(answer, **_) -> str:
    """ex-01-bert-large: ``answer`` is the parameter count of BERT-large, counted by hand (an int)."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise _Wrong(f"give the count as a number (an int), not a {type(answer).__name__}")
    total = _bert_large_reference()["total"]
    d, n_layers = BERT_LARGE["d_model"], BERT_LARGE["n_layers"]
    missing = total - int(round(float(answer)))
    if missing == 0:
        return f"{total:,} parameters, about {total / 1e6:.0f}M."
    if abs(float(answer) - 340e6) < 1e6 or abs(float(answer) - 345e6) < 1e6:
        raise _Wrong("that is a rounded figure quoted for a model; count the pieces listed in the exercise "
                     "instead and compare with the paper afterwards")
    if abs(missing) == n_layers * 13 * d:
        raise _Wrong("off by exactly L x 13d: look again at the per-block term, not just its d^2 part")
    pieces = (d * d + d, 2 * d, BERT_LARGE["n_ctx"] * d)  # pooler; layer norm or segments; positions
    for size in pieces:
        if missing == size:
            raise _Wrong(f"you are {size:,} parameters short: one piece of the list is missing "
                         f"(go through the exercise's list again, in order)")
        if missing == -size:
            raise _Wrong("you counted one piece twice, or one that BERT-large does not have")
    raise _Wrong(f"your count differs from the formula by {missing:+,} parameters "
                 f"({missing / total:+.2%}); count each piece separately and add them")


# ------------------------------------------------------------------------------------------------- chapter 2

FINE_TUNES = ("Codex", "FLAN", "InstructGPT")


def _history_window() -> tuple[list[dict], list[dict]]:
    from llmbook.history import load_timeline

    sized = [row for row in load_timeline() if row["params"] is not None]
    all_sized = [r for r in sized if 2012 <= r["year"] <= 2022]
    return [r for r in all_sized if not r["event"].startswith(FINE_TUNES)], all_sized


def _months(rows) -> float:
    from llmbook.history import fit_doubling_time

    return fit_doubling_time([r["decimal_year"] for r in rows], [r["params"] for r in rows]).doubling_months


def check_without_gpt3(answer, **_) -> str:
    """ex-02-without-gpt3: ``answer(event)`` returns the doubling time in months of the 2012-2022 base-model
    fit with the model called ``event`` left out."""
    _need_callable(answer, "doubling_without(event) returning months")
    window, all_sized = _history_window()
    full = _months(window)
    worst, worst_gap = None, 0.0
    for row in window:
        expected = _months([r for r in window if r["event"] != row["event"]])
        got = _call(answer, row["event"])
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise _Wrong(f"doubling_without({row['event']!r}) should return a number of months, got "
                         f"{type(got).__name__} (use the fit's .doubling_months)") from None
        if abs(got - full) < 1e-9 and abs(expected - full) > 1e-6:
            raise _Wrong(f"leaving out {row['event']!r} changes nothing in your fit: is the model really "
                         "removed? (compare the names exactly)")
        if abs(got - expected) > 1e-6 and abs(got - expected) > worst_gap:
            worst, worst_gap = row["event"], abs(got - expected)
    if worst is not None:
        fine = [r for r in all_sized if r["event"] != worst]
        if abs(float(_call(answer, worst)) - _months(fine)) < 1e-6:
            raise _Wrong("your fit includes the fine-tuned models (Codex, FLAN, InstructGPT); start from the "
                         "chapter's `window` of base models")
        raise _Wrong(f"without {worst!r} your doubling time is off by {worst_gap:.2f} months; fit log2(params) "
                     "against the decimal year of the remaining base models of 2012-2022 (fit_doubling_time)")
    return f"{len(window)} leave-one-out fits agree with the reference."


def check_extrapolate(answer, **_) -> str:
    """ex-02-extrapolate: ``answer`` is the decimal year in which the 2012-2022 base-model trend reaches
    10**14 parameters."""
    from llmbook.history import fit_doubling_time

    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise _Wrong(f"give the year as a number, not a {type(answer).__name__}")
    window, _ = _history_window()
    fit = fit_doubling_time([r["decimal_year"] for r in window], [r["params"] for r in window])
    expected = (math.log2(1e14) - fit.intercept) / fit.slope
    if abs(float(answer) - expected) < 0.05:
        return f"about {expected:.1f}."
    for name, value in (("log10", 14.0), ("natural log", math.log(1e14))):
        if abs(float(answer) - (value - fit.intercept) / fit.slope) < 0.05:
            raise _Wrong(f"you used the {name} of 10**14, but the fit is a straight line in log2 of the parameters")
    raise _Wrong(f"your year is {float(answer) - expected:+.1f} years away from the trend's: solve "
                 "log2(10**14) = intercept + slope * year with the chapter's fit")


# ------------------------------------------------------------------------------------------------- chapter 3

def check_one_shot(answer, vectors=None, **_) -> str:
    """ex-03-one-shot: ``answer(noun)`` returns the predicted kind; pass ``vectors=`` (the chapter's vectors)."""
    from llmbook.adaptation import KINDS, nouns

    _need_callable(answer, "nearest_kind(noun) returning a kind")
    if vectors is None:
        raise _Wrong('pass the pre-trained vectors too: check("ex-03-one-shot", nearest_kind, vectors=vectors)')
    table = nouns()
    prototypes: dict[str, str] = {}
    for noun, kind, _ in table:
        prototypes.setdefault(kind, noun)
    others = [(noun, kind) for noun, kind, _ in table if noun not in prototypes.values()]
    wrong = 0
    for noun, _ in others:
        got = _call(answer, noun)
        if got not in KINDS:
            raise _Wrong(f"nearest_kind({noun!r}) returned {got!r}; it should return a kind, one of {list(KINDS)}")
        expected = max(prototypes, key=lambda k: vectors.similarity(noun, prototypes[k]))
        wrong += got != expected
    if wrong:
        raise _Wrong(f"{wrong} of {len(others)} predictions differ from the nearest labelled noun: use one "
                     "labelled noun per kind (the first of its kind in nouns()) and the largest cosine "
                     "similarity")
    return f"all {len(others)} predictions agree with the nearest-prototype rule."


# ------------------------------------------------------------------------------------------------- chapter 4

def _analogy_cases():
    from llmbook.embeddings import Vocab

    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(12)]
    vocab = Vocab(words=words, counts=np.arange(12, 0, -1), index={w: i for i, w in enumerate(words)})
    vectors = rng.normal(size=(12, 5)) * rng.uniform(0.2, 5.0, size=(12, 1))  # very different lengths
    return vocab, vectors


def _by_sums(vectors, vocab, a, b, c, normalise=True, exclude=True):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True) if normalise else vectors
    ia, ib, ic = vocab.id(a), vocab.id(b), vocab.id(c)
    scores = unit @ unit[ib] + unit @ unit[ic] - unit @ unit[ia]
    if exclude:
        scores[[ia, ib, ic]] = -np.inf
    return vocab.words[int(np.argmax(scores))]


def check_3cosmul(answer, **_) -> str:
    """ex-04-3cosmul: ``answer(vectors, vocab, a, b, c)`` returns the word d that maximises
    cos(d, b) + cos(d, c) - cos(d, a), the question words excluded."""
    _need_callable(answer, "analogy_by_sums(vectors, vocab, a, b, c)")
    vocab, vectors = _analogy_cases()
    questions = [tuple(vocab.words[j] for j in np.random.default_rng(i).choice(12, 3, replace=False))
                 for i in range(40)]
    symptoms = {"normalise": 0, "exclude": 0, "other": 0}
    for a, b, c in questions:
        got = _call(answer, vectors.copy(), vocab, a, b, c)
        if not isinstance(got, str):
            raise _Wrong(f"return the answer word (a str), got {type(got).__name__}")
        if got == _by_sums(vectors, vocab, a, b, c):
            continue
        if got in (a, b, c):
            symptoms["exclude"] += 1
        elif got == _by_sums(vectors, vocab, a, b, c, normalise=False):
            symptoms["normalise"] += 1
        else:
            symptoms["other"] += 1
    if symptoms["exclude"]:
        raise _Wrong("your function sometimes answers with one of the question words a, b or c; leave them out "
                     "of the candidates")
    if symptoms["normalise"]:
        raise _Wrong("your scores depend on the vectors' lengths: cosines are dot products of unit vectors")
    if symptoms["other"]:
        raise _Wrong(f"{symptoms['other']} of {len(questions)} test questions get another word; check the signs "
                     "of the three cosines (+b, +c, -a)")
    return f"{len(questions)} analogy questions on random vectors of different lengths agree."


# ------------------------------------------------------------------------------------------------- chapter 5

def _attention_inputs(seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 6, 8, generator=g) for _ in range(3)]


def check_rope(answer, **_) -> str:
    """ex-05-rope: ``answer(queries, keys, values, mask)`` (optionally ``offset=``) returns (outputs, weights)
    of attention with RoPE applied to the queries and the keys."""
    from llmbook.transformer import apply_rope, causal_mask
    from llmbook.transformer import scaled_dot_product_attention as sdpa

    _need_callable(answer, "rope_attention(queries, keys, values, mask)")
    q, k, v = _attention_inputs()
    mask = causal_mask(6)
    got = _call(answer, q.clone(), k.clone(), v.clone(), mask)
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        raise _Wrong("return (outputs, weights), two tensors, as scaled_dot_product_attention does")
    outputs, weights = got
    if tuple(outputs.shape) != (2, 6, 8) or tuple(weights.shape) != (2, 6, 6):
        raise _Wrong(f"for inputs of shape (2, 6, 8) expected outputs (2, 6, 8) and weights (2, 6, 6), got "
                     f"{tuple(outputs.shape)} and {tuple(weights.shape)}")
    ref_out, ref_w = sdpa(apply_rope(q), apply_rope(k), v, mask)
    close = dict(atol=1e-5, rtol=1e-4)
    if not torch.allclose(weights, ref_w, **close):
        if torch.allclose(weights, sdpa(q, k, v, mask)[1], **close):
            raise _Wrong("your weights are those of attention without positions: rotate before the scores")
        if torch.allclose(weights, sdpa(apply_rope(q), k, v, mask)[1], **close) or \
                torch.allclose(weights, sdpa(q, apply_rope(k), v, mask)[1], **close):
            raise _Wrong("only one of queries and keys is rotated; RoPE needs both, so that the score depends "
                         "on the offset between positions")
        if torch.allclose(weights, sdpa(apply_rope(q), apply_rope(k), v)[1], **close):
            raise _Wrong("the mask is not used: later positions get weight")
        if not torch.allclose(weights.sum(-1), torch.ones(2, 6), atol=1e-4):
            raise _Wrong("the rows of your weights do not sum to 1: apply the mask to the scores, before the "
                         "softmax")
        if (weights.triu(1).abs() > 1e-6).any():
            raise _Wrong("some weights above the diagonal are not zero: apply the mask before the softmax")
        raise _Wrong("the attention weights differ from RoPE attention's")
    if not torch.allclose(outputs, ref_out, **close):
        if torch.allclose(outputs, ref_w @ apply_rope(v), **close):
            raise _Wrong("the values are rotated too; RoPE rotates only the queries and the keys")
        raise _Wrong("the weights are right but the outputs are not: they should be weights @ values")
    if "offset" in inspect.signature(answer).parameters:
        shifted = _call(answer, q, k, v, mask, offset=7)
        if not torch.allclose(shifted[1], ref_w, **close):
            raise _Wrong("with offset=7 the weights change: pass the offset to apply_rope for both queries and keys")
    return "outputs and weights agree with RoPE attention."


# ------------------------------------------------------------------------------------------------- chapter 6

def _stationary(table: torch.Tensor) -> torch.Tensor:
    p = torch.full((table.shape[0],), 1.0 / table.shape[0], dtype=torch.float64)
    for _ in range(200):
        p = p @ table
    return p


def check_bigram_generator(answer, table=None, tokenizer=None, **_) -> str:
    """ex-06-bigram-generator: ``answer(prompt, n_chars, generator)`` returns ``n_chars`` new characters sampled
    from the bigram table; pass ``table=`` (the (V, V) bigram probabilities) and ``tokenizer=``."""
    _need_callable(answer, "bigram_generate(prompt, n_chars, generator)")
    if table is None or tokenizer is None:
        raise _Wrong('pass the table and tokenizer too: check("ex-06-bigram-generator", bigram_generate, '
                     "table=bigram_table, tokenizer=tokenizer)")
    table = torch.as_tensor(table, dtype=torch.float64)
    prompt, n = "The government ", 3000
    texts = [_call(answer, prompt, n, torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    if not all(isinstance(t, str) for t in texts):
        raise _Wrong(f"return the generated text as a str, got {type(texts[0]).__name__}")
    if len(texts[0]) == n + len(prompt) and texts[0].startswith(prompt):
        raise _Wrong("return only the new characters, without the prompt")
    if len(texts[0]) != n:
        raise _Wrong(f"asked for {n} characters, got {len(texts[0])}")
    if texts[0] == texts[1]:
        raise _Wrong("two different generators give the same text: sample (torch.multinomial with the "
                     "generator) instead of taking the most probable character")
    ids = tokenizer.encode(prompt[-1] + texts[0])
    logp = table[torch.tensor(ids[:-1]), torch.tensor(ids[1:])].log().mean().item()
    expected = (_stationary(table) * (table * table.log()).sum(1)).sum().item()
    if abs(logp - expected) > 0.25:
        raise _Wrong(f"your text is {'less' if logp < expected else 'more'} likely under the bigram table than "
                     f"samples from it should be (mean log-probability {logp:.2f} against about {expected:.2f}): "
                     "does each character come from the row of the character just before it?")
    return f"{n} characters with the statistics of the bigram table."


# ------------------------------------------------------------------------------------------------- chapter 7

CROSS_DATES = ((1962, 10, 23), (2001, 1, 5), (1977, 7, 14), (2049, 12, 31), (1950, 2, 1), (2024, 9, 30))


def _cross_maps(model, batch, day) -> torch.Tensor:
    """The cross-attention weights (heads, n_out, n_in) of the first decoder block for one date, where n_out
    counts the written characters and the end token (the positions with a target)."""
    from llmbook.architectures import IGNORE_INDEX

    source, decoder_in, targets = batch([day])
    n_out = int((targets[0] != IGNORE_INDEX).sum())
    with torch.no_grad():
        model(source, decoder_in[:, :n_out], keep_weights=True)
    maps = model.cross_attention_weights()[0][0]
    for block in model.decoder:  # forget them, so that an answer cannot read the reference's weights
        block.cross_attn.last_weights = None
    return maps


def _positions(got, what: str) -> list[int]:
    if isinstance(got, (torch.Tensor, np.ndarray)):
        got = got.tolist()
    if not isinstance(got, (list, tuple)):
        raise _Wrong(f"{what} should return a list of input positions (ints), got {type(got).__name__}")
    got = [p.item() if isinstance(p, torch.Tensor) and p.numel() == 1 else p for p in got]
    if any(isinstance(p, str) for p in got):
        raise _Wrong(f"{what} returned characters; return the input positions (ints), which you can then use "
                     "to look up the characters for printing")
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in got):
        raise _Wrong(f"{what} should return a list of ints (input positions), got {got!r}")
    return [int(p) for p in got]


def check_cross_attention(answer, model=None, batch=None, **_) -> str:
    """ex-07-cross-attention: ``answer(day)`` returns, for a ``datetime.date``, one input position per output
    character and one for the end token: the input position with the largest cross-attention weight, averaged
    over the heads. Pass ``model=`` (the trained EncoderDecoder) and ``batch=`` (the chapter's ``date_batch``)."""
    from datetime import date

    if isinstance(answer, (list, tuple, torch.Tensor)):
        raise _Wrong("expected a function of the date, strongest_inputs(day), not its result: put your code in "
                     "a function so that the check can try it on other dates")
    _need_callable(answer, "strongest_inputs(day), a function of a datetime.date")
    if model is None or batch is None:
        raise _Wrong('pass the model and the batch function too: check("ex-07-cross-attention", '
                     "strongest_inputs, model=seq2seq, batch=date_batch)")
    if not hasattr(model, "cross_attention_weights") or not callable(batch):
        raise _Wrong("model= should be the chapter's EncoderDecoder (seq2seq) and batch= its date_batch function")
    days = [date(*ymd) for ymd in CROSS_DATES]
    maps = [_cross_maps(model, batch, day) for day in days]  # (heads, n_out, n_in) each
    answers = []
    for day in days:
        for block in model.decoder:  # no weights left over from an earlier run
            block.cross_attn.last_weights = None
        try:
            got = _call(answer, day)
        except _Wrong as wrong:
            if not model.cross_attention_weights():
                raise _Wrong(f"{wrong}. There were no cross-attention weights to read: run the model on this "
                             "date's batch with keep_weights=True inside your function, then read them") from None
            raise
        answers.append(_positions(got, f"strongest_inputs({day.isoformat()!r})"))
    if all(got == answers[0] for got in answers):
        raise _Wrong(f"your function returns the same positions for {len(days)} different dates: does it run the "
                     "model on the date it is given?")
    for day, heads, got in zip(days, maps, answers, strict=True):
        n_out, n_in = heads.shape[1], heads.shape[2]
        expected = heads.mean(dim=0).argmax(dim=-1).tolist()
        where = f"for {day.isoformat()}"
        if len(got) != n_out:
            if len(got) == n_out - 1:
                raise _Wrong(f"{where} expected {n_out} positions, one per written character plus one for the end "
                             f"token, got {n_out - 1}: the end token is missing")
            if len(got) == n_in and n_in != n_out:
                raise _Wrong(f"{where} expected {n_out} positions (one per output character), got {n_in}, one "
                             "per input character: take the largest weight along the input positions, the last "
                             "dimension")
            if len(got) > n_out:
                raise _Wrong(f"{where} expected {n_out} positions, got {len(got)}: the decoder input runs on into "
                             "the padding; keep only the written characters and the end token")
            raise _Wrong(f"{where} expected {n_out} positions (one per written character plus the end token), "
                         f"got {len(got)}")
        if any(not 0 <= p < n_in for p in got):
            raise _Wrong(f"{where} a position is outside the input, which has {n_in} characters (0 to {n_in - 1})")
        if got == expected:
            continue
        if any(got == heads[h].argmax(dim=-1).tolist() for h in range(heads.shape[0])):
            raise _Wrong(f"{where} your positions are those of a single head; the exercise averages the weights "
                         "of all heads before taking the largest")
        if got == heads.max(dim=0).values.argmax(dim=-1).tolist():
            raise _Wrong(f"{where} your positions follow the strongest single head at each step; average over "
                         "the heads instead")
        wrong = sum(g != e for g, e in zip(got, expected, strict=True))
        raise _Wrong(f"{where} {wrong} of {n_out} positions differ from the largest mean cross-attention weight: "
                     "are the weights those of this date's own forward pass, with the decoder input of its "
                     "written characters?")
    return f"the strongest input positions agree for {len(CROSS_DATES)} dates."


# ------------------------------------------------------------------------------------------------- chapter 8

# (a, alpha, c, seed, noise) of synthetic families of six models, with losses near the chapter's; chosen so that
# every wrong answer below lands at least 3e-3 nats from the right prediction and from every other wrong answer
REFIT_FAMILIES = ((4.2, 0.26, 1.83, 13, 0.02), (6.0, 0.30, 1.60, 26, 0.015), (3.0, 0.20, 2.00, 26, 0.02))


def _refit_family(a: float, alpha: float, c: float, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n = np.geomspace(3e3, 5e5, 6).round()
    return n, a * n ** -alpha + c + np.random.default_rng(seed).normal(0.0, noise, size=6)


def _refit_candidates(n: np.ndarray, loss: np.ndarray, offset: bool) -> dict[str, float]:
    """The right prediction ("right") and what plausible mistakes return, keyed by the message for each."""
    from llmbook.scaling import fit_power_law

    def fitted(sizes, losses, offset_on=offset, at=n[-1]):
        return float(fit_power_law(sizes, losses, fit_offset=offset_on).predict(at))

    right = fitted(n[:-1], loss[:-1])
    candidates = {
        "right": right,
        "you return the measured loss of the largest model; return the loss that the fit predicts for it, then "
        "compare the two": float(loss[-1]),
        "you return the prediction's error; return the predicted loss itself": right - float(loss[-1]),
        "your prediction matches a fit that includes the largest model: leave it out of the fit, so that its "
        "loss is a real test of the law": fitted(n, loss),
        "you left out the smallest model; fit the five smaller models and predict the largest": fitted(n[1:], loss[1:]),
        "your prediction is that of the other kind of fit: pass fit_offset on to the fit (False means c = 0, a "
        "straight line on log-log axes)": fitted(n[:-1], loss[:-1], offset_on=not offset),
    }
    for size in n[:-1]:
        candidates[f"you predict the loss at N = {size:,.0f}, a smaller model; evaluate the fit at the largest "
                   "model's N"] = fitted(n[:-1], loss[:-1], at=size)
    return candidates


def check_refit(answer, **_) -> str:
    """ex-08-refit: ``answer(n, loss, fit_offset)`` fits L(N) = a N^-alpha + c (c = 0 when ``fit_offset`` is
    False) to all models but the largest and returns the predicted loss of the largest (a number). ``n`` and
    ``loss`` are NumPy arrays sorted by size, as in the chapter."""
    from llmbook.scaling import PowerLawFit, fit_power_law

    _need_callable(answer, "predict_largest(n, loss, fit_offset) returning a predicted loss")
    tolerance = 1e-3  # nats: a fit by hand with a grid over c, as in the chapter, lands within 1e-4
    for family in REFIT_FAMILIES:
        n, loss = _refit_family(*family)
        for offset in (True, False):
            got = _call(answer, n.copy(), loss.copy(), offset)
            if isinstance(got, PowerLawFit):
                raise _Wrong("your function returns the fit; return the predicted loss of the largest model (a "
                             "number), which the fit's predict gives")
            try:
                got = float(np.asarray(got, dtype=float).reshape(()))
            except (TypeError, ValueError):
                raise _Wrong(f"return the predicted loss as one number, got {type(got).__name__}") from None
            if abs(got - float(fit_power_law(n[:-1], loss[:-1], fit_offset=offset).predict(n[-1]))) <= tolerance:
                continue
            candidates = _refit_candidates(n, loss, offset)
            closest = min(candidates, key=lambda message: abs(candidates[message] - got))
            where = f"with fit_offset={offset}"
            if abs(got - candidates[closest]) <= tolerance:
                raise _Wrong(f"{where} {closest}")
            raise _Wrong(f"{where} your prediction {got:.3f} is {got - candidates['right']:+.3f} nats away from "
                         "that of a least-squares fit of the law to the five smaller models (fit_power_law)")
    return f"predictions with and without the floor agree for {len(REFIT_FAMILIES)} families of six models."


# ------------------------------------------------------------------------------------------------ chapter 9

LORA_SHAPES = [(64, 192), (64, 64), (64, 256), (256, 64)]  # qkv, out, up, down of the book's GPT (d = 64)


def check_lora_rank(answer, **_) -> str:
    """ex-09-lora-rank: ``answer(rank)`` returns the trainable parameters LoRA adds to the chapter's GPT when
    qkv, out, up and down of both blocks are adapted."""
    _need_callable(answer, "lora_count(rank)")
    for rank in (1, 2, 4, 8, 16):
        expected = 2 * sum(rank * (d_in + d_out) for d_in, d_out in LORA_SHAPES)
        got = _call(answer, rank)
        if got == expected:
            continue
        if got == expected // 2:
            raise _Wrong(f"rank {rank}: {got:,} is half the count; the model has two blocks")
        if got == 2 * sum(rank * d_in for d_in, _ in LORA_SHAPES) or \
                got == 2 * sum(rank * d_out for _, d_out in LORA_SHAPES):
            raise _Wrong(f"rank {rank}: a LoRA update has two factors, A (r x d_in) and B (d_out x r)")
        raise _Wrong(f"rank {rank}: got {got}; compare with count_parameters(model, trainable_only=True) "
                     "after add_lora")
    return "the counts for ranks 1 to 16 agree with add_lora's."


# ------------------------------------------------------------------------------------------------ chapter 10

def _clip_reference(log_ratio: float, advantage: float) -> tuple[float, float]:
    ratio = math.exp(log_ratio)
    clipped = min(max(ratio, 0.8), 1.2)
    objective = min(ratio * advantage, clipped * advantage)
    unclipped_active = ratio * advantage <= clipped * advantage
    return objective, (ratio * advantage if unclipped_active else 0.0)


def check_clip(answer, **_) -> str:
    """ex-10-clip: ``answer(log_ratio, advantage)`` returns (objective, gradient) of PPO's clipped objective
    for one token (clip range 0.8 to 1.2), the gradient taken with respect to log pi_theta(y_t)."""
    _need_callable(answer, "clipped(log_ratio, advantage) returning (objective, gradient)")
    for advantage in (1.0, -1.0, 2.0):
        for log_ratio in (-0.5, -0.1, 0.0, 0.1, 0.3, 0.5):
            got = _call(answer, log_ratio, advantage)
            try:
                objective, gradient = (float(x) for x in got)
            except (TypeError, ValueError):
                raise _Wrong("return two numbers, (objective, gradient)") from None
            ref_obj, ref_grad = _clip_reference(log_ratio, advantage)
            where = f"at log ratio {log_ratio:+.1f} and A = {advantage:+.0f}"
            if abs(objective - ref_obj) > 1e-4:
                ratio = math.exp(log_ratio)
                if abs(objective - max(ratio * advantage, min(max(ratio, 0.8), 1.2) * advantage)) < 1e-4:
                    raise _Wrong(f"{where} the objective is too large: PPO takes the smaller of the two terms")
                raise _Wrong(f"{where} the objective {objective:+.3f} is wrong; ratio = exp(log ratio)")
            if abs(gradient - ref_grad) > 1e-4:
                if abs(gradient - advantage) < 1e-4 and ref_grad != 0:
                    raise _Wrong(f"{where} your gradient is A: that is the derivative by the ratio, but the "
                                 "exercise asks for the derivative by log pi (the chain rule adds a factor)")
                if ref_grad == 0:
                    raise _Wrong(f"{where} the gradient should vanish: which term does the minimum pick, and "
                                 "does it depend on the policy there?")
                raise _Wrong(f"{where} the gradient {gradient:+.3f} is wrong; use torch.autograd on the "
                             "objective as a function of log pi")
    return "objective and gradient agree at 18 points, inside and outside the clip range."


# ------------------------------------------------------------------------------------------------ chapter 11

def check_groups(answer, **_) -> str:
    """ex-11-groups: ``answer(weight, bits, group)`` returns the weight quantised in groups of ``group``
    consecutive weights per row (each group with its own scale) and dequantised, with the weight's shape.
    Tried at three settings (bits, group size, shape), so an answer that ignores ``bits`` or ``group`` fails."""
    from llmbook.inference import dequantise, quantise_per_channel

    _need_callable(answer, "quantise_groups(weight, bits, group)")
    g = torch.Generator().manual_seed(11)
    for bits, group, (rows, cols) in ((4, 8, (6, 32)), (3, 16, (4, 64)), (4, 64, (3, 256))):
        weight = torch.randn(rows, cols, generator=g)
        weight[0, 3] = 8.0  # one large weight: per-row scales suffer, groups do not
        where = f"with bits={bits}, group={group} and a {rows} x {cols} weight"
        got = _call(answer, weight.clone(), bits, group)
        if not isinstance(got, torch.Tensor):
            raise _Wrong(f"return the de-quantised weight as a tensor, got {type(got).__name__}")
        if tuple(got.shape) != (rows, cols):
            raise _Wrong(f"{where}: return a tensor with the weight's shape, got {tuple(got.shape)}: "
                         "reshape back")
        expected = dequantise(*quantise_per_channel(weight.reshape(-1, group), bits)).reshape(rows, cols)
        if torch.allclose(got, expected, atol=1e-6):
            continue
        if torch.allclose(got, dequantise(*quantise_per_channel(weight, bits)), atol=1e-6):
            raise _Wrong(f"{where}: this is per-channel quantisation of whole rows; each group needs its own "
                         "scale")
        by_columns = quantise_per_channel(weight.T.reshape(-1, group), bits)
        if torch.allclose(got, dequantise(*by_columns).reshape(cols, rows).T, atol=1e-6):
            raise _Wrong(f"{where}: your groups run down the columns; group consecutive weights of a row")
        raise _Wrong(f"{where}: the result differs from grouped quantisation; does it use the bits and the "
                     "group size it is given, and does every group of consecutive weights get its own scale?")
    return "the grouped weights agree with the reference at three settings of bits and group size."


CHECKS: dict[str, Callable[..., str]] = {
    "ex-01-bert-large": check_bert_large,
    "ex-02-without-gpt3": check_without_gpt3,
    "ex-02-extrapolate": check_extrapolate,
    "ex-03-one-shot": check_one_shot,
    "ex-04-3cosmul": check_3cosmul,
    "ex-05-rope": check_rope,
    "ex-06-bigram-generator": check_bigram_generator,
    "ex-07-cross-attention": check_cross_attention,
    "ex-08-refit": check_refit,
    "ex-09-lora-rank": check_lora_rank,
    "ex-10-clip": check_clip,
    "ex-11-groups": check_groups,
}
"""Exercise label -> check function (it returns a message when the answer passes and raises otherwise)."""

CHECK_CALLS: dict[str, str] = {
    "ex-01-bert-large": 'check("ex-01-bert-large", by_hand)  # by_hand: your count, an int',
    "ex-02-without-gpt3": 'check("ex-02-without-gpt3", doubling_without)  # doubling_without(event) -> months',
    "ex-02-extrapolate": 'check("ex-02-extrapolate", target_year)  # the year the trend reaches 1e14',
    "ex-03-one-shot": 'check("ex-03-one-shot", nearest_kind, vectors=vectors)  # nearest_kind(noun) -> kind',
    "ex-04-3cosmul": 'check("ex-04-3cosmul", analogy_by_sums)  # analogy_by_sums(vectors, vocab, a, b, c)',
    "ex-05-rope": 'check("ex-05-rope", rope_attention)  # rope_attention(queries, keys, values, mask)',
    "ex-06-bigram-generator": ('check("ex-06-bigram-generator", bigram_generate, table=bigram_table, '
                               "tokenizer=tokenizer)"),
    "ex-07-cross-attention": ('check("ex-07-cross-attention", strongest_inputs, model=seq2seq, batch=date_batch)'
                              "  # strongest_inputs(day) -> input positions"),
    "ex-08-refit": 'check("ex-08-refit", predict_largest)  # predict_largest(n, loss, fit_offset) -> predicted loss',
    "ex-09-lora-rank": 'check("ex-09-lora-rank", lora_count)  # lora_count(rank) -> trainable parameters',
    "ex-10-clip": 'check("ex-10-clip", clipped)  # clipped(log_ratio, advantage) -> (objective, gradient)',
    "ex-11-groups": 'check("ex-11-groups", quantise_groups)  # quantise_groups(weight, bits, group)',
}
"""Exercise label -> the call a student writes (``make student`` puts it, commented out, in the answer cell)."""


def check(label: str, answer, *, quiet: bool = False, **context) -> CheckResult:
    """Check a student's answer to the coding exercise ``label`` and print the verdict.

    ``answer`` is what the exercise asks for (usually a function; see :data:`CHECK_CALLS` for each exercise);
    ``context`` passes objects from the notebook that a check needs (e.g. ``vectors=``). Returns a
    :class:`CheckResult`, truthy when the answer passes; prints it unless ``quiet``. Raises KeyError for an
    unknown label (listing the known ones) and TypeError for a label that is not a string.
    """
    if not isinstance(label, str):
        raise TypeError(f"label must be an exercise label such as 'ex-05-rope', got {type(label).__name__}")
    if label not in CHECKS:
        raise KeyError(f"no check for {label!r}; checks exist for: {', '.join(sorted(CHECKS))}")
    try:
        result = CheckResult(label, True, CHECKS[label](answer, **context))
    except _Wrong as wrong:
        result = CheckResult(label, False, str(wrong))
    if not quiet:
        print(result)
        result.printed = True
    return result
