import pytest

from llmbook.data import gensim_test_file, lee_news_documents, lee_news_text, train_val_split


def test_lee_corpus_ships_with_gensim():
    docs = lee_news_documents()
    assert len(docs) == 300
    assert lee_news_text().count("\n") == 299


def test_missing_file_names_the_folder():
    with pytest.raises(FileNotFoundError, match="gensim's test data folder"):
        gensim_test_file("no-such-file.txt")


def test_train_val_split():
    train, val = train_val_split("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split("abc", 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        train_val_split("a", 0.5)
