"""Corpora and evaluation sets that ship with installed packages, so that nothing is downloaded at run time.

The one place where the book loads corpora and evaluation sets. Everything comes from gensim's bundled test data
(:func:`gensim_test_file`):

- :func:`lee_news_documents` / :func:`lee_news_text`: the Lee background corpus, 300 short English news stories
  (about 60,000 words, 360,000 characters), the text most chapters train on, split by
  :func:`train_val_split`.
- :func:`wiki_sentences` and :func:`text8_excerpt_sentences`: a shortened English Wikipedia dump and a stemmed
  text8 excerpt, as lists of tokens (chapter 4's word embeddings).
- :func:`load_wordsim353` and :func:`load_analogies`: WordSim353's human similarity scores and Mikolov et al.'s
  analogy questions, the two evaluation sets of chapter 4.
"""

from __future__ import annotations

from pathlib import Path

from llmbook.utils import check_int, check_probability

__all__ = ["gensim_test_file", "lee_news_documents", "lee_news_text", "train_val_split", "WIKI_DUMP",
           "wiki_sentences", "text8_excerpt_sentences", "load_wordsim353", "load_analogies"]


def gensim_test_file(name: str) -> Path:
    """Path of a file in gensim's bundled ``test_data`` folder (raises FileNotFoundError with the folder name)."""
    from gensim.test.utils import datapath

    path = Path(datapath(name))
    if not path.exists():
        raise FileNotFoundError(f"{name!r} is not in gensim's test data folder {path.parent}")
    return path


def lee_news_documents() -> list[str]:
    """The 300 news stories of the Lee background corpus, one string per story."""
    lines = gensim_test_file("lee_background.cor").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def lee_news_text() -> str:
    """The Lee background corpus as one string, stories separated by newlines."""
    return "\n".join(lee_news_documents())


def train_val_split(sequence, val_fraction: float = 0.1):
    """Split a sequence (string, list or tensor) into a leading training part and a trailing validation part.

    Splitting at one point (not at random) keeps the validation text unseen in training: in a corpus of stories
    it is almost all whole stories, apart from the one the cut falls in (the cut may split a word).
    """
    check_probability("val_fraction", val_fraction, allow_zero=False)
    if val_fraction >= 1:
        raise ValueError(f"val_fraction must be below 1 so that some training data remains, got {val_fraction}")
    n = len(sequence)
    if n < 2:
        raise ValueError(f"need at least 2 items to split, got {n}")
    cut = min(max(1, int(round(n * (1 - val_fraction)))), n - 1)
    return sequence[:cut], sequence[cut:]


#: The shortened English Wikipedia sample that gensim ships in its test data.
WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def _chunks(tokens: list[str], length: int) -> list[list[str]]:
    return [tokens[i:i + length] for i in range(0, len(tokens), length)]


def wiki_sentences(chunk_length: int = 1000) -> list[list[str]]:
    """The shortened English Wikipedia dump in gensim's test data, as lists of lower-case tokens.

    Tokenises like ``gensim.corpora.WikiCorpus(...).get_texts()`` (same markup filter, tokenizer and pruning of
    articles under 50 tokens) but in this process, without a worker pool, so it is deterministic and quiet.
    Articles are cut into pieces of at most ``chunk_length`` tokens (gensim's Word2Vec ignores words beyond
    10,000 in one sentence, so long articles must be cut anyway).
    """
    import bz2

    from gensim.corpora.wikicorpus import IGNORED_NAMESPACES, extract_pages, process_article, tokenize

    check_int("chunk_length", chunk_length, minimum=1)
    sentences = []
    with bz2.BZ2File(gensim_test_file(WIKI_DUMP)) as dump:
        for title, text, pageid in extract_pages(dump):
            tokens, _, _ = process_article((text, title, pageid), tokenize, 2, 15, True)
            if len(tokens) < 50 or any(title.startswith(ns + ":") for ns in IGNORED_NAMESPACES):
                continue
            sentences += _chunks(tokens, chunk_length)
    return sentences


def text8_excerpt_sentences(chunk_length: int = 1000) -> list[list[str]]:
    """The stemmed text8 excerpt in gensim's test data (``head500.noblanks.cor``), cut into pieces."""
    check_int("chunk_length", chunk_length, minimum=1)
    tokens = gensim_test_file("head500.noblanks.cor").read_text(encoding="utf-8").split()
    return _chunks(tokens, chunk_length)


def load_wordsim353() -> list[tuple[str, str, float]]:
    """WordSim353 (Finkelstein et al. 2002) from gensim's test data: (word, word, human score 0-10)."""
    pairs = []
    for line in gensim_test_file("wordsim353.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        a, b, score = line.split("\t")[:3]
        pairs.append((a.lower(), b.lower(), float(score)))
    return pairs


def load_analogies() -> list[tuple[str, str, str, str, str]]:
    """questions-words.txt (Mikolov et al. 2013) from gensim's test data: (section, a, b, c, d), lower case."""
    rows, section = [], ""
    for line in gensim_test_file("questions-words.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
        elif line.strip():
            a, b, c, d = line.lower().split()
            rows.append((section, a, b, c, d))
    return rows
