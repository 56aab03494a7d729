import pytest

from llmbook.tokenizers import CharTokenizer


def test_char_tokenizer_round_trip():
    tok = CharTokenizer("hello world")
    assert tok.vocab_size == 8
    assert tok.decode(tok.encode("world hello")) == "world hello"


def test_char_tokenizer_errors():
    with pytest.raises(ValueError, match="non-empty string"):
        CharTokenizer("")
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abd")
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        tok.decode([0, 5])


# ---------------------------------------------------------------------------------------------------------------
# Byte-pair encoding
# ---------------------------------------------------------------------------------------------------------------
from llmbook.tokenizers import BPETokenizer, pretokenize  # noqa: E402

SAMPLE = "the cat sat on the mat. the hat is on the cat!\nThat's that, then."


def test_pretokenize_covers_every_character():
    for text in (SAMPLE, "  two  spaces\n\nand tabs\t_x_ 3.14", ""):
        assert "".join(pretokenize(text)) == text
    assert pretokenize("the cat.") == ["the", " cat", "."]


def test_bpe_round_trip_and_compression():
    tok = BPETokenizer.train(SAMPLE, num_merges=20)
    ids = tok.encode(SAMPLE)
    assert tok.decode(ids) == SAMPLE
    assert len(ids) < len(SAMPLE)
    assert tok.vocab_size == len(set(SAMPLE)) + len(tok.merges)
    assert tok.decode(tok.encode("the hat sat.")) == "the hat sat."


def test_bpe_first_merge_is_the_most_frequent_pair():
    tok = BPETokenizer.train("ab ab ab cd", num_merges=1)
    assert tok.merges == [("a", "b")]
    assert tok.tokenize("ab cd") == ["ab", " ", "c", "d"]


def test_bpe_training_is_deterministic_and_stops_when_out_of_pairs():
    assert BPETokenizer.train(SAMPLE, 15).merges == BPETokenizer.train(SAMPLE, 15).merges
    tok = BPETokenizer.train("aaa", num_merges=10)
    assert tok.merges == [("a", "a"), ("aa", "a")]
    assert tok.encode("aaa") == [tok.stoi["aaa"]]
    assert BPETokenizer.train(SAMPLE, 0).encode("cat") == CharTokenizer(SAMPLE).encode("cat")


def test_bpe_truncation_equals_training_fewer_merges():
    tok = BPETokenizer.train(SAMPLE, 25)
    assert tok.truncated(10).merges == BPETokenizer.train(SAMPLE, 10).merges


def test_bpe_applies_merges_in_the_order_learned():
    first_ab = BPETokenizer(["a", "b", "c"], [("a", "b"), ("b", "c")])
    first_bc = BPETokenizer(["a", "b", "c"], [("b", "c"), ("a", "b")])
    assert first_ab.tokenize("abc") == ["ab", "c"]
    assert first_bc.tokenize("abc") == ["a", "bc"]
    assert first_ab.encode("abc") == [3, 2]


def test_bpe_merges_do_not_cross_words():
    tok = BPETokenizer.train("a b a b a b", num_merges=5)
    assert all(" " not in left + right or (left + right).startswith(" ") and (left + right).count(" ") == 1
               for left, right in tok.merges)


def test_bpe_unknown_characters():
    tok = BPETokenizer.train("abc abc", num_merges=2)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("abz")
    with_unk = BPETokenizer.train("abc abc", num_merges=2, unk_token="<unk>")
    ids = with_unk.encode("abz")
    assert with_unk.decode(ids) == "ab<unk>"
    assert ids[-1] == with_unk.stoi["<unk>"]


def test_bpe_bad_arguments():
    with pytest.raises(ValueError, match="non-empty string"):
        BPETokenizer.train("", 10)
    with pytest.raises(ValueError, match="num_merges must be >= 0"):
        BPETokenizer.train("abc", -1)
    with pytest.raises(TypeError, match="num_merges must be an integer"):
        BPETokenizer.train("abc", 2.5)
    with pytest.raises(ValueError, match="uses a symbol"):
        BPETokenizer(["a", "b"], [("a", "c")])
    with pytest.raises(ValueError, match="single characters"):
        BPETokenizer(["ab"])
    tok = BPETokenizer.train("abc", 1)
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        tok.decode([0, 9])


def _naive_bpe_merges(text: str, num_merges: int) -> list[tuple[str, str]]:
    """The textbook algorithm, slow and plain: recount every pair of every chunk before each merge."""
    from collections import Counter

    chunks = [[list(chunk), freq] for chunk, freq in Counter(pretokenize(text)).items()]
    merges = []
    for _ in range(num_merges):
        counts = Counter()
        for symbols, freq in chunks:
            for pair in zip(symbols, symbols[1:], strict=False):
                counts[pair] += freq
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))  # most frequent; ties: first in sort order
        merges.append(best)
        for chunk in chunks:
            symbols, out, i = chunk[0], [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            chunk[0] = out
    return merges


def test_fast_bpe_training_equals_the_naive_algorithm_on_real_text():
    from llmbook.data import lee_news_text

    text = lee_news_text()[:15_000]  # news stories shipped with gensim
    assert BPETokenizer.train(text, 80).merges == _naive_bpe_merges(text, 80)
