"""Write the student version of every chapter and run each one from top to bottom (``make student-check``).

Command line: ``python scripts/check_student_versions.py [NOTEBOOK ...] [--out _build/student] [--jobs 2]
[--timeout 600]``.

The student notebooks are written by :mod:`booktools.student` (any malformed exercise markup fails
the check), then executed with nbclient from the ``notebooks/`` folder, as a student would run them, with the
answer cells (tagged ``answer``; they hold only comments) left out. Outputs are not compared with anything: the
full notebooks' outputs are checked by nbval; this check only proves that removing the solutions removed nothing
that later cells need. Several notebooks run at once (``--jobs``, default 2, the number of cores the book
assumes); each kernel uses one thread, as the Makefile sets. Exit status 1 if a notebook fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from booktools import student

__all__ = ["run_one", "main"]

ROOT = Path(__file__).resolve().parent.parent


def run_one(path: str, workdir: str, timeout: int) -> tuple[str, float, str]:
    """Execute one student notebook without its answer cells; return (name, seconds, error or "")."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "answer" not in c.get("metadata", {}).get("tags", [])]
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": workdir}}).execute()
    except Exception as error:  # report and go on with the other notebooks
        first = str(error).strip().splitlines()
        return Path(path).name, time.perf_counter() - start, " | ".join(first[-3:])[:600]
    return Path(path).name, time.perf_counter() - start, ""


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's docstring); 1 if a notebook's markup is malformed or it fails to run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="chapter notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "student"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    sources = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checks = student.default_checks()
    problems, paths = [], []
    for source in sources:
        try:
            nb = student.student_notebook(json.loads(source.read_text(encoding="utf-8")), source.name, checks)
        except student.MarkupError as error:
            problems += [f"markup: {p}" for p in error.problems]
            continue
        target = out / source.name
        target.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(target)
    start = time.perf_counter()
    workdir = str(ROOT / "notebooks")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, str(p), workdir, args.timeout) for p in paths]
        for future in futures:
            name, seconds, error = future.result()
            print(f"{'FAILED' if error else 'ok':6s} {name:45s} {seconds:6.1f} s  {error}", flush=True)
            if error:
                problems.append(f"{name}: {error}")
    print(f"{len(paths)} student notebooks executed in {time.perf_counter() - start:.0f} s "
          f"with {args.jobs} at a time; {len(problems)} problem(s)")
    for problem in problems:
        print(f"ERROR {problem}", file=sys.stderr)
    return 1 if problems else 0
