"""Static word embeddings (chapter 4): a vocabulary, skip-gram with negative sampling, PPMI + SVD, probes.

- :func:`planted_corpus`: a generated corpus with planted structure (animals, foods, countries, gendered roles).
  The shipped corpora and evaluation sets (Wikipedia, text8, WordSim353, the analogy questions) are loaded by
  :mod:`llmbook.data`.
- :func:`build_vocab`, :func:`encode`: word counts and integer ids.
- :func:`keep_probabilities`, :func:`negative_distribution`: the two sampling tricks of word2vec.
- :func:`skipgram_pairs`, :func:`train_skipgram`: batched, vectorised skip-gram with negative sampling (SGNS).
- :func:`ppmi_svd_vectors`: the count-based alternative (co-occurrence counts, PPMI, truncated SVD).
- :func:`nearest_neighbours`, :func:`analogy`, :func:`wordsim_spearman`, :func:`analogy_accuracy`: probes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from llmbook.data import load_analogies, load_wordsim353
from llmbook.utils import check_int, check_positive

__all__ = ["PLANTED_GROUPS", "PLANTED_LANGUAGES", "PLANTED_PLACES", "planted_corpus", "Vocab", "build_vocab",
           "encode", "keep_probabilities", "negative_distribution", "negative_table", "skipgram_pairs",
           "SkipGramResult", "sgns_gradients", "train_skipgram", "ppmi_svd_vectors", "cosine_similarity_matrix",
           "cosine", "nearest_neighbours", "analogy", "wordsim_spearman", "analogy_accuracy", "gender_projection",
           "vocab_from_gensim"]

# ------------------------------------------------------------------------------------------ a generated corpus

#: Word groups of the generated corpus: each sentence template draws from one group.
PLANTED_GROUPS = {
    "animal": ["cat", "dog", "horse", "rabbit", "mouse", "cow", "sheep", "goat"],
    "food": ["bread", "rice", "cheese", "apple", "soup", "pasta", "cake", "fish"],
    "country": ["france", "italy", "japan", "spain", "egypt", "china", "peru", "kenya"],
    "capital": ["paris", "rome", "tokyo", "madrid", "cairo", "beijing", "lima", "nairobi"],
    "male": ["king", "man", "boy", "father", "brother", "prince", "uncle", "husband"],
    "female": ["queen", "woman", "girl", "mother", "sister", "princess", "aunt", "wife"],
}
#: The language spoken in the i-th country and its capital, so that "paris" = capital + french.
PLANTED_LANGUAGES = ["french", "italian", "japanese", "spanish", "arabic", "chinese", "quechua", "swahili"]
#: The place that goes with the i-th male/female pair (king/queen: palace), so that "king" = male + palace.
PLANTED_PLACES = ["palace", "town", "school", "house", "farm", "castle", "village", "church"]


def planted_corpus(n_sentences: int = 20000, seed: int = 0) -> list[list[str]]:
    """A generated corpus whose structure we know: words of one group share contexts.

    Animals are fed, petted and chased; foods are eaten and cooked; the capital of a country appears with that
    country only, and a country and its capital share a language ("people in paris speak french"); male and
    female role words appear with "he"/"his" and "she"/"her", and the i-th male and the i-th female word share a
    place (king and queen visit the palace, man and woman the town). Filler words ("the", "with") appear everywhere.
    """
    check_int("n_sentences", n_sentences, minimum=1)
    check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    g = PLANTED_GROUPS

    def pick(group):
        return g[group][rng.integers(len(g[group]))]

    def sentence():
        kind = rng.integers(5)
        if kind == 0:
            verb = ["feeds", "pets", "chases", "watches"][rng.integers(4)]
            return ["the", "farmer", verb, "the", pick("animal"), "and", "the", pick("animal")]
        if kind == 1:
            verb = ["eats", "cooks", "buys", "tastes"][rng.integers(4)]
            return ["we", verb, "some", pick("food"), "with", pick("food"), "today"]
        if kind == 2:
            i = rng.integers(len(g["country"]))
            country, capital, language = g["country"][i], g["capital"][i], PLANTED_LANGUAGES[i]
            return [["the", "capital", "of", country, "is", capital],
                    [capital, "is", "a", "city", "in", country],
                    ["people", "in", capital, "speak", language],
                    ["many", "people", "in", country, "speak", language]][rng.integers(4)]
        i = rng.integers(len(g["male"]))
        word, pronoun, possessive = (g["male"][i], "he", "his") if kind == 3 else (g["female"][i], "she", "her")
        return ["the", word, "said", pronoun, "would", "visit", "the", PLANTED_PLACES[i], "with", possessive,
                pick("food")]

    return [sentence() for _ in range(n_sentences)]


# --------------------------------------------------------------------------------------------------- vocabulary

@dataclass
class Vocab:
    """Words sorted by decreasing count (ties alphabetically), their counts and a word → id index."""

    words: list[str]
    counts: np.ndarray
    index: dict[str, int] = field(repr=False)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index

    def id(self, word: str) -> int:
        if word not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self.words)} words")
        return self.index[word]


def _check_sentences(sentences) -> None:
    if isinstance(sentences, str) or not hasattr(sentences, "__iter__"):
        raise TypeError(f"expected a list of sentences (each a list of word strings), got {type(sentences).__name__}")


def build_vocab(sentences, min_count: int = 1) -> Vocab:
    """Count the words of ``sentences`` (lists of strings) and keep those seen at least ``min_count`` times."""
    _check_sentences(sentences)
    check_int("min_count", min_count, minimum=1)
    counter = Counter()
    for sentence in sentences:
        if isinstance(sentence, str):
            raise TypeError("each sentence must be a list of word strings, got a str (split it into words first)")
        counter.update(sentence)
    kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
    if not kept:
        raise ValueError(f"empty vocabulary: the corpus has {sum(counter.values())} tokens and no word occurs "
                         f"at least min_count={min_count} times")
    words = [w for w, _ in kept]
    return Vocab(words, np.array([c for _, c in kept], dtype=np.int64), {w: i for i, w in enumerate(words)})


def encode(sentences, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the sentences as ids, dropping out-of-vocabulary words.

    Returns ``ids`` (N,) and ``sentence_of`` (N,), the sentence number of each token, so that context windows
    never cross a sentence boundary.
    """
    _check_sentences(sentences)
    ids, sentence_of = [], []
    for s, sentence in enumerate(sentences):
        kept = [vocab.index[w] for w in sentence if w in vocab.index]
        ids += kept
        sentence_of += [s] * len(kept)
    if not ids:
        raise ValueError("the corpus has no in-vocabulary tokens")
    return np.array(ids, dtype=np.int64), np.array(sentence_of, dtype=np.int64)


# ----------------------------------------------------------------------------------------------- sampling tricks

def keep_probabilities(counts, sample: float = 1e-3) -> np.ndarray:
    """Probability of keeping each occurrence of a word in frequent-word subsampling.

    With ``f`` the word's share of all tokens and ``t = sample``, this is word2vec's (and gensim's) formula
    ``(sqrt(f / t) + 1) * t / f``, capped at 1: rare words are always kept, a word with share ``f`` much larger
    than ``t`` is kept with probability about ``sqrt(t / f)`` (Mikolov et al. 2013 write it as discarding with
    probability ``1 - sqrt(t / f)``). ``sample=0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts <= 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of positive counts, got shape {counts.shape}")
    if sample == 0:
        return np.ones_like(counts)
    check_positive("sample", sample)
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def negative_distribution(counts, power: float = 0.75) -> np.ndarray:
    """The distribution negatives are drawn from: proportional to ``count ** power`` (word2vec uses 0.75)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts <= 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of positive counts, got shape {counts.shape}")
    weights = counts ** power
    return weights / weights.sum()


def negative_table(counts, size: int = 1_000_000, power: float = 0.75) -> torch.Tensor:
    """word2vec's unigram table: ``size`` word ids, word i filling a share ``negative_distribution[i]`` of the
    slots, so that a uniformly random slot is a draw from count^0.75 (one integer lookup per sample)."""
    check_int("size", size, minimum=1)
    cdf = np.cumsum(negative_distribution(counts, power))
    slots = (np.arange(size) + 0.5) / size
    return torch.from_numpy(np.minimum(np.searchsorted(cdf, slots), len(cdf) - 1).astype(np.int64))


def skipgram_pairs(ids, sentence_of, window: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All (center, context) id pairs with a word2vec-style *dynamic* window.

    Each center position draws its own window size ``b`` uniformly from 1..``window`` and pairs with the words
    up to ``b`` positions to its left and right inside the same sentence, so near words count more often than
    far ones. Vectorised: one pass per offset ``d``, not per token.
    """
    check_int("window", window, minimum=1)
    ids, sentence_of = np.asarray(ids), np.asarray(sentence_of)
    if ids.ndim != 1 or ids.shape != sentence_of.shape:
        raise ValueError(f"ids and sentence_of must be 1-D arrays of equal length, got {ids.shape} and "
                         f"{sentence_of.shape}")
    reach = rng.integers(1, window + 1, size=len(ids))
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sentence_of[:-d] == sentence_of[d:]
        right = same & (reach[:-d] >= d)  # center i, context i + d
        left = same & (reach[d:] >= d)  # center i + d, context i
        centers += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return np.concatenate(centers), np.concatenate(contexts)


# ------------------------------------------------------------------------------------------------- training

@dataclass
class SkipGramResult:
    """Trained input vectors (the word embeddings), output vectors, and the training record."""

    vectors: np.ndarray
    output_vectors: np.ndarray
    losses: list[float]
    pairs_seen: int
    seconds: float
    final_lr: float = float("nan")  # the learning rate of the last batch (close to min_lr)


def sgns_gradients(v: torch.Tensor, u_pos: torch.Tensor, u_neg: torch.Tensor, with_loss: bool = True):
    """Hand-written gradients of the skip-gram negative-sampling loss for G groups of g pairs.

    ``v`` (G, g, D) holds the input vectors of the centers, ``u_pos`` (G, g, D) the output vectors of their
    true contexts and ``u_neg`` (G, K, D) the output vectors of K negatives shared by the g pairs of a group.
    The loss, summed over all pairs, is ``Σ -log σ(u_pos·v) - Σ_k log σ(-u_neg_k·v)``. With
    ``s = u·v`` its derivative is ``σ(s) - 1`` for a true context and ``σ(s)`` for a negative, so:

    returns ``(grad_v, grad_u_pos, grad_u_neg, loss)`` with the shapes of ``v``, ``u_pos`` and ``u_neg``, and
    the summed loss as a 0-d tensor (``None`` if ``with_loss`` is False). Chapter 4 checks them against
    autograd. Raises ValueError for inconsistent shapes.
    """
    if v.dim() != 3 or u_pos.shape != v.shape or u_neg.dim() != 3 or u_neg.shape[0] != v.shape[0] \
            or u_neg.shape[2] != v.shape[2]:
        raise ValueError("expected v and u_pos of shape (G, g, D) and u_neg of shape (G, K, D), got "
                         f"{tuple(v.shape)}, {tuple(u_pos.shape)} and {tuple(u_neg.shape)}")
    s_pos = (v * u_pos).sum(2)  # (G, g) scores of the true contexts
    s_neg = torch.bmm(v, u_neg.transpose(1, 2))  # (G, g, K) scores of the negatives
    g_pos = torch.sigmoid(s_pos) - 1  # d loss / d s_pos
    g_neg = torch.sigmoid(s_neg)  # d loss / d s_neg
    grad_v = g_pos.unsqueeze(2) * u_pos + torch.bmm(g_neg, u_neg)  # (G, g, D)
    grad_pos = g_pos.unsqueeze(2) * v  # (G, g, D)
    grad_neg = torch.bmm(g_neg.transpose(1, 2), v)  # (G, K, D), summed over the g pairs that share them
    loss = None
    if with_loss:
        logsigmoid = torch.nn.functional.logsigmoid
        loss = -(logsigmoid(s_pos).sum() + logsigmoid(-s_neg).sum())
    return grad_v, grad_pos, grad_neg, loss


def train_skipgram(sentences, vocab: Vocab, dim: int = 100, window: int = 5, negative: int = 5,
                   epochs: int = 5, lr: float = 0.025, min_lr: float = 1e-4, sample: float = 1e-3,
                   batch_size: int = 4096, share: int = 16, table_size: int = 1_000_000, seed: int = 0,
                   log_every: int = 0) -> SkipGramResult:
    """Skip-gram with negative sampling (Mikolov et al. 2013), trained with batched, hand-written SGD.

    For each (center c, context o) pair and ``negative`` words n_k drawn from the count^0.75 distribution the
    loss is ``-log σ(u_o·v_c) - Σ_k log σ(-u_{n_k}·v_c)``, with ``v`` the input and ``u`` the output vectors.
    Gradients are written out (no autograd) and applied with ``index_add_``, so a batch of B pairs costs a few
    (B, K, D) tensor operations (:func:`sgns_gradients`). The learning rate decays linearly from ``lr`` towards
    ``min_lr`` over the pairs processed (``final_lr`` records where it ended); frequent words are
    subsampled afresh in every epoch. ``log_every`` > 0 records the mean loss every that many batches. Training
    runs on one CPU thread (restored afterwards): it is faster than two for these small operations.

    Speed trick: the ``share`` consecutive pairs of a group (pairs are shuffled, so a group is a random set) use
    the same K negatives, so scoring them is a small matrix product instead of B·K separate dot products. Each
    pair still meets K negatives drawn from count^0.75; ``share=1`` gives every pair its own negatives.
    """
    _check_sentences(sentences)
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a Vocab from build_vocab, got {type(vocab).__name__}")
    for name, value, low in (("dim", dim, 1), ("window", window, 1), ("negative", negative, 1),
                             ("epochs", epochs, 1), ("batch_size", batch_size, 1), ("share", share, 1),
                             ("table_size", table_size, 1), ("seed", seed, 0),
                             ("log_every", log_every, 0)):
        check_int(name, value, minimum=low)
    check_positive("lr", lr)
    if not 0 <= min_lr <= lr:
        raise ValueError(f"min_lr must be between 0 and lr={lr}, got {min_lr}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the many small tensor operations are slower, not faster, on several threads
    try:
        return _train_skipgram(sentences, vocab, dim, window, negative, epochs, lr, min_lr, sample, batch_size,
                               share, table_size, seed, log_every)
    finally:
        torch.set_num_threads(threads)


def _train_skipgram(sentences, vocab, dim, window, negative, epochs, lr, min_lr, sample, batch_size, share,
                    table_size, seed, log_every) -> SkipGramResult:
    start = time.perf_counter()
    ids, sentence_of = encode(sentences, vocab)
    keep = keep_probabilities(vocab.counts, sample)
    table = negative_table(vocab.counts, table_size)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    n_words = len(vocab)
    w_in = ((torch.rand(n_words, dim, generator=gen) - 0.5) / dim).float()  # word2vec's initialisation
    w_out = torch.zeros(n_words, dim)
    losses, seen, running, batches, step = [], 0, 0.0, 0, lr
    for epoch in range(epochs):
        kept = rng.random(len(ids)) < keep[ids]
        centers, contexts = skipgram_pairs(ids[kept], sentence_of[kept], window, rng)
        order = torch.from_numpy(rng.permutation(len(centers)))
        centers = torch.from_numpy(centers).index_select(0, order)
        contexts = torch.from_numpy(contexts).index_select(0, order)
        for b in range(0, len(centers), batch_size):
            c, o = centers[b:b + batch_size], contexts[b:b + batch_size]  # (B,), (B,)
            # linear decay over the share of the training done, counted exactly in pairs of this epoch
            # (gensim counts words of the corpus the same way), so the last batch runs near min_lr
            progress = (epoch + b / len(centers)) / epochs
            step = lr - (lr - min_lr) * progress
            group = share if len(c) % share == 0 else 1  # a last, ragged batch draws negatives per pair
            n_groups = len(c) // group
            # index_select gathers the same rows as w[c], with a faster kernel
            neg = table.index_select(0, torch.randint(len(table), (n_groups * negative,), generator=gen))
            v = w_in.index_select(0, c).view(n_groups, group, dim)  # (G, g, D) input vectors of the centers
            u_pos = w_out.index_select(0, o).view(n_groups, group, dim)  # (G, g, D) output vectors, true contexts
            u_neg = w_out.index_select(0, neg).view(n_groups, negative, dim)  # (G, K, D) negatives' vectors,
            neg = neg.view(n_groups, negative)  # shared inside a group
            grad_v, grad_pos, grad_neg, loss = sgns_gradients(v, u_pos, u_neg, with_loss=bool(log_every))
            w_out.index_add_(0, o, grad_pos.view(-1, dim), alpha=-step)
            w_out.index_add_(0, neg.view(-1), grad_neg.view(-1, dim), alpha=-step)
            w_in.index_add_(0, c, grad_v.view(-1, dim), alpha=-step)
            seen += len(c)
            if log_every:
                running += float(loss) / len(c)
                batches += 1
                if batches % log_every == 0:
                    losses.append(running / log_every)
                    running = 0.0
    return SkipGramResult(w_in.numpy(), w_out.numpy(), losses, seen, time.perf_counter() - start, step)


# ------------------------------------------------------------------------------------------------ count-based

def ppmi_svd_vectors(sentences, vocab: Vocab, dim: int = 100, window: int = 5, seed: int = 0,
                     context_power: float = 0.75) -> np.ndarray:
    """Count-based vectors (Levy and Goldberg): co-occurrence counts → PPMI → truncated SVD.

    Counts every (word, context) pair within ``window`` positions (weighted 1/distance), computes positive
    pointwise mutual information with the context distribution smoothed by ``context_power`` (as in Levy et
    al. 2015), and keeps ``dim`` singular directions with scikit-learn's TruncatedSVD (``U * sqrt(S)``).
    """
    from scipy.sparse import coo_matrix
    from sklearn.decomposition import TruncatedSVD
    from threadpoolctl import threadpool_limits

    check_int("dim", dim, minimum=1)
    check_int("window", window, minimum=1)
    if dim >= len(vocab):
        raise ValueError(f"dim must be smaller than the vocabulary size {len(vocab)}, got {dim}")
    ids, sentence_of = encode(sentences, vocab)
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = sentence_of[:-d] == sentence_of[d:]
        a, b = ids[:-d][same], ids[d:][same]
        rows += [a, b]
        cols += [b, a]
        vals.append(np.full(2 * len(a), 1.0 / d))
    n = len(vocab)
    counts = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    row_sum = np.asarray(counts.sum(1)).ravel()
    col_w = np.asarray(counts.sum(0)).ravel() ** context_power
    col_p = col_w / col_w.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data / total) - np.log(row_sum[coo.row] / total) - np.log(col_p[coo.col])
    positive = pmi > 0
    ppmi = coo_matrix((pmi[positive], (coo.row[positive], coo.col[positive])), shape=(n, n)).tocsr()
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", n_iter=5, random_state=seed)
    with threadpool_limits(1):  # matrices this size gain nothing from BLAS threads, and lose a lot when contended
        reduced = svd.fit_transform(ppmi)  # U * S
    return (reduced / np.sqrt(svd.singular_values_)).astype(np.float32)  # U * sqrt(S)


# ------------------------------------------------------------------------------------------------------ probes

def _unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (words, dim), got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _check_table(vectors, vocab: Vocab) -> None:
    shape = np.shape(vectors)
    if len(shape) != 2 or shape[0] != len(vocab):
        raise ValueError(f"vectors must have shape (len(vocab)={len(vocab)}, dim), got {shape}")


def cosine_similarity_matrix(vectors) -> np.ndarray:
    """Cosine similarity of every pair of rows: (n, d) → (n, n)."""
    unit = _unit_rows(vectors)
    return unit @ unit.T


def cosine(vectors, vocab: Vocab, a: str, b: str) -> float:
    """Cosine similarity of the vectors of words ``a`` and ``b``."""
    _check_table(vectors, vocab)
    x, y = np.asarray(vectors[vocab.id(a)], float), np.asarray(vectors[vocab.id(b)], float)
    return float(x @ y / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-12))


def nearest_neighbours(vectors, vocab: Vocab, word: str, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``word`` (excluding the word itself)."""
    _check_table(vectors, vocab)
    check_int("k", k, minimum=1)
    unit = _unit_rows(vectors)
    sims = unit @ unit[vocab.id(word)]
    sims[vocab.id(word)] = -np.inf
    best = np.argsort(-sims, kind="stable")[:k]
    return [(vocab.words[i], float(sims[i])) for i in best]


def analogy(vectors, vocab: Vocab, a: str, b: str, c: str, k: int = 1, restrict: int | None = None):
    """Solve "a is to b as c is to ?" by 3CosAdd: the words closest to ``b - a + c`` (unit vectors).

    The three question words are excluded from the answers, as in Mikolov et al.'s evaluation. ``restrict``
    limits the candidates to the most frequent words.
    """
    _check_table(vectors, vocab)
    check_int("k", k, minimum=1)
    unit = _unit_rows(vectors)
    ia, ib, ic = vocab.id(a), vocab.id(b), vocab.id(c)
    target = unit[ib] - unit[ia] + unit[ic]
    limit = len(vocab) if restrict is None else check_int("restrict", restrict, minimum=1)
    sims = unit[:limit] @ target / max(np.linalg.norm(target), 1e-12)
    for i in (ia, ib, ic):
        if i < limit:
            sims[i] = -np.inf
    best = np.argsort(-sims, kind="stable")[:k]
    return [(vocab.words[i], float(sims[i])) for i in best]


def wordsim_spearman(vectors, vocab: Vocab, pairs=None) -> tuple[float, int]:
    """Spearman correlation between cosine similarities and human scores, over pairs inside the vocabulary.

    ``pairs`` default to WordSim353 (:func:`llmbook.data.load_wordsim353`). Returns (rho, number of pairs used).
    """
    from scipy.stats import spearmanr

    _check_table(vectors, vocab)
    pairs = load_wordsim353() if pairs is None else pairs
    used = [(a, b, s) for a, b, s in pairs if a in vocab and b in vocab]
    if len(used) < 3:
        raise ValueError(f"need at least 3 word pairs inside the vocabulary, got {len(used)}")
    model = [cosine(vectors, vocab, a, b) for a, b, _ in used]
    rho = spearmanr(model, [s for _, _, s in used]).statistic
    return float(rho), len(used)


def analogy_accuracy(vectors, vocab: Vocab, questions=None, restrict: int = 30000,
                     max_questions: int | None = None, seed: int = 0) -> tuple[float, int]:
    """Share of analogy questions "a : b :: c : d" answered with ``d`` by 3CosAdd, among questions whose four
    words are all among the ``restrict`` most frequent words. ``max_questions`` evaluates a random subset.
    ``questions`` default to Mikolov et al.'s (:func:`llmbook.data.load_analogies`).

    Returns (accuracy, number of questions asked). Vectorised: one matrix product per block of questions.
    """
    _check_table(vectors, vocab)
    questions = load_analogies() if questions is None else questions
    limit = min(len(vocab), check_int("restrict", restrict, minimum=1))
    known = {w: i for w, i in vocab.index.items() if i < limit}
    rows = np.array([[known[w] for w in q[1:]] for q in questions if all(w in known for w in q[1:])],
                    dtype=np.int64).reshape(-1, 4)
    if max_questions is not None and len(rows) > max_questions:
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), max_questions, replace=False))]
    if len(rows) == 0:
        return float("nan"), 0
    unit = _unit_rows(np.asarray(vectors)[:limit]).astype(np.float32)
    correct = 0
    for start in range(0, len(rows), 512):
        block = rows[start:start + 512]
        target = unit[block[:, 1]] - unit[block[:, 0]] + unit[block[:, 2]]  # b - a + c
        sims = target @ unit.T  # (Q, V)
        np.put_along_axis(sims, block[:, :3], -np.inf, axis=1)
        correct += int((sims.argmax(1) == block[:, 3]).sum())
    return correct / len(rows), len(rows)


def gender_projection(vectors, vocab: Vocab, words, pairs=(("he", "she"), ("man", "woman")),
                      center: bool = True) -> dict[str, float]:
    """Cosine of each word with a "gender direction": the mean of the differences of the given pairs
    (each difference of unit vectors), as in Bolukbasi et al. 2016. Positive = closer to the first word.

    ``center`` first subtracts the mean vector of the whole vocabulary: vectors trained briefly on little text
    share a large common component, which would otherwise push every word to the same side.
    """
    _check_table(vectors, vocab)
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = _unit_rows(vectors - vectors.mean(0) if center else vectors)
    direction = np.mean([unit[vocab.id(a)] - unit[vocab.id(b)] for a, b in pairs], axis=0)
    direction /= max(np.linalg.norm(direction), 1e-12)
    return {w: float(unit[vocab.id(w)] @ direction) for w in words if w in vocab}


def vocab_from_gensim(keyed_vectors) -> Vocab:
    """A :class:`Vocab` matching a gensim ``KeyedVectors`` (e.g. ``Word2Vec(...).wv``), to reuse the probes."""
    words = list(keyed_vectors.index_to_key)
    counts = np.array([keyed_vectors.get_vecattr(w, "count") for w in words], dtype=np.int64)
    return Vocab(words, counts, {w: i for i, w in enumerate(words)})
