"""Text that ships with installed packages, so that nothing is downloaded at run time.

- :func:`lee_news_documents` / :func:`lee_news_text`: the Lee background corpus that gensim ships in its test
  data: 300 short English news stories (about 60,000 words, 360,000 characters).
"""

from __future__ import annotations

from pathlib import Path

from llmbook.utils import check_probability

__all__ = ["gensim_test_file", "lee_news_documents", "lee_news_text", "train_val_split"]


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
