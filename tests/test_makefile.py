"""Tests of the Makefile's environment step: the supported Pythons and PyTorch's CPU build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def fake_python(tmp_path: Path, version: str) -> Path:
    """An executable that answers every call like a Python interpreter of ``version`` would to the check."""
    script = tmp_path / f"python{version}"
    script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(0o755)
    return script


def run_make_env(tmp_path: Path, python: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "env", f"PYTHON={python}",
                           f"VENV={tmp_path / 'venv'}"], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.14"])
def test_unsupported_python_stops_with_a_clear_message(tmp_path, version):
    result = run_make_env(tmp_path, str(fake_python(tmp_path, version)))
    assert result.returncode != 0
    assert f"is Python {version}, but the book needs Python 3.11 3.12 3.13" in result.stdout
    assert "make book PYTHON=python3.12" in result.stdout
    assert not (tmp_path / "venv").exists()  # nothing was created


def test_missing_python_stops_with_a_clear_message(tmp_path):
    result = run_make_env(tmp_path, str(tmp_path / "no-such-python"))
    assert result.returncode != 0
    assert "cannot run" in result.stdout and "PYTHON=python3.12" in result.stdout


def test_torch_pin_matches_requirements_and_the_cpu_index_is_the_default():
    dry = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), "env", "VENV=/nonexistent/venv"],
                         capture_output=True, text=True, timeout=60)
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("torch==")]
    assert len(pins) == 1
    assert f'--no-index --no-deps "{pins[0]}"' in dry.stdout
    assert '--index-url "https://download.pytorch.org/whl/cpu"' in dry.stdout
