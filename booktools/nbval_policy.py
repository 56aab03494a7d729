"""The book's policy for comparing notebook outputs, as a pytest plugin on top of nbval.

Floating-point training is reproducible only on one CPU's code path: an AVX2 laptop, an AVX-512 server and an Apple
arm64 machine print other last digits, and chaotic training turns those into other accuracies. So every code cell
falls into one of three kinds, chosen by the notebook's author with a cell tag:

- **exact** (no tag): the output is text that no CPU can change (a count, a formula, a table of facts, tokenizer
  output) and nbval compares it character for character, as in strict mode;
- **within a tolerance** (tag ``nbval-tolerance``, with the cell metadata ``{"nbval-tolerance": {"abs": 0.01,
  "rel": 0.0}}``): the text around the numbers must match exactly and every number must lie within
  ``abs + rel * |stored|`` of the stored one;
- **run-dependent** (tag ``nbval-ignore-output``): the output of training or timing; the cell still runs, the
  claims the prose draws from it are asserted in a later cell with :func:`llmbook.evidence.check_claim`, and its
  output is not compared.

On top of nbval, no cell of any kind may write to stderr (a new warning fails the test even where the output is
not compared). Run with ``pytest --nbval -p booktools.nbval_policy``; the terminal summary reports the share of
code cells compared exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TOLERANCE_TAG = "nbval-tolerance"
IGNORE_TAG = "nbval-ignore-output"
TOLERANCE_KEY = "nbval-tolerance"

# A number as Python's formatting prints it: optional sign, digits with optional thousands commas, a fraction,
# an exponent. Percent signs and units stay in the surrounding text.
NUMBER = re.compile(r"[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Tolerance:
    """How far a number may lie from the stored one: ``abs + rel * |stored|``."""

    abs: float = 0.0
    rel: float = 0.0

    @classmethod
    def from_metadata(cls, value) -> Tolerance:
        """Read ``{"abs": ..., "rel": ...}`` from cell metadata; raise ``ValueError`` on anything else."""
        if not isinstance(value, dict) or not value or set(value) - {"abs", "rel"}:
            raise ValueError(f"{TOLERANCE_KEY} must be a dict with keys 'abs' and/or 'rel', got {value!r}")
        for key, number in value.items():
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not number >= 0:
                raise ValueError(f"{TOLERANCE_KEY}[{key!r}] must be a number >= 0, got {number!r}")
        return cls(abs=float(value.get("abs", 0.0)), rel=float(value.get("rel", 0.0)))

    def allows(self, stored: float, new: float) -> bool:
        return math.isfinite(new) and abs(new - stored) <= self.abs + self.rel * abs(stored)


def _to_float(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


def within_tolerance(stored: str, new: str, tolerance: Tolerance) -> bool:
    """True if ``new`` equals ``stored`` except for numbers that lie within ``tolerance`` of the stored ones."""
    if NUMBER.split(stored) != NUMBER.split(new):
        return False
    stored_numbers, new_numbers = NUMBER.findall(stored), NUMBER.findall(new)
    return len(stored_numbers) == len(new_numbers) and all(
        tolerance.allows(_to_float(a), _to_float(b)) for a, b in zip(stored_numbers, new_numbers, strict=True))


def cell_kind(cell) -> str:
    """``"exact"``, ``"tolerance"`` or ``"run-dependent"``: how the policy compares a code cell's output."""
    tags = cell.get("metadata", {}).get("tags", [])
    if TOLERANCE_TAG in tags and IGNORE_TAG in tags:
        raise ValueError(f"a cell cannot carry both {TOLERANCE_TAG!r} and {IGNORE_TAG!r}")
    if TOLERANCE_TAG in tags:
        Tolerance.from_metadata(cell.get("metadata", {}).get(TOLERANCE_KEY))
        return "tolerance"
    source = "".join(cell.get("source", ""))
    if IGNORE_TAG in tags or "NBVAL_IGNORE_OUTPUT" in source:
        return "run-dependent"
    return "exact"


def _text_of(output) -> list[tuple[str, str]]:
    """(where, text) pairs of an output's comparable text: a stream's text, or a result's text/plain."""
    if output.get("output_type") == "stream":
        return [("text", output.get("text", ""))]
    data = output.get("data", {})
    return [("text/plain", data["text/plain"])] if "text/plain" in data else []


def align_numbers(test: list, ref: list, tolerance: Tolerance) -> list:
    """A copy of ``test`` in which every text that matches ``ref`` within ``tolerance`` is replaced by ``ref``'s.

    nbval then compares the outputs as usual: those within the tolerance compare equal, and any other difference
    is reported with nbval's own diff.
    """
    import copy

    import nbformat

    aligned = [nbformat.from_dict(copy.deepcopy(dict(output))) for output in test]
    if len(aligned) != len(ref):
        return aligned
    for new, old in zip(aligned, ref, strict=True):
        if new.get("output_type") != old.get("output_type"):
            continue
        for (where, new_text), (_, old_text) in zip(_text_of(new), _text_of(old), strict=False):
            new_str = "".join(new_text) if isinstance(new_text, list) else new_text
            old_str = "".join(old_text) if isinstance(old_text, list) else old_text
            if new_str != old_str and within_tolerance(old_str, new_str, tolerance):
                if where == "text":
                    new["text"] = old_str
                else:
                    new["data"]["text/plain"] = old_str
    return aligned


def _install() -> None:
    from nbval.plugin import IPyNbCell, NbCellError

    if getattr(IPyNbCell, "_book_policy", False):
        return
    original_compare, original_runtest = IPyNbCell.compare_outputs, IPyNbCell.runtest

    def compare_outputs(self, test, ref, skip_compare=None):
        if cell_kind(self.cell) == "tolerance":
            tolerance = Tolerance.from_metadata(self.cell.metadata[TOLERANCE_KEY])
            test = align_numbers(test, ref, tolerance)
        return original_compare(self, test, ref, skip_compare)

    def runtest(self):
        original_runtest(self)
        for output in self.test_outputs or []:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                raise NbCellError(self.cell_num, "the cell wrote to stderr (a warning?), which the book does not "
                                  "allow even where outputs are not compared:\n" + "".join(output["text"])[:2000],
                                  self.cell.source)

    IPyNbCell.compare_outputs = compare_outputs
    IPyNbCell.runtest = runtest
    IPyNbCell._book_policy = True
    _retry_kernel_start()


KERNEL_STARTS = 3


def _retry_kernel_start(attempts: int = KERNEL_STARTS) -> None:
    """Start a notebook's kernel again when it does not answer: with two kernels starting at once (nbval under
    xdist), one of them now and then never connects (seen once in four runs: "Kernel didn't respond in 60
    seconds"), which would fail every cell of a notebook that is fine. The notebook still runs from the start."""
    import nbval.kernel

    if getattr(nbval.kernel.start_new_kernel, "_book_retry", False):
        return
    original = nbval.kernel.start_new_kernel

    def start_new_kernel(*args, **kwargs):
        for attempt in range(1, attempts + 1):
            try:
                return original(*args, **kwargs)
            except RuntimeError:
                if attempt == attempts:
                    raise
                print(f"booktools.nbval_policy: the kernel did not start (attempt {attempt}); starting it again")

    start_new_kernel._book_retry = True
    nbval.kernel.start_new_kernel = start_new_kernel


def pytest_configure(config):
    _install()


def pytest_collection_modifyitems(session, config, items):
    from nbval.plugin import IPyNbCell

    for item in items:
        if isinstance(item, IPyNbCell) and cell_kind(item.cell) == "tolerance":  # raises if malformed
            item.options["check"] = True


def policy_counts(notebooks) -> dict[str, dict[str, int]]:
    """For each notebook path, how many code cells are compared exactly, within a tolerance, or run-dependent."""
    import json
    from pathlib import Path

    counts = {}
    for path in notebooks:
        cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
        kinds = [cell_kind(cell) for cell in cells if cell["cell_type"] == "code"]
        counts[str(path)] = {kind: kinds.count(kind) for kind in ("exact", "tolerance", "run-dependent")}
    return counts


def report(notebooks) -> str:
    """The policy report printed after nbval: per notebook and in all, the share of code cells compared exactly."""
    counts = policy_counts(notebooks)
    lines, total = [], {"exact": 0, "tolerance": 0, "run-dependent": 0}
    for path, c in counts.items():
        n = sum(c.values())
        lines.append(f"  {_name(path):48s} {c['exact']:3d} of {n:3d} exact ({c['exact'] / max(n, 1):4.0%}), "
                     f"{c['tolerance']} within a tolerance, {c['run-dependent']} run-dependent")
        for kind in total:
            total[kind] += c[kind]
    n = sum(total.values())
    share = total["exact"] / max(n, 1)
    lines.append(f"book policy: {total['exact']} of {n} code cells compared exactly ({share:.0%}), "
                 f"{total['tolerance']} within a declared tolerance, {total['run-dependent']} run-dependent "
                 "(their claims are asserted in the notebooks)")
    return "\n".join(lines)


def _name(path) -> str:
    from pathlib import Path

    return Path(path).name


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(report(sys.argv[1:]))
