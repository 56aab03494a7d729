"""Results that hold on every reader's machine: repeated runs, their spread, ties, and claims checked in code.

A number produced by training depends on the seed and on the CPU (an AVX2 laptop and an AVX-512 server round sums
differently, and training amplifies the difference). So the book never rests a conclusion on one run's last
digits. It runs a comparison over several seeds (:func:`over_seeds`), reports the mean and the spread
(:class:`Spread`), calls a difference inside the noise a tie (:func:`compare`), and asserts each claim its prose
makes with a margin that holds across seeds and CPUs (:func:`check_claim`). Taught in chapter 1 and used from there on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from llmbook.utils import check_int, check_positive, set_seed

__all__ = ["ClaimError", "Spread", "Comparison", "check_claim", "spread", "compare", "over_seeds"]


class ClaimError(AssertionError):
    """Raised by :func:`check_claim` when a claim of the book does not hold on this run."""


class _PrintedLine(str):
    """The line :func:`check_claim` printed. A notebook cell that ends with the call shows nothing more (under
    nbval, which runs cells without history, a trailing ``;`` does not hide a result)."""

    def _ipython_display_(self) -> None:
        pass


def check_claim(claim: str, holds, evidence: str = "") -> str:
    """Assert a claim that the prose makes about a result, and print it with a tick.

    ``claim`` is the sentence the book relies on, ``holds`` the condition computed from this run (a bool, or
    anything with a truth value such as a one-element tensor), ``evidence`` the numbers to show if it fails. The
    printed line does not depend on the run, so a notebook can compare it exactly on every machine. Raises
    :class:`ClaimError` (an ``AssertionError``) with the claim and the evidence when the condition is false.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise TypeError(f"claim must be a non-empty sentence, got {claim!r}")
    try:
        ok = bool(holds)
    except (TypeError, RuntimeError, ValueError) as error:
        raise TypeError(f"the condition of the claim {claim!r} has no single truth value: {error}") from None
    if not ok:
        detail = f" Evidence: {evidence}." if evidence else ""
        raise ClaimError(f"The book claims: {claim!r}, but on this run it does not hold.{detail} "
                         "If this happens on your machine, please report it: the claim, not the check, is wrong.")
    line = f"✓ {claim}"
    print(line)
    return _PrintedLine(line)


def _floats(name: str, values: Iterable[float]) -> list[float]:
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"{name} needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers, got {values}")
    return values


@dataclass(frozen=True)
class Spread:
    """The results of one setting over several seeds: their mean, sample standard deviation and range.

    ``format(s, ".2f")`` gives ``"0.83 ± 0.02"`` (mean ± standard deviation); ``str(s)`` adds the number of seeds.
    ``sd`` is 0 for a single value.
    """

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def sd(self) -> float:
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def se(self) -> float:
        """The standard error of the mean, ``sd / sqrt(n)``."""
        return self.sd / math.sqrt(self.n)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.mean:{spec}} ± {self.sd:{spec}}"

    def __str__(self) -> str:
        return f"{self:.3g} ({self.n} seed{'s' if self.n != 1 else ''})"


def spread(values: Iterable[float]) -> Spread:
    """A :class:`Spread` of finite numbers, e.g. one accuracy per seed. Raises ``ValueError`` on none or NaN."""
    return Spread(tuple(_floats("spread", values)))


@dataclass(frozen=True)
class Comparison:
    """The difference ``a - b`` of two settings' means, with the noise band ``z`` standard errors wide."""

    difference: float
    noise: float
    names: tuple[str, str]

    @property
    def tie(self) -> bool:
        """True when the difference lies within the noise band: the runs cannot tell the two settings apart."""
        return abs(self.difference) <= self.noise

    @property
    def verdict(self) -> str:
        a, b = self.names
        if self.tie:
            return "a tie"
        return f"{a} higher" if self.difference > 0 else f"{b} higher"

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        a, b = self.names
        return f"{a} - {b}: {self.difference:+{spec}} ± {self.noise:{spec}}, {self.verdict}"

    def __str__(self) -> str:
        return format(self, ".3f")


def compare(a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("a", "b"), paired: bool = False,
            z: float = 2.0) -> Comparison:
    """Compare two settings run over seeds: is the difference of their means larger than the noise?

    With ``paired=True`` the i-th values of ``a`` and ``b`` share a seed (and a test set), and the noise is the
    standard error of the per-seed differences; otherwise it is the standard error of the difference of two
    independent means. The noise band is ``z`` standard errors (2 by default, roughly a 95 % interval for many
    seeds; with 3 seeds it is generous to the difference, so a tie is a safe reading). Raises ``ValueError``
    unless both have at least two finite values, and the same number of values when paired.
    """
    a, b = _floats("compare (first)", a), _floats("compare (second)", b)
    check_positive("z", z)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"compare needs at least two runs of each setting (seeds), got {len(a)} and {len(b)}")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired runs need the same number of values, got {len(a)} and {len(b)}")
        differences = spread([x - y for x, y in zip(a, b, strict=True)])
        return Comparison(differences.mean, z * differences.se, tuple(names))
    sa, sb = spread(a), spread(b)
    return Comparison(sa.mean - sb.mean, z * math.sqrt(sa.se ** 2 + sb.se ** 2), tuple(names))


def over_seeds(run: Callable[[int], object], seeds: Sequence[int] = (0, 1, 2)) -> list:
    """Call ``run(seed)`` once per seed, after :func:`~llmbook.utils.set_seed` with that seed; return the results.

    The book compares methods over at least three seeds; a seed is anything that starts the randomness of a run
    (initial weights, the order of batches, sampled answers).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("over_seeds needs at least one seed")
    for seed in seeds:
        check_int("seed", seed, minimum=0)
    results = []
    for seed in seeds:
        set_seed(seed)
        results.append(run(seed))
    return results
