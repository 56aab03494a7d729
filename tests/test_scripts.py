"""Tests of the maintenance scripts: student versions, notebook cleaning and the site check."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source, tags=(), outputs=(), count=1):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source,
            "outputs": list(outputs), "execution_count": count}


def test_student_version_removes_solutions():
    student = load_script("make_student_version")
    cells = [
        md("```{exercise-start} Q\n:label: ex-1\n```\nWhat?\n```{exercise-end}\n```"),
        md("```{solution-start} ex-1\n:class: dropdown\n```\nThe answer."),
        code("print(42)", tags=["solution"]),
        md("```{solution-end}\n```"),
        code("x = 1", outputs=[{"output_type": "stream", "name": "stdout", "text": "1"}]),
    ]
    out = student.student_cells(cells)
    sources = [c["source"] for c in out]
    assert "print(42)" not in sources and "The answer." not in " ".join(sources)
    assert any("ex-1" in s for s in sources)
    assert out[-1]["outputs"] == [] and out[-1]["execution_count"] is None


def test_student_version_rejects_unclosed_solution():
    student = load_script("make_student_version")
    with pytest.raises(ValueError, match="no solution-end"):
        student.student_cells([md("```{solution-start} ex-2\n```")])


def test_clean_notebook_reports_problems(tmp_path):
    clean = load_script("clean_notebook")
    nb = {"cells": [code("1/0", count=1, outputs=[{"output_type": "error", "ename": "ZeroDivisionError"}]),
                    code("x", count=3)],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    problems = clean.clean(path)
    assert any("error" in p for p in problems) and any("expected 2" in p for p in problems)
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


def test_site_check_finds_broken_links_and_missing_alt(tmp_path):
    site = load_script("check_site")
    (tmp_path / "index.html").write_text('<a href="page.html#here">ok</a><a href="missing.html">x</a>'
                                         '<img src="a.png"><a href="page.html#nowhere">y</a>')
    (tmp_path / "page.html").write_text('<h1 id="here">Here</h1><img src="a.png" alt="A plot of loss">')
    (tmp_path / "a.png").write_bytes(b"")
    problems = site.check(tmp_path)
    assert any("broken link missing.html" in p for p in problems)
    assert any("without alt text" in p for p in problems)
    assert any("missing anchor page.html#nowhere" in p for p in problems)
    assert len(problems) == 3
