import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmbook.pretrained import (
    RECIPE,
    checkpoint_info,
    checkpoint_paths,
    load_pretrained_gpt,
    pretraining_data,
    save_checkpoint,
)
from llmbook.training import evaluate_loss
from llmbook.transformer import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped():
    model, tokenizer = load_pretrained_gpt()
    return model, tokenizer, checkpoint_info(), pretraining_data()


def test_loads_and_reaches_its_recorded_validation_loss(shipped):
    model, _, info, data = shipped
    loss = evaluate_loss(model, data["val_ids"], model.config.n_ctx)
    assert loss == pytest.approx(info["val_loss"], abs=1e-5)
    assert loss < 1.8  # far below the bigram baseline of chapter 6 (2.48 nats per character)
    assert not model.training


def test_config_vocabulary_and_split_match_the_recipe(shipped):
    model, tokenizer, info, data = shipped
    for key, value in RECIPE["model"].items():
        assert getattr(model.config, key) == value
    assert tokenizer.vocab == info["vocab"] == data["tokenizer"].vocab
    assert model.lm_head.weight is model.token_embedding.weight  # tied weights stay tied after loading
    assert data["train_text"] + data["val_text"] == data["text"]
    assert torch.equal(data["val_ids"], torch.tensor(tokenizer.encode(data["val_text"])))
    assert all(p.requires_grad for p in model.parameters())


def test_weights_file_is_safetensors_not_pickle():
    weights, _ = checkpoint_paths()
    head = weights.read_bytes()[:9]
    assert head[:1] != b"\x80"  # a pickle (torch.save) starts with the protocol byte 0x80
    assert head[8:9] == b"{"  # safetensors: 8-byte header length, then a JSON header


def test_a_changed_file_is_rejected_and_a_missing_one_explained(tmp_path):
    weights, record = checkpoint_paths()
    shutil.copy(weights, tmp_path)
    shutil.copy(record, tmp_path)
    load_pretrained_gpt(tmp_path)  # an intact copy loads
    info = json.loads((tmp_path / record.name).read_text())
    info["sha256"] = "0" * 64
    (tmp_path / record.name).write_text(json.dumps(info))
    with pytest.raises(ValueError, match="SHA-256"):
        load_pretrained_gpt(tmp_path)
    load_pretrained_gpt(tmp_path, check_hash=False)
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        load_pretrained_gpt(tmp_path / "nowhere")


def test_save_checkpoint_checks_its_arguments(tmp_path):
    with pytest.raises(TypeError, match="GPT"):
        save_checkpoint(torch.nn.Linear(2, 2), {"config": {}, "vocab": [], "val_loss": 0.0}, tmp_path)
    with pytest.raises(ValueError, match="record"):
        save_checkpoint(GPT(GPTConfig(vocab_size=5, n_ctx=4, d_model=8, n_heads=2)), {"vocab": []}, tmp_path)


def test_save_then_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=3, n_ctx=4, d_model=8, n_layers=1, n_heads=2))
    save_checkpoint(model, {"config": model.config.__dict__, "vocab": ["a", "b", "c"], "val_loss": 1.0}, tmp_path)
    loaded, tokenizer = load_pretrained_gpt(tmp_path)
    assert tokenizer.vocab == ["a", "b", "c"]
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


#: How far a regenerated checkpoint may lie from the shipped one. Training is reproducible bit for bit only on one
#: CPU code path: retrained on this project's machines the validation loss varied by 5e-4 nats/char across PyTorch's
#: AVX-512, AVX2 and baseline paths (1.73445 to 1.73498), the weights by up to 9 % of their norm, and the two models
#: still chose the same next character on 98 % of the validation text. The margins below are several times that.
VAL_LOSS_TOLERANCE = 3e-3
SAME_PREDICTION_SHARE = 0.95


def test_the_script_regenerates_the_same_checkpoint(tmp_path, shipped):
    """Re-run scripts/train_checkpoint.py (about 30 s of CPU time) and compare with the shipped files: the same
    configuration and vocabulary, the same validation loss and the same predictions, within what CPUs change."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train_checkpoint.py"), "--out", str(tmp_path),
                    "--quiet"], check=True, capture_output=True, cwd=ROOT)
    model, _, info, data = shipped
    fresh, _ = load_pretrained_gpt(tmp_path)
    fresh_info = checkpoint_info(tmp_path)
    assert fresh_info["config"].items() >= info["config"].items()  # newer options may be recorded too
    assert fresh_info["vocab"] == info["vocab"]
    assert fresh_info["val_loss"] == pytest.approx(info["val_loss"], abs=VAL_LOSS_TOLERANCE)
    n_ctx = model.config.n_ctx
    windows = data["val_ids"][: len(data["val_ids"]) // n_ctx * n_ctx].view(-1, n_ctx)
    with torch.no_grad():
        same = (model(windows)[0].argmax(-1) == fresh(windows)[0].argmax(-1)).float().mean().item()
    assert same >= SAME_PREDICTION_SHARE, f"the regenerated model agrees on only {same:.1%} of next characters"


def test_the_regeneration_check_can_tell_another_model_apart(shipped):
    """The prediction check above is not vacuous: an untrained model of the same shape fails it by far."""
    model, _, _, data = shipped
    torch.manual_seed(1)
    other = GPT(model.config).eval()
    n_ctx = model.config.n_ctx
    windows = data["val_ids"][: 40 * n_ctx].view(-1, n_ctx)
    with torch.no_grad():
        same = (model(windows)[0].argmax(-1) == other(windows)[0].argmax(-1)).float().mean().item()
    assert same < SAME_PREDICTION_SHARE / 2
