"""Tests of llmbook.embeddings: vocabulary, sampling tricks, skip-gram training, count vectors and probes."""

from __future__ import annotations

import numpy as np
import pytest

from llmbook import embeddings as emb

TOY = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"]]


def test_build_vocab_sorts_by_count_then_alphabet_and_applies_min_count():
    vocab = emb.build_vocab(TOY)
    assert vocab.words[:3] == ["cat", "sat", "the"]  # count 2 each, alphabetical
    assert list(vocab.counts) == [2, 2, 2, 1, 1, 1]
    assert vocab.id("dog") == vocab.words.index("dog") and "dog" in vocab
    small = emb.build_vocab(TOY, min_count=2)
    assert small.words == ["cat", "sat", "the"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        small.id("dog")


def test_encode_drops_unknown_words_and_records_sentences():
    vocab = emb.build_vocab(TOY, min_count=2)
    ids, sentence_of = emb.encode(TOY, vocab)
    assert [vocab.words[i] for i in ids] == ["the", "cat", "sat", "the", "sat", "cat"]
    assert list(sentence_of) == [0, 0, 0, 1, 1, 2]


def test_bad_corpora_raise_clear_errors():
    with pytest.raises(ValueError, match="empty vocabulary"):
        emb.build_vocab([])
    with pytest.raises(ValueError, match="min_count"):
        emb.build_vocab(TOY, min_count=5)
    with pytest.raises(TypeError, match="list of word strings"):
        emb.build_vocab(["the cat sat"])
    with pytest.raises(TypeError, match="list of sentences"):
        emb.build_vocab("the cat sat")
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        emb.build_vocab(TOY, min_count=0)


def test_keep_probabilities_match_the_word2vec_formula():
    counts = np.array([1000, 100, 10, 1])
    keep = emb.keep_probabilities(counts, sample=1e-2)
    f = counts / counts.sum()
    expected = np.minimum(1, (np.sqrt(f / 1e-2) + 1) * 1e-2 / f)
    np.testing.assert_allclose(keep, expected)
    assert keep[0] < keep[1] < 1 and keep[-1] == 1  # frequent words dropped more, rare words always kept
    assert (emb.keep_probabilities(counts, sample=0) == 1).all()
    with pytest.raises(ValueError, match="positive counts"):
        emb.keep_probabilities([3, 0])
    with pytest.raises(ValueError, match="sample"):
        emb.keep_probabilities(counts, sample=-1)


def test_negative_distribution_is_proportional_to_count_to_the_075():
    counts = np.array([81, 16, 1])
    p = emb.negative_distribution(counts)
    np.testing.assert_allclose(p, counts ** 0.75 / (counts ** 0.75).sum())
    np.testing.assert_allclose(p[0] / p[2], 27.0)
    table = emb.negative_table(counts, size=100_000).numpy()
    np.testing.assert_allclose(np.bincount(table, minlength=3) / table.size, p, atol=1e-4)
    with pytest.raises(ValueError, match="1-D"):
        emb.negative_distribution(np.ones((2, 2)))


def test_skipgram_pairs_respect_window_and_sentences():
    ids, sentence_of = np.array([0, 1, 2, 3, 4]), np.array([0, 0, 0, 1, 1])
    centers, contexts = emb.skipgram_pairs(ids, sentence_of, window=1, rng=np.random.default_rng(0))
    pairs = sorted(zip(centers.tolist(), contexts.tolist(), strict=True))
    assert pairs == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]
    centers, _ = emb.skipgram_pairs(ids, np.zeros(5, int), window=10, rng=np.random.default_rng(0))
    assert len(centers) <= 5 * 4
    with pytest.raises(ValueError, match="window must be >= 1"):
        emb.skipgram_pairs(ids, sentence_of, window=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="equal length"):
        emb.skipgram_pairs(ids, sentence_of[:3], window=1, rng=np.random.default_rng(0))


def test_training_lowers_the_loss_and_separates_groups():
    sentences = emb.planted_corpus(3000, seed=0)
    vocab = emb.build_vocab(sentences)
    result = emb.train_skipgram(sentences, vocab, dim=16, window=2, negative=3, epochs=3, lr=0.05,
                                batch_size=256, share=4, sample=0, seed=0, log_every=10)
    assert result.vectors.shape == (len(vocab), 16)
    assert result.losses[-1] < 0.8 * result.losses[0]
    assert emb.cosine(result.vectors, vocab, "cat", "dog") > emb.cosine(result.vectors, vocab, "cat", "paris")
    again = emb.train_skipgram(sentences, vocab, dim=16, window=2, negative=3, epochs=3, lr=0.05,
                               batch_size=256, share=4, sample=0, seed=0, log_every=10)
    np.testing.assert_array_equal(result.vectors, again.vectors)  # deterministic for a fixed seed


def test_training_rejects_bad_settings():
    vocab = emb.build_vocab(TOY)
    with pytest.raises(ValueError, match="window must be >= 1"):
        emb.train_skipgram(TOY, vocab, window=0)
    with pytest.raises(ValueError, match="dim must be >= 1"):
        emb.train_skipgram(TOY, vocab, dim=0)
    with pytest.raises(ValueError, match="lr"):
        emb.train_skipgram(TOY, vocab, lr=-0.1)
    with pytest.raises(TypeError, match="Vocab"):
        emb.train_skipgram(TOY, {"cat": 0})
    with pytest.raises(ValueError, match="no in-vocabulary tokens"):
        emb.train_skipgram([["unseen"]], vocab)


def test_neighbours_and_analogy_on_hand_made_vectors():
    vocab = emb.build_vocab([["man", "woman", "king", "queen", "apple"]])
    index = {w: i for i, w in enumerate(vocab.words)}
    vectors = np.zeros((5, 3))
    vectors[index["man"]] = [1, 0, 0]
    vectors[index["woman"]] = [1, 1, 0]
    vectors[index["king"]] = [1, 0, 1]
    vectors[index["queen"]] = [1, 1, 1]
    vectors[index["apple"]] = [-1, 0, 0.1]
    assert emb.analogy(vectors, vocab, "man", "king", "woman")[0][0] == "queen"
    neighbours = emb.nearest_neighbours(vectors, vocab, "king", k=2)
    assert [w for w, _ in neighbours][0] in {"man", "queen"} and "king" not in [w for w, _ in neighbours]
    assert emb.cosine(vectors, vocab, "man", "man") == pytest.approx(1.0)
    np.testing.assert_allclose(np.diag(emb.cosine_similarity_matrix(vectors)), 1.0)
    questions = [("test", "man", "king", "woman", "queen"), ("test", "man", "woman", "king", "apple")]
    assert emb.analogy_accuracy(vectors, vocab, questions) == (0.5, 2)
    with pytest.raises(ValueError, match="shape"):
        emb.nearest_neighbours(vectors[:3], vocab, "king")
    with pytest.raises(ValueError, match="2-D"):
        emb.cosine_similarity_matrix(np.ones(3))


def test_wordsim_and_gender_projection():
    vocab = emb.build_vocab([["a", "b", "c", "d", "he", "she"]])
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(vocab), 4))
    pairs = [("a", "a", 10.0), ("a", "b", 1.0), ("c", "c", 9.0), ("zzz", "a", 5.0)]
    rho, used = emb.wordsim_spearman(vectors, vocab, pairs)
    assert used == 3 and -1 <= rho <= 1
    with pytest.raises(ValueError, match="at least 3"):
        emb.wordsim_spearman(vectors, vocab, pairs[:2])
    proj = emb.gender_projection(vectors, vocab, ["he", "she", "nope"], pairs=(("he", "she"),))
    assert set(proj) == {"he", "she"} and proj["he"] > proj["she"]


def test_ppmi_svd_groups_planted_words():
    sentences = emb.planted_corpus(2000, seed=1)
    vocab = emb.build_vocab(sentences)
    vectors = emb.ppmi_svd_vectors(sentences, vocab, dim=10, window=2)
    assert vectors.shape == (len(vocab), 10)
    assert emb.cosine(vectors, vocab, "cat", "dog") > emb.cosine(vectors, vocab, "cat", "rome")
    with pytest.raises(ValueError, match="smaller than the vocabulary"):
        emb.ppmi_svd_vectors(sentences, vocab, dim=len(vocab))


def test_shipped_data_loads():
    assert len(emb.load_wordsim353()) > 300
    assert any(q[1:] == ("athens", "greece", "baghdad", "iraq") for q in emb.load_analogies())
    assert emb.text8_excerpt_sentences(chunk_length=100_000)[0][0] == "anarch"
