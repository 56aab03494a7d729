"""Chapter 3's coding exercise: one-shot classification by the nearest labelled noun (``ex-03-one-shot``)."""

from __future__ import annotations

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_one_shot", "RECORDS"]


def check_one_shot(answer, vectors=None, **_) -> str:
    """ex-03-one-shot: ``answer(noun)`` returns the predicted kind; pass ``vectors=`` (the chapter's vectors)."""
    from llmbook.adaptation import KINDS, nouns

    need_callable(answer, "nearest_kind(noun) returning a kind")
    if vectors is None:
        raise Wrong('pass the pre-trained vectors too: check("ex-03-one-shot", nearest_kind, vectors=vectors)')
    table = nouns()
    prototypes: dict[str, str] = {}
    for noun, kind, _ in table:
        prototypes.setdefault(kind, noun)
    others = [(noun, kind) for noun, kind, _ in table if noun not in prototypes.values()]
    wrong = 0
    for noun, _ in others:
        got = call_answer(answer, noun)
        if got not in KINDS:
            raise Wrong(f"nearest_kind({noun!r}) returned {got!r}; it should return a kind, one of {list(KINDS)}")
        expected = max(prototypes, key=lambda k: vectors.similarity(noun, prototypes[k]))
        wrong += got != expected
    if wrong:
        raise Wrong(f"{wrong} of {len(others)} predictions differ from the nearest labelled noun: use one "
                    "labelled noun per kind (the first of its kind in nouns()) and the largest cosine "
                    "similarity")
    return f"all {len(others)} predictions agree with the nearest-prototype rule."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-03-one-shot", answer="nearest_kind", check=check_one_shot, needs={"vectors": "vectors"},
             signature="nearest_kind(noun) -> kind",
             wrong=("nearest_kind = lambda noun: min(  # the least similar prototype\n"
                    "    prototypes, key=lambda k: vectors.similarity(noun, prototypes[k]))")),
)
