"""Student versions of the chapter notebooks: worked solutions removed, outputs cleared, answer cells added.

Command line: ``python scripts/make_student_version.py notebooks _build/student`` (``make student``).

The exercises are sphinx-exercise gated directives in markdown cells (CONTRIBUTING.md, section 6)::

    ```{exercise-start} Title          ```{solution-start} ex-NN-slug
    :label: ex-NN-slug                 :class: dropdown
    ```                                ```
    *Coding.* The question.            The worked solution, code cells tagged ``solution`` ...
    ```{exercise-end}                  ```{solution-end}
    ```                                ```

Each directive may share a markdown cell with text before or after it, and a short solution may open and close
in the same cell (the chapters do both). Everything from a ``solution-start`` line to the end of its
``solution-end`` block is removed, text and code cells alike, and so is any code cell tagged ``solution``. In
its place the student finds clearly marked answer cells (tagged ``answer``): a markdown cell, and for
exercises whose solution has code (or whose kind is coding, experiment or calculation) a code cell that holds
only comments, with the ``check(...)`` call where the exercise has a record in ``llmbook.exercises``. Every other
code cell keeps its source and loses its outputs and execution count, so the student runs the notebook.

Malformed markup (a solution that never ends, a solution inside another, a solution without its exercise, a
directive fence that is never closed, a code cell inside a solution without the ``solution`` tag) is reported
with the notebook, the cell number and the exercise label. A notebook with errors is not written, and the
script exits with status 1, so that a solution can never slip through to students.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

__all__ = ["MarkupError", "NotebookExercise", "answer_cells", "default_checks", "student_notebook", "student_cells",
           "exercises", "write_student_versions", "main"]

OPEN = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>exercise-start|exercise-end|solution-start|solution-end)\}"
                  r"(?P<arg>.*)$")
KIND = re.compile(r"^\s*\*(Conceptual|Coding|Experiment|Calculation)\b", re.MULTILINE)
LABEL = re.compile(r"^ex-\d\d-[a-z0-9-]+$")
ANSWER_TAG = "answer"
SOLUTION_TAG = "solution"


class MarkupError(ValueError):
    """The exercise markup of a notebook is malformed; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class NotebookExercise:
    """One exercise as found in a notebook: its label, kind, and its solution's code cells (``code``)."""

    def __init__(self, label: str, cell: int = -1):
        self.label, self.cell = label, cell
        self.kind = "unknown"
        self.has_solution = False
        self.solution_code_cells = 0
        self.code: list[dict] = []  # the solution's code cells, in order
        self.notes: list[str] = []

    def __repr__(self) -> str:
        return f"NotebookExercise({self.label!r}, kind={self.kind!r}, solution_code_cells={self.solution_code_cells})"


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _tokens(text: str, where: str, problems: list[str]) -> list[tuple]:
    """Split a markdown cell into ("text", str) and ("directive", name, argument, options, raw) tokens."""
    lines = text.splitlines(keepends=True)
    tokens, buffer, i = [], [], 0
    while i < len(lines):
        match = OPEN.match(lines[i].rstrip("\n"))
        if not match:
            buffer.append(lines[i])
            i += 1
            continue
        if buffer:
            tokens.append(("text", "".join(buffer)))
            buffer = []
        fence, name = match.group("fence"), match.group("name")
        raw, options, j = [lines[i]], {}, i + 1
        while j < len(lines) and lines[j].strip() != fence:
            option = re.match(r"^\s*:(\w[\w-]*):\s*(.*)$", lines[j])
            if option:
                options[option.group(1)] = option.group(2).strip()
            elif lines[j].strip():
                break  # a body line before the closing fence: the fence is missing
            raw.append(lines[j])
            j += 1
        if j >= len(lines) or lines[j].strip() != fence:
            problems.append(f"{where}: the {{{name}}} directive's fence {fence} is never closed")
            i = j
            continue
        raw.append(lines[j])
        tokens.append(("directive", name, match.group("arg").strip(), options, "".join(raw)))
        i = j + 1
    if buffer:
        tokens.append(("text", "".join(buffer)))
    return tokens


def answer_cells(exercise: NotebookExercise, checks: dict[str, str]) -> list[dict]:
    """The marked answer cells that replace an exercise's solution: a markdown cell, and for an exercise with code
    a code cell of comments that holds ``checks[label]``, its check call, commented out."""
    label = exercise.label
    cells = [{"cell_type": "markdown", "id": f"answer-{label}-text", "metadata": {"tags": [ANSWER_TAG]},
              "source": f"**Your answer to exercise {label}.** Replace this line with your answer."}]
    wants_code = exercise.solution_code_cells > 0 or exercise.kind in ("coding", "experiment", "calculation")
    if wants_code:
        lines = [f"# Your code for exercise {label} ({exercise.kind}) goes here.", ""]
        if label in checks:
            lines += ["# When it runs, check it (remove the # of the next two lines):",
                      "# from llmbook.checks import check",
                      f"# {checks[label]}"]
        cells.append({"cell_type": "code", "id": f"answer-{label}-code", "execution_count": None,
                      "metadata": {"tags": [ANSWER_TAG]}, "outputs": [], "source": "\n".join(lines)})
    return cells


def default_checks() -> dict[str, str]:
    """Exercise label -> the check call of its answer cell, from the records of ``llmbook.exercises`` ({} without
    llmbook)."""
    try:
        from llmbook.exercises import EXERCISES
    except ImportError:
        return {}
    return {label: record.call(comment=True) for label, record in EXERCISES.items()}


def student_cells(cells: list[dict], name: str = "notebook", checks: dict[str, str] | None = None,
                  found: list[NotebookExercise] | None = None, replace_solution=None) -> list[dict]:
    """Return the student version of a list of notebook cells.

    Raises MarkupError listing every malformed exercise or solution. ``checks`` maps an exercise label to the
    ``check(...)`` call written (commented out) into its answer cell; by default :func:`default_checks`.
    The exercises found are appended to ``found`` when it is given. ``replace_solution(exercise, checks)`` makes the
    cells that replace a solution (default: the marked answer cells described above; the otter export passes
    its own, which keeps the solution code of graded exercises inside otter's question markers).
    """
    replace_solution = replace_solution or answer_cells
    checks = default_checks() if checks is None else checks
    problems: list[str] = []
    out: list[dict] = []
    by_label: dict[str, NotebookExercise] = {}
    open_exercise: NotebookExercise | None = None
    solution: NotebookExercise | None = None
    solution_cell = -1
    for index, cell in enumerate(cells):
        where = f"{name}, cell {index}"
        kind = cell.get("cell_type")
        tags = cell.get("metadata", {}).get("tags", [])
        if kind != "markdown":
            if solution is not None:
                if kind == "code":
                    solution.solution_code_cells += 1
                    solution.code.append(cell)
                    if SOLUTION_TAG not in tags:
                        problems.append(f"{where}: code cell inside solution {solution.label} "
                                        f"is not tagged '{SOLUTION_TAG}'")
                continue
            if SOLUTION_TAG in tags:
                problems.append(f"{where}: cell tagged '{SOLUTION_TAG}' outside any solution block")
                continue
            if kind == "code":
                cell = {**cell, "outputs": [], "execution_count": None}
            out.append(cell)
            continue
        kept: list[str] = []
        pieces: list[dict] = []

        parts = [0]  # markdown pieces written from this cell so far

        def flush(cell=cell, kept=kept, pieces=pieces, parts=parts):
            text = "".join(kept).strip("\n")
            if text.strip():
                piece = {**cell, "source": text}
                if parts[0] and "id" in cell:
                    piece["id"] = f"{cell['id']}-{parts[0] + 1}"
                parts[0] += 1
                pieces.append(piece)
            kept.clear()

        for token in _tokens(_text(cell), where, problems):
            if token[0] == "text":
                if solution is None:
                    if open_exercise is not None and open_exercise.kind == "unknown":
                        found_kind = KIND.search(token[1])
                        if found_kind:
                            open_exercise.kind = found_kind.group(1).lower()
                    kept.append(token[1])
                continue
            _, directive, argument, options, raw = token
            if directive == "exercise-start":
                if solution is not None or open_exercise is not None:
                    problems.append(f"{where}: exercise starts inside another exercise or solution")
                label = options.get("label", "")
                if not label:
                    problems.append(f"{where}: exercise without a :label:")
                elif not LABEL.match(label):
                    problems.append(f"{where}: label {label!r} is not of the form ex-NN-slug")
                if label in by_label:
                    problems.append(f"{where}: label {label} is used twice")
                open_exercise = NotebookExercise(label=label, cell=index)
                by_label[label] = open_exercise
                kept.append(raw)
            elif directive == "exercise-end":
                if open_exercise is None:
                    problems.append(f"{where}: exercise-end without an exercise-start")
                open_exercise = None
                kept.append(raw)
            elif directive == "solution-start":
                if solution is not None:
                    problems.append(f"{where}: solution {argument} starts inside solution {solution.label}")
                if open_exercise is not None:
                    problems.append(f"{where}: solution {argument} starts before exercise "
                                    f"{open_exercise.label} ends")
                exercise = by_label.get(argument)
                if exercise is None:
                    problems.append(f"{where}: solution {argument!r} has no exercise above it")
                    exercise = NotebookExercise(label=argument or "unlabelled", cell=index)
                elif exercise.has_solution:
                    problems.append(f"{where}: exercise {argument} has a second solution")
                exercise.has_solution = True
                solution, solution_cell = exercise, index
            else:  # solution-end
                if solution is None:
                    problems.append(f"{where}: solution-end without a solution-start")
                    continue
                flush()
                pieces.extend(replace_solution(solution, checks))
                solution = None
        flush()
        out.extend(pieces)
    if solution is not None:
        problems.append(f"{name}: solution {solution.label} (cell {solution_cell}) has no solution-end cell")
    if open_exercise is not None:
        problems.append(f"{name}: exercise {open_exercise.label} has no exercise-end")
    for exercise in by_label.values():
        if not exercise.has_solution:
            problems.append(f"{name}: exercise {exercise.label} has no solution")
        if exercise.kind == "unknown":
            exercise.notes.append("no *Conceptual.*/*Coding.*/*Experiment.*/*Calculation.* marker")
    if problems:
        raise MarkupError(problems)
    if found is not None:
        found.extend(by_label.values())
    return out


def exercises(nb: dict, name: str = "notebook") -> list[NotebookExercise]:
    """The exercises of a notebook (label, kind, solution code cells); raises MarkupError if malformed."""
    found: list[NotebookExercise] = []
    student_cells(nb["cells"], name, checks={}, found=found)
    return found


def student_notebook(nb: dict, name: str = "notebook", checks: dict[str, str] | None = None) -> dict:
    """A student copy of a notebook (a new dict; the input is not changed)."""
    student = {**nb, "cells": student_cells(nb["cells"], name, checks)}
    student["metadata"] = {**nb.get("metadata", {}), "llmbook": {"student_version": True}}
    return student


def write_student_versions(source: str | Path, target: str | Path, quiet: bool = False,
                           translate=None) -> list[str]:
    """Write the student copy of every ``source/*.ipynb`` into ``target``; return the problems found.

    ``translate(nb, name)``, if given, returns the student notebook with its prose in another language (the Chinese
    edition passes ``booktools.i18n.translate_notebook``); code and exercise markup are left as they are.
    """
    target_dir = Path(target)
    target_dir.mkdir(parents=True, exist_ok=True)
    checks = default_checks()
    problems = []
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        try:
            student = student_notebook(nb, path.name, checks)
            if translate is not None:
                student = translate(student, path.name)
        except MarkupError as error:
            problems.extend(error.problems)
            (target_dir / path.name).unlink(missing_ok=True)
            continue
        text = json.dumps(student, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        (target_dir / path.name).write_text(text, encoding="utf-8")
        if not quiet:
            print(f"wrote {target_dir / path.name}")
    return problems


def main(source: str, target: str) -> int:
    """Write the student versions of ``source/*.ipynb`` into ``target``; print each problem; 1 if there were any."""
    problems = write_student_versions(source, target)
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0
