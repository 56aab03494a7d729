"""Pre-train once, adapt to many tasks: a toy version of the L0 -> L1/L2 idea (chapter 3).

A tiny generated "world" of 48 nouns, each with a kind (animal, food, vehicle, tool) and a size (small, big),
yields an unlabelled corpus in which nouns co-occur with words that hint at their kind and size. Word vectors
pre-trained on that corpus (the "foundation") are then adapted with a linear probe to two labelled tasks that
never see most nouns at training time, and compared with a bag-of-words model trained from scratch.

- :func:`generate_corpus`: unlabelled sentences (lists of tokens) for pre-training.
- :func:`pretrain_word_vectors`: skip-gram word2vec with gensim, one worker and a fixed seed.
- :func:`make_task`: labelled sentences for the ``"kind"`` or ``"size"`` task.
- :func:`mean_vectors`: a sentence's feature vector, the mean of its word vectors.
- :func:`learning_curve`: accuracy against the number of labelled examples, pre-trained vs from scratch.
"""

from __future__ import annotations

import random

import numpy as np

from llmbook.utils import check_int, check_probability

__all__ = ["WORLD", "KINDS", "SIZES", "TASKS", "nouns", "generate_corpus", "pretrain_word_vectors", "make_task",
           "mean_vectors", "learning_curve"]

#: The toy world: kind -> size -> nouns (six per cell, 48 in all).
WORLD = {
    "animal": {"small": ["mouse", "ant", "frog", "bee", "sparrow", "snail"],
               "big": ["elephant", "whale", "horse", "bear", "camel", "giraffe"]},
    "food": {"small": ["grape", "pea", "nut", "berry", "olive", "bean"],
             "big": ["watermelon", "pumpkin", "cake", "turkey", "ham", "cabbage"]},
    "vehicle": {"small": ["bike", "scooter", "skateboard", "kayak", "moped", "canoe"],
                "big": ["truck", "bus", "train", "ship", "tractor", "plane"]},
    "tool": {"small": ["needle", "pin", "screw", "nail", "key", "spoon"],
             "big": ["ladder", "crane", "anvil", "wheelbarrow", "forklift", "bulldozer"]},
}
#: The four kinds of noun (the labels of the "kind" task).
KINDS = tuple(WORLD)
#: The two sizes (the labels of the "size" task).
SIZES = ("small", "big")
#: Words that co-occur with each kind and size in the pre-training corpus.
KIND_CONTEXT = {
    "animal": ["sleeps", "runs", "breathes", "hunts", "feeds"],
    "food": ["tastes", "cooked", "eaten", "baked", "fresh"],
    "vehicle": ["drives", "parked", "engine", "passengers", "wheels"],
    "tool": ["workshop", "repairs", "fixes", "handle", "builds"],
}
SIZE_CONTEXT = {"small": ["tiny", "little", "pocket", "hardly", "light"],
                "big": ["huge", "giant", "enormous", "heavy", "massive"]}
FILLER = ["the", "a", "we", "saw", "there", "is", "near", "today", "yesterday", "look", "at", "that", "one", "this"]
#: The two downstream tasks and their labels.
TASKS = {"kind": KINDS, "size": SIZES}


def nouns() -> list[tuple[str, str, str]]:
    """All (noun, kind, size) triples of the toy world, in a fixed order."""
    return [(noun, kind, size) for kind in KINDS for size in SIZES for noun in WORLD[kind][size]]


def generate_corpus(n_sentences: int = 20_000, noise: float = 0.1, seed: int = 0) -> list[list[str]]:
    """Unlabelled pre-training sentences: a noun with one kind word, one size word and fillers.

    With probability ``noise`` each hint word is replaced by a random hint of another kind or size, so the
    corpus is informative but not clean. Returns a list of token lists.
    """
    check_int("n_sentences", n_sentences, minimum=1)
    check_probability("noise", noise)
    rng = random.Random(seed)
    table = nouns()
    sentences = []
    for _ in range(n_sentences):
        noun, kind, size = rng.choice(table)
        if rng.random() < noise:
            kind = rng.choice(KINDS)
        if rng.random() < noise:
            size = rng.choice(SIZES)
        words = [noun, rng.choice(KIND_CONTEXT[kind]), rng.choice(SIZE_CONTEXT[size])]
        words += rng.sample(FILLER, 3)
        rng.shuffle(words)
        sentences.append(words)
    return sentences


def pretrain_word_vectors(sentences, dim: int = 32, epochs: int = 5, window: int = 5, seed: int = 0):
    """Skip-gram word2vec on ``sentences`` (one worker, fixed seed: deterministic). Returns gensim KeyedVectors."""
    from gensim.models import Word2Vec

    check_int("dim", dim, minimum=1)
    check_int("epochs", epochs, minimum=1)
    if not sentences or not all(isinstance(s, list) and s for s in sentences):
        raise ValueError("sentences must be a non-empty list of non-empty token lists")
    model = Word2Vec(sentences, vector_size=dim, window=window, min_count=1, sg=1, negative=5,
                     epochs=epochs, workers=1, seed=seed)
    return model.wv


def make_task(task: str, n: int, seed: int = 0) -> tuple[list[list[str]], np.ndarray]:
    """``n`` labelled sentences for a downstream task: ``"kind"`` (4 classes) or ``"size"`` (2 classes).

    Each sentence holds one noun and neutral filler words only, so the label depends on the noun alone:
    a model can get it right only if it knows something about that noun.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    check_int("n", n, minimum=1)
    rng = random.Random(seed)
    table = nouns()
    sentences, labels = [], []
    for _ in range(n):
        noun, kind, size = rng.choice(table)
        words = rng.sample(FILLER, 4) + [noun]
        rng.shuffle(words)
        sentences.append(words)
        labels.append(TASKS[task].index(kind if task == "kind" else size))
    return sentences, np.array(labels)


def mean_vectors(sentences, vectors) -> np.ndarray:
    """Feature matrix (n_sentences, dim): the mean vector of each sentence's known words (zeros if none)."""
    dim = vectors.vector_size
    out = np.zeros((len(sentences), dim), dtype=np.float32)
    for i, words in enumerate(sentences):
        known = [vectors[w] for w in words if w in vectors.key_to_index]
        if known:
            out[i] = np.mean(known, axis=0)
    return out


def _logistic_regression():
    """Logistic regression with a Newton solver: on these small problems it is many times faster than L-BFGS."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(solver="newton-cholesky", max_iter=2000)


def learning_curve(task: str, vectors, budgets=(4, 8, 16, 32, 64, 128), repeats: int = 5,
                   n_test: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Test accuracy against the number of labelled examples, for two models trained on the same examples.

    - ``"pretrained"``: a linear probe (standardised features, logistic regression) on mean pre-trained word
      vectors; the word vectors stay frozen;
    - ``"scratch"``: logistic regression on bag-of-words counts built from the labelled examples only.

    Returns arrays of shape (len(budgets), repeats) under those keys, plus ``"budgets"``.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_int("repeats", repeats, minimum=1)
    check_int("n_test", n_test, minimum=1)
    budgets = [check_int("budget", b, minimum=2) for b in budgets]
    if not budgets:
        raise ValueError("budgets must hold at least one number of labelled examples")
    test_x, test_y = make_task(task, n_test, seed=10_000 + seed)
    test_features = mean_vectors(test_x, vectors)
    results = {"pretrained": np.zeros((len(budgets), repeats)), "scratch": np.zeros((len(budgets), repeats))}
    for i, budget in enumerate(budgets):
        for r in range(repeats):
            train_x, train_y = make_task(task, budget, seed=seed + 1000 * r + i)
            if len(set(train_y)) < 2:  # a classifier needs two classes; count it as chance-level guessing
                results["pretrained"][i, r] = results["scratch"][i, r] = np.mean(test_y == train_y[0])
                continue
            probe = make_pipeline(StandardScaler(), _logistic_regression())
            probe.fit(mean_vectors(train_x, vectors), train_y)
            results["pretrained"][i, r] = probe.score(test_features, test_y)
            bow = CountVectorizer(analyzer=lambda words: words)
            scratch = _logistic_regression().fit(bow.fit_transform(train_x), train_y)
            results["scratch"][i, r] = scratch.score(bow.transform(test_x), test_y)
    results["budgets"] = np.array(budgets)
    return results
