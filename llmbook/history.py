"""The history of large models as data (chapter 2).

``resources/timeline.csv`` lists milestones from the 1955 Dartmouth proposal to 2023, one per row: ``year``,
``date`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``), ``event``, ``organization``, ``params`` (the published
parameter count; empty when it was not disclosed or is not meaningful, never a rumoured value), ``kind``
(event, method, architecture, model, product or concept) and ``source``, a citation key in the book's
``references.bib``.

:func:`fit_doubling_time` fits an exponential trend to parameter counts over time by least squares on
``log2(params)`` and reports the doubling time with a standard error and, optionally, a bootstrap interval.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmbook.utils import parse_count, read_csv_table

__all__ = ["COLUMNS", "KINDS", "TIMELINE_PATH", "parse_date", "date_sort_key", "decimal_year", "load_timeline",
           "DoublingFit", "fit_doubling_time"]

#: The columns of ``resources/timeline.csv``, in order.
COLUMNS = ("year", "date", "event", "organization", "params", "kind", "source")
#: The kinds of milestone a row can be.
KINDS = ("event", "method", "architecture", "model", "product", "concept")
#: Where the timeline ships inside the package.
TIMELINE_PATH = Path(__file__).resolve().parent / "resources" / "timeline.csv"
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def parse_date(text: str) -> tuple[int, int | None, int | None]:
    """Split ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` into (year, month, day); missing parts are ``None``.

    Raises ValueError for any other format or an impossible month or day.
    """
    match = _DATE.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"date must look like YYYY, YYYY-MM or YYYY-MM-DD, got {text!r}")
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) else None
    if month is not None and not 1 <= month <= 12:
        raise ValueError(f"month out of range in {text!r}")
    if day is not None and not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ValueError(f"day out of range in {text!r}")
    return year, month, day


def date_sort_key(text: str) -> tuple[int, int, int]:
    """A key that orders dates of mixed precision: a bare year or month sorts before its specific days."""
    year, month, day = parse_date(text)
    return year, month or 0, day or 0


def decimal_year(text: str) -> float:
    """The date as a decimal year, taking the middle of the period when the month or day is missing.

    ``decimal_year("2020")`` is 2020.5, ``decimal_year("2020-05")`` is 2020 + 4.5/12 and a full date is the
    middle of that day.
    """
    year, month, day = parse_date(text)
    if month is None:
        return year + 0.5
    if day is None:
        return year + (month - 0.5) / 12
    days_in_year = 366 if calendar.isleap(year) else 365
    day_of_year = sum(calendar.monthrange(year, m)[1] for m in range(1, month)) + day
    return year + (day_of_year - 0.5) / days_in_year


def load_timeline(path: str | Path | None = None) -> list[dict]:
    """Rows of the timeline as dicts, in file order.

    ``year`` is an int, ``params`` an int or ``None`` (undisclosed or not meaningful), and each row gains
    ``decimal_year`` (see :func:`decimal_year`). Raises FileNotFoundError for a missing file and ValueError,
    naming the line, for a missing column, an empty required field, a bad date, a year that disagrees with
    the date, an unknown kind or a parameter count that is not a positive whole number.
    """
    path = Path(path) if path is not None else TIMELINE_PATH
    rows = []
    for line, row in read_csv_table(path, COLUMNS, optional=("params",), what="timeline"):
        where = f"{path.name} line {line}: "
        try:
            year = parse_date(row["date"])[0]
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None
        if row["year"] != str(year):
            raise ValueError(f"{where}year {row['year']!r} disagrees with date {row['date']!r}")
        if row["kind"] not in KINDS:
            raise ValueError(f"{where}kind must be one of {KINDS}, got {row['kind']!r}")
        row["year"] = year
        row["params"] = parse_count(row["params"], where)
        row["decimal_year"] = decimal_year(row["date"])
        rows.append(row)
    return rows


@dataclass(frozen=True)
class DoublingFit:
    """Result of :func:`fit_doubling_time`. Times are in years unless the name says months."""

    slope: float  # doublings per year (slope of log2(params) against years)
    intercept: float  # log2(params) at year 0
    slope_se: float  # standard error of the slope
    r_squared: float
    n: int
    ci_months: tuple[float, float] | None = None  # bootstrap percentile interval of the doubling time

    @property
    def doubling_years(self) -> float:
        return 1.0 / self.slope

    @property
    def doubling_months(self) -> float:
        return 12.0 / self.slope

    @property
    def se_months(self) -> float:
        """Standard error of the doubling time in months (delta method: se(1/b) = se(b) / b**2)."""
        return 12.0 * self.slope_se / self.slope**2

    def predict(self, years) -> np.ndarray:
        """The fitted parameter count at the given (decimal) years."""
        return 2.0 ** (self.intercept + self.slope * np.asarray(years, dtype=float))


def _check_inputs(years, params) -> tuple[np.ndarray, np.ndarray]:
    years = np.asarray(years, dtype=float)
    params = np.asarray(params, dtype=float)
    if years.ndim != 1 or params.ndim != 1:
        raise ValueError("years and params must be one-dimensional sequences")
    if len(years) != len(params):
        raise ValueError(f"years and params must have the same length, got {len(years)} and {len(params)}")
    if len(years) < 3:
        raise ValueError(f"need at least 3 points to fit a trend with an error estimate, got {len(years)}")
    if not np.all(np.isfinite(years)):
        raise ValueError("years must be finite numbers")
    if not np.all(np.isfinite(params)) or np.any(params <= 0):
        raise ValueError("params must be positive finite numbers (drop undisclosed sizes before fitting)")
    if np.ptp(years) == 0:
        raise ValueError("all years are equal, so no trend over time can be fitted")
    return years, params


def _slope_intercept(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    x_mean = x.mean()
    slope = float(np.sum((x - x_mean) * (y - y.mean())) / np.sum((x - x_mean) ** 2))
    return slope, float(y.mean() - slope * x_mean)


def fit_doubling_time(years, params, n_boot: int = 0, seed: int = 0, level: float = 0.9) -> DoublingFit:
    """Fit ``log2(params) = intercept + slope * year`` by least squares; the doubling time is ``1 / slope``.

    ``years`` are decimal years and ``params`` positive counts, of equal length (at least 3 points).
    The standard error comes from the usual least-squares formula with ``n - 2`` degrees of freedom.
    With ``n_boot > 0`` the points are resampled with replacement ``n_boot`` times (generator seeded by
    ``seed``) and ``ci_months`` holds the central ``level`` percentile interval of the doubling time
    (``inf`` at the top when resamples show no growth). Raises ValueError for bad input or if the
    fitted trend does not grow, since a doubling time is then undefined.
    """
    x, counts = _check_inputs(years, params)
    if not (isinstance(n_boot, int) and n_boot >= 0):
        raise ValueError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    y = np.log2(counts)
    slope, intercept = _slope_intercept(x, y)
    if slope <= 0:
        raise ValueError(f"the fitted trend does not grow (slope {slope:.3g} doublings per year)")
    residuals = y - (intercept + slope * x)
    n = len(x)
    sxx = float(np.sum((x - x.mean()) ** 2))
    slope_se = math.sqrt(float(np.sum(residuals**2)) / (n - 2) / sxx) if n > 2 else math.nan
    ss_total = float(np.sum((y - y.mean()) ** 2))
    r_squared = 1.0 - float(np.sum(residuals**2)) / ss_total if ss_total > 0 else 1.0

    ci = None
    if n_boot:
        rng = np.random.default_rng(seed)
        slopes = []
        for _ in range(n_boot):
            index = rng.integers(0, n, size=n)
            if np.ptp(x[index]) > 0:
                slopes.append(_slope_intercept(x[index], y[index])[0])
        low, high = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
        ci = (12.0 / high if high > 0 else math.inf, 12.0 / low if low > 0 else math.inf)
    return DoublingFit(slope, intercept, slope_se, r_squared, n, ci)
