"""What every script in ``benchmarks/`` shares: its targets, the machine it ran on, and its stored result.

A benchmark states its **targets** as :class:`Target` objects (a measured value, ``<=``, ``>=`` or ``==``, and a
limit), and ends with :meth:`Run.finish`, which prints every target as PASS or FAIL, prints the result as one JSON
object (the last line of output), stores it as ``benchmarks/results/<name>.json`` and returns the exit status: 1 if
any target was missed, else 0. ``make benchmarks`` fails when a script exits non-zero.

Every stored result carries the date, the machine (CPU model, its vector extensions, the instruction set PyTorch
uses, cores, platform, versions), the load average when the run started, and whether it is *provisional* (measured
while other jobs shared the machine; ``--provisional`` or ``BENCHMARK_PROVISIONAL=1``). ``python -m
booktools.performance`` renders the README's performance section from these files.

The options every benchmark takes (:func:`add_arguments`):

- ``--target-scale F`` (or ``BENCHMARK_TARGET_SCALE``) moves every scalable limit: an upper limit is multiplied by
  F, a lower limit divided by it, so F < 1 tightens every target and F > 1 loosens it (a test uses 1e-6 to make
  targets impossible and shows that the script, and ``make benchmarks``, then fail);
- ``--results DIR`` (or ``BENCHMARK_RESULTS``): where the JSON is stored (default ``benchmarks/results``). A run
  with ``--quick`` or with a target scale other than 1 stores nothing unless a folder is named, so that a smoke
  test never replaces the book's figures;
- ``--provisional``: mark the stored result as measured on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "RESULTS_DIR", "VECTOR_FLAGS", "Target", "cpu_model", "vector_extensions", "machine",
           "add_arguments", "Run"]

#: The repository's root folder.
ROOT = Path(__file__).resolve().parent.parent
#: Where the benchmarks store their results by default (one JSON file per benchmark).
RESULTS_DIR = ROOT / "benchmarks" / "results"
#: The CPU flags recorded as vector extensions, in this order when present (x86-64, then Arm).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimdhp", "sve", "sve2")
OPERATORS = {"<=": lambda value, limit: value <= limit, ">=": lambda value, limit: value >= limit,
             "==": lambda value, limit: value == limit}


@dataclass(frozen=True)
class Target:
    """One stated target of a benchmark: ``value <op> limit``, e.g. ``Target("time ours/peer", 0.8, "<=", 1.0)``.

    ``scalable=False`` keeps the limit fixed under ``--target-scale`` (for a target such as "the same number of
    trainable parameters", which a scale cannot make meaningful). A value that is not a finite number misses.
    """

    name: str
    value: float
    op: str
    limit: float
    scalable: bool = True

    def __post_init__(self):
        if self.op not in OPERATORS:
            raise ValueError(f"op must be one of {sorted(OPERATORS)}, got {self.op!r}")
        if not self.name:
            raise ValueError("a target needs a name")

    def limit_at(self, scale: float) -> float:
        """The limit under ``--target-scale scale`` (upper limits times the scale, lower limits divided by it)."""
        if not self.scalable or self.op == "==":
            return self.limit
        return self.limit * scale if self.op == "<=" else self.limit / scale

    def met(self, scale: float = 1.0) -> bool:
        """Whether the value meets the limit at ``scale``."""
        value = float(self.value)
        return math.isfinite(value) and OPERATORS[self.op](value, self.limit_at(scale))

    def record(self, scale: float = 1.0) -> dict:
        """The target as stored in the JSON result."""
        return {"name": self.name, "value": _round(float(self.value)), "op": self.op,
                "limit": _round(self.limit_at(scale)), "met": self.met(scale)}


def _round(value: float, digits: int = 6) -> float:
    return value if not math.isfinite(value) else float(f"{value:.{digits}g}")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name: from /proc/cpuinfo, else ``lscpu``, else macOS's sysctl, else the platform."""
    match = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    if match:
        return " ".join(match.group(1).split())
    for command, pattern in ((["lscpu"], r"^Model name:\s*(.+)$"),
                             (["sysctl", "-n", "machdep.cpu.brand_string"], r"^(.+)$")):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(pattern, out, re.MULTILINE)
        if match:
            return " ".join(match.group(1).split())
    return platform.processor() or platform.machine() or "unknown CPU"


def vector_extensions() -> list[str]:
    """The vector extensions of :data:`VECTOR_FLAGS` that the CPU reports (``flags`` or ``Features``)."""
    info = _read("/proc/cpuinfo")
    match = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", info, re.MULTILINE)
    if not match:
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        match = re.search(r"^Flags:\s*(.+)$", out, re.MULTILINE)
    flags = set(match.group(1).split()) if match else set()
    return [flag for flag in VECTOR_FLAGS if flag in flags]


def machine() -> dict:
    """The machine a measurement was taken on: CPU model, vector extensions, PyTorch's capability, cores, versions."""
    info = {"cpu_model": cpu_model(), "vector_extensions": vector_extensions(), "cores": os.cpu_count(),
            "platform": f"{platform.system()} {platform.machine()}", "python": platform.python_version()}
    ids = dict(re.findall(r"^(cpu family|model|stepping)\s*:\s*(\d+)$", _read("/proc/cpuinfo"), re.MULTILINE))
    if ids:  # x86: which generation hides behind a name such as "AMD EPYC" on a virtual machine
        info["cpu_id"] = ", ".join(f"{key} {ids[key]}" for key in ("cpu family", "model", "stepping") if key in ids)
    if "torch" in sys.modules:  # the benchmarks import torch; the renderer never does
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__.split("+")[0]
        info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["threads"] = torch.get_num_threads()
    else:  # benchmarks/notebooks.py: ask a fresh interpreter, with this environment, as its kernels will see it
        from booktools.cpu_paths import capability

        try:
            info["torch_cpu_capability"] = capability()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        return float(value) if value else default
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {value!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every benchmark shares: ``--target-scale``, ``--results`` and ``--provisional``."""
    parser.add_argument("--target-scale", type=float, default=_env_float("BENCHMARK_TARGET_SCALE", 1.0),
                        help="multiply every upper limit by this and divide every lower limit by it "
                             "(< 1 tightens the targets; default $BENCHMARK_TARGET_SCALE or 1)")
    parser.add_argument("--results", type=Path, default=os.environ.get("BENCHMARK_RESULTS") or None,
                        help="folder for the JSON result (default benchmarks/results; a --quick run, or one with a "
                             "target scale other than 1, stores nothing unless a folder is named)")
    parser.add_argument("--provisional", action="store_true",
                        default=os.environ.get("BENCHMARK_PROVISIONAL", "").strip() not in ("", "0"),
                        help="mark the stored result as provisional: measured while other jobs shared the machine")


class Run:
    """One run of a benchmark: call at the start (it notes the time and the load), then :meth:`finish`."""

    def __init__(self, name: str, args: argparse.Namespace, quick: bool = False):
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"a benchmark name is lower case letters, digits and _, got {name!r}")
        scale = getattr(args, "target_scale", 1.0)
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise SystemExit(f"--target-scale must be a number > 0, got {scale!r}")
        self.name, self.args, self.quick, self.scale = name, args, quick, float(scale)
        self.date = datetime.date.today().isoformat()
        self.load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
        self.start = time.perf_counter()

    def results_dir(self) -> Path | None:
        """Where the result is stored, or None (a smoke test or a scaled target with no folder named)."""
        named = getattr(self.args, "results", None)
        if named is not None:
            return Path(named)
        return None if self.quick or self.scale != 1.0 else RESULTS_DIR

    def record(self, results: dict, targets: list[Target]) -> dict:
        """The JSON object stored for this run."""
        return {"benchmark": self.name, "date": self.date, "provisional": bool(getattr(self.args, "provisional", 0)),
                "quick": self.quick, "machine": machine(), "load_average_before": self.load,
                "seconds_total": round(time.perf_counter() - self.start, 1), "target_scale": self.scale,
                "targets": [target.record(self.scale) for target in targets],
                "all_targets_met": all(target.met(self.scale) for target in targets), "results": results}

    def finish(self, results: dict, targets: list[Target]) -> int:
        """Print the targets and the JSON, store it, and return the exit status (1 if a target was missed)."""
        record = self.record(results, targets)
        scaled = f" (limits scaled by --target-scale {self.scale:g})" if self.scale != 1.0 else ""
        print(f"\ntargets{scaled}:")
        for target in record["targets"]:
            print(f"  {'PASS' if target['met'] else 'FAIL'}  {target['name']}: {target['value']:g} {target['op']} "
                  f"{target['limit']:g}")
        folder = self.results_dir()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.name}.json"
            path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"stored in {path}")
        else:
            print("not stored (a --quick run or a scaled target; name a folder with --results to keep it)")
        missed = [t["name"] for t in record["targets"] if not t["met"]]
        if missed:
            print(f"{len(missed)} target(s) missed: {'; '.join(missed)}")
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return 1 if missed else 0
