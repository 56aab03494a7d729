"""Autograding end to end with otter-grader, without Docker (``make autograde-check``; needs ``make grader-env``).

For each chapter in ``export_otter.OTTER_CHAPTERS``:

1. export the chapter to an Otter Assign master notebook (``scripts/export_otter.py``);
2. ``otter assign`` it into ``_build/otter/<chapter>/dist`` (student notebook + autograder zip);
3. grade three submissions with otter's Python API (``otter.api.grade_submission``, one local kernel, no
   Docker, no network): the notebook with the worked solutions must score full marks, the untouched student
   notebook zero, and the worked solutions with one answer made wrong exactly the points of the other questions.

Run it with the grader environment's Python: ``.venv-grader/bin/python scripts/autograde_check.py``.
Exit status 1 if any expectation fails.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# One plausible wrong answer per graded exercise, appended to its solution cell in the "one wrong answer" run.
WRONG_ANSWERS = {
    "ex-02-without-gpt3": "doubling_without = lambda event: fit.doubling_months  # leaves nothing out",
    "ex-02-extrapolate": "target_year = target_year + 5",
    "ex-05-rope": ("rope_attention = lambda queries, keys, values, mask=None, offset=0: "
                   "scaled_dot_product_attention(queries, keys, values, mask)  # no rotation"),
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wrong(solution_nb: Path, label: str, target: Path) -> None:
    """Copy of the solution notebook in which the answer to ``label`` is replaced by WRONG_ANSWERS[label]."""
    nb = json.loads(solution_nb.read_text(encoding="utf-8"))
    marker = f"Your answer to exercise {label}**"  # the question's prompt, written by export_otter.py
    inside, done = False, False
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if marker in source:
            inside = True
        elif inside and cell["cell_type"] == "code" and not done:
            cell["source"] = source.rstrip() + "\n" + WRONG_ANSWERS[label] + "\n"
            done = True
    if not done:
        raise ValueError(f"no solution cell for {label} in {solution_nb}")
    target.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def grade(notebook: Path, autograder: Path) -> tuple[float, float, dict]:
    from otter.api import grade_submission

    with contextlib.redirect_stdout(io.StringIO()):
        result = grade_submission(str(notebook), str(autograder), quiet=True)
    return (float(result.total), float(result.possible),
            {name: float(r.score) for name, r in result.results.items()})


def check_chapter(stem: str, out: Path) -> list[str]:
    export = _load("export_otter")
    work = out / stem
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    master, graded = export.master_notebook(nb, f"{stem}.ipynb")
    (work / f"{stem}.ipynb").write_text(json.dumps(master, indent=1, ensure_ascii=False), encoding="utf-8")
    otter = Path(sys.executable).with_name("otter")
    subprocess.run([str(otter), "assign", "--no-run-tests", "--no-pdfs", f"{stem}.ipynb", "dist"], cwd=work,
                   check=True, stdout=subprocess.DEVNULL)
    autograder = next((work / "dist" / "autograder").glob("*.zip"))
    solution = work / "dist" / "autograder" / f"{stem}.ipynb"
    student = work / "dist" / "student" / f"{stem}.ipynb"
    wrong_label = next(label for label in graded if label in WRONG_ANSWERS)
    wrong = work / f"{stem}_one_wrong.ipynb"
    make_wrong(solution, wrong_label, wrong)
    problems = []
    for kind, path in (("worked solutions", solution), ("student notebook", student), ("one wrong answer", wrong)):
        start = time.perf_counter()
        total, possible, scores = grade(path, autograder)
        expected = {"worked solutions": possible, "student notebook": 0.0,
                    "one wrong answer": possible - 1.0}[kind]
        ok = abs(total - expected) < 1e-9 and possible == len(graded)
        if kind == "one wrong answer":
            ok = ok and scores.get(wrong_label.replace("-", "_")) == 0.0
        print(f"{'ok' if ok else 'FAILED':6s} {stem:22s} {kind:17s} {total:g}/{possible:g} {scores} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        if not ok:
            problems.append(f"{stem}, {kind}: scored {total:g}/{possible:g}, expected {expected:g}")
    return problems


def main() -> int:
    export = _load("export_otter")
    out = ROOT / "_build" / "otter"
    start, problems = time.perf_counter(), []
    for stem in export.OTTER_CHAPTERS:
        problems += check_chapter(stem, out)
    print(f"autograde-check: {len(export.OTTER_CHAPTERS)} chapters in {time.perf_counter() - start:.0f} s; "
          f"{len(problems)} problem(s)")
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
