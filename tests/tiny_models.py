"""Small models shared by the tests of the KV cache, quantisation and memorisation."""

import torch

from llmbook.transformer import GPT, GPTConfig


def make_model(positional="learned", n_ctx=12, seed=0):
    """A 2-layer GPT over 13 tokens with weights scaled up 20x, so that its distributions are far from uniform."""
    torch.manual_seed(seed)
    m = GPT(GPTConfig(vocab_size=13, n_ctx=n_ctx, d_model=16, n_layers=2, n_heads=2, positional=positional))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(20)
    return m.eval()
