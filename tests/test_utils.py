import os
import random

import numpy as np
import pytest
import torch

from llmbook.utils import (
    check_int,
    check_positive,
    check_probability,
    check_shape,
    count_parameters,
    set_seed,
    setup,
)


def test_set_seed_makes_numpy_and_torch_repeatable():
    set_seed(3)
    a = (np.random.rand(3), torch.rand(3))
    set_seed(3)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture()
def restore_global_state(monkeypatch):
    """Undo everything setup() changes: random states, thread counts, deterministic mode, environment."""
    from threadpoolctl import threadpool_limits

    for name in OFFLINE_VARIABLES:  # online for now; monkeypatch restores (or removes) them afterwards
        monkeypatch.setenv(name, "0")
    blas = threadpool_limits(limits=None)  # records the current limits, changes nothing
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    threads = torch.get_num_threads()
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        yield
    finally:
        blas.restore_original_limits()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.utils.deterministic.fill_uninitialized_memory = fill
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_setup_fixes_threads_seeds_and_offline_mode(restore_global_state):
    from threadpoolctl import threadpool_info

    info = setup(seed=1, threads=2)
    assert info["seed"] == 1 and info["threads"] == 2 == torch.get_num_threads()
    assert all(lib["num_threads"] == 2 for lib in threadpool_info())  # NumPy's BLAS too
    assert all(os.environ[name] == "1" for name in OFFLINE_VARIABLES)
    assert torch.are_deterministic_algorithms_enabled()
    first = _draws()
    assert setup(seed=1, threads=1)["threads"] == 1 == torch.get_num_threads()
    assert all(lib["num_threads"] == 1 for lib in threadpool_info())
    assert _draws() == first  # the same seed replays Python's, NumPy's and PyTorch's draws
    setup(seed=2, threads=1)
    assert all(a != b for a, b in zip(_draws(), first, strict=True))  # another seed, other draws in each
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        setup(seed=3, threads=0)
    assert torch.get_num_threads() == 1  # a rejected call changes nothing
    with pytest.raises(TypeError, match="threads must be an integer"):
        setup(threads=1.0)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises((TypeError, ValueError), match="seed"):
        set_seed(bad)


def test_count_parameters():
    model = torch.nn.Linear(3, 2)
    assert count_parameters(model) == 8
    model.bias.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 6
    with pytest.raises(TypeError, match="torch.nn.Module"):
        count_parameters([1, 2, 3])


def test_checks_name_what_was_expected():
    assert check_int("n", 3, minimum=1) == 3
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        check_positive("lr", 0.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        check_probability("p", 1.5)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
        check_probability("p", 0.0, allow_zero=False)


def test_check_shape():
    x = np.zeros((2, 5, 32))
    check_shape("x", x, ("batch", None, 32))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, time, 64\), got \(2, 5, 32\)"):
        check_shape("x", x, ("batch", "time", 64))
    with pytest.raises(ValueError, match="3 dimensions"):
        check_shape("x", np.zeros((2, 5)), ("batch", "time", 64))


def test_check_token_ids_accepts_lists_and_tensors_and_names_the_problem():
    from llmbook.utils import check_token_ids

    assert check_token_ids("ids", [3, 1, 2]).tolist() == [3, 1, 2]
    assert check_token_ids("ids", np.array([4, 5], dtype=np.int32)).dtype == torch.int64
    with pytest.raises(TypeError, match="ids must hold integer token ids"):
        check_token_ids("ids", [0.5, 1.0])
    with pytest.raises(TypeError, match="1-D sequence of token ids"):
        check_token_ids("ids", "abc")
    with pytest.raises(ValueError, match=r"got shape \(2, 2\)"):
        check_token_ids("ids", torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="data must hold at least 3 token id"):
        check_token_ids("data", [1, 2], min_length=3)
    with pytest.raises(ValueError, match="at least 1 token id"):
        check_token_ids("prompt_ids", [])


def test_read_csv_table_and_parse_count(tmp_path):
    from llmbook.utils import parse_count, read_csv_table

    table = tmp_path / "t.csv"
    table.write_text("name,params,extra\n a ,12,x\nb,,y\n", encoding="utf-8")
    assert read_csv_table(table, ("name", "params"), optional=("params",)) == [
        (2, {"name": "a", "params": "12"}), (3, {"name": "b", "params": ""})]
    with pytest.raises(ValueError, match="t.csv line 3: empty 'params'"):
        read_csv_table(table, ("name", "params"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['size'\]"):
        read_csv_table(table, ("name", "size"))
    with pytest.raises(FileNotFoundError, match="timeline not found"):
        read_csv_table(tmp_path / "none.csv", ("name",), what="timeline")
    assert parse_count("175000000000") == 175_000_000_000 and parse_count(" ") is None
    for bad in ("1e9", "0", "175B", "-3", "012"):
        with pytest.raises(ValueError, match="line 4: params must be a positive integer"):
            parse_count(bad, "line 4: ")


def test_check_token_batch_names_each_problem():
    from llmbook.utils import check_token_batch

    ids = torch.tensor([[1, 2, 3], [0, 4, 2]])
    assert check_token_batch("ids", ids, vocab_size=5, max_length=3, min_length=1) is ids
    with pytest.raises(TypeError, match=r"ids must be a \(batch, time\) torch.Tensor of token ids, got list"):
        check_token_batch("ids", [[1, 2]])
    with pytest.raises(ValueError, match=r"\(batch, time\) tensor of token ids, got shape \(3,\)"):
        check_token_batch("ids", torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="ids must hold integers"):
        check_token_batch("ids", ids.float())
    with pytest.raises(TypeError, match="integers"):
        check_token_batch("ids", ids.bool())
    with pytest.raises(ValueError, match="at least 1 position"):
        check_token_batch("ids", torch.zeros(2, 0, dtype=torch.long), min_length=1)
    with pytest.raises(ValueError, match="length 3, which exceeds the context size 2"):
        check_token_batch("ids", ids, max_length=2)
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\), got values from 0 to 4 in ids"):
        check_token_batch("ids", ids, vocab_size=4)
    with pytest.raises(ValueError, match=r"from -1 to 3"):
        check_token_batch("ids", torch.tensor([[-1, 3]]), vocab_size=4)
