import pytest

from llmbook.data import (
    WIKI_DUMP,
    gensim_test_file,
    lee_news_documents,
    lee_news_text,
    load_analogies,
    load_wordsim353,
    text8_excerpt_sentences,
    train_val_split,
    wiki_sentences,
)


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


def test_shipped_evaluation_sets_and_corpora_load():
    assert len(load_wordsim353()) > 300
    assert any(q[1:] == ("athens", "greece", "baghdad", "iraq") for q in load_analogies())
    pieces = text8_excerpt_sentences(chunk_length=1000)
    assert pieces[0][0] == "anarch" and all(len(p) == 1000 for p in pieces[:-1]) and 0 < len(pieces[-1]) <= 1000
    assert sum(pieces, []) == sum(text8_excerpt_sentences(chunk_length=100_000), [])  # cutting loses no token
    with pytest.raises(ValueError, match="chunk_length must be >= 1, got 0"):
        text8_excerpt_sentences(chunk_length=0)


def _tiny_wiki_dump(path):
    """A MediaWiki dump of four pages, like gensim's shortened Wikipedia sample but small enough to read by eye."""
    import bz2
    import itertools

    words = ["k" + a + b for a, b in itertools.product("abcdefghijk", repeat=2)][:120]  # kaa kab ... distinct
    alpha = ("'''Alpha''' is a [[Greek alphabet|Greek letter]] {{Infobox letter}} &lt;ref&gt;A source&lt;/ref&gt; "
             "x 42 " + " ".join(words))
    beta = "Beta " + " ".join(words[:48])  # 49 tokens: one short of an article
    gamma = "Gamma " + " ".join(w.upper() for w in words[:49])  # 50 tokens: just long enough
    pages = [("Alpha", 0, alpha), ("Beta", 0, beta), ("Talk:Alpha", 1, " ".join(words)), ("Gamma", 0, gamma)]
    xml = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">',
           "<siteinfo><sitename>Wikipedia</sitename></siteinfo>"]
    for number, (title, namespace, text) in enumerate(pages, start=1):
        xml.append(f"<page><title>{title}</title><ns>{namespace}</ns><id>{number}</id><revision><id>{number}0</id>"
                   f'<text xml:space="preserve">{text}</text></revision></page>')
    path.write_bytes(bz2.compress(("\n".join(xml) + "</mediawiki>\n").encode()))
    return words


def test_wiki_sentences_tokenises_filters_and_cuts_articles(tmp_path, monkeypatch):
    # The real dump takes seconds to read; a tiny one in its place shows every rule. (Its tokens are the ones
    # gensim.corpora.WikiCorpus(...).get_texts() gives for the same file, as the docstring promises.)
    import llmbook.data

    assert gensim_test_file(WIKI_DUMP).stat().st_size > 1_000_000  # the real sample ships with gensim
    dump = tmp_path / "tiny.xml.bz2"
    words = _tiny_wiki_dump(dump)
    monkeypatch.setattr(llmbook.data, "gensim_test_file", lambda name: dump)
    alpha = ["alpha", "is", "greek", "letter", *words]  # markup, template, reference, "x" and "42" are gone
    gamma = ["gamma", *words[:49]]  # lower-cased
    # "Beta" has fewer than 50 tokens and "Talk:Alpha" is not an article: both are left out
    assert wiki_sentences() == [alpha, gamma]
    pieces = wiki_sentences(chunk_length=40)
    assert [len(p) for p in pieces] == [40, 40, 40, 4, 40, 10]  # each article cut on its own
    assert sum(pieces[:4], []) == alpha and sum(pieces[4:], []) == gamma
    with pytest.raises(ValueError, match="chunk_length must be >= 1, got 0"):
        wiki_sentences(chunk_length=0)
