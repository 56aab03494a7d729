"""A made-up world of facts, and retrieval-augmented generation in miniature (chapter 11, section 11.1).

- :func:`make_people` invents people with a home town and a job, from fixed lists of first names, surnames,
  towns and jobs. Because every fact is generated in code, we know the truth for every question, including
  questions about people a model never saw.
- :class:`TfidfRetriever` finds the stored documents most similar to a query with TF-IDF vectors and cosine
  similarity (scikit-learn's ``TfidfVectorizer``). Retrieval-augmented generation (检索增强生成, RAG) puts the
  retrieved text into the prompt (Lewis et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmbook.utils import check_int, check_probability

__all__ = ["FIRST_NAMES", "SURNAMES", "TOWNS", "JOBS", "Person", "make_people", "TfidfRetriever"]

#: The invented people's first names.
FIRST_NAMES = ("Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ines", "Jon", "Kai", "Lea", "Max",
               "Nia", "Otto", "Pia", "Rosa", "Sam", "Tia", "Uma", "Vera", "Wim", "Yara", "Zoe")
#: The invented people's surnames.
SURNAMES = ("Abel", "Berg", "Cruz", "Dahl", "Eck", "Falk", "Grau", "Holm", "Ivers", "Jung", "Kohl", "Lind",
            "Moss", "Nagy", "Ortiz", "Park", "Quist", "Roth", "Stein", "Toft", "Ulm", "Vogel", "Wolf", "Young")
#: The home towns a person can have (the answers of the question task).
TOWNS = ("Oslo", "Lima", "Pune", "Kyiv", "Rome", "Baku", "Doha", "Kobe")
#: The jobs a person can have.
JOBS = ("baker", "nurse", "pilot", "judge", "miner", "tailor")


@dataclass(frozen=True)
class Person:
    """One invented person: ``name`` ("First Surname"), home ``town`` and ``job``."""

    name: str
    town: str
    job: str

    def sentence(self) -> str:
        """The person's one-sentence biography, e.g. "Ada Berg lives in Oslo and works as a nurse."."""
        return f"{self.name} lives in {self.town} and works as a {self.job}."


def make_people(n: int, seed: int = 0, town_weights=None) -> list[Person]:
    """``n`` distinct invented people, drawn reproducibly with NumPy's generator seeded by ``seed``.

    Names are distinct combinations of ``FIRST_NAMES`` and ``SURNAMES`` (at most 576 people). Towns
    are drawn with probabilities ``town_weights`` (one non-negative number per town in ``TOWNS``; uniform
    if None), jobs uniformly.
    """
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    n_names = len(FIRST_NAMES) * len(SURNAMES)
    if n > n_names:
        raise ValueError(f"n must be at most {n_names} (distinct name combinations), got {n}")
    if town_weights is None:
        p = np.full(len(TOWNS), 1 / len(TOWNS))
    else:
        p = np.asarray(town_weights, dtype=float)
        if p.shape != (len(TOWNS),) or np.any(p < 0) or p.sum() <= 0:
            raise ValueError(f"town_weights must be {len(TOWNS)} non-negative numbers with a positive sum")
        p = p / p.sum()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n_names, size=n, replace=False)
    towns = rng.choice(len(TOWNS), size=n, p=p)
    jobs = rng.integers(len(JOBS), size=n)
    return [Person(f"{FIRST_NAMES[i // len(SURNAMES)]} {SURNAMES[i % len(SURNAMES)]}", TOWNS[t], JOBS[j])
            for i, t, j in zip(chosen, towns, jobs, strict=True)]


class TfidfRetriever:
    """Keyword retrieval: TF-IDF vectors of the documents, ranked by cosine similarity to the query.

    ``TfidfRetriever(documents)`` fits scikit-learn's ``TfidfVectorizer`` on the documents (a list of
    non-empty strings). ``search(query, k)`` returns the indices of the ``k`` most similar documents, best
    first (ties broken by the lower index), and ``scores(query)`` the similarity to every document.
    """

    def __init__(self, documents, lowercase: bool = True):
        from sklearn.feature_extraction.text import TfidfVectorizer

        if isinstance(documents, str) or not all(isinstance(d, str) and d.strip() for d in documents):
            raise TypeError("documents must be a list of non-empty strings")
        self.documents = list(documents)
        if not self.documents:
            raise ValueError("documents must hold at least one document")
        self.vectorizer = TfidfVectorizer(lowercase=lowercase)
        self.matrix = self.vectorizer.fit_transform(self.documents)  # (documents, terms), rows of length 1

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity between ``query`` and every document, shape (documents,)."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        vector = self.vectorizer.transform([query])  # (1, terms), length 1 (or 0 if no known word)
        return (self.matrix @ vector.T).toarray().ravel()

    def search(self, query: str, k: int = 1) -> list[int]:
        """Indices of the ``k`` documents most similar to ``query``, best first."""
        check_int("k", k, minimum=1)
        scores = self.scores(query)
        order = np.lexsort((np.arange(len(scores)), -scores))  # by score, then by index
        return order[:k].tolist()

    def noisy_search(self, query: str, noise: float, rng: np.random.Generator) -> int:
        """The best document, except with probability ``noise`` a random other one (a retrieval error)."""
        check_probability("noise", noise)
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        best = self.search(query, 1)[0]
        if len(self.documents) > 1 and rng.random() < noise:
            other = int(rng.integers(len(self.documents) - 1))
            return other + (other >= best)
        return best
