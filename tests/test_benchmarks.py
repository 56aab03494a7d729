"""The benchmarks: they fail on a missed target, share the chapters' settings, and their figures are rendered.

- a missed target makes a benchmark, and ``make benchmarks``, exit non-zero (shown by tightening the targets of a
  real benchmark on a tiny configuration with ``--target-scale``);
- chapter 6 and ``benchmarks/tiny_gpt.py`` take their settings from one recipe (``llmbook.training.TINY_GPT_RECIPE``);
- the README's performance section and the instructor guide's timings are what ``booktools.performance`` renders
  from ``benchmarks/results/`` (so ``make unit`` fails when a table no longer matches the stored results), and
  every stored result names its date, CPU model and vector extensions.
"""

from __future__ import annotations

import ast
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from booktools import benchmarking, performance
from booktools.benchmarking import Run, Target
from llmbook.training import TINY_GPT_RECIPE, GPTRecipe

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SCRIPTS = ["tiny_gpt", "word2vec_vs_gensim", "lora_vs_peft", "rlhf", "notebooks"]
CHAPTER_6 = ROOT / "notebooks" / "06_tiny_gpt_and_generation.ipynb"
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def load_script(name: str):
    """Import benchmarks/<name>.py as a module from the repository root (its main() is not run)."""
    return importlib.import_module(f"benchmarks.{name}")


def args(**overrides):
    """The parsed common options of a benchmark, as add_arguments gives them, with ``overrides``."""
    import argparse

    parser = argparse.ArgumentParser()
    benchmarking.add_arguments(parser)
    namespace = parser.parse_args([])
    namespace.target_scale, namespace.results, namespace.provisional = 1.0, None, False
    for key, value in overrides.items():
        setattr(namespace, key, value)
    return namespace


# ------------------------------------------------------------------------------------------ targets and exit status


def test_a_target_is_met_or_missed_and_the_scale_tightens_it():
    upper, lower = Target("time ratio", 0.8, "<=", 1.0), Target("accuracy", 0.85, ">=", 0.8)
    assert upper.met() and lower.met()
    assert not upper.met(1e-6) and not lower.met(1e-6)  # limits 1e-6 and 8e5: impossible
    assert upper.met(1e6) and lower.met(1e6)
    fixed = Target("same count (1 = yes)", 1.0, "==", 1.0)
    assert fixed.met(1e-6) and not Target("same count (1 = yes)", 0.0, "==", 1.0).met()
    assert not Target("loss", float("nan"), "<=", 1.0).met()  # a value that is not a number misses
    assert upper.record(1e-6) == {"name": "time ratio", "value": 0.8, "op": "<=", "limit": 1e-6, "met": False}


def test_a_target_rejects_an_unknown_comparison():
    with pytest.raises(ValueError, match="op must be one of"):
        Target("x", 1.0, "<", 2.0)
    with pytest.raises(ValueError, match="needs a name"):
        Target("", 1.0, "<=", 2.0)


def test_run_exits_1_on_a_missed_target_and_stores_the_machine(tmp_path, capsys):
    run = Run("demo", args(results=tmp_path))
    assert run.finish({"x": 1}, [Target("fast enough", 2.0, "<=", 3.0)]) == 0
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["all_targets_met"] and record["results"] == {"x": 1}
    assert record["machine"]["cpu_model"] and isinstance(record["machine"]["vector_extensions"], list)
    assert run.finish({"x": 2}, [Target("fast enough", 4.0, "<=", 3.0)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  fast enough: 4 <= 3" in out
    assert json.loads(out.strip().splitlines()[-1])["all_targets_met"] is False  # the JSON is the last line


def test_a_smoke_test_or_a_scaled_run_never_replaces_the_stored_results(monkeypatch, tmp_path):
    monkeypatch.setattr(benchmarking, "RESULTS_DIR", tmp_path / "stored")
    assert Run("demo", args(), quick=True).results_dir() is None
    assert Run("demo", args(target_scale=0.5)).results_dir() is None
    assert Run("demo", args()).results_dir() == tmp_path / "stored"
    assert Run("demo", args(results=tmp_path), quick=True).results_dir() == tmp_path


def test_run_rejects_a_bad_scale_or_name():
    with pytest.raises(SystemExit, match="target-scale must be a number > 0"):
        Run("demo", args(target_scale=0.0))
    with pytest.raises(ValueError, match="lower case"):
        Run("Demo Run", args())


def test_the_machine_names_its_cpu_and_vector_extensions():
    machine = benchmarking.machine()
    assert machine["cpu_model"] and machine["cores"] >= 1
    assert set(machine["vector_extensions"]) <= set(benchmarking.VECTOR_FLAGS)


@needs_make
def test_make_benchmarks_runs_every_script_and_fails_if_one_fails(tmp_path):
    ok, bad = tmp_path / "ok.py", tmp_path / "bad.py"
    ok.write_text("print('ok ran')\n")
    bad.write_text("import sys\nprint('bad ran')\nsys.exit(1)\n")

    def make(*scripts):
        return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "benchmarks", "BENCHMARK_DEPS=",
                               f"BENCHMARK_PYTHON={sys.executable}", "RENDER_PERFORMANCE=true",
                               f"BENCHMARKS={' '.join(map(str, scripts))}"],
                              capture_output=True, text=True, timeout=120)

    passed = make(ok)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = make(bad, ok)
    assert failed.returncode != 0
    assert "bad ran" in failed.stdout and "ok ran" in failed.stdout  # the others still run
    assert f"make benchmarks FAILED (a target missed or an error): {bad}" in failed.stdout


@needs_make
def test_make_benchmarks_fails_when_a_real_target_is_tightened(tmp_path):
    """benchmarks/rlhf.py on its tiny configuration; --target-scale 1e-6 makes its time target impossible (the
    quick run misses its result targets too, so the test looks at the time target alone)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "benchmarks", "BENCHMARK_DEPS=",
         f"BENCHMARK_PYTHON={sys.executable}", "RENDER_PERFORMANCE=true", "BENCHMARKS=benchmarks/rlhf.py",
         f"BENCHMARK_ARGS=--quick --target-scale 1e-6 --results {tmp_path}"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "make benchmarks FAILED" in result.stdout
    record = json.loads((tmp_path / "rlhf.json").read_text())
    timing = next(t for t in record["targets"] if t["name"].startswith("whole pipeline"))
    assert timing["limit"] == pytest.approx(60e-6) and not timing["met"]
    assert timing["value"] <= 60  # met at the stated target: the tightening alone made it fail
    assert f"FAIL  {timing['name']}" in result.stdout
    assert set(record["results"]["seconds"]) == {"sft", "reward_model", "ppo", "dpo", "evaluation"}


def test_notebooks_benchmark_fails_over_budget_and_keeps_other_rows(tmp_path):
    """benchmarks/notebooks.py on a one-cell notebook, with a budget made impossible; stored rows are merged."""
    notebook = tmp_path / "tiny.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    stored_row = {"idle_s": 5.0, "busy_s": None, "cpu_s": 5.0, "peak_mb": 400, "within_budget": True,
                  "error": None, "date": "2026-01-01", "load_average_before": 0.1, "provisional": False, "repeat": 1}
    (tmp_path / "notebooks.json").write_text(json.dumps(
        {"machine": benchmarking.machine(), "results": {"notebooks": {"02_history.ipynb": stored_row,
                                                                      "gone.ipynb": stored_row}}}))
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "notebooks.py"), str(notebook), "--idle-only",
                             "--results", str(tmp_path), "--target-scale", "1e-6"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "notebooks.json").read_text())
    rows = record["results"]["notebooks"]
    assert rows["tiny.ipynb"]["error"] is None and rows["tiny.ipynb"]["idle_s"] > 0
    assert rows["02_history.ipynb"]["date"] == "2026-01-01"  # kept: same machine, a notebook that exists
    assert "gone.ipynb" not in rows  # dropped: no such notebook any more
    missed = {t["name"] for t in record["targets"] if not t["met"]}
    assert missed == {"tiny.ipynb: seconds (the slower condition)", "tiny.ipynb: peak MB"}


def test_every_benchmark_states_targets_and_exits_with_their_verdict():
    makefile = (ROOT / "Makefile").read_text()
    for name in SCRIPTS:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        tree = ast.parse(source)
        assert "Target(" in source and ".finish(" in source, f"{name}.py states no targets"
        assert "sys.exit(main())" in source, f"{name}.py must exit with main()'s status"
        assert "add_arguments(parser)" in source, f"{name}.py must take --target-scale, --results, --provisional"
        assert not any(isinstance(node, ast.Constant) and node.value == "pip" for node in ast.walk(tree)), (
            f"{name}.py must not install anything")
        if name != "notebooks":
            assert f"benchmarks/{name}.py" in makefile, f"make benchmarks does not run {name}.py"


# ------------------------------------------------------------------------------------------ one source of settings


def test_the_tiny_gpt_recipe_builds_the_chapters_model():
    from llmbook import count_parameters
    from llmbook.transformer import GPT

    config = TINY_GPT_RECIPE.config(81)
    assert (config.attention, config.tie_weights, config.init) == ("builtin", False, "pytorch")
    assert count_parameters(GPT(config)) == 114_560  # chapter 6 prints this (an exact cell)
    assert TINY_GPT_RECIPE.knobs == (64, 2, 4, 64, 32, 550, 1.5e-2, 50)
    assert TINY_GPT_RECIPE.train_kwargs() == {"steps": 550, "batch_size": 32, "lr": 1.5e-2, "warmup_steps": 50,
                                              "eval_every": 200, "seed": 0}
    assert TINY_GPT_RECIPE.config(81, attention="scratch").attention == "scratch"


@pytest.mark.parametrize(("field", "value", "message"), [("steps", 0, "steps must be"), ("lr", -1.0, "lr must be"),
                                                         ("val_fraction", 1.5, "val_fraction"),
                                                         ("warmup_steps", -1, "warmup_steps")])
def test_a_recipe_rejects_bad_settings(field, value, message):
    settings = {"d_model": 64, "n_layers": 2, "n_heads": 4, "n_ctx": 64, "batch_size": 32, "steps": 10,
                "lr": 1e-3, "warmup_steps": 1, field: value}
    with pytest.raises(ValueError, match=message):
        GPTRecipe(**settings)


def _chapter_6_code() -> list[ast.Module]:
    from IPython.core.inputtransformer2 import TransformerManager  # turns %magics into Python

    notebook = nbformat.read(CHAPTER_6, as_version=4)
    return [ast.parse(TransformerManager().transform_cell(cell.source)) for cell in notebook.cells
            if cell.cell_type == "code"]


CAPITALS = ("D_MODEL", "N_LAYERS", "N_HEADS", "N_CTX", "BATCH_SIZE", "STEPS", "LR", "WARMUP")


def test_chapter_6_and_its_benchmark_share_the_recipe():
    """The notebook's capitals, GPTConfig choices and train() settings equal TINY_GPT_RECIPE's.

    The notebook may state the values or import the recipe (``from llmbook.training import TINY_GPT_RECIPE``);
    either way they must agree with what benchmarks/tiny_gpt.py trains.
    """
    trees = _chapter_6_code()
    namespace: dict = {}
    for tree in trees:  # the recipe under whatever name the notebook imports it
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "llmbook.training":
                for alias in node.names:
                    if alias.name in ("TINY_GPT_RECIPE", "GPTRecipe"):
                        namespace[alias.asname or alias.name] = getattr(sys.modules["llmbook.training"], alias.name)
    values: dict = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                names = [e.id for e in target.elts] if isinstance(target, ast.Tuple) else [getattr(target, "id", "")]
                if set(names) & set(CAPITALS):
                    result = eval(compile(ast.Expression(node.value), "chapter 6", "eval"), dict(namespace))
                    values.update(zip(names, result if isinstance(target, ast.Tuple) else [result], strict=True))
    assert tuple(values.get(name) for name in CAPITALS) == TINY_GPT_RECIPE.knobs
    calls = {name: [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == name] for name in ("GPTConfig", "train", "train_val_split")}

    def keywords(call: ast.Call) -> dict:
        out = {}
        for kw in call.keywords:
            if isinstance(kw.value, ast.Constant):
                out[kw.arg] = kw.value.value
            elif isinstance(kw.value, ast.Name) and kw.value.id in values:
                out[kw.arg] = values[kw.value.id]
        return out

    config = [keywords(c) for c in calls["GPTConfig"] if "n_ctx" in keywords(c)]
    assert len(config) == 1, "chapter 6 should build its model with one GPTConfig(...)"
    recipe_config = TINY_GPT_RECIPE.config(1)
    for field in ("n_ctx", "d_model", "n_layers", "n_heads", "attention", "tie_weights", "init"):
        assert config[0].get(field) == getattr(recipe_config, field), f"GPTConfig({field}=...) differs"
    trained = [keywords(c) for c in calls["train"] if "steps" in keywords(c)]
    assert len(trained) == 1, "chapter 6 should train its model with one train(...) call"
    for key, value in TINY_GPT_RECIPE.train_kwargs().items():
        assert trained[0].get(key) == value, f"train({key}=...) differs from the recipe"
    fractions = {keywords(c).get("val_fraction") for c in calls["train_val_split"]}
    assert fractions == {TINY_GPT_RECIPE.val_fraction}


def test_the_tiny_gpt_benchmark_copies_no_setting():
    tree = ast.parse((ROOT / "benchmarks" / "tiny_gpt.py").read_text())
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                for target in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(target, ast.Name)}
    assert not assigned & set(CAPITALS), "benchmarks/tiny_gpt.py must take these from TINY_GPT_RECIPE"
    assert "TINY_GPT_RECIPE" in (ROOT / "benchmarks" / "tiny_gpt.py").read_text()


# ------------------------------------------------------------------------------------------ the peer


def test_the_peer_is_pinned_once_and_installed_by_make_not_by_the_script():
    lines = [line.strip() for line in (ROOT / "benchmarks" / "requirements-peer.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1 and lines[0].startswith("llms-from-scratch==")
    assert load_script("tiny_gpt").pinned_peer_version() == lines[0].split("==")[1]
    makefile = (ROOT / "Makefile").read_text()
    assert "$(call side_env,$(PEER_VENV),benchmarks/requirements-peer.txt)" in makefile
    assert "BENCHMARK_DEPS ?= $(STAMP) $(PEER_STAMP)" in makefile


def _peer_ch04():
    try:
        from llms_from_scratch import ch04
    except ImportError:
        for site in sorted((ROOT / ".venv-peer" / "lib").glob("python*/site-packages")):
            if (site / "llms_from_scratch").is_dir():
                sys.path.insert(0, str(site))
                try:
                    from llms_from_scratch import ch04
                finally:
                    sys.path.remove(str(site))
                return ch04
        pytest.skip("the peer is not installed (make peer-env)")
    return ch04


@pytest.mark.parametrize("fused", [False, True])
def test_the_peer_starts_from_our_weights_and_computes_nearly_the_same(fused):
    import torch

    ch04 = _peer_ch04()
    tiny_gpt = load_script("tiny_gpt")
    ours = tiny_gpt.make_gpt(20, attention="builtin" if fused else "scratch").eval()
    peer = tiny_gpt.make_peer(ch04, 20, fused).eval()
    assert sum(p.numel() for p in peer.parameters()) == sum(p.numel() for p in ours.parameters())
    ids = torch.randint(20, (2, TINY_GPT_RECIPE.n_ctx), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (ours(ids)[0] - peer(ids)[0]).abs().max().item()
    assert difference < 1e-2  # the same weights; only the GELU approximation differs


# ------------------------------------------------------------------------------------------ rendered figures


def test_the_readme_and_the_instructor_guide_match_the_stored_results():
    stale = performance.stale_blocks()
    assert not stale, f"{stale}: run python -m booktools.performance (or make benchmarks / make speed)"


def test_the_readme_names_the_machine_and_the_classes_compared():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- BEGIN generated: performance"):readme.index("<!-- END generated: performance")]
    section = " ".join(section.split())  # prose is wrapped
    for path in RESULTS.glob("*.json"):
        machine = json.loads(path.read_text())["machine"]
        assert machine["cpu_model"] in section and ", ".join(machine["vector_extensions"]) in section
    assert "`llms_from_scratch.ch04.GPTModel`" in section and "`llms_from_scratch.ch04.GPTModelFast`" in section


def test_every_stored_result_names_its_date_and_machine():
    paths = sorted(RESULTS.glob("*.json"))
    assert {path.stem for path in paths} >= {"tiny_gpt", "word2vec_vs_gensim", "lora_vs_peft", "rlhf", "notebooks"}
    for path in paths:
        record = json.loads(path.read_text())
        assert record["benchmark"] == path.stem
        assert len(record["date"]) == 10 and record["date"][4] == "-"
        assert record["machine"]["cpu_model"], f"{path.name}: no CPU model"
        assert isinstance(record["machine"]["vector_extensions"], list), f"{path.name}: no vector extensions"
        assert record["machine"].get("torch_cpu_capability"), f"{path.name}: no PyTorch CPU capability"
        assert isinstance(record["provisional"], bool) and not record["quick"] and record["target_scale"] == 1.0
        assert record["targets"], f"{path.name}: no targets"


def test_a_changed_result_makes_the_readme_stale(tmp_path):
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    record = json.loads((tmp_path / "rlhf.json").read_text())
    record["results"]["total_cpu_seconds"] += 1.0
    (tmp_path / "rlhf.json").write_text(json.dumps(record))
    assert performance.stale_blocks(ROOT, tmp_path) == ["README.md"]


def test_rendering_says_what_is_missing_and_what_is_provisional():
    blocks = performance.render_blocks({})
    assert "Not measured yet" in blocks["performance"] and "make speed" in blocks["notebook-timings"]
    record = json.loads((RESULTS / "rlhf.json").read_text())
    record["provisional"] = True
    text = performance.render_blocks({"rlhf": record})["performance"]
    assert "**Provisional**" in text and record["machine"]["cpu_model"] in text


def test_replace_block_rewrites_only_between_its_markers():
    text = "before\n<!-- BEGIN generated: x (note) -->\nold\n<!-- END generated: x -->\nafter"
    assert performance.replace_block(text, "x", "new\nlines") == (
        "before\n<!-- BEGIN generated: x (note) -->\nnew\nlines\n<!-- END generated: x -->\nafter")
    myst = "% BEGIN generated: y\n% END generated: y"
    assert performance.replace_block(myst, "y", "t", "myst") == "% BEGIN generated: y\nt\n% END generated: y"
    with pytest.raises(ValueError, match="expected one line"):
        performance.replace_block("no markers", "x", "new")
    with pytest.raises(ValueError, match="expected one line"):
        performance.replace_block(text + "\n" + text, "x", "new")
    with pytest.raises(ValueError, match="style must be"):
        performance.replace_block(text, "x", "new", "latex")


def _notebook_capitals(path: Path, names) -> dict:
    from IPython.core.inputtransformer2 import TransformerManager

    values = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(TransformerManager().transform_cell(cell.source))):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                found = ([getattr(e, "id", "") for e in target.elts] if isinstance(target, ast.Tuple)
                         else [getattr(target, "id", "")])
                if set(found) & set(names):
                    value = ast.literal_eval(node.value)
                    values.update(zip(found, value if isinstance(target, ast.Tuple) else [value], strict=True))
    return {name: value for name, value in values.items() if name in names}


def test_chapter_10_and_its_benchmark_share_the_recipe():
    """Every capital the RLHF chapter sets equals llmbook.rlhf.RLHF_RECIPE's field of the same name."""
    from llmbook.rlhf import RLHF_RECIPE

    values = _notebook_capitals(ROOT / "notebooks" / "10_rlhf.ipynb", RLHF_RECIPE.CAPITALS)
    missing = set(RLHF_RECIPE.CAPITALS) - set(values)
    assert not missing, f"the notebook does not set {missing}"
    for name, value in values.items():
        assert value == getattr(RLHF_RECIPE, name.lower()), f"chapter 10 sets {name} = {value!r}"


def test_the_rlhf_recipe_rejects_bad_settings():
    from llmbook.rlhf import RLHFRecipe

    with pytest.raises(ValueError, match="sft_steps"):
        RLHFRecipe(sft_steps=0)
    with pytest.raises(ValueError, match="held out"):
        RLHFRecipe(n_pairs_per_topic=10, n_train_pairs=30)
    with pytest.raises(ValueError, match="betas"):
        RLHFRecipe(betas=())
