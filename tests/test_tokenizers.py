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
