import numpy as np
import pytest

from llmbook.retrieval import JOBS, TOWNS, Person, TfidfRetriever, make_people


def test_make_people_is_reproducible_and_distinct():
    people = make_people(100, seed=3)
    assert people == make_people(100, seed=3) and people != make_people(100, seed=4)
    assert len({p.name for p in people}) == 100
    assert all(p.town in TOWNS and p.job in JOBS for p in people)
    assert people[0].sentence().startswith(people[0].name + " lives in " + people[0].town)
    assert make_people(576)[0].name.count(" ") == 1  # every name combination can be drawn


def test_town_weights_set_the_shares():
    only_oslo = make_people(20, town_weights=[1] + [0] * (len(TOWNS) - 1))
    assert {p.town for p in only_oslo} == {"Oslo"}
    skewed = make_people(576, seed=0, town_weights=[3, 1, 0, 0, 0, 0, 0, 0])  # weights need not sum to 1
    share = sum(p.town == "Oslo" for p in skewed) / 576
    assert {p.town for p in skewed} == {"Oslo", "Lima"} and 0.68 < share < 0.82


def test_make_people_bad_input():
    with pytest.raises(ValueError, match="at most 576"):
        make_people(577)
    with pytest.raises(ValueError, match=">= 1"):
        make_people(0)
    with pytest.raises(ValueError, match=">= 0"):
        make_people(5, seed=-1)
    with pytest.raises(ValueError, match="town_weights"):
        make_people(5, town_weights=[1, 2])
    with pytest.raises(ValueError, match="town_weights"):
        make_people(5, town_weights=[-1] + [1] * (len(TOWNS) - 1))


def test_person_sentence():
    assert Person("Ada Berg", "Lima", "nurse").sentence() == "Ada Berg lives in Lima and works as a nurse."


def test_tfidf_retriever_finds_the_right_document():
    people = make_people(50, seed=0)
    retriever = TfidfRetriever([p.sentence() for p in people])
    for i, person in enumerate(people):
        assert retriever.search(f"Where does {person.name} live?")[0] == i
    assert retriever.search("WHERE DOES " + people[7].name.upper() + " LIVE")[0] == 7  # lower-cased
    best = retriever.search("Oslo", k=3)
    scores = retriever.scores("Oslo")
    assert len(best) == 3 and list(scores[best]) == sorted(scores[best], reverse=True)
    assert scores.shape == (50,) and np.all((scores >= 0) & (scores <= 1 + 1e-12))


def test_ties_go_to_the_lower_index_and_unknown_words_score_zero():
    retriever = TfidfRetriever(["red apple", "green apple", "red apple"])
    assert retriever.search("red apple", k=2) == [0, 2]  # documents 0 and 2 are identical
    scores = retriever.scores("nothing matches zzz")
    assert np.all(scores == 0)
    assert retriever.search("nothing matches zzz", k=3) == [0, 1, 2]


def test_noisy_search():
    people = make_people(50, seed=0)
    retriever = TfidfRetriever([p.sentence() for p in people])
    rng = np.random.default_rng(0)
    noisy = [retriever.noisy_search(people[0].name, 1.0, rng) for _ in range(200)]
    assert 0 not in noisy and len(set(noisy)) > 30  # noise 1.0: always another document, spread out
    assert retriever.noisy_search(people[0].name, 0.0, rng) == 0
    wrong = np.mean([retriever.noisy_search(people[0].name, 0.3, rng) != 0 for _ in range(2000)])
    assert 0.26 < wrong < 0.34  # about the noise level
    single = TfidfRetriever(["only one"])
    assert single.noisy_search("one", 1.0, rng) == 0  # nothing else to return


def test_retriever_bad_input():
    with pytest.raises(TypeError, match="non-empty strings"):
        TfidfRetriever(["a b", ""])
    with pytest.raises(TypeError, match="non-empty strings"):
        TfidfRetriever("a single string")
    with pytest.raises(ValueError, match="at least one"):
        TfidfRetriever([])
    retriever = TfidfRetriever(["red apple", "green pear"])
    with pytest.raises(TypeError, match="query"):
        retriever.scores(3)
    with pytest.raises(ValueError, match=">= 1"):
        retriever.search("apple", k=0)
    with pytest.raises(ValueError, match="noise"):
        retriever.noisy_search("apple", 1.5, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        retriever.noisy_search("apple", 0.5, 0)


def test_scores_are_the_tf_idf_cosines_computed_by_hand():
    # idf(t) = ln((1 + n) / (1 + df(t))) + 1 (smoothed), rows scaled to length 1, score = dot product
    retriever = TfidfRetriever(["red apple", "green apple", "red red pear"])
    idf = {"apple": np.log(4 / 3) + 1, "green": np.log(4 / 2) + 1, "pear": np.log(4 / 2) + 1,
           "red": np.log(4 / 3) + 1}

    def unit(counts):
        vector = np.array([counts.get(t, 0) * idf[t] for t in sorted(idf)])
        return vector / np.linalg.norm(vector)

    documents = [unit({"red": 1, "apple": 1}), unit({"green": 1, "apple": 1}), unit({"red": 2, "pear": 1})]
    query = unit({"red": 1, "pear": 1})
    np.testing.assert_allclose(retriever.scores("red pear"), [d @ query for d in documents], atol=1e-12)
    assert retriever.search("red pear", k=3) == [2, 0, 1]


def test_a_rare_word_outweighs_a_common_one():
    # "apple" is in every document, "pear" in one. By word counts alone (no IDF) the one-word document "apple"
    # would be the closest to "apple pear" (cosine 0.71 against 0.63); weighting by rarity ranks the long
    # document that holds "pear" first (0.62 against 0.43).
    retriever = TfidfRetriever(["apple", "apple pear pie cake tart", "apple pie", "apple cake", "apple tart"])
    assert retriever.search("apple pear", k=2) == [1, 0]
    assert retriever.search("apple")[0] == 0  # with only the common word, the document of that word alone wins


def test_lowercase_false_matches_case_and_k_beyond_the_documents():
    people = make_people(5, seed=1)
    exact = TfidfRetriever([p.sentence() for p in people], lowercase=False)
    name = people[3].name
    assert exact.search(name)[0] == 3
    assert np.all(exact.scores(name.upper()) == 0)  # other case, other words
    assert sorted(exact.search(name, k=50)) == [0, 1, 2, 3, 4]  # k larger than the collection: all of it
