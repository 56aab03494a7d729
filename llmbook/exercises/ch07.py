"""Chapter 7's coding exercise: the input positions that cross-attention reads (``ex-07-cross-attention``)."""

from __future__ import annotations

import numpy as np
import torch

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_cross_attention", "RECORDS"]


CROSS_DATES = ((1962, 10, 23), (2001, 1, 5), (1977, 7, 14), (2049, 12, 31), (1950, 2, 1), (2024, 9, 30))


def _cross_maps(model, batch, day) -> torch.Tensor:
    """The cross-attention weights (heads, n_out, n_in) of the first decoder block for one date, where n_out
    counts the written characters and the end token (the positions with a target)."""
    from llmbook.training import IGNORE_INDEX

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
        raise Wrong(f"{what} should return a list of input positions (ints), got {type(got).__name__}")
    got = [p.item() if isinstance(p, torch.Tensor) and p.numel() == 1 else p for p in got]
    if any(isinstance(p, str) for p in got):
        raise Wrong(f"{what} returned characters; return the input positions (ints), which you can then use "
                    "to look up the characters for printing")
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in got):
        raise Wrong(f"{what} should return a list of ints (input positions), got {got!r}")
    return [int(p) for p in got]


def check_cross_attention(answer, model=None, batch=None, **_) -> str:
    """ex-07-cross-attention: ``answer(day)`` returns, for a ``datetime.date``, one input position per output
    character and one for the end token: the input position with the largest cross-attention weight, averaged
    over the heads. Pass ``model=`` (the trained EncoderDecoder) and ``batch=`` (the chapter's ``date_batch``)."""
    from datetime import date

    if isinstance(answer, (list, tuple, torch.Tensor)):
        raise Wrong("expected a function of the date, strongest_inputs(day), not its result: put your code in "
                    "a function so that the check can try it on other dates")
    need_callable(answer, "strongest_inputs(day), a function of a datetime.date")
    if model is None or batch is None:
        raise Wrong('pass the model and the batch function too: check("ex-07-cross-attention", '
                    "strongest_inputs, model=seq2seq, batch=date_batch)")
    if not hasattr(model, "cross_attention_weights") or not callable(batch):
        raise Wrong("model= should be the chapter's EncoderDecoder (seq2seq) and batch= its date_batch function")
    days = [date(*ymd) for ymd in CROSS_DATES]
    maps = [_cross_maps(model, batch, day) for day in days]  # (heads, n_out, n_in) each
    answers = []
    for day in days:
        for block in model.decoder:  # no weights left over from an earlier run
            block.cross_attn.last_weights = None
        try:
            got = call_answer(answer, day)
        except Wrong as wrong:
            if not model.cross_attention_weights():
                raise Wrong(f"{wrong}. There were no cross-attention weights to read: run the model on this "
                            "date's batch with keep_weights=True inside your function, then read them") from None
            raise
        answers.append(_positions(got, f"strongest_inputs({day.isoformat()!r})"))
    if all(got == answers[0] for got in answers):
        raise Wrong(f"your function returns the same positions for {len(days)} different dates: does it run the "
                    "model on the date it is given?")
    for day, heads, got in zip(days, maps, answers, strict=True):
        n_out, n_in = heads.shape[1], heads.shape[2]
        expected = heads.mean(dim=0).argmax(dim=-1).tolist()
        where = f"for {day.isoformat()}"
        if len(got) != n_out:
            if len(got) == n_out - 1:
                raise Wrong(f"{where} expected {n_out} positions, one per written character plus one for the end "
                            f"token, got {n_out - 1}: the end token is missing")
            if len(got) == n_in and n_in != n_out:
                raise Wrong(f"{where} expected {n_out} positions (one per output character), got {n_in}, one "
                            "per input character: take the largest weight along the input positions, the last "
                            "dimension")
            if len(got) > n_out:
                raise Wrong(f"{where} expected {n_out} positions, got {len(got)}: the decoder input runs on into "
                            "the padding; keep only the written characters and the end token")
            raise Wrong(f"{where} expected {n_out} positions (one per written character plus the end token), "
                        f"got {len(got)}")
        if any(not 0 <= p < n_in for p in got):
            raise Wrong(f"{where} a position is outside the input, which has {n_in} characters (0 to {n_in - 1})")
        if got == expected:
            continue
        if any(got == heads[h].argmax(dim=-1).tolist() for h in range(heads.shape[0])):
            raise Wrong(f"{where} your positions are those of a single head; the exercise averages the weights "
                        "of all heads before taking the largest")
        if got == heads.max(dim=0).values.argmax(dim=-1).tolist():
            raise Wrong(f"{where} your positions follow the strongest single head at each step; average over "
                        "the heads instead")
        wrong = sum(g != e for g, e in zip(got, expected, strict=True))
        raise Wrong(f"{where} {wrong} of {n_out} positions differ from the largest mean cross-attention weight: "
                    "are the weights those of this date's own forward pass, with the decoder input of its "
                    "written characters?")
    return f"the strongest input positions agree for {len(CROSS_DATES)} dates."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-07-cross-attention", answer="strongest_inputs", check=check_cross_attention,
             needs={"model": "seq2seq", "batch": "date_batch"},
             signature="strongest_inputs(day) -> input positions",
             wrong=("_right = strongest_inputs\n"
                    "strongest_inputs = lambda day: _right(day)[:-1]  # the end token left out")),
)
