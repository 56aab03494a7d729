# The two commands a newcomer needs: `make book` and `make test`. Both create the environment if needed.
# Everything else is documented in README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# The book's thread policy (one thread everywhere; see llmbook/utils.py and book/setup.md), a fixed hash seed,
# and Hugging Face's offline mode: the stored notebook outputs depend on the first two, and nothing is downloaded.
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export JUPYTER_PLATFORM_DIRS := 1

.PHONY: help env book book-zh translations build-strict-zh i18n-check test lint unit install-check nbval nbval-other-cpu build-strict links site-check execute student student-check grader-env assignments grader-lab autograde-check hub-env hub-smoke lab clean benchmarks peer-env speed checkpoints

help:
	@echo "make book        set up .venv if needed and build the site into _build/html"
	@echo "make test        set up .venv if needed and run every check (lint, unit, nbval on two CPU paths, both editions built, links)"
	@echo "make book-zh     build the Chinese edition into _build/html/zh (after make book; see booktools/i18n.py)"
	@echo "make translations  extract the English prose and merge it into locales/zh_CN (new: empty; changed: fuzzy)"
	@echo "make i18n-check  the share of the prose translated, and no stale or fuzzy translation (part of make test)"
	@echo "make nbval-other-cpu  nbval with PyTorch, MKL, oneDNN and OpenBLAS on another CPU code path (make test)"
	@echo "make execute     re-run every notebook in place (outputs stored; a second run shows no diff)"
	@echo "make student     write student versions of the notebooks (solutions removed) to _build/student"
	@echo "make student-check  write the student versions and run each one top to bottom (part of make test)"
	@echo "make grader-env  create .venv-grader: otter-grader in its own environment, beside the book's"
	@echo "make assignments export every chapter to otter-grader: student notebook + autograder in _build/otter"
	@echo "make grader-lab  JupyterLab with otter-grader and the book's packages, on _build/otter (try an assignment)"
	@echo "make autograde-check  otter-grade every chapter: solutions full marks, student zero, one wrong (make test)"
	@echo "make hub-smoke   the class hub's image on 127.0.0.1: empty homes, nbgitpuller, a chapter run offline (make test)"
	@echo "make benchmarks  run the scripts in benchmarks/, store their results, render the README's figures (slow)"
	@echo "make speed       time every notebook idle and with one core busy, and its peak memory (NOTEBOOKS=...)"
	@echo "make peer-env    create .venv-peer: the pinned peer of benchmarks/tiny_gpt.py, beside the book's packages"
	@echo "make checkpoints retrain the shared pre-trained tiny GPT into llmbook/resources (about 30 s)"
	@echo "make lab         open JupyterLab on notebooks/"
	@echo "make clean       remove build outputs (keeps .venv; 'make distclean' removes it too)"

# Supported Pythons: every pin in requirements.txt installs on these (checked with pip's resolver).
PYTHON_VERSIONS := 3.11 3.12 3.13
# PyTorch's CPU build. On Linux, PyPI's torch wheel is the CUDA build and pulls in gigabytes of GPU libraries
# that the book never uses, so torch comes from PyTorch's CPU index instead; macOS and Windows wheels on PyPI
# are CPU builds already. With a GPU, name a CUDA wheel index from PyTorch's install guide: make book TORCH_INDEX=...
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)

# The environment: rebuilt when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	@version=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || { \
	  echo "make: cannot run '$(PYTHON)'. Install Python ($(PYTHON_VERSIONS)) or name one: make book PYTHON=python3.12"; \
	  exit 1; }; \
	case " $(PYTHON_VERSIONS) " in *" $$version "*) ;; *) \
	  echo "make: '$(PYTHON)' is Python $$version, but the book needs Python $(PYTHON_VERSIONS)."; \
	  echo "      Point make at a supported interpreter, for example: make book PYTHON=python3.12"; \
	  exit 1;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# A torch wheel that pip already finds without an index (a local wheel folder, as on the CI machines) is used
	@# as it is, with no network; otherwise Linux gets the CPU build from PyTorch's index.
	@if $(BIN)/python -m pip install --quiet --no-index --no-deps "$(TORCH_PIN)" 2>/dev/null; then \
	  echo "$(TORCH_PIN) installed from a local wheel"; \
	elif [ "$$(uname -s)" = Linux ]; then \
	  echo "installing $(TORCH_PIN) (CPU build) from $(TORCH_INDEX)"; \
	  $(BIN)/python -m pip install --quiet "$(TORCH_PIN)" --index-url "$(TORCH_INDEX)"; \
	fi
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

env: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --quiet
	@echo "Open $(CURDIR)/_build/html/index.html in a browser."

test: $(STAMP)
	@failed=0; \
	for step in lint unit install-check nbval nbval-other-cpu student-check autograde-check hub-smoke build-strict build-strict-zh i18n-check links site-check; do \
	  echo "=== make $$step ==="; start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$step || { echo "*** $$step FAILED"; failed=1; }; \
	  echo "=== make $$step: $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ $$failed -ne 0 ]; then echo "make test: some checks failed"; exit 1; fi; \
	echo "make test: all checks passed"

lint: $(STAMP)
	$(BIN)/ruff check llmbook booktools tests benchmarks scripts notebooks _ext

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests

# llmbook on its own: a fresh virtual environment, `pip install .`, every module imported (about a minute).
install-check: $(STAMP)
	$(BIN)/python -m pytest -q -m install tests/test_fresh_install.py -p no:cacheprovider

# Every notebook re-executed, two at a time, under the book's output policy (booktools/nbval_policy.py): cells are
# compared exactly unless tagged run-dependent (training, timing: their claims are asserted in the notebook) or given
# a tolerance; no cell may write to stderr. The report says how many cells are compared exactly.
NBVAL = $(BIN)/python -m pytest -q -n 2 --dist loadfile --nbval -p booktools.nbval_policy \
	--nbval-sanitize-with .nbval_sanitize.cfg -p no:cacheprovider
nbval: $(STAMP)
	$(NBVAL) $(NOTEBOOKS)
	@$(BIN)/python -m booktools.nbval_policy $(NOTEBOOKS) | tail -1

# The same run on another CPU code path of this machine (booktools/cpu_paths.py: AVX2 on an AVX-512 machine, the
# baseline x86-64 path on an AVX2 one): what a reader with another CPU computes. Both runs must pass.
nbval-other-cpu: $(STAMP)
	@alt=$$($(BIN)/python -m booktools.cpu_paths) || exit 1; \
	if [ -z "$$alt" ]; then echo "nbval-other-cpu SKIPPED: no other CPU code path is known for this machine"; exit 0; fi; \
	echo "nbval on another CPU code path: $$alt"; \
	env $$alt $(NBVAL) $(NOTEBOOKS)

build-strict: $(STAMP)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W -n --keep-going

links: $(STAMP)
	$(BIN)/python scripts/check_site.py _build/html

# The built site in a real browser with the network cut (maths, accessibility, requests, console, code width,
# links, search). Needs Debian's Chromium (apt-get install chromium); skipped, and said so, without it.
CHROMIUM ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))
site-check: $(STAMP)
	@if [ -z "$(CHROMIUM)" ]; then \
	  echo "site-check SKIPPED: no Chromium found (apt-get install chromium, or make site-check CHROMIUM=/path)"; \
	else \
	  $(BIN)/python scripts/site_check.py _build/html --browser "$(CHROMIUM)"; \
	fi

# The Chinese edition (中文版), built from the same notebooks: the prose is translated in gettext catalogues,
# locales/zh_CN/LC_MESSAGES/<page>.po, and a second Sphinx build reads them (booktools/i18n.py). The Chinese site goes
# into _build/html/zh, beside the English one it links to, so build the English site first (make book).
translations: $(STAMP)
	$(BIN)/python -m booktools.i18n extract
	$(BIN)/python -m booktools.i18n update

book-zh: $(STAMP)
	$(BIN)/python -m booktools.i18n build

build-strict-zh: $(STAMP)
	$(BIN)/python -m booktools.i18n build --strict

# The share of the English prose translated (at least 95 %), and no stale, fuzzy or missing entry.
i18n-check: $(STAMP)
	$(BIN)/python -m booktools.i18n extract
	$(BIN)/python -m booktools.i18n check

execute: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
	  echo "executing $$nb"; \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False "$$nb" || exit 1; \
	  $(BIN)/python scripts/clean_notebook.py "$$nb" || exit 1; \
	done

student: $(STAMP)
	$(BIN)/python scripts/make_student_version.py notebooks _build/student

# Every student notebook, written as `make student` does, run top to bottom with its answer cells left out, two at
# a time (outputs are not compared: nbval checks the full notebooks). Fails on malformed exercise markup too.
student-check: $(STAMP)
	$(BIN)/python scripts/check_student_versions.py --out _build/student --jobs 2 --timeout 600

# A side environment for a tool whose pins cannot share the book's: $(1) is its folder, $(2) its exact pins
# (installed with --no-deps, so pip never resolves against the book). It sees the book's packages (torch,
# llmbook, ...) through a .pth file, and pip never changes .venv from there.
define side_env
	@test -x $(1)/bin/python || $(BIN)/python -m venv $(1)
	@book=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  own=$$($(1)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  echo "import site; site.addsitedir('$$book')" > "$$own/zz_book_env.pth"
	$(1)/bin/python -m pip install --quiet --no-deps -r $(2)
	@touch $(1)/.installed
endef

# otter-grader in its own environment: otter-grader 7.0.0 cannot be installed beside the book's pins (wrapt), so
# .venv-grader gets otter and its dependencies. The book's pins are untouched.
GRADER_VENV ?= .venv-grader
GRADER_STAMP := $(GRADER_VENV)/.installed
$(GRADER_STAMP): $(STAMP) deploy/requirements-grader.txt
	$(call side_env,$(GRADER_VENV),deploy/requirements-grader.txt)

grader-env: $(GRADER_STAMP)

# Every chapter exported to otter (Otter Assign): _build/otter/<chapter>/dist/{student,autograder}.
assignments: $(GRADER_STAMP)
	$(GRADER_VENV)/bin/python scripts/autograde_check.py --assign-only

# The otter student notebooks import otter (their first cell), which the book's environment does not have: open them
# with the grader environment's Python, which sees otter and the book's packages.
grader-lab: $(GRADER_STAMP)
	$(GRADER_VENV)/bin/python -m jupyterlab _build/otter

# Every chapter exported to otter and graded locally (no Docker), two gradings at a time: worked solutions full
# marks, the student notebook zero, one wrong answer loses exactly that question's point (scripts/autograde_check.py).
autograde-check: $(GRADER_STAMP)
	$(GRADER_VENV)/bin/python scripts/autograde_check.py --jobs 2

# A class hub in miniature, in its own environment (JupyterHub and nbgitpuller are not book dependencies): the
# Python configurable-http-proxy, so no Node.js is needed; the book's packages are seen through a .pth file.
HUB_VENV ?= .venv-hub
HUB_STAMP := $(HUB_VENV)/.installed
$(HUB_STAMP): $(STAMP) deploy/requirements-hub.txt
	$(call side_env,$(HUB_VENV),deploy/requirements-hub.txt)

hub-env: $(HUB_STAMP)

# The class hub's image path on 127.0.0.1 (scripts/hub_smoke.py): llmbook installed by binder/postBuild into an
# environment outside the repository, then the repository and the image's home hidden (mount namespace); two
# students with empty homes log in, pull a chapter through its nbgitpuller link and run it through the kernel API
# with the network cut (network namespace). Then the old editable install must fail the same test (tests/test_hub.py).
hub-smoke: $(HUB_STAMP)
	$(HUB_VENV)/bin/python scripts/hub_smoke.py --notebook notebooks/02_history.ipynb
	$(BIN)/python -m pytest -q -m hub tests/test_hub.py -p no:cacheprovider

# The peer implementation of benchmarks/tiny_gpt.py (llms-from-scratch, pinned) in its own environment: its
# declared dependencies conflict with the book's pins, and it needs only torch, which it sees through the .pth file.
PEER_VENV ?= .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed
$(PEER_STAMP): $(STAMP) benchmarks/requirements-peer.txt
	$(call side_env,$(PEER_VENV),benchmarks/requirements-peer.txt)

peer-env: $(PEER_STAMP)

# Not part of make test. Every benchmark runs (in .venv-peer, which sees the book's packages too), stores its JSON in
# benchmarks/results/ and exits 1 if a target it states is missed; the README's performance section and the
# instructor guide's timings are then re-rendered from the stored results (booktools/performance.py), and make fails
# if any target was missed. BENCHMARK_ARGS=--provisional marks results measured on a busy machine;
# BENCHMARKS=... runs some; tests/test_benchmarks.py overrides BENCHMARK_DEPS and RENDER_PERFORMANCE.
BENCHMARKS ?= benchmarks/tiny_gpt.py benchmarks/word2vec_vs_gensim.py benchmarks/lora_vs_peft.py benchmarks/rlhf.py
BENCHMARK_DEPS ?= $(STAMP) $(PEER_STAMP)
BENCHMARK_PYTHON ?= $(PEER_VENV)/bin/python
RENDER_PERFORMANCE ?= $(BIN)/python -m booktools.performance
benchmarks: $(BENCHMARK_DEPS)
	@failed=""; for b in $(BENCHMARKS); do echo "=== $$b ==="; \
	  $(BENCHMARK_PYTHON) "$$b" $(BENCHMARK_ARGS) || failed="$$failed $$b"; done; \
	$(RENDER_PERFORMANCE) || failed="$$failed (rendering)"; \
	if [ -n "$$failed" ]; then echo "make benchmarks FAILED (a target missed or an error):$$failed"; exit 1; fi

# Not part of make test: a benchmark, not a timed test. SPEED_ARGS=--idle-only (or --busy-only, --repeat 3,
# --provisional). Stores benchmarks/results/notebooks.json (rows of other notebooks are kept) and re-renders the
# README's and the instructor guide's timings; fails if a notebook misses its budget.
speed: $(STAMP)
	@status=0; $(BIN)/python benchmarks/notebooks.py $(NOTEBOOKS) $(SPEED_ARGS) || status=1; \
	$(RENDER_PERFORMANCE) || status=1; exit $$status

# The pre-trained tiny GPT shared by chapters 9-11 (safetensors + JSON; tests/test_pretrained.py checks it).
checkpoints: $(STAMP)
	$(BIN)/python scripts/train_checkpoint.py

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(GRADER_VENV) $(HUB_VENV) $(PEER_VENV)
