"""Tokenizers: turning text into integer ids and back (chapter 5; reused in chapters 6 to 11).

- :class:`CharTokenizer`: one token per character (chapter 6's tiny GPT, and chapters 7 to 9 and 11).
- :class:`WordTokenizer`: one token per word of a fixed vocabulary (chapter 10's toy world,
  :func:`llmbook.review_world.world_tokenizer`).
- :class:`BPETokenizer`, :func:`pretokenize`: byte-pair encoding on characters (chapter 5).
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from llmbook.utils import check_int

__all__ = ["CharTokenizer", "WordTokenizer", "PRETOKENIZE_PATTERN", "pretokenize", "BPETokenizer"]


def _decode(vocab: list[str], ids: Iterable[int], separator: str = "") -> str:
    """The text of token ids (each in [0, len(vocab))): the tokens' strings joined; ValueError names bad ids."""
    ids = [int(i) for i in ids]
    bad = [i for i in ids if not 0 <= i < len(vocab)]
    if bad:
        raise ValueError(f"token ids must lie in [0, {len(vocab)}), got {bad[:10]}")
    return separator.join(vocab[i] for i in ids)


class CharTokenizer:
    """One token per character. The vocabulary is the sorted set of characters seen in the training text."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError("CharTokenizer needs a non-empty string to build its vocabulary")
        self.vocab = sorted(set(text))
        self.stoi = {ch: i for i, ch in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]}")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Iterable[int]) -> str:
        return _decode(self.vocab, ids)


class WordTokenizer:
    """One token per word (words are separated by spaces). The vocabulary is fixed when it is built.

    ``encode("the plot was great")`` returns one id per word and raises ValueError for unknown words;
    ``decode(ids)`` joins the words with single spaces. Chapter 10's toy world uses it
    (:func:`llmbook.review_world.world_tokenizer`).
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if not words or any(not isinstance(w, str) or not w or " " in w for w in words):
            raise ValueError("WordTokenizer needs a non-empty list of words without spaces")
        if len(set(words)) != len(words):
            raise ValueError("the vocabulary contains repeated words")
        self.vocab = words
        self.stoi = {w: i for i, w in enumerate(words)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a string of space-separated words, got {type(text).__name__}")
        words = text.split()
        unknown = sorted(set(words) - self.stoi.keys())
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown[:10]}")
        return [self.stoi[w] for w in words]

    def decode(self, ids: Iterable[int]) -> str:
        return _decode(self.vocab, ids, separator=" ")


# ----------------------------------------------------------------------------------------------------------------
# Byte-pair encoding (Sennrich et al., 2016), on characters
# ----------------------------------------------------------------------------------------------------------------

#: Splits text into chunks that merges never cross: a word with its leading space, a run of punctuation with its
#: leading space, or whitespace. Every character of the input lands in exactly one chunk (see ``pretokenize``).
PRETOKENIZE_PATTERN = re.compile(r" ?\w+| ?[^\s\w]+|\s+(?!\S)|\s+")


def pretokenize(text: str) -> list[str]:
    """Split ``text`` into the chunks that BPE works inside; ``"".join(pretokenize(text)) == text``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return PRETOKENIZE_PATTERN.findall(text)


class BPETokenizer:
    """A byte-pair-encoding tokenizer over characters (Sennrich, Haddow & Birch, 2016).

    Training starts from the characters of the text and repeatedly merges the most frequent adjacent pair of
    symbols into a new symbol. Pairs are counted over a table of distinct chunks with their frequencies (not over
    the raw text), and only the chunks that contain the chosen pair are updated after each merge, so a few
    hundred merges on a few hundred thousand characters take about a second.

    Build one with :meth:`train` (from text) or directly from an alphabet and an ordered list of merges.
    ``vocab`` lists the alphabet first, then (optionally) ``unk_token``, then one token per merge, in order.
    Characters outside the alphabet raise a ValueError when encoding, unless ``unk_token`` is set, in which case
    each becomes that token (and decoding cannot bring the character back).
    """

    def __init__(self, alphabet: Iterable[str], merges: Iterable[tuple[str, str]] = (),
                 unk_token: str | None = None):
        alphabet = list(alphabet)
        if not alphabet:
            raise ValueError("the alphabet must contain at least one character")
        if any(not isinstance(ch, str) or len(ch) != 1 for ch in alphabet):
            raise ValueError("the alphabet must be a collection of single characters")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("the alphabet contains repeated characters")
        self.alphabet = alphabet
        self.unk_token = unk_token
        self.vocab: list[str] = list(alphabet)
        if unk_token is not None:
            if not isinstance(unk_token, str) or len(unk_token) < 2:
                raise ValueError(f"unk_token must be a string of 2 or more characters, got {unk_token!r}")
            self.vocab.append(unk_token)
        self.merges: list[tuple[str, str]] = []
        known = set(self.vocab)
        for i, pair in enumerate(merges):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
                raise ValueError(f"merge {i} must be a pair of strings, got {pair!r}")
            left, right = pair
            if left not in known or right not in known:
                raise ValueError(f"merge {i} {pair!r} uses a symbol that no earlier merge or the alphabet made")
            self.merges.append(pair)
            if left + right not in known:
                self.vocab.append(left + right)
                known.add(left + right)
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.stoi = {token: i for i, token in enumerate(self.vocab)}
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def train(cls, text: str, num_merges: int, unk_token: str | None = None) -> BPETokenizer:
        """Learn ``num_merges`` merges from ``text`` (fewer if the text runs out of pairs).

        Training stops early when no adjacent pair is left to merge (every chunk is a single symbol).
        Ties between equally frequent pairs go to the pair that sorts first, so training is deterministic.
        """
        if not isinstance(text, str) or not text:
            raise ValueError("BPETokenizer.train needs a non-empty string of training text")
        check_int("num_merges", num_merges, minimum=0)
        chunk_counts = Counter(pretokenize(text))
        words = [list(chunk) for chunk in chunk_counts]  # each distinct chunk as a list of symbols
        freqs = list(chunk_counts.values())
        pair_counts: Counter = Counter()
        where: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> indices of words containing it
        for w, (symbols, freq) in enumerate(zip(words, freqs, strict=True)):
            for pair in zip(symbols, symbols[1:], strict=False):
                pair_counts[pair] += freq
                where[pair].add(w)
        # A heap of (-count, pair) finds the most frequent pair quickly; entries whose count has changed since
        # they were pushed are stale and skipped when popped.
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)
        merges = []
        while len(merges) < num_merges and heap:
            neg_count, best = heapq.heappop(heap)
            if pair_counts.get(best, 0) != -neg_count or neg_count == 0:
                continue  # stale entry
            merges.append(best)
            merged = best[0] + best[1]
            changed = set()
            for w in sorted(where.pop(best, ())):
                symbols, freq = words[w], freqs[w]
                for pair in zip(symbols, symbols[1:], strict=False):  # remove this word's old pairs ...
                    pair_counts[pair] -= freq
                    changed.add(pair)
                words[w] = symbols = _merge_pair(symbols, best, merged)
                for pair in zip(symbols, symbols[1:], strict=False):  # ... and add its new ones
                    pair_counts[pair] += freq
                    where[pair].add(w)
                    changed.add(pair)
            pair_counts.pop(best, None)
            changed.discard(best)
            for pair in changed:
                if pair_counts[pair] > 0:
                    heapq.heappush(heap, (-pair_counts[pair], pair))
                else:
                    del pair_counts[pair]
        return cls(sorted(set(text)), merges, unk_token=unk_token)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def truncated(self, num_merges: int) -> BPETokenizer:
        """The same tokenizer with only its first ``num_merges`` merges (what training that many would give)."""
        check_int("num_merges", num_merges, minimum=0)
        return BPETokenizer(self.alphabet, self.merges[:num_merges], unk_token=self.unk_token)

    def _split_chunk(self, chunk: str) -> tuple[str, ...]:
        """Apply the merges to one chunk, always the earliest-learned applicable merge first."""
        if chunk in self._cache:
            return self._cache[chunk]
        symbols = list(chunk)
        while len(symbols) > 1:
            pairs = set(zip(symbols, symbols[1:], strict=False))
            best = min(pairs, key=lambda p: self.ranks.get(p, len(self.ranks)))
            if best not in self.ranks:
                break
            symbols = _merge_pair(symbols, best, best[0] + best[1])
        self._cache[chunk] = result = tuple(symbols)
        return result

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into token strings (before mapping them to ids)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self.alphabet))
        if unknown and self.unk_token is None:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]} (pass unk_token= to map them "
                             "to an unknown-token instead)")
        tokens: list[str] = []
        for chunk in pretokenize(text):
            for symbol in self._split_chunk(chunk):
                tokens.append(symbol if symbol in self.stoi else self.unk_token)
        return tokens

    def encode(self, text: str) -> list[int]:
        return [self.stoi[token] for token in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return _decode(self.vocab, ids)


def _merge_pair(symbols: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    """Replace every non-overlapping occurrence of ``pair`` in ``symbols`` (left to right) by ``merged``."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out
