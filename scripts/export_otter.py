"""Export a chapter's coding exercises to an otter-grader assignment, from the same notebook source.

Usage: python scripts/export_otter.py notebooks/02_history.ipynb _build/otter/02_history/master.ipynb

The result is an Otter Assign "master" notebook (otter-grader's v1 format): the whole chapter, with every
exercise that has a self-check in ``llmbook.checks`` turned into an otter question (the chapter's worked solution
between ``# BEGIN SOLUTION`` markers, and a test that calls the check), and the other exercises' solutions
removed exactly as in the student version (``scripts/make_student_version.py``). ``otter assign`` then writes the
student notebook (solutions replaced by ``...``) and the autograder from it; ``scripts/autograde_check.py``
(``make autograde-check``, for every chapter of ``graded_chapters()``) does that and grades three notebooks;
``make assignments`` only exports and assigns. Each question is worth one point.

This script needs only the book's environment; otter itself runs in ``.venv-grader`` (``make grader-env``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _student_module():
    spec = importlib.util.spec_from_file_location("make_student_version",
                                                  ROOT / "scripts" / "make_student_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def question_name(label: str) -> str:
    """Otter question names are identifiers: ``ex-02-without-gpt3`` -> ``ex_02_without_gpt3``."""
    return label.replace("-", "_")


def test_source(call: str) -> str:
    """The otter test for a check call from llmbook.checks.CHECK_CALLS (its comment dropped, quiet=True added):
    it fails with the check's hint, so that ``grader.check`` tells the student what is wrong."""
    call = call.split("  #")[0].strip()
    if not call.endswith(")"):
        raise ValueError(f"not a check call: {call!r}")
    return (f"from llmbook.checks import check\n\nresult = {call[:-1]}, quiet=True)\n"
            "assert result.passed, result.message  # the check's hint, shown by grader.check")


def _raw(text: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": text}


def _code(text: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text}


def master_notebook(nb: dict, name: str, calls: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    """The otter master notebook of a chapter and the labels of its graded exercises.

    An exercise is graded when it has a check call in ``calls`` (default ``llmbook.checks.CHECK_CALLS``) and
    its solution has code cells. Raises the student script's MarkupError for malformed exercises.
    """
    student = _student_module()
    if calls is None:
        from llmbook.checks import CHECK_CALLS as calls
    graded: list[str] = []

    def answer_cells(exercise, checks):
        if exercise.label not in calls or not exercise.code:
            return student._answer_cells(exercise, checks)
        graded.append(exercise.label)
        cells = [_raw(f"# BEGIN QUESTION\nname: {question_name(exercise.label)}\npoints: 1"),
                 {"cell_type": "markdown", "metadata": {},
                  "source": f"**Your answer to exercise {exercise.label}**, graded by otter: "
                            f"`{calls[exercise.label].split('  #')[0]}` must pass."},
                 _raw("# BEGIN SOLUTION")]
        for cell in exercise.code:
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cells.append(_code(f"# BEGIN SOLUTION\n{source.rstrip()}\n# END SOLUTION"))
        cells += [_raw("# END SOLUTION"), _raw("# BEGIN TESTS"), _code(test_source(calls[exercise.label])),
                  _raw("# END TESTS"), _raw("# END QUESTION")]
        return cells

    cells = student.student_cells(nb["cells"], name, checks={}, answer_cells=answer_cells)
    config = "\n".join(["# ASSIGNMENT CONFIG", f"name: {re.sub(r'[^A-Za-z0-9_]', '_', Path(name).stem)}",
                        "init_cell: true", "check_all_cell: false", "export_cell: false",
                        "solutions_pdf: false", "generate: true", "run_tests: false"])
    metadata = {**nb.get("metadata", {})}
    metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    cells = [_raw(config)] + cells
    for number, cell in enumerate(cells):
        cell.setdefault("id", f"otter-{number}")  # nbformat 4.5 wants an id on every cell
    return {**nb, "metadata": metadata, "cells": cells}, graded


def graded_chapters(notebooks: Path = ROOT / "notebooks", calls: dict[str, str] | None = None) -> list[str]:
    """The stems of the chapters with at least one graded exercise (one with a check call), in order."""
    student = _student_module()
    if calls is None:
        from llmbook.checks import CHECK_CALLS as calls
    stems = []
    for path in sorted(notebooks.glob("*.ipynb")):
        found = student.exercises(json.loads(path.read_text(encoding="utf-8")), path.name)
        if any(exercise.label in calls and exercise.code for exercise in found):
            stems.append(path.stem)
    return stems


def main(source: str, target: str) -> int:
    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    master, graded = master_notebook(nb, Path(source).name)
    if not graded:
        print(f"{source}: no exercise with a self-check, nothing to grade", file=sys.stderr)
        return 1
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(master, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target}: {len(graded)} graded question(s): {', '.join(graded)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_otter.py CHAPTER.ipynb MASTER.ipynb")
    sys.exit(main(sys.argv[1], sys.argv[2]))
