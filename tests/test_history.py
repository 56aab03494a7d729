"""Tests of llmbook.history: the timeline data of chapter 2 and the doubling-time fit."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from llmbook.catalog import bibtex_keys
from llmbook.history import (
    COLUMNS,
    TIMELINE_PATH,
    date_sort_key,
    decimal_year,
    fit_doubling_time,
    load_timeline,
    parse_date,
)

BIB = Path(__file__).resolve().parent.parent / "book" / "references.bib"


def test_columns_are_exactly_the_documented_ones():
    with TIMELINE_PATH.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == COLUMNS


def test_every_source_key_is_in_the_bibliography():
    keys = bibtex_keys(BIB)
    missing = sorted({row["source"] for row in load_timeline()} - keys)
    assert not missing, f"timeline sources missing from references.bib: {missing}"


def test_dates_are_ordered_and_match_the_year():
    rows = load_timeline()
    sort_keys = [date_sort_key(row["date"]) for row in rows]
    assert sort_keys == sorted(sort_keys)
    assert all(row["year"] == key[0] for row, key in zip(rows, sort_keys, strict=True))


def test_params_are_empty_or_positive_and_undisclosed_sizes_stay_empty():
    rows = load_timeline()
    assert all(row["params"] is None or row["params"] > 0 for row in rows)
    by_event = {row["event"]: row for row in rows}
    assert by_event["GPT-4"]["params"] is None
    assert by_event["ChatGPT"]["params"] is None
    assert by_event["GPT-3"]["params"] == 175_000_000_000


def test_parse_date_and_decimal_year():
    assert parse_date("2022-11-30") == (2022, 11, 30)
    assert parse_date("1956") == (1956, None, None)
    assert decimal_year("2020") == 2020.5
    assert decimal_year("2020-05") == pytest.approx(2020 + 4.5 / 12)
    assert 2022.9 < decimal_year("2022-11-30") < 2023.0
    for bad, message in (("22-11-30", "date must look like YYYY, YYYY-MM or YYYY-MM-DD, got '22-11-30'"),
                         ("2022/11/30", "date must look like YYYY, YYYY-MM or YYYY-MM-DD"),
                         ("2022-13", "month out of range in '2022-13'"),
                         ("2023-02-29", "day out of range in '2023-02-29'"),
                         ("", "date must look like YYYY, YYYY-MM or YYYY-MM-DD, got ''")):
        with pytest.raises(ValueError, match=message):
            parse_date(bad)


def test_load_timeline_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="timeline not found: .*nope.csv"):
        load_timeline(tmp_path / "nope.csv")
    header = ",".join(COLUMNS)
    cases = {
        "year,date,event\n2020,2020,x\n": "lacks the column",
        f"{header}\n2020,2020-05,GPT-3,OpenAI,-5,model,brown2020gpt3\n": "params must be a positive integer",
        f"{header}\n2020,2020-05,GPT-3,OpenAI,1.7e11,model,brown2020gpt3\n": "params must be a positive integer",
        f"{header}\n2021,2020-05,GPT-3,OpenAI,,model,brown2020gpt3\n": "disagrees with date",
        f"{header}\n2020,May 2020,GPT-3,OpenAI,,model,brown2020gpt3\n": "date must look like",
        f"{header}\n2020,2020-05,GPT-3,OpenAI,,rumour,brown2020gpt3\n": "kind must be one of",
        f"{header}\n2020,2020-05,GPT-3,OpenAI,,model,\n": "empty 'source'",
    }
    for text, message in cases.items():
        path = tmp_path / "bad.csv"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_timeline(path)


@pytest.mark.parametrize("months", [6.0, 12.0, 30.0])
def test_fit_recovers_the_doubling_time_of_exact_exponential_data(months):
    years = np.array([2010.0, 2011.5, 2013.0, 2016.25, 2020.0])
    params = 1e6 * 2.0 ** ((years - 2010.0) * 12.0 / months)
    fit = fit_doubling_time(years, params, n_boot=200, seed=1)
    assert fit.doubling_months == pytest.approx(months, rel=1e-9)
    assert fit.doubling_years == pytest.approx(months / 12, rel=1e-9)
    assert fit.se_months == pytest.approx(0.0, abs=1e-6)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.ci_months[0] == pytest.approx(months, rel=1e-6) and fit.ci_months[1] == pytest.approx(months, rel=1e-6)
    assert fit.predict([2010.0])[0] == pytest.approx(1e6)


def test_fit_on_noisy_data_brackets_the_truth_and_is_reproducible():
    rng = np.random.default_rng(0)
    years = np.linspace(2010, 2022, 40)
    params = 2.0 ** (years - 2010 + rng.normal(0, 0.5, size=years.size))  # doubling every 12 months
    fit = fit_doubling_time(years, params, n_boot=500, seed=3)
    assert abs(fit.doubling_months - 12) < 4 * fit.se_months
    assert fit.ci_months[0] < fit.doubling_months < fit.ci_months[1]
    assert fit_doubling_time(years, params, n_boot=500, seed=3).ci_months == fit.ci_months
    assert fit_doubling_time(years, params).ci_months is None


def test_fit_rejects_bad_input_with_clear_messages():
    with pytest.raises(ValueError, match="same length"):
        fit_doubling_time([2018, 2019, 2020], [1e8, 1e9])
    with pytest.raises(ValueError, match="at least 3 points"):
        fit_doubling_time([2018, 2019], [1e8, 1e9])
    with pytest.raises(ValueError, match="positive"):
        fit_doubling_time([2018, 2019, 2020], [1e8, 0, 1e10])
    with pytest.raises(ValueError, match="positive"):
        fit_doubling_time([2018, 2019, 2020], [1e8, -1e9, 1e10])
    with pytest.raises(ValueError, match="positive"):
        fit_doubling_time([2018, 2019, 2020], [1e8, math.nan, 1e10])
    with pytest.raises(ValueError, match="finite"):
        fit_doubling_time([2018, math.inf, 2020], [1e8, 1e9, 1e10])
    with pytest.raises(ValueError, match="all years are equal"):
        fit_doubling_time([2020, 2020, 2020], [1e8, 1e9, 1e10])
    with pytest.raises(ValueError, match="does not grow"):
        fit_doubling_time([2018, 2019, 2020], [1e10, 1e9, 1e8])
    with pytest.raises(ValueError, match="n_boot"):
        fit_doubling_time([2018, 2019, 2020], [1e8, 1e9, 1e10], n_boot=-1)
