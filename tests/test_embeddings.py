"""Tests of llmbook.embeddings: vocabulary, sampling tricks, skip-gram training, count vectors and probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    # a dynamic window: center i draws its reach b_i from 1..window and pairs with every j, 0 < |i - j| <= b_i
    reach = np.random.default_rng(3).integers(1, 4, size=8)  # the draws skipgram_pairs makes with this seed
    centers, contexts = emb.skipgram_pairs(np.arange(8), np.zeros(8, int), window=3, rng=np.random.default_rng(3))
    expected = sorted((i, j) for i in range(8) for j in range(8) if 0 < abs(i - j) <= reach[i])
    assert sorted(zip(centers.tolist(), contexts.tolist(), strict=True)) == expected
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


def test_hand_written_gradients_match_autograd():
    gen = torch.Generator().manual_seed(0)
    v, u_pos, u_neg = (torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
                       for shape in ((3, 4, 5), (3, 4, 5), (3, 2, 5)))  # 3 groups of 4 pairs, 2 negatives, D=5
    grad_v, grad_pos, grad_neg, loss = emb.sgns_gradients(v.detach(), u_pos.detach(), u_neg.detach())
    logsigmoid = torch.nn.functional.logsigmoid
    scores_pos, scores_neg = (v * u_pos).sum(2), v @ u_neg.transpose(1, 2)
    reference = -(logsigmoid(scores_pos).sum() + logsigmoid(-scores_neg).sum())
    reference.backward()
    assert float(loss) == pytest.approx(float(reference.detach()))
    for mine, auto in ((grad_v, v.grad), (grad_pos, u_pos.grad), (grad_neg, u_neg.grad)):
        torch.testing.assert_close(mine, auto)
    with pytest.raises(ValueError, match="shape"):
        emb.sgns_gradients(v.detach(), u_pos.detach()[:, :2], u_neg.detach())


def test_learning_rate_decays_to_min_lr_even_on_short_sentences():
    # the planted corpus has sentences of 6 to 11 words, where windows are cut short at both ends
    sentences = emb.planted_corpus(500, seed=0)
    vocab = emb.build_vocab(sentences)
    result = emb.train_skipgram(sentences, vocab, dim=8, window=5, epochs=2, lr=0.025, min_lr=1e-4,
                                batch_size=128, seed=0)
    assert result.final_lr == pytest.approx(1e-4, abs=0.05 * 0.025)


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
    with pytest.raises(ValueError, match="at least 3"):
        emb.wordsim_spearman(vectors, vocab, pairs[:2])
    # vectors at angles 0, 30, 60 and 90 degrees from "a": cosines with "a" are 1, 0.87, 0.5, 0
    angles = np.radians([0, 30, 60, 90, 0, 0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    agree = [("a", "b", 9.0), ("a", "c", 5.0), ("a", "d", 1.0), ("zzz", "a", 5.0)]
    assert emb.wordsim_spearman(vectors, vocab, agree) == (pytest.approx(1.0), 3)
    disagree = [(x, y, 10 - score) for x, y, score in agree]
    assert emb.wordsim_spearman(vectors, vocab, disagree)[0] == pytest.approx(-1.0)


def test_gender_projection_on_hand_made_vectors():
    vocab = emb.build_vocab([["he", "she", "king", "queen", "table"]])
    vectors = np.zeros((len(vocab), 3))
    for word, vector in {"he": [1, 0, 0], "she": [-1, 0, 0], "king": [1, 1, 0], "queen": [-1, 2, 0],
                         "table": [0, 0, 1]}.items():
        vectors[vocab.id(word)] = vector
    proj = emb.gender_projection(vectors, vocab, ["king", "queen", "table", "nope"], pairs=(("he", "she"),),
                                 center=False)
    assert set(proj) == {"king", "queen", "table"}  # unknown words are skipped
    assert proj["king"] == pytest.approx(1 / np.sqrt(2))  # the direction is the first axis
    assert proj["queen"] == pytest.approx(-1 / np.sqrt(5))
    assert proj["table"] == pytest.approx(0.0)
    centred = emb.gender_projection(vectors, vocab, ["table"], pairs=(("he", "she"),))
    mean = vectors.mean(0)  # (0, 0.6, 0.2): centring moves "table" to (0, -0.6, 0.8), still orthogonal
    assert centred["table"] == pytest.approx(0.0) and np.allclose(mean, [0, 0.6, 0.2])


def test_ppmi_svd_groups_planted_words():
    sentences = emb.planted_corpus(2000, seed=1)
    vocab = emb.build_vocab(sentences)
    vectors = emb.ppmi_svd_vectors(sentences, vocab, dim=10, window=2)
    assert vectors.shape == (len(vocab), 10)
    assert emb.cosine(vectors, vocab, "cat", "dog") > emb.cosine(vectors, vocab, "cat", "rome")
    with pytest.raises(ValueError, match="smaller than the vocabulary"):
        emb.ppmi_svd_vectors(sentences, vocab, dim=len(vocab))


def test_vocab_from_gensim_lines_up_with_the_gensim_vectors():
    from collections import Counter

    from gensim.models import Word2Vec

    sentences = emb.planted_corpus(300, seed=0)
    wv = Word2Vec(sentences, vector_size=8, window=2, min_count=1, workers=1, seed=0, epochs=1).wv
    vocab = emb.vocab_from_gensim(wv)
    assert len(vocab) == len(wv.index_to_key)
    assert all(vocab.id(word) == wv.key_to_index[word] for word in wv.index_to_key)  # row i of wv.vectors
    assert dict(zip(vocab.words, vocab.counts.tolist(), strict=True)) == Counter(w for s in sentences for w in s)
    # the book's probes on gensim's vectors agree with gensim's own
    ours = emb.nearest_neighbours(wv.vectors, vocab, "cat", k=4)
    theirs = wv.most_similar("cat", topn=4)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-5)
