"""llmbook installs on its own: into a fresh virtual environment, from the working tree, with only the
dependencies that pyproject.toml declares, and then every module imports and the shipped checkpoint loads.

It takes about a minute (it installs PyTorch and the rest), so ``make unit`` leaves it out and
``make install-check`` (part of ``make test``) runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.install

CHECK = """
import importlib, pkgutil
import llmbook
names = sorted(m.name for m in pkgutil.iter_modules(llmbook.__path__))
for name in names:
    importlib.import_module("llmbook." + name)
from llmbook.pretrained import load_pretrained_gpt
model, tokenizer = load_pretrained_gpt()[:2]
print("imported", len(names), "modules; checkpoint parameters:", sum(p.numel() for p in model.parameters()))
"""


def run(*args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, **kwargs)


def test_llmbook_installs_into_a_fresh_environment_and_imports(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    torch_pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines()
                     if line.startswith("torch=="))
    # As the Makefile does: a local CPU wheel if pip finds one without an index, else PyTorch's CPU index.
    local = run(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", torch_pin)
    if local.returncode != 0:
        cpu = run(python, "-m", "pip", "install", "--quiet", torch_pin,
                  "--index-url", "https://download.pytorch.org/whl/cpu")
        assert cpu.returncode == 0, cpu.stderr[-2000:]
    # Install from a copy of what the package is made of, so that the build leaves nothing in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "llmbook", source / "llmbook", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    installed = run(python, "-m", "pip", "install", "--quiet", source, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    check = run(python, "-c", CHECK, cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert check.returncode == 0, check.stderr[-2000:]
    assert re.search(r"imported \d+ modules; checkpoint parameters: \d+", check.stdout), check.stdout
    assert "site-packages" in run(python, "-c", "import llmbook; print(llmbook.__file__)", cwd=tmp_path).stdout

