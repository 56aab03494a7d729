"""Chapter 1's coding exercise: BERT-large's parameters counted by hand (``ex-01-bert-large``).

The reference count is :func:`llmbook.params.bert_params` for BERT-large's size in
:data:`llmbook.params.BERT_SIZES` (its vocabulary and positions are ``bert_params``'s defaults).
"""

from __future__ import annotations

import numpy as np

from llmbook.exercises.record import Exercise, Wrong

__all__ = ["check_bert_large", "RECORDS"]


def _bert_large() -> dict:
    """BERT-large's sizes and parameter count: layers and hidden size from ``BERT_SIZES``, the vocabulary and the
    positions from ``bert_params``'s defaults (BERT's, for both sizes)."""
    import inspect

    from llmbook.params import BERT_SIZES, bert_params

    size = BERT_SIZES["BERT-large"]
    defaults = inspect.signature(bert_params).parameters
    return {"d_model": size["d_model"], "n_layers": size["n_layers"], "n_ctx": defaults["n_ctx"].default,
            "total": bert_params(size["n_layers"], size["d_model"])}


def check_bert_large(answer, **_) -> str:
    """ex-01-bert-large: ``answer`` is the parameter count of BERT-large, counted by hand (an int)."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float, np.integer, np.floating)):
        raise Wrong(f"give the count as a number (an int), not a {type(answer).__name__}")
    bert = _bert_large()
    total, d, n_layers = bert["total"], bert["d_model"], bert["n_layers"]
    missing = total - int(round(float(answer)))
    if missing == 0:
        return f"{total:,} parameters, about {total / 1e6:.0f}M."
    if abs(float(answer) - 340e6) < 1e6 or abs(float(answer) - 345e6) < 1e6:
        raise Wrong("that is a rounded figure quoted for a model; count the pieces listed in the exercise "
                    "instead and compare with the paper afterwards")
    if abs(missing) == n_layers * 13 * d:
        raise Wrong("off by exactly L x 13d: look again at the per-block term, not just its d^2 part")
    pieces = (d * d + d, 2 * d, bert["n_ctx"] * d)  # pooler; layer norm or segments; positions
    for size in pieces:
        if missing == size:
            raise Wrong(f"you are {size:,} parameters short: one piece of the list is missing "
                        f"(go through the exercise's list again, in order)")
        if missing == -size:
            raise Wrong("you counted one piece twice, or one that BERT-large does not have")
    raise Wrong(f"your count differs from the formula by {missing:+,} parameters "
                f"({missing / total:+.2%}); count each piece separately and add them")


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-01-bert-large", answer="by_hand", check=check_bert_large,
             signature="by_hand: your count, an int",
             wrong="by_hand = by_hand - (d**2 + d)  # forgot the pooler"),
)
