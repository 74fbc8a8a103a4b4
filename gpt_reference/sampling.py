"""Turning the model's last-position logits into the next token.

All the ways of sampling are one pipeline, applied in this order:

1. ``temperature``: divide the logits (not the probabilities) by T. T < 1 sharpens the distribution, T > 1 flattens
   it, and T → 0 approaches greedy decoding, which we do exactly with ``argmax`` (dividing by 0 would give NaNs).
2. ``top_k``: keep the k largest logits, set the others to -inf. Tokens tied with the k-th largest are kept too.
3. ``top_p`` (nucleus): sort by probability and keep the smallest prefix whose total probability reaches p. The
   token that crosses the threshold is *kept*: with p = 0.9 and probabilities (0.5, 0.3, 0.15, 0.05) we keep three.
4. softmax over what is left, and one draw with ``torch.multinomial`` (seeded by ``generator`` when given).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set the logits of tokens outside the top-k and outside the nucleus to -inf. ``logits`` is (B, V)."""
    logits = logits.clone()
    if top_k is not None and top_k > 0:
        kth_largest = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
        logits[logits < kth_largest] = -float("inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = F.softmax(sorted_logits, dim=-1)
        # probability mass strictly before each token; a token is dropped only if the mass before it already
        # reaches top_p, so the token that crosses the threshold stays (and the most likely token always stays)
        mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = -float("inf")
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token for each row of ``logits`` (B, V); returns (B, 1) token ids."""
    if greedy or temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate_text(
    model: torch.nn.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """``prompt`` continued by ``max_new_tokens`` tokens of ``model`` (lesson 06): the prompt's ids from
    ``tokenizer.encode``, ``generate_cached``, and the whole sequence decoded at once (a token can hold part of a
    character, so decoding token by token could break one). Switching dropout off (``model.eval()``) is the
    caller's job."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
    out = generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, generator)
    return tokenizer.decode(out[0].tolist())
