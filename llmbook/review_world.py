"""The toy world of chapter 10: prompts that ask for a review, demonstrations written by code, a labeller.

Chapter 10 (:mod:`llmbook.rlhf`) aligns a small model to a taste that only a simulated labeller knows; this
module is that world, with no training in it:

- a prompt ``"| review film :"`` (:func:`prompt_text`) asks for a review of a film, a meal or a hotel
  (:data:`TOPICS`), honest (``review``), kind (``praise``) or harsh (``criticise``) (:data:`TONES`);
- an answer is one or two clauses such as ``"the plot was superb but the cast was dull ."``;
  :func:`demonstration` and :func:`demonstrations` write such answers by code, for supervised fine-tuning;
- :func:`world_tokenizer` has one token per word of the world (a :class:`llmbook.tokenizers.WordTokenizer`) and
  :func:`encode_examples` pads encoded texts with end marks;
- the labeller's hidden score (:func:`hidden_score`) adds the values of the adjectives (:data:`POSITIVE`,
  :data:`NEGATIVE`; ``superb`` is its favourite), charges 2 for every repeated word, and gives an answer that is
  not a well-formed review (:func:`is_review`) the score of an unhelpful one. The :class:`Labeller`'s choices
  between two answers are noisy. A reward model sees only those choices.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch

from llmbook.tokenizers import WordTokenizer
from llmbook.utils import check_int, check_positive, check_probability

__all__ = [
    "TOPICS", "POSITIVE", "NEGATIVE", "TONES", "START", "END", "world_tokenizer", "prompt_text", "demonstration",
    "demonstrations", "encode_examples", "is_review", "hidden_score", "Labeller",
]

#: What can be reviewed, and the parts of each thing a review talks about.
TOPICS = {
    "film": ("plot", "cast", "music", "ending"),
    "meal": ("soup", "bread", "sauce", "dessert"),
    "hotel": ("room", "staff", "view", "breakfast"),
}
#: The labeller's hidden value of each positive adjective: ``superb`` is its favourite, the others count 1.
POSITIVE = {"superb": 2.0, "great": 1.0, "lovely": 1.0, "charming": 1.0, "fine": 1.0}
#: The negative adjectives and the labeller's (hidden) values of them: ``awful`` is the worst.
NEGATIVE = {"awful": -2.0, "dull": -1.0, "poor": -1.0, "weak": -1.0, "bland": -1.0}
#: The instruction words that open a prompt. "review" asks for an honest review, "praise" for a kind one and
#: "criticise" for a harsh one.
TONES = ("review", "praise", "criticise")
#: The token that opens every prompt.
START = "|"
#: The token that ends every answer.
END = "."
_FILLER = ("the", "was", "and", "but", ":")


def world_tokenizer() -> WordTokenizer:
    """The word tokenizer of the toy world: start and end marks, topics, tones, nouns, adjectives, fillers."""
    nouns = [n for parts in TOPICS.values() for n in parts]
    return WordTokenizer([START, END, *TOPICS, *TONES, *nouns, *POSITIVE, *NEGATIVE, *_FILLER])


def prompt_text(topic: str, tone: str = "review") -> str:
    """The prompt (4 tokens) asking for a review of ``topic``, e.g. ``"| review film :"``."""
    if topic not in TOPICS:
        raise ValueError(f"topic must be one of {tuple(TOPICS)}, got {topic!r}")
    if tone not in TONES:
        raise ValueError(f"tone must be one of {TONES}, got {tone!r}")
    return f"{START} {tone} {topic} :"


def demonstration(rng, topic: str, tone: str = "review") -> str:
    """One demonstration answer (a review of ``topic``) written by code, ending with ``" ."``.

    ``rng`` is a ``random.Random`` instance that makes every choice (so a seeded one gives the same answer).

    Two clauses "the NOUN was ADJECTIVE", joined by "and" (same sentiment) or "but" (opposite sentiment), with
    two different nouns and two different adjectives. For ``"review"`` an
    adjective is positive or negative with equal chance; ``"praise"`` makes it positive and ``"criticise"``
    negative 90 % of the time.
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    prompt_text(topic, tone)  # checks topic and tone
    nouns = rng.sample(TOPICS[topic], 2)
    p_positive = {"review": 0.5, "praise": 0.9, "criticise": 0.1}[tone]
    unused = {True: list(POSITIVE), False: list(NEGATIVE)}
    words, previous = [], None
    for noun in nouns:
        positive = rng.random() < p_positive
        adjective = unused[positive].pop(rng.randrange(len(unused[positive])))
        if previous is not None:
            words.append("and" if positive == previous else "but")
        words += ["the", noun, "was", adjective]
        previous = positive
    return " ".join(words + [END])


def demonstrations(n: int, seed: int = 0, tone_fraction: float = 0.2) -> list[str]:
    """``n`` demonstrations, each ``prompt + " " + answer``, with topics drawn at random.

    A fraction ``tone_fraction`` of the prompts asks for praise or criticism (equally often); the others ask
    for a plain review. Deterministic for a given ``seed``.
    """
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    check_probability("tone_fraction", tone_fraction)
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        topic = rng.choice(tuple(TOPICS))
        tone = rng.choice(TONES[1:]) if rng.random() < tone_fraction else "review"
        texts.append(f"{prompt_text(topic, tone)} {demonstration(rng, topic, tone)}")
    return texts


def encode_examples(tokenizer: WordTokenizer, texts: Sequence[str], length: int) -> torch.Tensor:
    """Token ids of ``texts`` (prompt + answer), padded with end marks to ``length``: (N, length).

    Raises ValueError if a text is longer than ``length`` tokens.
    """
    check_int("length", length, minimum=2)
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    rows = [tokenizer.encode(t) for t in texts]
    too_long = [len(r) for r in rows if len(r) > length]
    if too_long:
        raise ValueError(f"a text has {max(too_long)} tokens, more than length={length}")
    end_id = tokenizer.stoi[END]
    return torch.tensor([r + [end_id] * (length - len(r)) for r in rows])


def _words(response) -> list[str]:
    if isinstance(response, str):
        return response.split()
    if isinstance(response, (list, tuple)) and all(isinstance(w, str) for w in response):
        return list(response)
    raise TypeError(f"response must be a string or a list of words, got {type(response).__name__}")


def is_review(response, values: dict[str, float] | None = None) -> bool:
    """True if an answer is a well-formed review up to its first end mark, False otherwise.

    A review in the toy world has two clauses ``"the NOUN was ADJECTIVE"`` joined by ``"and"`` or ``"but"``
    and followed by the end mark, with NOUN any noun of :data:`TOPICS` and ADJECTIVE any word of ``values``
    (by default :data:`POSITIVE` and :data:`NEGATIVE`). Words after the end mark are ignored; an answer without
    one is not a review. ``response`` is a string or a list of words.
    """
    words = _words(response)
    adjectives = {**POSITIVE, **NEGATIVE} if values is None else values
    if END not in words:
        return False
    words = words[:words.index(END)]
    nouns = {n for parts in TOPICS.values() for n in parts}
    return (len(words) == 9 and words[4] in ("and", "but")
            and all(c[0] == "the" and c[1] in nouns and c[2] == "was" and c[3] in adjectives
                    for c in (words[:4], words[5:])))


def hidden_score(response, repetition_penalty: float = 2.0, values: dict[str, float] | None = None,
                 unhelpful: float = -1.0) -> float:
    """The labeller's hidden score of an answer: what it likes, which the reward model never sees.

    An answer that is not a well-formed review (:func:`is_review`: it never ends, says nothing, or breaks the
    pattern "the NOUN was ADJECTIVE") is unhelpful and scores ``unhelpful``. Otherwise each adjective counts
    with its value (:data:`POSITIVE` and :data:`NEGATIVE`, or ``values``) the first time it appears, and every
    later occurrence of a noun or adjective already used costs ``repetition_penalty`` instead. Words after the
    first ``"."`` are ignored. Returns a float.
    """
    if isinstance(repetition_penalty, bool) or not isinstance(repetition_penalty, (int, float)) \
            or not math.isfinite(repetition_penalty) or repetition_penalty < 0:
        raise ValueError(f"repetition_penalty must be a finite number >= 0, got {repetition_penalty!r}")
    values = {**POSITIVE, **NEGATIVE} if values is None else values
    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict from word to value, got {type(values).__name__}")
    if isinstance(unhelpful, bool) or not isinstance(unhelpful, (int, float)) or not math.isfinite(unhelpful):
        raise ValueError(f"unhelpful must be a finite number, got {unhelpful!r}")
    words = _words(response)
    if not is_review(words, values):
        return float(unhelpful)
    words = words[:words.index(END)]
    content = set(values) | {n for parts in TOPICS.values() for n in parts}
    score, seen = 0.0, set()
    for word in words:
        if word not in content:
            continue
        if word in seen:
            score -= repetition_penalty
        else:
            score += values.get(word, 0.0)
            seen.add(word)
    return score


class Labeller:
    """A simulated labeller: it prefers the answer with the higher :func:`hidden_score`, noisily.

    The choice follows a Bradley-Terry model itself: answer a is preferred to b with probability
    sigmoid((score(a) - score(b)) / temperature), so close calls are nearly coin flips and only clear ones are
    almost never wrong. ``temperature`` > 0 sets the noise (at the default 1, a gap of one point is chosen
    correctly 73 % of the time); ``score`` can replace the hidden score (a function from an answer to a
    float), e.g. to give the labeller a different taste.
    """

    def __init__(self, temperature: float = 1.0, repetition_penalty: float = 2.0,
                 score: Callable[[str], float] | None = None):
        self.temperature = check_positive("temperature", temperature)
        self.repetition_penalty = float(repetition_penalty)
        hidden_score("", self.repetition_penalty)  # checks the penalty
        if score is not None and not callable(score):
            raise TypeError("score must be a function from an answer to a number")
        self._score = score

    def score(self, response) -> float:
        """The hidden score of one answer (a string or list of words)."""
        if self._score is not None:
            return float(self._score(response))
        return hidden_score(response, self.repetition_penalty)

    def probability(self, response_a, response_b) -> float:
        """P(the labeller prefers a to b) = sigmoid((score(a) - score(b)) / temperature)."""
        gap = (self.score(response_a) - self.score(response_b)) / self.temperature
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, gap))))

    def prefers_first(self, responses_a: Sequence, responses_b: Sequence, seed: int = 0) -> list[bool]:
        """One noisy choice per pair: True where a is preferred. Deterministic for a given ``seed``."""
        if len(responses_a) != len(responses_b):
            raise ValueError(f"need as many a's as b's, got {len(responses_a)} and {len(responses_b)}")
        check_int("seed", seed, minimum=0)
        rng = random.Random(seed)
        return [rng.random() < self.probability(a, b) for a, b in zip(responses_a, responses_b, strict=True)]
