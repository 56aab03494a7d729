"""Export a chapter's coding exercises to an otter-grader assignment, from the same notebook source.

Command line: ``python scripts/export_otter.py notebooks/02_history.ipynb _build/otter/02_history/master.ipynb``.

The result is an Otter Assign "master" notebook (otter-grader's v1 format): the whole chapter, with every
exercise that has a record in :mod:`llmbook.exercises` turned into an otter question (the chapter's worked
solution between ``# BEGIN SOLUTION`` markers, and a test that calls the check, built from the record), and the
other exercises' solutions removed exactly as in the student version (:mod:`booktools.student`). The first
solution cell of each question, where the student's answer goes, carries the cell metadata
``{"llmbook": {"graded_answer": label}}`` (:data:`ANSWER_KEY`, :func:`answer_cell`), which otter keeps, so that the
autograde check finds it without reading any prose. ``otter assign`` then writes the student notebook (solutions
replaced by ``...``) and the autograder from it; :mod:`booktools.autograde` (``make autograde-check``, for every
chapter of :func:`graded_chapters`) does that and grades three notebooks; ``make assignments`` only exports and
assigns. Each question is worth one point.

This module needs only the book's environment; otter itself runs in ``.venv-grader`` (``make grader-env``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from booktools import student

__all__ = ["ANSWER_KEY", "answer_cell", "question_name", "question_test", "master_notebook", "graded_chapters", "main"]

ROOT = Path(__file__).resolve().parent.parent

#: The cell metadata key that marks a graded question's answer cell: ``{"llmbook": {"graded_answer": label}}``.
ANSWER_KEY = "llmbook"


def _records(records: Mapping | None) -> Mapping:
    if records is None:
        from llmbook.exercises import EXERCISES as records
    return records


def question_name(label: str) -> str:
    """Otter question names are identifiers: ``ex-NN-some-slug`` -> ``ex_NN_some_slug``."""
    return label.replace("-", "_")


def question_test(record) -> str:
    """The otter test of an exercise record (:class:`llmbook.exercises.record.Exercise`): its check call, quiet; it
    fails with the check's hint, so that ``grader.check`` tells the student what is wrong."""
    return (f"from llmbook.checks import check\n\nresult = {record.call(quiet=True)}\n"
            "assert result.passed, result.message  # the check's hint, shown by grader.check")


def answer_cell(nb: dict, label: str) -> int:
    """The index of the cell marked as the answer cell of ``label``'s question; ValueError if there is none."""
    for index, cell in enumerate(nb["cells"]):
        if cell.get("metadata", {}).get(ANSWER_KEY, {}).get("graded_answer") == label:
            return index
    raise ValueError(f"no cell marked as the answer to {label}")


def _raw(text: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": text}


def _code(text: str, metadata: dict | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata or {}, "outputs": [], "source": text}


def master_notebook(nb: dict, name: str, records: Mapping | None = None) -> tuple[dict, list[str]]:
    """The otter master notebook of a chapter and the labels of its graded exercises.

    An exercise is graded when it has a record in ``records`` (label -> record; default
    ``llmbook.exercises.EXERCISES``) and its solution has code cells. Raises :class:`booktools.student.MarkupError`
    for malformed exercises.
    """
    records = _records(records)
    graded: list[str] = []

    def replace_solution(exercise, checks):
        if exercise.label not in records or not exercise.code:
            return student.answer_cells(exercise, checks)
        record = records[exercise.label]
        graded.append(exercise.label)
        cells = [_raw(f"# BEGIN QUESTION\nname: {question_name(exercise.label)}\npoints: 1"),
                 {"cell_type": "markdown", "metadata": {},
                  "source": f"**Your answer to exercise {exercise.label}**, graded by otter: "
                            f"`{record.call()}` must pass."},
                 _raw("# BEGIN SOLUTION")]
        for number, cell in enumerate(exercise.code):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            marker = {ANSWER_KEY: {"graded_answer": exercise.label}} if number == 0 else None
            cells.append(_code(f"# BEGIN SOLUTION\n{source.rstrip()}\n# END SOLUTION", marker))
        cells += [_raw("# END SOLUTION"), _raw("# BEGIN TESTS"), _code(question_test(record)),
                  _raw("# END TESTS"), _raw("# END QUESTION")]
        return cells

    cells = student.student_cells(nb["cells"], name, checks={}, replace_solution=replace_solution)
    config = "\n".join(["# ASSIGNMENT CONFIG", f"name: {re.sub(r'[^A-Za-z0-9_]', '_', Path(name).stem)}",
                        "init_cell: true", "check_all_cell: false", "export_cell: false",
                        "solutions_pdf: false", "generate: true", "run_tests: false"])
    metadata = {**nb.get("metadata", {})}
    metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    cells = [_raw(config)] + cells
    for number, cell in enumerate(cells):
        cell.setdefault("id", f"otter-{number}")  # nbformat 4.5 wants an id on every cell
    return {**nb, "metadata": metadata, "cells": cells}, graded


def graded_chapters(notebooks: Path = ROOT / "notebooks", records: Mapping | None = None) -> list[str]:
    """The stems of the chapters with at least one graded exercise (one with a record), in order."""
    records = _records(records)
    stems = []
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        found = student.exercises(json.loads(path.read_text(encoding="utf-8")), path.name)
        if any(exercise.label in records and exercise.code for exercise in found):
            stems.append(path.stem)
    return stems


def main(source: str, target: str) -> int:
    """Export ``source`` to the master notebook ``target``; 1 if the chapter has nothing to grade."""
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    master, graded = master_notebook(nb, Path(source).name)
    if not graded:
        print(f"{source}: no exercise with a self-check, nothing to grade", file=sys.stderr)
        return 1
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(master, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target}: {len(graded)} graded question(s): {', '.join(graded)}")
    return 0
