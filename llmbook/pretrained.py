"""The book's shared pre-trained starting point: a tiny character-level GPT trained on the Lee news corpus.

Chapters 9 to 11 adapt one small pre-trained model instead of each spending its time budget on pre-training.
The model has the sizes of chapter 6's GPT (d_model 64, 2 layers, 4 heads, context 64 characters) in GPT-2's
form (output layer tied to the token embedding, N(0, 0.02) initial weights; chapter 6 itself now unties them),
trained for 1,000 steps on the first 90 % of gensim's Lee background corpus. The recipe lives in
:data:`RECIPE`; the script ``scripts/train_checkpoint.py`` (``make checkpoints``) runs it with
:func:`train_pretrained_gpt` on one thread and writes two files into ``llmbook/resources/``:

- ``tiny_gpt_lee.safetensors``: the weights, in the safetensors format (plain tensors, no pickle, so loading
  runs no code from the file);
- ``tiny_gpt_lee.json``: the model configuration, the vocabulary, the recipe and the validation loss measured
  right after training.

- :func:`load_pretrained_gpt`: ``(model, tokenizer)``, ready to use (in evaluation mode).
- :func:`pretraining_data`: the text, tokenizer and the exact train/validation split the model was trained on.
- :func:`checkpoint_info`: the JSON record (configuration, vocabulary, recorded validation loss, ...).
- :func:`train_pretrained_gpt` and :func:`save_checkpoint`: the recipe, used by the script and the tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from llmbook.tokenizers import CharTokenizer
from llmbook.transformer import GPT, GPTConfig
from llmbook.utils import set_seed

__all__ = ["CHECKPOINT_NAME", "RECIPE", "RESOURCES", "checkpoint_info", "checkpoint_paths", "load_pretrained_gpt",
           "pretraining_data", "save_checkpoint", "train_pretrained_gpt"]

#: Folder of the package's data files, where the checkpoint is stored.
RESOURCES = Path(__file__).resolve().parent / "resources"
#: File name (without extension) of the shipped checkpoint.
CHECKPOINT_NAME = "tiny_gpt_lee"
#: How the shipped checkpoint was made: model sizes, data split and training settings (chapter 6's earlier recipe).
RECIPE = {
    "model": {"n_ctx": 64, "d_model": 64, "n_layers": 2, "n_heads": 4, "dropout": 0.0, "positional": "learned",
              "attention": "builtin", "tie_weights": True},
    "data": {"corpus": "gensim lee_background.cor", "val_fraction": 0.1},
    "training": {"steps": 1000, "batch_size": 32, "lr": 6e-3, "warmup_steps": 100, "weight_decay": 0.01,
                 "grad_clip": 1.0, "seed": 0},
}


def pretraining_data(val_fraction: float | None = None) -> dict:
    """The pre-training text and its split, exactly as :func:`train_pretrained_gpt` uses them.

    Returns a dict with ``text`` (the whole Lee corpus), ``tokenizer`` (a
    :class:`llmbook.tokenizers.CharTokenizer` over the whole text), ``train_text`` and ``val_text`` (the first
    90 % and the last 10 % of the characters), and ``train_ids`` and ``val_ids`` (1-D int64 tensors of the same
    two parts). The cut falls at one character position, not at a story boundary: the story it falls in (mid-word,
    in the shipped split) begins in ``train_text`` and ends in ``val_text``; every other story lies on one side.
    """
    from llmbook.data import lee_news_text, train_val_split

    if val_fraction is None:
        val_fraction = RECIPE["data"]["val_fraction"]
    text = lee_news_text()
    tokenizer = CharTokenizer(text)
    ids = torch.tensor(tokenizer.encode(text))
    train_text, val_text = train_val_split(text, val_fraction)
    train_ids, val_ids = train_val_split(ids, val_fraction)
    return {"text": text, "tokenizer": tokenizer, "train_text": train_text, "val_text": val_text,
            "train_ids": train_ids, "val_ids": val_ids}


def train_pretrained_gpt(verbose: bool = True) -> tuple[GPT, CharTokenizer, dict]:
    """Run the recipe in :data:`RECIPE` and return ``(model, tokenizer, record)``.

    Deterministic for a given machine: the initial weights come from ``set_seed(seed)`` and the batches from a
    seeded generator. Call ``llmbook.setup()`` first (one CPU thread), as the script does; a different number of
    threads can change the last digits. ``record`` is the JSON-ready dict that :func:`save_checkpoint` stores:
    configuration, vocabulary, recipe and the validation loss on the whole validation split.
    """
    from llmbook.training import evaluate_loss, train

    data = pretraining_data()
    tokenizer = data["tokenizer"]
    settings = RECIPE["training"]
    set_seed(settings["seed"])
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **RECIPE["model"])
    model = GPT(config)
    history = train(model, data["train_ids"], data["val_ids"], steps=settings["steps"],
                    batch_size=settings["batch_size"], lr=settings["lr"], warmup_steps=settings["warmup_steps"],
                    weight_decay=settings["weight_decay"], grad_clip=settings["grad_clip"], eval_every=250,
                    eval_windows=64, seed=settings["seed"], verbose=verbose)
    model.eval()
    record = {
        "config": asdict(config),
        "vocab": tokenizer.vocab,
        "recipe": RECIPE,
        "val_loss": evaluate_loss(model, data["val_ids"], config.n_ctx),
        "train_loss_last_100_steps": sum(history["train_loss"][-100:]) / 100,
        "torch": torch.__version__.split("+")[0],
    }
    return model, tokenizer, record


def checkpoint_paths(directory=None) -> tuple[Path, Path]:
    """Paths ``(weights, record)`` of the checkpoint in ``directory`` (default: the package's resources)."""
    directory = RESOURCES if directory is None else Path(directory)
    return directory / f"{CHECKPOINT_NAME}.safetensors", directory / f"{CHECKPOINT_NAME}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(model: GPT, record: dict, directory=None) -> tuple[Path, Path]:
    """Write the weights (safetensors) and the record (JSON, with the weights' SHA-256) into ``directory``.

    Tied weights (the output layer shares the token embedding) are stored once. Returns the two paths.
    """
    from safetensors.torch import save_file

    if not isinstance(model, GPT):
        raise TypeError(f"model must be an llmbook.transformer.GPT, got {type(model).__name__}")
    if not isinstance(record, dict) or not {"config", "vocab", "val_loss"} <= record.keys():
        raise ValueError("record must be a dict with at least 'config', 'vocab' and 'val_loss'")
    weights_path, record_path = checkpoint_paths(directory)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    if model.config.tie_weights:
        del state["lm_head.weight"]  # the same tensor as token_embedding.weight; stored once
    save_file(state, str(weights_path), metadata={"format": "pt"})  # one metadata key: byte-identical reruns
    weights_path.chmod(0o644)
    record = dict(record, sha256=_sha256(weights_path))
    record_path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return weights_path, record_path


def checkpoint_info(directory=None) -> dict:
    """The checkpoint's JSON record: ``config``, ``vocab``, ``recipe``, ``val_loss``, ``sha256``, ...

    Raises FileNotFoundError with the command that creates the checkpoint if it is missing.
    """
    _, record_path = checkpoint_paths(directory)
    if not record_path.exists():
        raise FileNotFoundError(f"no checkpoint record at {record_path}; create it with `make checkpoints`")
    return json.loads(record_path.read_text(encoding="utf-8"))


def load_pretrained_gpt(directory=None, check_hash: bool = True) -> tuple[GPT, CharTokenizer]:
    """Load the shared pre-trained GPT and its character tokenizer (chapters 9 to 11).

    Returns ``(model, tokenizer)``; the model is in evaluation mode and every parameter is trainable, so a
    chapter can fine-tune it (or freeze parts of it) directly. With ``check_hash`` the file's SHA-256 must equal
    the one recorded when it was written. Raises FileNotFoundError if the files are missing and ValueError if
    they do not match.
    """
    from safetensors.torch import load_file

    info = checkpoint_info(directory)
    weights_path, _ = checkpoint_paths(directory)
    if not weights_path.exists():
        raise FileNotFoundError(f"no checkpoint weights at {weights_path}; create them with `make checkpoints`")
    if check_hash and info.get("sha256") != _sha256(weights_path):
        raise ValueError(f"{weights_path.name} does not match the SHA-256 recorded in its JSON file")
    tokenizer = CharTokenizer("".join(info["vocab"]))
    if tokenizer.vocab != info["vocab"]:
        raise ValueError("the recorded vocabulary is not a sorted list of distinct characters")
    model = GPT(GPTConfig(**info["config"]))
    state = load_file(str(weights_path))
    if model.config.tie_weights:
        state["lm_head.weight"] = state["token_embedding.weight"]
    model.load_state_dict(state, strict=True)
    return model.eval(), tokenizer
