import numpy as np
import pytest

from llmbook.adaptation import (
    KINDS,
    generate_corpus,
    learning_curve,
    make_task,
    mean_vectors,
    nouns,
    pretrain_word_vectors,
)


@pytest.fixture(scope="module")
def vectors():
    return pretrain_word_vectors(generate_corpus(3000, seed=0), dim=16, epochs=5, seed=0)


def test_world_and_corpus():
    assert len(nouns()) == 48
    corpus = generate_corpus(50, seed=1)
    assert len(corpus) == 50 and all(len(s) == 6 for s in corpus)
    assert generate_corpus(50, seed=1) == corpus  # deterministic


def test_task_labels_follow_the_world():
    kind_of = {noun: kind for noun, kind, _ in nouns()}
    sentences, labels = make_task("kind", 30, seed=0)
    for words, label in zip(sentences, labels, strict=True):
        noun = next(w for w in words if w in kind_of)
        assert KINDS[label] == kind_of[noun]


def test_pretrained_vectors_group_nouns_by_kind(vectors):
    same = vectors.similarity("elephant", "mouse")  # both animals
    other = vectors.similarity("elephant", "screw")
    assert same > other


def test_mean_vectors_shape_and_unknown_words(vectors):
    features = mean_vectors([["the", "mouse"], ["zzz-unknown"]], vectors)
    assert features.shape == (2, 16)
    assert np.all(features[1] == 0)


def test_learning_curve_pretraining_helps_with_few_labels(vectors):
    result = learning_curve("kind", vectors, budgets=(32,), repeats=2, n_test=200)
    assert result["pretrained"].shape == (1, 2)
    assert result["pretrained"].mean() > result["scratch"].mean()


def test_bad_input_raises_clear_errors(vectors):
    with pytest.raises(ValueError, match="task must be one of"):
        make_task("colour", 10)
    with pytest.raises(ValueError, match="n_sentences"):
        generate_corpus(0)
    with pytest.raises(ValueError, match="noise"):
        generate_corpus(10, noise=1.5)
    with pytest.raises(ValueError, match="non-empty"):
        pretrain_word_vectors([])
    with pytest.raises(ValueError, match="budget"):
        learning_curve("size", vectors, budgets=(1,))
    with pytest.raises(TypeError, match="repeats"):
        learning_curve("size", vectors, repeats=2.5)
