"""Autograding end to end with otter-grader, without Docker (``make autograde-check``; needs ``make grader-env``).

For every chapter with a graded coding exercise (:func:`booktools.otter_export.graded_chapters`, all eleven):

1. export the chapter to an Otter Assign master notebook (:mod:`booktools.otter_export`);
2. ``otter assign`` it into ``_build/otter/<chapter>/dist`` (student notebook + autograder zip);
3. grade submissions with otter's Python API (``otter.api.grade_submission``, one local kernel, no Docker, no
   network). Every chapter: the worked solutions with one answer made wrong (the ``wrong`` answer of the first
   graded exercise's record in :mod:`llmbook.exercises`, appended to the cell that the export marked as its answer
   cell) must score exactly the points of the other questions, that one scoring zero, and it must fail in its
   check (an ``AssertionError`` with the check's hint), which proves that the chapter's exported test is wired to
   the check and runs in otter's kernel. The chapters of ``FULL`` (or all, with ``--every-kind``) are graded
   twice more: the worked solutions must score full marks and the untouched student notebook zero.

Why not all three for every chapter: each grading executes the whole notebook (20-60 s), and what the other two
add is already checked elsewhere. That a worked solution passes its check is part of every notebook's stored
output (``make nbval`` compares the check's ``✓`` line), and the student notebooks run top to bottom in ``make
student-check``; otter's own pipeline for those two is exercised on the chapters of ``FULL``.

The assignments and the gradings run ``--jobs`` at a time (default 2, the cores the book assumes; each kernel
uses one thread, as the Makefile sets). ``--assign-only`` stops after step 2 (``make assignments``: the
folders a teacher hands out).
Command line, with the grader environment's Python: ``.venv-grader/bin/python scripts/autograde_check.py``.
Exit status 1 if any expectation fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from booktools import otter_export as export

__all__ = ["KINDS", "FULL", "kinds_for", "make_wrong", "assign", "grade", "judge", "main"]

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "otter"

#: The three kinds of submission; every chapter is graded with the last, the chapters of FULL with all three.
KINDS = ("worked solutions", "student notebook", "one wrong answer")
#: The chapters graded with every kind of submission in ``make autograde-check`` (two questions: a full score,
#: zero and one lost point are three different totals).
FULL = ("02_history",)


def make_wrong(solution_nb: Path, record, target: Path) -> None:
    """Copy of the solution notebook in which the answer to ``record``'s exercise is made wrong: its ``wrong`` code
    is appended to the cell that the export marked as the question's answer cell (ValueError if none is)."""
    nb = json.loads(solution_nb.read_text(encoding="utf-8"))
    try:
        cell = nb["cells"][export.answer_cell(nb, record.label)]
    except ValueError:
        raise ValueError(f"no solution cell for {record.label} in {solution_nb}") from None
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    cell["source"] = source.rstrip() + "\n" + record.wrong + "\n"
    target.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def assign(stem: str, out: Path = OUT) -> dict:
    """Export and ``otter assign`` one chapter; return the paths of its three submissions and its autograder."""
    from llmbook.exercises import EXERCISES

    work = out / stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    master, graded = export.master_notebook(nb, f"{stem}.ipynb")
    (work / f"{stem}.ipynb").write_text(json.dumps(master, indent=1, ensure_ascii=False), encoding="utf-8")
    otter = Path(sys.executable).with_name("otter")
    subprocess.run([str(otter), "assign", "--no-run-tests", "--no-pdfs", f"{stem}.ipynb", "dist"], cwd=work,
                   check=True, stdout=subprocess.DEVNULL)
    solution = work / "dist" / "autograder" / f"{stem}.ipynb"
    wrong_label = graded[0]
    wrong = work / f"{stem}_one_wrong.ipynb"
    make_wrong(solution, EXERCISES[wrong_label], wrong)
    return {"stem": stem, "graded": graded, "wrong_label": wrong_label,
            "autograder": str(next((work / "dist" / "autograder").glob("*.zip"))),
            "worked solutions": str(solution), "student notebook": str(work / "dist" / "student" / f"{stem}.ipynb"),
            "one wrong answer": str(wrong)}


def _last_line(message: str | None) -> str:
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def grade(notebook: str, autograder: str) -> tuple[float, float, dict, float, dict]:
    """(total, possible, score per question, seconds, failure per question) of one submission, graded by otter
    on this machine; a failure is the last line of the failed test's message (e.g. the check's hint)."""
    from otter.api import grade_submission

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = grade_submission(notebook, autograder, quiet=True)
    failures = {name: _last_line(next((t.message for t in r.test_case_results if not t.passed), None))
                for name, r in result.results.items() if not r.passed_all}
    return (float(result.total), float(result.possible),
            {name: float(r.score) for name, r in result.results.items()}, time.perf_counter() - start, failures)


def judge(chapter: dict, kind: str, total: float, possible: float, scores: dict, failures: dict | None = None) -> str:
    """"" if the grade is the expected one, else what is wrong. The wrong answer must fail in its check (an
    AssertionError carrying the check's hint), not by crashing."""
    n = len(chapter["graded"])
    expected = {"worked solutions": float(n), "student notebook": 0.0, "one wrong answer": n - 1.0}[kind]
    ok = abs(total - expected) < 1e-9 and possible == n
    if kind == "one wrong answer":
        question = chapter["wrong_label"].replace("-", "_")
        ok = ok and scores.get(question) == 0.0
        if ok and failures is not None and not (failures.get(question) or "").startswith("AssertionError"):
            return (f"{chapter['stem']}, {kind}: {question} failed without the check's verdict: "
                    f"{failures.get(question)!r}")
    return "" if ok else f"{chapter['stem']}, {kind}: scored {total:g}/{possible:g}, expected {expected:g}/{n}"


def kinds_for(stem: str, every_kind: bool = False) -> tuple[str, ...]:
    """The submissions graded for a chapter: all three for the chapters of ``FULL`` (or with ``every_kind``), else
    the one wrong answer."""
    return KINDS if every_kind or stem in FULL else ("one wrong answer",)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); 1 if any grade is not the expected one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter stems, e.g. 02_history (default: all graded)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assign-only", action="store_true", help="export and otter assign, do not grade")
    parser.add_argument("--every-kind", action="store_true",
                        help="grade all three submissions of every chapter, not only of " + ", ".join(FULL))
    args = parser.parse_args(argv)
    stems = args.chapters or list(export.graded_chapters())
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as threads:  # otter assign runs as a subprocess
        chapters = list(threads.map(assign, stems))
    for chapter in chapters:
        print(f"assigned {chapter['stem']:34s} {len(chapter['graded'])} question(s): "
              f"{', '.join(chapter['graded'])}", flush=True)
    if args.assign_only:
        print(f"assignments: {len(chapters)} chapters in {OUT.relative_to(ROOT)}/<chapter>/dist "
              f"({time.perf_counter() - start:.0f} s)")
        return 0
    problems = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        jobs = {(c["stem"], kind): pool.submit(grade, c[kind], c["autograder"])
                for c in chapters for kind in kinds_for(c["stem"], args.every_kind)}
        for chapter in chapters:
            for kind in kinds_for(chapter["stem"], args.every_kind):
                total, possible, scores, seconds, failures = jobs[chapter["stem"], kind].result()
                problem = judge(chapter, kind, total, possible, scores, failures)
                print(f"{'FAILED' if problem else 'ok':6s} {chapter['stem']:34s} {kind:17s} {total:g}/{possible:g} "
                      f"{scores} ({seconds:.0f} s)", flush=True)
                if kind == "one wrong answer":
                    print(f"       hint: {failures.get(chapter['wrong_label'].replace('-', '_'), '')[:150]}")
                if problem:
                    problems.append(problem)
    print(f"autograde-check: {len(chapters)} chapters, {len(jobs)} gradings in "
          f"{time.perf_counter() - start:.0f} s; {len(problems)} problem(s)")
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0
