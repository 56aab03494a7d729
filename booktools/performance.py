"""The README's performance figures and the instructor guide's timings, rendered from the stored benchmark results.

No figure of a benchmark is copied by hand. Each script in ``benchmarks/`` stores its result, with the date, the
machine and its targets, in ``benchmarks/results/<name>.json`` (:mod:`booktools.benchmarking`); this module renders
the text between marker lines from those files:

- ``README.md``: the block ``performance`` (the section "Performance") and the block ``notebook-range`` (one
  paragraph in "Running a notebook"), between ``<!-- BEGIN generated: NAME ... -->`` and ``<!-- END generated:
  NAME -->``;
- ``book/instructor_guide.md``: the block ``notebook-timings``, between the MyST comments ``% BEGIN generated:
  NAME ...`` and ``% END generated: NAME``.

Only the lines between the markers are rewritten. ``python -m booktools.performance`` rewrites them (``make
benchmarks`` and ``make speed`` do it after measuring); ``python -m booktools.performance --check`` exits 1 and
names every block that no longer matches the stored results (tests/test_benchmarks.py runs the same comparison, so
``make unit`` fails on a stale table).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

__all__ = ["ROOT", "RESULTS_DIR", "TARGET_FILES", "load_results", "render_blocks", "replace_block", "stale_blocks",
           "update", "chinese_block", "main"]

#: The repository's root folder.
ROOT = Path(__file__).resolve().parent.parent
#: Where the benchmarks store their results.
RESULTS_DIR = ROOT / "benchmarks" / "results"
#: The files with generated blocks, the blocks of each, and the comment style of their markers.
TARGET_FILES = {"README.md": (("notebook-range", "performance"), "html"),
                "book/instructor_guide.md": (("notebook-timings",), "myst")}
BENCHMARKS = ("notebooks", "tiny_gpt", "word2vec_vs_gensim", "rlhf", "lora_vs_peft")
RENDERER = "python -m booktools.performance"
WIDTH = 116  # prose is wrapped at this width, as the README's own text; table rows are left whole


# ----------------------------------------------------------------------------------------------------- helpers


def load_results(folder: Path = RESULTS_DIR) -> dict[str, dict]:
    """Every stored result in ``folder``, by benchmark name (the file's stem)."""
    results = {}
    for path in sorted(Path(folder).glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or "results" not in record or "machine" not in record:
            raise ValueError(f"{path} is not a stored benchmark result (no 'results' or 'machine')")
        results[path.stem] = record
    return results


def _num(value, spec: str = ".3f") -> str:
    """A number for a table: ``spec`` for floats, thousands separators for integers, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return format(value, spec)


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ms(value: float) -> str:
    """Milliseconds: whole numbers from 100 on, three significant digits below."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _small(value: float) -> str:
    """A small difference, in scientific notation (0 as 0)."""
    return "0" if value == 0 else f"{value:.1e}"


SYMBOLS = {"<=": "≤", ">=": "≥", "==": "="}


def _machine_text(machine: dict) -> str:
    """One line naming a machine: CPU model, cores, platform, vector extensions, PyTorch's code path."""
    text = (f"{machine.get('cpu_model', 'unknown CPU')}" + (f" ({machine['cpu_id']})" if machine.get("cpu_id") else "")
            + f", {machine.get('cores', '?')} cores, {machine.get('platform', '')}")
    extensions = machine.get("vector_extensions") or []
    text += f"; vector extensions {', '.join(extensions) if extensions else 'none reported'}"
    if machine.get("torch_cpu_capability"):
        version = f"PyTorch {machine['torch']}" if machine.get("torch") else "PyTorch"
        text += f"; {version} on its {machine['torch_cpu_capability']} code path"
    return text


def _machine_key(machine: dict) -> tuple:
    return (machine.get("cpu_model"), tuple(machine.get("vector_extensions") or ()), machine.get("cores"),
            machine.get("platform"), machine.get("torch_cpu_capability"))


class _Machines:
    """The distinct machines of the stored results, named "machine A", "B", ... in the order first met."""

    def __init__(self, records: dict[str, dict]):
        self.keys: list[tuple] = []
        self.texts: list[str] = []
        for name in [*BENCHMARKS, *sorted(set(records) - set(BENCHMARKS))]:
            if name in records:
                key = _machine_key(records[name]["machine"])
                if key not in self.keys:
                    self.keys.append(key)
                    self.texts.append(_machine_text(records[name]["machine"]))

    def label(self, record: dict) -> str:
        if len(self.keys) == 1:
            return "the machine above"
        return f"machine {chr(ord('A') + self.keys.index(_machine_key(record['machine'])))}"

    def lines(self) -> list[str]:
        if len(self.keys) == 1:
            return [f"- {self.texts[0]}."]
        return [f"- machine {chr(ord('A') + i)}: {text}." for i, text in enumerate(self.texts)]


def _stamp(name: str, record: dict, machines: _Machines) -> str:
    """The line under a benchmark's heading: its file, date, machine, load and whether it is provisional."""
    load = record.get("load_average_before")
    text = (f"*Stored in `benchmarks/results/{name}.json`: measured on {record['date']} on {machines.label(record)}"
            + (f", load average {load:.2f} before the start" if load is not None else ""))
    if record.get("quick"):
        text += "; a smoke test (`--quick`), not the benchmark's configuration"
    if record.get("target_scale", 1.0) != 1.0:
        text += f"; limits scaled by {record['target_scale']:g}"
    if record.get("provisional"):
        text += ". **Provisional**: measured while other jobs shared the machine; to be re-measured on a quiet one"
    return text + ".*"


def _targets(record: dict, only_missed: bool = False) -> list[str]:
    """The stated targets of a result, each with its value and verdict (``only_missed``: the missed ones only)."""
    targets = record.get("targets", [])
    if not targets:
        return []
    met = sum(t["met"] for t in targets)
    head = (f"*Targets*: all {len(targets)} met." if met == len(targets)
            else f"*Targets*: {met} of {len(targets)} met; **{len(targets) - met} missed** (the run exited 1).")
    lines = [head, ""]
    if only_missed and met < len(targets):
        lines[0] += " The missed ones:"
    for t in targets:
        if only_missed and t["met"]:
            continue
        lines.append(f"- {t['name']}: {t['value']:.4g} (target {SYMBOLS[t['op']]} {t['limit']:.4g}): "
                     + ("met" if t["met"] else "**missed**"))
    return lines


def _missing(name: str, command: str) -> list[str]:
    return [f"*Not measured yet: `benchmarks/results/{name}.json` is missing; run `{command}`.*"]


# ----------------------------------------------------------------------------------------------------- sections


def _notebook_rows(record: dict) -> list[tuple[str, dict]]:
    return sorted(record["results"]["notebooks"].items())


def _notebooks(record: dict | None, machines: _Machines) -> list[str]:
    lines = ["### Every notebook", "",
             "`make speed` (`benchmarks/notebooks.py`): each notebook executed from a temporary copy with the "
             "project's kernel, once on an idle machine and once while a child process busy-loops on "
             "one core; CPU seconds are those of the kernel and its children; peak memory is the largest summed "
             "resident memory of the kernel and its children, sampled every 0.1 s. Budget of every chapter: 60 s "
             "and 1,500 MB in both conditions; the whole book within 11 minutes (660 s).", ""]
    if record is None:
        return lines + _missing("notebooks", "make speed")
    rows = _notebook_rows(record)
    lines += [_stamp("notebooks", record, machines), ""]
    dates = {(row.get("date"), row.get("provisional")) for _, row in rows}
    by_row = len(dates) > 1
    header = "| notebook | seconds idle | seconds, one core busy | CPU seconds | peak MB | within 60 s and 1,500 MB |"
    lines += [header + (" measured |" if by_row else ""), "|---" * (6 + by_row) + "|"]
    for name, row in rows:
        cells = [Path(name).stem, _num(row["idle_s"], ".1f"), _num(row["busy_s"], ".1f"), _num(row["cpu_s"], ".1f"),
                 _num(row["peak_mb"]), ("yes" if row["within_budget"] else "**no**")
                 + (f" (failed: {row['error'].split(':', 1)[0]})" if row.get("error") else "")]
        if by_row:
            cells.append(f"{row.get('date')}" + (" (provisional)" if row.get("provisional") else ""))
        lines.append("| " + " | ".join(cells) + " |")
    totals = record["results"].get("total_seconds") or {}
    if totals:
        ok = "yes" if record["results"].get("all_within_budget") else "**no**"
        cells = ["**whole book**", f"**{_num(totals.get('idle'), '.1f')}**", f"**{_num(totals.get('busy'), '.1f')}**",
                 "", "", f"{ok} (660 s)"]
        lines.append("| " + " | ".join(cells + ([""] if by_row else [])) + " |")
    both = [(name, row["busy_s"] - row["idle_s"]) for name, row in rows
            if row["busy_s"] is not None and row["idle_s"] is not None]
    peaks = [row["peak_mb"] for _, row in rows]
    lines.append("")
    summary = []
    if both:
        name, cost = max(both, key=lambda item: item[1])
        summary.append(f"With one thread, a busy core costs a notebook at most {cost:.1f} s ({Path(name).stem})")
    if peaks:
        summary.append(f"the largest peak memory is {max(peaks):,} MB")
    if summary:
        text = "; ".join(summary)
        lines.append(text[0].upper() + text[1:] + ".")
    return lines + [""] + _targets(record, only_missed=True)


def _tiny_gpt(record: dict | None, machines: _Machines) -> list[str]:
    lines = ["### Chapter 6's tiny GPT, and a peer compared like for like", ""]
    if record is None:
        return lines + _missing("tiny_gpt", "make benchmarks")
    r = record["results"]
    recipe, data, peer, runs = r["recipe"], r["data"], r["peer"], r["runs"]
    chapter = runs["ours_fused"]
    lines += [
        f"`benchmarks/tiny_gpt.py`: the chapter's character-level GPT as `llmbook.training.TINY_GPT_RECIPE` defines "
        f"it (the notebook uses the same recipe): d_model {recipe['d_model']}, {recipe['n_layers']} layers, "
        f"{recipe['n_heads']} heads, context {recipe['n_ctx']}, an output layer separate from the token embedding "
        f"(`tie_weights={recipe['tie_weights']}`) and PyTorch's default initialisation (`init=\"{recipe['init']}\"`); "
        f"{chapter['params']:,} parameters; {data['corpus']}, {data['characters']:,} characters, the last "
        f"{recipe['val_fraction']:.0%} held out; {recipe['steps']} steps of {recipe['batch_size']} windows, AdamW "
        f"with peak learning rate {recipe['lr']:g} and {recipe['warmup_steps']} warm-up steps, one thread.", "",
        _stamp("tiny_gpt", record, machines), "",
        "*Attention alone* (forward and backward, batch 32; minimum of 30 repetitions, CPU milliseconds): from "
        "scratch (`llmbook.transformer.scaled_dot_product_attention`) against PyTorch's fused "
        "`torch.nn.functional.scaled_dot_product_attention`.", "",
        "| T | from scratch (ms CPU) | fused (ms CPU) | from scratch / fused | largest difference of the outputs |",
        "|---|---|---|---|---|"]
    for length, a in r["attention"].items():
        ratio = a["scratch_cpu_ms"] / a["builtin_cpu_ms"] if a["builtin_cpu_ms"] else None
        lines.append(f"| {length} | {_ms(a['scratch_cpu_ms'])} | {_ms(a['builtin_cpu_ms'])} | {_ratio(ratio)} | "
                     f"{_small(a['max_abs_diff'])} |")
    peer_name = f"`{peer['package']}` {peer['version']}"
    lines += [
        "", f"*The peer, like for like.* The peer is the code of *Build a Large Language Model (From Scratch)* (PyPI "
        f"package {peer_name}, pinned in `benchmarks/requirements-peer.txt` and installed by `make peer-env` into "
        f"`.venv-peer`). Two pairs are compared: ours with from-scratch attention against the peer's "
        f"`{peer['classes']['scratch']}` (from-scratch attention with three query, key and value matrices, its own "
        f"LayerNorm and GELU), and ours with fused attention (the chapter's model) against the peer's "
        f"`{peer['classes']['fused']}` (PyTorch's fused attention, LayerNorm and GELU). All four start from the same "
        "weights (the peer's are copied from ours), see the same batches and are trained by the same loop "
        "(`llmbook.training.train`: AdamW, schedule, gradient clipping, evaluations every 100 steps, included in "
        "the seconds). What differs within a pair is the code: the GELU (ours exact, the peer's the tanh "
        "approximation) and how each writes the same layers.", "",
        "| pair | ours | peer | CPU seconds, ours / peer | time ours / peer: CPU (wall; fastest step) "
        f"| val loss at step {recipe['steps']}, ours / peer |",
        "|---|---|---|---|---|---|"]
    labels = {"scratch": ("from scratch", '`attention="scratch"`'),
              "fused": ("fused", '`attention="builtin"` (chapter 6)')}
    for name in ("scratch", "fused"):
        pair = r["pairs"][name]
        ours, theirs = runs[pair["ours"]], runs[pair["peer"]]
        lines.append(f"| {labels[name][0]} | {labels[name][1]} | `{pair['peer_class'].rsplit('.', 1)[-1]}` | "
                     f"{ours['cpu_seconds']:.1f} / {theirs['cpu_seconds']:.1f} | {_ratio(pair['cpu_ratio'])} "
                     f"({_ratio(pair['wall_ratio'])}; {_ratio(pair['step_ratio'])}) | "
                     f"{pair['val_loss_ours']:.3f} / {pair['val_loss_peer']:.3f} |")
    step, same = r["step"], r["step"]["same_loss"]
    lines += [
        "", f"*One training step* (forward, backward, AdamW; batch {recipe['batch_size']}, T = {recipe['n_ctx']}; "
        "the four in turn on the same batches, fastest of 30, CPU milliseconds): "
        + ", ".join(f"{label} {step['min_cpu_ms'][key]:.1f}" for key, label in (
            ("ours_scratch", "ours from scratch"), ("ours_fused", "ours fused"),
            ("peer_scratch", "the peer's `GPTModel`"), ("peer_fused", "`GPTModelFast`")))
        + f". From the same weights and batches, from-scratch and fused attention give losses that differ by "
        f"{_small(same['ours']['first'])} at the first step and at most {_small(same['ours']['max'])} over "
        f"{same['ours']['steps']} steps in ours ({_small(same['peer']['first'])} and {_small(same['peer']['max'])} "
        f"in the peer's). Unigram and bigram baselines on the same validation text: {data['unigram_val_loss']:.3f} and "
        f"{data['bigram_val_loss']:.3f} nats per character; the chapter's model ends at {chapter['val_loss']:.3f} "
        f"= {chapter['val_loss'] / data['bigram_val_loss']:.2f}x the bigram loss after "
        f"{chapter['cpu_seconds']:.1f} s of CPU time ({chapter['seconds']:.1f} s wall)."]
    if r.get("explain"):
        lines += [
            "", "*The experiment behind the chapter's initialisation.* GPT-2's recipe ties the output layer to the "
            "token embedding and draws every weight from N(0, 0.02); the chapter uses an untied output layer and "
            "PyTorch's default initialisation. Each factor switched on its own, trained like the chapter's model "
            f"(mean training loss over steps 101-200; validation loss at steps 200 and {recipe['steps']}):", "",
            "| model | output layer | initialisation | training loss, steps 101-200 | val loss at 200 "
            f"| val loss at {recipe['steps']} |", "|---|---|---|---|---|---|"]
        rows = [("ours (chapter 6)", recipe["tie_weights"], recipe["init"], chapter)]
        rows += [(run["label"].split(" (")[0].split(",")[0] + (" (GPT-2's, the former recipe)"
                  if run["tie_weights"] and run["init"] == "normal" else ""), run["tie_weights"], run["init"], run)
                 for run in r["explain"]]
        for label, tie, init, run in rows:
            lines.append(f"| {label} | {'tied' if tie else 'untied'} | "
                         f"{'N(0, 0.02)' if init == 'normal' else 'PyTorch default'} | "
                         f"{_num(run['early_train_loss'])} | {_num(run['val_loss_200'])} | {_num(run['val_loss'])} |")
    return lines + [""] + _targets(record)


def _word2vec(record: dict | None, machines: _Machines) -> list[str]:
    lines = ["### Chapter 4's skip-gram against gensim", ""]
    if record is None:
        return lines + _missing("word2vec_vs_gensim", "make benchmarks")
    r = record["results"]
    s = r["settings"]
    lines += [
        f"`benchmarks/word2vec_vs_gensim.py`: gensim's shortened English Wikipedia sample ({r['tokens']:,} tokens), "
        f"dimension {s['dim']}, window {s['window']}, {s['negative']} negatives, {s['epochs']} epochs, min_count "
        f"{s['min_count']}, subsampling {s['sample']:g}, one thread each, seeds "
        f"{', '.join(str(seed) for seed in r['seeds'])} for both (mean ± standard deviation over the seeds; seconds "
        "include building the vocabulary). The two share the objective (skip-gram with negative sampling), not the "
        "algorithm: gensim follows word2vec's C code, one pair at a time with plain SGD; ours sums the gradients "
        "of 4,096 pairs and applies them at once.", "", _stamp("word2vec_vs_gensim", record, machines), "",
        "| | WordSim353 Spearman | analogy accuracy | wall seconds | CPU seconds |", "|---|---|---|---|---|"]
    for key, label in (("ours", "ours (`llmbook.embeddings.train_skipgram`)"),
                       ("gensim", f"gensim {r.get('gensim_version', '')} `Word2Vec(sg=1, workers=1)`")):
        x = r[key]
        lines.append(f"| {label} | {x['spearman_mean']:.3f} ± {x['spearman_sd']:.3f} | {x['analogy_mean']:.3f} ± "
                     f"{x['analogy_sd']:.3f} | {x['seconds_mean']:.1f} ± {x['seconds_sd']:.1f} | "
                     f"{x['cpu_seconds_mean']:.1f} |")
    lines += ["", f"Spearman ours / gensim {r['spearman_ratio']:.2f}; time ours / gensim {r['time_ratio']:.2f} (wall), "
              f"{r['cpu_time_ratio']:.2f} (CPU)."]
    return lines + [""] + _targets(record)


def _rlhf(record: dict | None, machines: _Machines) -> list[str]:
    lines = ["### Chapter 10's RLHF pipeline", ""]
    if record is None:
        return lines + _missing("rlhf", "make benchmarks")
    r = record["results"]
    q = r["settings"]
    seeds = len(q["seeds"])
    lines += [
        f"`benchmarks/rlhf.py`: the chapter's whole pipeline on one thread, with the chapter's settings "
        f"(`llmbook.rlhf.RLHF_RECIPE`): supervised fine-tuning of a word-level GPT ({r['sft_params']:,} parameters) "
        f"on {q['n_demonstrations']:,} generated reviews; preference pairs from a simulated, noisy labeller "
        f"({q['n_train_pairs']} to train, {r['rm_heldout_pairs']} held out) and a Bradley-Terry reward model; "
        f"PPO-style policy optimisation with a per-token KL penalty for {q['iterations']} iterations at each beta "
        f"and seed ({seeds} seeds); DPO with beta = {r['dpo_beta']:g} at each learning rate. Every policy is scored "
        "on the same fresh answers (reward-model score, the labeller's hidden score, KL from the SFT model in nats "
        "per answer); the PPO rows are means over seeds.", "", _stamp("rlhf", record, machines),
        "", "| model | reward-model score | hidden score | KL (nats) |", "|---|---|---|---|",
        f"| SFT | {r['sft']['rm_score']:.2f} | {r['sft']['true_score']:.2f} | 0 |"]
    for key, run in r["runs"].items():
        if key == "dpo":
            continue
        lines.append(f"| PPO, beta = {key.split('=', 1)[1]} | {run['rm_score']:.2f} | {run['true_score']:.2f} | "
                     f"{run['kl']:.2f} |")
    for key, run in r.get("dpo_runs", {}).items():
        lines.append(f"| DPO, {key.replace('=', ' = ')} | {run['rm_score']:.2f} | {run['true_score']:.2f} | "
                     f"{run['kl']:.2f} |")
    shapes = r.get("overoptimisation", {})
    if shapes:
        lines += ["", "Over-optimisation at beta = 0 (hidden score in blocks of iterations): "
                  + "; ".join(f"seed {seed} rises {s['rise']:+.2f} above SFT, then falls {s['fall']:.2f}"
                              for seed, s in shapes.items()) + "."]
    parts = {"sft": "SFT", "reward_model": "reward model (pairs sampled and fitted)",
             "ppo": "policy optimisation (every beta and seed)", "dpo": "DPO (each learning rate)",
             "evaluation": "evaluation (held-out accuracy, every policy scored)"}
    lines += ["", f"Held-out pairwise accuracy of the reward model: {r['rm_heldout_accuracy']:.3f}. Time of each "
              "part, evaluation included:", "", "| part | wall seconds | CPU seconds |", "|---|---|---|"]
    for key, label in parts.items():
        lines.append(f"| {label} | {r['seconds'][key]:.1f} | {r['cpu_seconds'][key]:.1f} |")
    lines.append(f"| **total** | **{r['total_seconds']:.1f}** | **{r['total_cpu_seconds']:.1f}** |")
    return lines + [""] + _targets(record)


def _lora(record: dict | None, machines: _Machines) -> list[str]:
    lines = ["### Chapter 9's LoRA against Hugging Face PEFT", ""]
    if record is None:
        return lines + _missing("lora_vs_peft", "make benchmarks")
    r = record["results"]
    lines += [
        f"`benchmarks/lora_vs_peft.py`: the shared pre-trained tiny GPT (`llmbook.pretrained`) adapted to the "
        f"chapter's typo-detection task ({r['n_train']:,} labelled windows, {r['n_test']:,} test windows) by our "
        f"`llmbook.lora` and by PEFT {r['peft_version']}'s LoRA, with the same target layers "
        f"({', '.join(r['target_modules'])} of both blocks), rank {r['rank']}, alpha {r['alpha']:g}, learning rate "
        f"{r['lr']:g}, {r['steps']} steps of {r['batch_size']} and {r['seeds']} seeds, one thread.", "",
        _stamp("lora_vs_peft", record, machines), "",
        f"| | test accuracy (mean ± sd, {r['seeds']} seeds) | trainable parameters | CPU seconds per run |",
        "|---|---|---|---|"]
    for key, label in (("ours", "ours (`llmbook.lora`)"), ("peft", "PEFT `LoraConfig`")):
        x = r[key]
        lines.append(f"| {label} | {x['accuracy_mean']:.3f} ± {x['accuracy_sd']:.3f} | {_num(x['trainable'])} | "
                     f"{x['seconds']:.2f} |")
    return lines + [""] + _targets(record)


def _performance(records: dict[str, dict]) -> str:
    machines = _Machines(records)
    provisional = [name for name, record in records.items() if record.get("provisional")]
    lines = [
        f"Every figure between here and the hand-written notes below is rendered by `{RENDERER}` from the results "
        "that the benchmarks store in `benchmarks/results/` (`make speed` and `make benchmarks` measure and "
        "re-render); `make unit` fails when this text no longer matches them. CPU only, one thread (the book's "
        "thread policy). Timings and trained results differ between machines, so every stored result names the "
        "machine it was measured on" + (":" if machines.keys else "."), ""]
    if machines.keys:
        lines += machines.lines() + [""]
    if provisional:
        lines += [f"**Provisional**: {', '.join(f'`{name}`' for name in provisional)} "
                  f"{'was' if len(provisional) == 1 else 'were'} measured while other jobs shared the machine; their "
                  "CPU seconds are the better guide, and they are to be re-measured on a quiet machine.", ""]
    lines += _notebooks(records.get("notebooks"), machines)
    for section in (_tiny_gpt, _word2vec, _rlhf, _lora):
        name = {_tiny_gpt: "tiny_gpt", _word2vec: "word2vec_vs_gensim", _rlhf: "rlhf", _lora: "lora_vs_peft"}[section]
        lines += [""] + section(records.get(name), machines)
    return "\n".join(lines)


def _notebook_range(records: dict[str, dict]) -> str:
    record = records.get("notebooks")
    if record is None:
        return "How long each notebook takes is measured by `make speed` (see Performance)."
    rows = [row for _, row in _notebook_rows(record)]
    seconds = [v for row in rows for v in (row["idle_s"], row["busy_s"]) if v is not None]
    machine = record["machine"]
    text = (f"Each notebook runs in {min(seconds):.0f} to {max(seconds):.0f} s on a {machine.get('cores')}-core "
            f"{machine.get('cpu_model')}, idle or with one core busy, and peaks at {max(r['peak_mb'] for r in rows):,} "
            f"MB of memory or less (measured with `make speed` on {record['date']}; see Performance")
    if record.get("provisional") or any(row.get("provisional") for row in rows):
        text += "; provisional figures, measured while other jobs shared the machine"
    return text + ")."


#: The words of the instructor guide's timings block, in each edition (the Chinese build renders its own).
_TIMINGS_TEXT = {
    "en": {"missing": "Not measured yet: run `make speed`.",
           "intro": ("Measured with `make speed` (`benchmarks/notebooks.py`) and rendered from "
                     "`benchmarks/results/notebooks.json` by `{renderer}`: {date}, {machine}, one thread (the book's "
                     "thread policy); each notebook run from top to bottom once on an idle machine and once while "
                     "another process keeps one core busy. The book's budget for every chapter is 60 s and 1.5 GB in "
                     "both conditions."),
           "provisional": (" **Provisional**: measured while other jobs shared the machine (load average {load} "
                           "before the start); to be re-measured on a quiet machine."),
           "header": "| # | idle (s) | one core busy (s) | peak memory (MB) |", "all": "all",
           "plan": "On a shared machine (a JupyterHub node, a Binder pod), plan for the busy column",
           "class": ("; a class of students who all run chapter {chapter} at once needs about one core each for "
                     "{seconds:.0f} s"), "end": "."},
    "zh": {"missing": "尚未测量：请运行 `make speed`。",
           "intro": ("用 `make speed`（`benchmarks/notebooks.py`）测得，由 `{renderer}` 根据 "
                     "`benchmarks/results/notebooks.json` 生成：{date}，{machine}，单线程（本书的线程策略）；每个 "
                     "notebook 从头到尾运行两次，一次在空闲的机器上，一次在另一个进程占满一个核心时。本书给每章的"
                     "预算是：两种情况下都不超过 60 秒和 1.5 GB。"),
           "provisional": ("**暂定数据**：测量时机器上还有其他任务（开始前的平均负载为 {load}），"
                           "有待在空闲的机器上重新测量。"),
           "header": "| 章 | 空闲（秒） | 一个核心被占用（秒） | 内存峰值（MB） |", "all": "全部",
           "plan": "在共享的机器上（JupyterHub 节点、Binder pod），请按“一个核心被占用”一列来规划",
           "class": "；全班学生同时运行第 {chapter} 章时，每人大约需要一个核心 {seconds:.0f} 秒", "end": "。"},
}


def _notebook_timings(records: dict[str, dict], language: str = "en") -> str:
    words = _TIMINGS_TEXT[language]
    record = records.get("notebooks")
    if record is None:
        return words["missing"]
    lines = [words["intro"].format(renderer=RENDERER, date=record["date"], machine=_machine_text(record["machine"]))]
    if record.get("provisional"):
        lines[0] += words["provisional"].format(load=record.get("load_average_before"))
    lines += ["", words["header"], "|---|---|---|---|"]
    busiest = None
    for name, row in _notebook_rows(record):
        match = re.match(r"(\d+)(?:_(\d+)_)?", name)  # 06_tiny... -> 6; 09_1_generalisation... -> 9.1
        number = ".".join(str(int(part)) for part in match.groups() if part) if match else Path(name).stem
        lines.append(f"| {number} | {_num(row['idle_s'], '.1f')} | {_num(row['busy_s'], '.1f')} | "
                     f"{_num(row['peak_mb'])} |")
        if row["busy_s"] is not None and (busiest is None or row["busy_s"] > busiest[1]):
            busiest = (number, row["busy_s"])
    totals = record["results"].get("total_seconds") or {}
    if totals:
        lines.append(f"| {words['all']} | {_num(totals.get('idle'), '.1f')} | {_num(totals.get('busy'), '.1f')} | |")
    lines.append("")
    text = words["plan"]
    if busiest:
        text += words["class"].format(chapter=busiest[0], seconds=busiest[1])
    return "\n".join(lines + [text + words["end"]])


def chinese_block(name: str, results: Path | None = None) -> str:
    """The Chinese text of a generated block of the book (only ``notebook-timings`` is in the book), for the Chinese
    build (``_ext/book_i18n.py``): the English block's catalogue entries would go stale at every measurement.
    Raises ``ValueError`` for another block."""
    if name != "notebook-timings":
        raise ValueError(f"no Chinese rendering of block {name!r}; the book has only 'notebook-timings'")
    return _notebook_timings(load_results(results or RESULTS_DIR), "zh")


def _wrap(text: str) -> str:
    """Wrap prose lines at WIDTH (a bullet's continuation indented by two spaces); tables and headings stay whole."""
    out = []
    for line in text.split("\n"):
        if len(line) <= WIDTH or line.startswith(("|", "#")):
            out.append(line)
        else:
            indent = "  " if line.startswith("- ") else ""
            out.append(textwrap.fill(line, WIDTH, subsequent_indent=indent, break_long_words=False,
                                     break_on_hyphens=False))
    return "\n".join(out)


def render_blocks(records: dict[str, dict]) -> dict[str, str]:
    """The text of every generated block, by block name, from the stored results."""
    blocks = {"performance": _performance(records), "notebook-range": _notebook_range(records),
              "notebook-timings": _notebook_timings(records)}
    return {name: _wrap(text) for name, text in blocks.items()}


# ----------------------------------------------------------------------------------------------------- files


def _markers(name: str, style: str) -> tuple[str, str]:
    if style == "html":
        return (f"<!-- BEGIN generated: {name}", f"<!-- END generated: {name} -->")
    return (f"% BEGIN generated: {name}", f"% END generated: {name}")


def replace_block(text: str, name: str, content: str, style: str = "html") -> str:
    """``text`` with the lines between the markers of block ``name`` replaced by ``content``.

    The begin marker is a line that starts with ``<!-- BEGIN generated: NAME`` (``% BEGIN generated: NAME`` in
    MyST style) and the end marker a line ``<!-- END generated: NAME -->`` (``% END generated: NAME``); both stay.
    Raises ``ValueError`` unless each marker occurs exactly once, the begin marker first.
    """
    if style not in ("html", "myst"):
        raise ValueError(f"style must be 'html' or 'myst', got {style!r}")
    begin, end = _markers(name, style)
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(begin) and line[len(begin):][:1] in ("", " ")]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"block {name!r}: expected one line starting {begin!r} followed by one line {end!r} "
                         f"(found {len(starts)} and {len(ends)})")
    return "\n".join(lines[:starts[0] + 1] + content.strip("\n").split("\n") + lines[ends[0]:])


def _rendered_files(root: Path, records: dict[str, dict]) -> dict[Path, tuple[str, str]]:
    """Every target file: (current text, text with its blocks rendered)."""
    blocks = render_blocks(records)
    out = {}
    for relative, (names, style) in TARGET_FILES.items():
        path = root / relative
        current = path.read_text(encoding="utf-8")
        new = current
        for name in names:
            new = replace_block(new, name, blocks[name], style)
        out[path] = (current, new)
    return out


def stale_blocks(root: Path = ROOT, results: Path | None = None) -> list[str]:
    """The files whose generated blocks differ from what the stored results give (empty when all match)."""
    records = load_results(results or root / "benchmarks" / "results")
    return [str(path.relative_to(root)) for path, (current, new) in _rendered_files(root, records).items()
            if current != new]


def update(root: Path = ROOT, results: Path | None = None) -> list[str]:
    """Rewrite the generated blocks from the stored results; return the files that changed."""
    records = load_results(results or root / "benchmarks" / "results")
    changed = []
    for path, (current, new) in _rendered_files(root, records).items():
        if current != new:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path.relative_to(root)))
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command line: rewrite the generated blocks, or with ``--check`` report the stale ones (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--results", type=Path, default=None, help="folder of stored results (benchmarks/results)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_blocks(ROOT, args.results)
        for name in stale:
            print(f"{name}: its generated performance figures differ from benchmarks/results; run {RENDERER}")
        return 1 if stale else 0
    changed = update(ROOT, args.results)
    print(f"{RENDERER}: " + (f"rewrote {', '.join(changed)}" if changed else "every generated block is up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
