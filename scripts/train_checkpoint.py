"""Train the book's shared pre-trained tiny GPT and store it in llmbook/resources/ (`make checkpoints`).

The recipe is ``llmbook.pretrained.RECIPE``: chapter 6's character-level GPT trained for 1,000 steps on the Lee
news corpus, deterministically on one CPU thread (about 25 s of CPU time). The weights are written in the
safetensors format and a JSON record holds the configuration, the vocabulary and the validation loss.

    python scripts/train_checkpoint.py                 # overwrite the shipped checkpoint
    python scripts/train_checkpoint.py --out /tmp/ck   # write elsewhere (the tests compare the two)
"""

from __future__ import annotations

import argparse

import llmbook
from llmbook.pretrained import RESOURCES, save_checkpoint, train_pretrained_gpt


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESOURCES), help="folder for the .safetensors and .json files")
    parser.add_argument("--quiet", action="store_true", help="do not print the training progress")
    args = parser.parse_args(argv)
    llmbook.setup(seed=0)  # seeds and one CPU thread: the checkpoint is reproducible on a given machine
    model, _, record = train_pretrained_gpt(verbose=not args.quiet)
    weights, info = save_checkpoint(model, record, args.out)
    print(f"validation loss {record['val_loss']:.4f} nats/char; wrote {weights} and {info}")


if __name__ == "__main__":
    main()
