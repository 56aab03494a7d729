"""How long each chapter notebook takes and how much memory it needs, on an idle machine and with one core busy.

Every notebook is executed from a temporary copy (never in place) with nbclient and the project's kernel, in the
environment the Makefile sets (one thread, fixed hash seed, Hugging Face offline). Each is run twice:

- **idle**: nothing else started by this script;
- **busy**: while a child process busy-loops (a pure-Python ``while True``) pinned to one core, as a browser, a
  video call or a shared Binder pod would.

Measured per run: wall seconds from kernel start to the end of the last cell; the CPU seconds (user + system)
of the kernel process tree; and its peak resident memory, the largest sum of the resident set sizes of the
kernel and its children, sampled every 0.1 s with psutil. The budget of every chapter (issue 8) is 60 s wall
and 1500 MB, both idle and busy; the whole book at most 11 minutes.

Usage, from the repository root (``make speed`` runs the first form):

    .venv/bin/python benchmarks/notebooks.py                      # every notebooks/*.ipynb
    .venv/bin/python benchmarks/notebooks.py notebooks/02_history.ipynb --idle-only
    NOTEBOOKS="notebooks/01_what_is_a_large_model.ipynb" .venv/bin/python benchmarks/notebooks.py --repeat 3

With ``--repeat N`` the table shows the median wall and CPU time and the largest peak memory of the N runs.
It prints a table and, last, one JSON object, which it stores in ``benchmarks/results/notebooks.json``
(booktools/benchmarking.py: with the date, the machine and the targets). Rows of notebooks not run this time are
kept from the stored file if it was measured on the same kind of machine (CPU model, vector extensions, cores), so
``make speed NOTEBOOKS=...`` re-measures some chapters; each row keeps its own date and load. The exit status is 1
if a notebook fails to execute or misses its budget (``--target-scale`` tightens the budget, ``--results`` names
another folder, ``--provisional`` marks a measurement taken on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # booktools lives beside llmbook

from booktools.benchmarking import Run, Target, add_arguments, machine  # noqa: E402

BUDGET_SECONDS, BUDGET_MB, BUDGET_BOOK_SECONDS = 60.0, 1500.0, 11 * 60.0
SAMPLE_EVERY = 0.1
# The environment of the Makefile: one thread, a fixed hash seed, nothing downloaded.
ENVIRONMENT = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1", "JUPYTER_PLATFORM_DIRS": "1"}


def _spin(core: int | None, parent: int) -> None:
    """Busy-loop on one core (the body of the busy child process) until it is killed or its parent is gone."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    while os.getppid() == parent:  # a few hundredths of a second of pure-Python looping between checks
        for _ in range(1_000_000):
            pass


class BusyCore:
    """Context manager: a child process that keeps one core busy; it is always terminated on exit."""

    def __init__(self):
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
        self.core = cores[-1]
        self.process: multiprocessing.Process | None = None

    def __enter__(self) -> BusyCore:
        self.process = multiprocessing.Process(target=_spin, args=(self.core, os.getpid()), daemon=True)
        self.process.start()
        time.sleep(0.2)  # let it start spinning
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.join(timeout=5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)


class TreeSampler(threading.Thread):
    """Every 0.1 s: the summed resident memory and the CPU time of this process's descendants, except some."""

    def __init__(self, exclude: set[int]):
        super().__init__(daemon=True)
        self.exclude = exclude
        self.peak_bytes = 0
        self.cpu: dict[int, float] = {}  # last CPU seconds seen per process
        self.stopped = threading.Event()

    def sample(self) -> None:
        total = 0
        for child in psutil.Process().children(recursive=True):
            if child.pid in self.exclude:
                continue
            try:
                with child.oneshot():
                    total += child.memory_info().rss
                    times = child.cpu_times()
                    self.cpu[child.pid] = times.user + times.system + times.children_user + times.children_system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def _handle_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that the busy child is terminated on the way out (as on Ctrl-C)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def run_notebook(path: Path, exclude: set[int], timeout: int) -> dict:
    """Execute a temporary copy of ``path``; return wall seconds, kernel CPU seconds, peak MB and any error."""
    with tempfile.TemporaryDirectory(prefix="llmbook_speed_") as folder:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        notebook = nbformat.read(copy, as_version=4)
        # Local sockets in the temporary folder (TCP would make the kernel warn about unencrypted traffic).
        manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(folder) / "kernel"),
                                connection_file=str(Path(folder) / "kernel.json"))
        client = NotebookClient(notebook, km=manager, timeout=timeout, resources={"metadata": {"path": folder}})
        sampler = TreeSampler(exclude)
        sampler.start()
        error = None
        start = time.perf_counter()
        try:
            # Sample once more as each cell ends, so that the last cell's CPU time is counted.
            client.on_cell_executed = lambda **_: sampler.sample()
            client.execute()
        except Exception as exc:  # a failing notebook is reported, the others still run
            message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # without terminal colours
            error = f"{type(exc).__name__}: {message.splitlines()[-1] if message else ''}"
        finally:
            seconds = time.perf_counter() - start
            sampler.stop()
            if manager.has_kernel:  # nbclient leaves a kernel it was given running
                manager.shutdown_kernel()
            # While a notebook runs, nbclient answers SIGINT and SIGTERM itself (it kills the kernel and the run
            # fails) and afterwards resets SIGTERM to the default; stop here, and handle SIGTERM again.
            _handle_sigterm()
        if getattr(client, "_async_cleanup_kernel_future", None) is not None:
            raise KeyboardInterrupt("stopped by a signal")
        nbformat.write(notebook, copy)  # the executed copy goes away with the temporary folder
    return {"seconds": seconds, "cpu_seconds": sum(sampler.cpu.values()), "peak_mb": sampler.peak_bytes / 2**20,
            "error": error}


def measure(path: Path, busy: bool, repeat: int, timeout: int) -> dict:
    """Run one notebook ``repeat`` times (with a busy core if ``busy``); median times, largest peak memory."""
    runs = []
    for _ in range(repeat):
        if busy:
            with BusyCore() as spinner:
                runs.append(run_notebook(path, {spinner.process.pid}, timeout))
        else:
            runs.append(run_notebook(path, set(), timeout))
    errors = [run["error"] for run in runs if run["error"]]
    return {"seconds": statistics.median(run["seconds"] for run in runs),
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
            "peak_mb": max(run["peak_mb"] for run in runs), "error": errors[0] if errors else None}


def notebook_paths(names: list[str]) -> list[Path]:
    """The notebooks named on the command line, else in $NOTEBOOKS, else every notebooks/*.ipynb."""
    if not names and os.environ.get("NOTEBOOKS", "").strip():
        names = os.environ["NOTEBOOKS"].split()
    paths = [Path(name) for name in names] if names else sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        raise SystemExit(f"not a notebook file: {', '.join(missing)}")
    if not paths:
        raise SystemExit("no notebooks found")
    return paths


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: $NOTEBOOKS or notebooks/*.ipynb)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--idle-only", action="store_true", help="skip the runs with a busy core")
    mode.add_argument("--busy-only", action="store_true", help="skip the runs on the idle machine")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook and condition (default 1)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (default 900)")
    add_arguments(parser)
    args = parser.parse_args()
    run_record = Run("notebooks", args)
    _handle_sigterm()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    paths = notebook_paths(args.notebooks)
    os.environ.update(ENVIRONMENT)
    conditions = [c for c in ("idle", "busy") if not (c == "idle" and args.busy_only or c == "busy" and args.idle_only)]
    load = run_record.load
    print(f"{len(paths)} notebook(s), conditions: {', '.join(conditions)}, {args.repeat} run(s) each; "
          f"{os.cpu_count()} CPUs, load average before start {fmt(load, '.2f')}", flush=True)

    results: dict[str, dict] = {}
    for path in paths:
        entry: dict = {}
        for condition in conditions:
            print(f"  {path.name} ({condition}) ...", end=" ", flush=True)
            run = measure(path, condition == "busy", args.repeat, args.timeout)
            entry[condition] = run
            print(f"{run['seconds']:.1f} s, CPU {run['cpu_seconds']:.1f} s, peak {run['peak_mb']:.0f} MB"
                  + (f"  FAILED: {run['error']}" if run["error"] else ""), flush=True)
        results[path.name] = entry

    header = (f"{'notebook':36s} {'idle s':>7s} {'busy s':>7s} {'CPU s':>6s} {'peak MB':>8s}  "
              f"within {BUDGET_SECONDS:.0f} s and {BUDGET_MB:.0f} MB")
    print("\n" + header + "\n" + "-" * len(header))
    rows = {}
    for name, entry in results.items():
        runs = list(entry.values())
        worst_seconds = max(run["seconds"] for run in runs)
        peak = max(run["peak_mb"] for run in runs)
        failed = any(run["error"] for run in runs)
        within = not failed and worst_seconds <= BUDGET_SECONDS and peak <= BUDGET_MB
        idle, busy = entry.get("idle"), entry.get("busy")
        row = {"idle_s": None if idle is None else round(idle["seconds"], 1),
               "busy_s": None if busy is None else round(busy["seconds"], 1),
               "cpu_s": round(max(run["cpu_seconds"] for run in runs), 1), "peak_mb": round(peak),
               "within_budget": within, "error": next((run["error"] for run in runs if run["error"]), None),
               "date": run_record.date, "load_average_before": load, "provisional": args.provisional,
               "repeat": args.repeat}
        rows[name] = row
        print(f"{name:36s} {fmt(row['idle_s'], '7.1f'):>7s} {fmt(row['busy_s'], '7.1f'):>7s} "
              f"{row['cpu_s']:6.1f} {row['peak_mb']:8d}  {'yes' if within else 'NO'}"
              + ("  (failed)" if failed else ""))
    measured = dict(rows)
    rows = merged_rows(run_record.results_dir(), rows)
    totals = book_totals(rows)
    print("-" * len(header))
    print("this run: " + ", ".join(f"{c} {sum(entry[c]['seconds'] for entry in results.values()):.1f} s"
                                   for c in conditions)
          + (f"; whole book (stored rows): {', '.join(f'{c} {s:.1f} s' for c, s in totals.items())}" if totals
             else "") + f" (book budget {BUDGET_BOOK_SECONDS:.0f} s)")
    targets = []
    for name, row in measured.items():
        worst = max(v for v in (row["idle_s"], row["busy_s"]) if v is not None)
        targets += [Target(f"{name}: runs without an error (1 = yes)", float(row["error"] is None), "==", 1.0),
                    Target(f"{name}: seconds (the slower condition)", worst, "<=", BUDGET_SECONDS),
                    Target(f"{name}: peak MB", row["peak_mb"], "<=", BUDGET_MB)]
    targets += [Target(f"whole book, {condition}: seconds", seconds, "<=", BUDGET_BOOK_SECONDS)
                for condition, seconds in totals.items()]
    for row in rows.values():  # a row's verdict at this run's target scale
        row["within_budget"] = (row["error"] is None and row["peak_mb"] <= BUDGET_MB * run_record.scale and all(
            v is None or v <= BUDGET_SECONDS * run_record.scale for v in (row["idle_s"], row["busy_s"])))
    result = {"threads": int(ENVIRONMENT["OMP_NUM_THREADS"]), "repeat": args.repeat,
              "budget": {"seconds": BUDGET_SECONDS, "peak_mb": BUDGET_MB, "book_seconds": BUDGET_BOOK_SECONDS},
              "notebooks": rows, "total_seconds": totals,
              "all_within_budget": all(row["within_budget"] for row in rows.values()) and all(
                  s <= BUDGET_BOOK_SECONDS * run_record.scale for s in totals.values())}
    return run_record.finish(result, targets)


def merged_rows(folder: Path | None, rows: dict) -> dict:
    """This run's rows, with the stored rows of other notebooks kept if they come from the same kind of machine."""
    stored_path = None if folder is None else folder / "notebooks.json"
    if stored_path is None or not stored_path.exists():
        return rows
    stored = json.loads(stored_path.read_text(encoding="utf-8"))
    keys = ("cpu_model", "vector_extensions", "cores")
    here, there = machine(), stored.get("machine", {})
    if any(here.get(key) != there.get(key) for key in keys):
        print(f"the stored {stored_path.name} comes from another machine; its rows are replaced, not merged")
        return rows
    existing = {path.name for path in (ROOT / "notebooks").glob("*.ipynb")}
    kept = {name: row for name, row in stored.get("results", {}).get("notebooks", {}).items()
            if name in existing and name not in rows}
    if kept:
        print(f"kept the stored rows of {len(kept)} notebook(s) not run this time")
    return dict(sorted({**kept, **rows}.items()))


def book_totals(rows: dict) -> dict[str, float]:
    """Seconds of the whole book per condition, when every notebook of notebooks/ has a row with that condition."""
    every = {path.name for path in (ROOT / "notebooks").glob("*.ipynb")}
    if not every or not every <= set(rows):
        return {}
    totals = {}
    for condition in ("idle", "busy"):
        values = [rows[name][f"{condition}_s"] for name in every]
        if all(v is not None for v in values):
            totals[condition] = round(sum(values), 1)
    return totals


if __name__ == "__main__":
    sys.exit(main())
