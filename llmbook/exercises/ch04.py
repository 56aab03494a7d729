"""Chapter 4's coding exercise: analogies by a sum of cosines (``ex-04-3cosmul``)."""

from __future__ import annotations

import numpy as np

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_3cosmul", "RECORDS"]


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
    need_callable(answer, "analogy_by_sums(vectors, vocab, a, b, c)")
    vocab, vectors = _analogy_cases()
    questions = [tuple(vocab.words[j] for j in np.random.default_rng(i).choice(12, 3, replace=False))
                 for i in range(40)]
    symptoms = {"normalise": 0, "exclude": 0, "other": 0}
    for a, b, c in questions:
        got = call_answer(answer, vectors.copy(), vocab, a, b, c)
        if not isinstance(got, str):
            raise Wrong(f"return the answer word (a str), got {type(got).__name__}")
        if got == _by_sums(vectors, vocab, a, b, c):
            continue
        if got in (a, b, c):
            symptoms["exclude"] += 1
        elif got == _by_sums(vectors, vocab, a, b, c, normalise=False):
            symptoms["normalise"] += 1
        else:
            symptoms["other"] += 1
    if symptoms["exclude"]:
        raise Wrong("your function sometimes answers with one of the question words a, b or c; leave them out "
                    "of the candidates")
    if symptoms["normalise"]:
        raise Wrong("your scores depend on the vectors' lengths: cosines are dot products of unit vectors")
    if symptoms["other"]:
        raise Wrong(f"{symptoms['other']} of {len(questions)} test questions get another word; check the signs "
                    "of the three cosines (+b, +c, -a)")
    return f"{len(questions)} analogy questions on random vectors of different lengths agree."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-04-3cosmul", answer="analogy_by_sums", check=check_3cosmul,
             signature="analogy_by_sums(vectors, vocab, a, b, c)",
             wrong=("_right = analogy_by_sums\n"
                    "analogy_by_sums = lambda vectors, vocab, a, b, c: (  # a and b swapped\n"
                    "    _right(vectors, vocab, b, a, c))")),
)
