"""The book's nbval policy: exact, within a declared tolerance, or run-dependent, and never a warning."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from booktools import nbval_policy as policy
from booktools.nbval_policy import Tolerance, align_numbers, cell_kind, policy_counts, report, within_tolerance

ROOT = Path(__file__).resolve().parents[1]


def test_tolerance_reads_metadata_and_refuses_nonsense():
    assert Tolerance.from_metadata({"abs": 0.01}) == Tolerance(abs=0.01, rel=0.0)
    assert Tolerance.from_metadata({"rel": 0.1, "abs": 0}).allows(100.0, 109.0)
    for bad in (None, {}, {"absolute": 1}, {"abs": -1}, {"abs": "0.1"}, {"rel": True}, 0.1):
        with pytest.raises(ValueError, match="nbval-tolerance"):
            Tolerance.from_metadata(bad)


def test_within_tolerance_compares_numbers_and_keeps_the_words_exact():
    tol = Tolerance(abs=0.02)
    assert within_tolerance("loss 1.734 after 800 steps", "loss 1.749 after 800 steps", tol)
    assert not within_tolerance("loss 1.734 after 800 steps", "loss 1.760 after 800 steps", tol)
    assert not within_tolerance("loss 1.734", "LOSS 1.734", tol)
    assert not within_tolerance("a 1 b", "a 1 b 2", tol)
    assert within_tolerance("27,232 parameters, -0.50", "27,232 parameters, -0.49", tol)
    assert not within_tolerance("27,232 parameters", "27,233 parameters", Tolerance(abs=0.5))
    assert not within_tolerance("x = 1.0", "x = nan", tol)


def _code(source, outputs=(), tags=(), **metadata):
    cell = nbformat.v4.new_code_cell(source, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.metadata.update(metadata)
    return cell


def _stdout(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def test_cell_kind_reads_the_tags():
    assert cell_kind(_code("1")) == "exact"
    assert cell_kind(_code("1", tags=["nbval-ignore-output"])) == "run-dependent"
    assert cell_kind(_code("# NBVAL_IGNORE_OUTPUT\n1")) == "run-dependent"
    assert cell_kind(_code("1", tags=["nbval-tolerance"], **{"nbval-tolerance": {"abs": 1}})) == "tolerance"
    with pytest.raises(ValueError, match="nbval-tolerance"):
        cell_kind(_code("1", tags=["nbval-tolerance"]))  # a tolerance tag without its tolerance
    with pytest.raises(ValueError, match="both"):
        cell_kind(_code("1", tags=["nbval-tolerance", "nbval-ignore-output"], **{"nbval-tolerance": {"abs": 1}}))


def test_align_numbers_copies_the_stored_text_only_within_tolerance():
    ref = [_stdout("loss 1.734\n")]
    assert align_numbers([_stdout("loss 1.740\n")], ref, Tolerance(abs=0.01))[0]["text"] == "loss 1.734\n"
    assert align_numbers([_stdout("loss 1.840\n")], ref, Tolerance(abs=0.01))[0]["text"] == "loss 1.840\n"


def _notebook(tmp_path, cells):
    for count, cell in enumerate((c for c in cells if c.cell_type == "code"), start=1):
        cell.execution_count = count  # stored as one top-to-bottom run
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    path = tmp_path / "policy.ipynb"
    nbformat.write(nb, path)
    return path


def _run_nbval(path):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", str(path), "-p", "booktools.nbval_policy",
                           "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(path.parent)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


TOLERANT = {"nbval-tolerance": {"abs": 0.01}}


def test_nbval_with_the_policy_passes_and_fails_as_declared(tmp_path):
    good = _notebook(tmp_path, [
        _code("print('exact', 2 + 2)", [_stdout("exact 4\n")]),
        _code("print(f'loss {1.7391:.3f}')", [_stdout("loss 1.734\n")], tags=["nbval-tolerance"], **TOLERANT),
        _code("print(3.0)", [_stdout("whatever the stored run printed\n")], tags=["nbval-ignore-output"]),
    ])
    result = _run_nbval(good)
    assert result.returncode == 0, result.stdout + result.stderr

    for bad_cell in (
        _code("print('exact', 2 + 3)", [_stdout("exact 4\n")]),  # an exact cell that changed
        _code("print(f'loss {1.7491:.3f}')", [_stdout("loss 1.734\n")], tags=["nbval-tolerance"], **TOLERANT),
        _code("import warnings; warnings.warn('new')", [], tags=["nbval-ignore-output"]),  # stderr, not compared
    ):
        result = _run_nbval(_notebook(tmp_path, [bad_cell]))
        assert result.returncode != 0, f"should fail: {bad_cell.source}\n{result.stdout}"


def test_policy_report_counts_every_kind(tmp_path):
    path = _notebook(tmp_path, [_code("1"), _code("2", tags=["nbval-ignore-output"]),
                                _code("3", tags=["nbval-tolerance"], **TOLERANT), nbformat.v4.new_markdown_cell("x")])
    assert policy_counts([path]) == {str(path): {"exact": 1, "tolerance": 1, "run-dependent": 1}}
    assert "1 of 3 code cells compared exactly (33%)" in report([path])


def test_a_kernel_that_does_not_answer_is_started_again_and_a_lasting_failure_still_fails(monkeypatch):
    import nbval.kernel

    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            raise RuntimeError("Kernel didn't respond in 60 seconds")
        return "km", "kc"

    monkeypatch.setattr(nbval.kernel, "start_new_kernel", flaky)
    policy._retry_kernel_start(attempts=3)
    assert nbval.kernel.start_new_kernel(kernel_name="python3") == ("km", "kc") and len(calls) == 2

    def dead(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    calls.clear()
    monkeypatch.setattr(nbval.kernel, "start_new_kernel", dead)
    policy._retry_kernel_start(attempts=3)
    with pytest.raises(RuntimeError, match="didn't respond"):
        nbval.kernel.start_new_kernel(kernel_name="python3")
    assert len(calls) == 3
