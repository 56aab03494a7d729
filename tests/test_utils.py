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


def test_setup_reports_settings():
    info = setup(seed=1, threads=1)
    assert info["seed"] == 1 and info["threads"] == 1
    setup(seed=0, threads=2)


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
