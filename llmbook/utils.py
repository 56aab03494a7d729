"""Helpers every chapter uses: seeds and the thread policy, argument checks, a model's mode and fingerprint.

- :func:`setup` and :func:`set_seed` (chapter 1, and the first cell of every chapter): reproducible runs.
- :func:`count_parameters` (chapter 1) and :func:`weights_fingerprint` (chapter 6, again in chapter 10): what a
  model holds, counted and hashed.
- :func:`eval_mode` and :func:`train_mode`: run code with models in evaluation (or training) mode and put each
  model back in the mode it was in, even when the code raises.
- ``check_*``: argument checks with clear messages, used by every module; :func:`read_csv_table` and
  :func:`parse_count` read the data tables of chapters 2 and 3.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import random
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["DEFAULT_THREADS", "set_seed", "setup", "count_parameters", "weights_fingerprint", "eval_mode",
           "train_mode", "check_int", "check_positive", "check_probability", "check_shape", "check_token_ids",
           "check_token_batch", "check_causal", "read_csv_table", "parse_count"]

#: The book's thread policy: one CPU thread for PyTorch and for NumPy's BLAS, everywhere. The models in the
#: book are small, so a second thread saves little when the machine is idle, and when another process keeps one
#: core busy (a browser, a shared Binder pod) two threads that must meet at every operation are several times
#: slower than one (book/setup.md gives the measurements). One thread also makes the stored outputs independent of
#: how many cores the reader's machine has.
DEFAULT_THREADS = 1


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and (if installed) PyTorch's random number generators."""
    check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but keep this usable without it
        return
    torch.manual_seed(seed)


def setup(seed: int = 0, threads: int = DEFAULT_THREADS) -> dict:
    """Make a notebook reproducible: seed every generator and fix the number of CPU threads.

    The stored outputs of the book were produced with ``threads=1`` (see ``DEFAULT_THREADS``); a different
    count can change the last digits of floating-point sums. Hugging Face libraries are put in offline mode, so
    that nothing is ever downloaded. Returns a small dict describing the settings.
    """
    check_int("threads", threads, minimum=1)
    # No PYTHONHASHSEED here: a running interpreter keeps the hash seed it started with, and Binder, Colab and a
    # hub start Python with a random one. Nothing the book computes depends on it (tests/test_hub.py).
    # The book builds every Hugging Face model from a configuration; nothing may reach the network.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    else:
        threadpool_limits(limits=threads)  # NumPy's and SciPy's BLAS
    set_seed(seed)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # can only be set once per process, before any parallel work; it is harmless to skip
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new uninitialised tensor with NaN, which costs time and changes no
    # result of correct code; turn that part off.
    torch.utils.deterministic.fill_uninitialized_memory = False
    return {"seed": seed, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__.split("+")[0]}


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of scalar parameters in a ``torch.nn.Module``."""
    if not hasattr(model, "parameters"):
        raise TypeError(f"expected a torch.nn.Module (something with .parameters()), got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def weights_fingerprint(model) -> str:
    """A short fingerprint of all of a model's weights: the first 16 hex digits of a SHA-256 of their bytes.

    Every tensor of ``model.state_dict()`` (parameters and persistent buffers), in order, is hashed as its raw
    bytes. Any change to any weight changes the fingerprint; running the model (generation) does not. Chapter 6
    introduces it to show that a prompt changes no weight; chapter 10 uses it to tell training apart from
    chatting. Raises TypeError for anything that is not a ``torch.nn.Module``.
    """
    if not hasattr(model, "state_dict"):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _models_in_mode(models: tuple, training: bool, what: str) -> Iterator[None]:
    for model in models:
        if not (hasattr(model, "training") and callable(getattr(model, "train", None))):
            raise TypeError(f"{what} takes torch.nn.Module objects, got {type(model).__name__}")
    previous = [model.training for model in models]
    try:
        for model in models:
            model.train(training)
        yield
    finally:
        for model, was_training in zip(models, previous, strict=True):
            model.train(was_training)


def eval_mode(*models):
    """A context manager: the ``models`` are in evaluation mode inside the ``with`` block, as they were after it.

    ``with eval_mode(model): ...`` calls ``model.eval()`` on entry and, on exit, ``model.train(was_training)``
    with the mode the model had before, also when the block raises (the restoring is in a ``finally``). As with
    ``model.train(flag)``, the model's own flag is restored on the model and all its submodules. Several models
    can be given at once, and blocks nest: each exit restores what its own entry found. Evaluation mode turns
    dropout off; it does not turn off gradients (use ``torch.no_grad()`` for that). Raises TypeError for an
    argument that is not a ``torch.nn.Module``.
    """
    return _models_in_mode(models, False, "eval_mode")


def train_mode(*models):
    """A context manager like :func:`eval_mode`, with the ``models`` in *training* mode inside the block.

    Used by the training loops (:func:`llmbook.training.optimise` and the functions built on it), which leave a
    model in the mode it was in before the call.
    """
    return _models_in_mode(models, True, "train_mode")


def check_int(name: str, value, minimum: int | None = None) -> int:
    """Raise a clear error unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_positive(name: str, value) -> float:
    """Raise a clear error unless ``value`` is a finite number greater than zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_probability(name: str, value, *, allow_zero: bool = True) -> float:
    """Raise a clear error unless ``value`` is a number in [0, 1] (or (0, 1] if ``allow_zero`` is False)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return float(value)


def check_shape(name: str, array, expected: Sequence[int | str | None]) -> None:
    """Check an array's shape against a pattern.

    ``expected`` holds one entry per dimension: an int must match exactly, ``None`` matches anything,
    and a string names a dimension (e.g. ``"batch"``) that matches anything. The error message shows
    both shapes, for example ``x must have shape (batch, time, 64), got (2, 5, 32)``.
    """
    shape = tuple(getattr(array, "shape", ()))
    pattern = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ")"
    if len(shape) != len(expected):
        raise ValueError(f"{name} must have {len(expected)} dimensions {pattern}, got shape {shape}")
    for size, want in zip(shape, expected, strict=True):
        if isinstance(want, int) and size != want:
            raise ValueError(f"{name} must have shape {pattern}, got {shape}")


def check_token_ids(name: str, ids, min_length: int = 1):
    """Return ``ids`` (a list or 1-D tensor of token ids) as a 1-D int64 ``torch.Tensor``.

    Raises TypeError if ``ids`` cannot be read as integers (floats and booleans are refused) and ValueError if
    it is not one-dimensional or holds fewer than ``min_length`` ids. Used by the training and decoding code
    of chapter 6 and by the KV cache and the memorisation test of chapter 11.
    """
    import torch

    check_int("min_length", min_length, minimum=0)
    if not isinstance(ids, torch.Tensor):
        try:
            ids = torch.as_tensor(ids if isinstance(ids, np.ndarray) else list(ids))
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be a 1-D sequence of token ids, got {type(ids).__name__}") from error
        if ids.numel() == 0:
            ids = ids.long()  # an empty list has no dtype of its own
    if ids.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if len(ids) < min_length:
        raise ValueError(f"{name} must hold at least {min_length} token id{'' if min_length == 1 else 's'}, "
                         f"got {len(ids)}")
    return ids.long()


def check_token_batch(name: str, ids, vocab_size: int | None = None, max_length: int | None = None,
                      min_length: int = 0):
    """Return ``ids`` after checking that it is a (batch, time) tensor of token ids that a model can read.

    Raises TypeError if ``ids`` is not a ``torch.Tensor`` or does not hold integers (int64 or int32), and
    ValueError if it is not two-dimensional, has fewer than ``min_length`` positions, more than ``max_length``
    (a context size), or an id outside ``[0, vocab_size)``. ``None`` skips the length or range check. Used by
    every model that reads token ids in batches (chapters 5 to 11); :func:`check_token_ids` is its 1-D sibling.
    """
    import torch

    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a (batch, time) torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dim() != 2:
        raise ValueError(f"{name} must be a (batch, time) tensor of token ids, got shape {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must hold integers (token ids), got dtype {ids.dtype}")
    length = ids.shape[1]
    if length < min_length:
        raise ValueError(f"{name} must hold at least {min_length} position(s), got {length}")
    if max_length is not None and length > max_length:
        raise ValueError(f"{name} has length {length}, which exceeds the context size {max_length}")
    if vocab_size is not None and ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got values from {int(ids.min())} to "
                         f"{int(ids.max())} in {name}")
    return ids


def check_causal(model, what: str) -> None:
    """Raise ValueError if ``model`` is not causal, naming ``what`` (the function that needs a causal model).

    Next-token prediction (training on shifted targets, measuring a next-token loss, generation, the KV cache)
    needs a model in which position t sees only positions 0..t. A model that reports ``is_causal`` False, such as
    :class:`llmbook.architectures.MaskedLM` (an encoder, whose every position sees the whole input), would see
    the very token it should predict, or predict the wrong position. Models without ``is_causal`` pass
    (:attr:`llmbook.transformer.GPT.is_causal` is True when every block's attention is causal).
    """
    if not getattr(model, "is_causal", True):
        raise ValueError(f"{what} needs a causal language model (a decoder that predicts the next token); "
                         f"{type(model).__name__} attends in both directions, so it cannot be used here")


def read_csv_table(path, columns: Sequence[str], optional: Sequence[str] = (), what: str = "table") -> list:
    """Read a CSV file with a header row; return ``(line_number, row)`` pairs, each row a dict of stripped strings.

    Only ``columns`` are kept. Raises FileNotFoundError (naming ``what``) for a missing file and ValueError for
    a missing column or an empty field in any column not listed in ``optional``; the messages name the file and
    the line. The data tables of chapters 2 and 3 (``llmbook.history``, ``llmbook.catalog``) are read with it.
    """
    import csv
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path.name} lacks the column(s) {missing}; expected {list(columns)}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            row = {c: (raw[c] or "").strip() for c in columns}
            for column in columns:
                if column not in optional and not row[column]:
                    raise ValueError(f"{path.name} line {line}: empty {column!r}")
            rows.append((line, row))
    return rows


def parse_count(text: str, where: str = "") -> int | None:
    """A published count such as a parameter number: a positive whole number, or ``None`` for an empty field.

    Raises ValueError (prefixed with ``where``, e.g. ``"models.csv line 4: "``) for anything else ("1e9",
    "0", "175B"): the tables store exact published numbers only.
    """
    import re

    text = (text or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[1-9]\d*", text):
        raise ValueError(f"{where}params must be a positive integer or empty, got {text!r}")
    return int(text)
