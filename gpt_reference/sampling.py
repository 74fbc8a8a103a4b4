"""Writing with a GPT: turning the last position's logits into the next token, and the loops that repeat it.

Lesson 05 builds these functions under these names. Sampling is one pipeline, applied in this order:

1. ``temperature``: divide the logits (not the probabilities) by T. T < 1 sharpens the distribution, T > 1 flattens
   it, and T → 0 approaches greedy decoding, which T = 0 does exactly with ``argmax`` (dividing by 0 would give NaNs).
2. ``top_k_logits``: keep the k largest logits, set the others to -inf. Tokens tied with the k-th largest are kept.
3. ``top_p_logits`` (nucleus): sort by probability and keep the smallest prefix whose total probability reaches p.
   The token that crosses the threshold is *kept*: with p = 0.9 and probabilities (0.5, 0.3, 0.15, 0.05) three stay.
4. softmax over what is left (``next_token_probs``), and one draw per row with ``torch.multinomial``, seeded by
   ``generator`` when given (``sample_next``).

``generate`` repeats it, running the model on the whole (cropped) context at every step. ``generate_cached`` gives
the same tokens with a ``KVCache`` per layer: the prompt once, then only the newest token per step
(``forward_cached``), until the window is full and the caches are rebuilt. ``generate_text`` goes from a prompt's text
to text: a tokenizer around ``generate_cached``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .model import KVCache


def top_k_logits(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's k largest logits (and any tied with the k-th) kept, the others -inf; a new tensor of logits' shape.

    ``logits`` is (B, V), one distribution per row; a k at or above V keeps every token.
    """
    kth_largest = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]  # (B, 1): each row's own
    return logits.masked_fill(logits < kth_largest, float("-inf"))  # strictly below: ties with the k-th stay


def top_p_logits(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Each row's smallest set of most likely tokens whose probability reaches p kept, the others -inf; a new tensor."""
    if p >= 1.0:
        return logits.clone()  # the whole vocabulary
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = F.softmax(sorted_logits, dim=-1)
    # probability mass strictly before each token; a token is dropped only if the mass before it already reaches p,
    # so the token that crosses p stays (and the most likely token always stays)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def next_token_probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """The distribution ``sample_next`` draws from (temperature > 0): softmax(top_p(top_k(logits / T))), (B, V).

    A token the filters dropped has probability exactly 0.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 for a distribution (0 means argmax), got {temperature}")
    logits = logits / temperature  # on the logits, before any filter
    if top_k is not None:
        logits = top_k_logits(logits, top_k)
    if top_p is not None:
        logits = top_p_logits(logits, top_p)  # the nucleus of what top-k left, renormalised
    return F.softmax(logits, dim=-1)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits`` (B, V), drawn from the filtered softmax: (B, 1) int64.

    Temperature 0 is greedy decoding: each row's argmax.
    """
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)  # greedy decoding; no division by zero
    probs = next_token_probs(logits.float(), temperature, top_k, top_p)  # fp32 also when the model runs in bf16
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend ``idx`` (B, T) by ``max_new_tokens`` tokens, each drawn from the last position's logits: (B, T + new).

    Every step runs the model on the whole context, cropped to the last ``block_size`` tokens (the model has no
    positions beyond). Switching dropout off (``model.eval()``) is the caller's job.
    """
    block_size = model.config.block_size
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -block_size:])
        # the logits at position t predict token t+1: only the last position predicts a token we do not have yet
        next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat((idx, next_id), dim=1)
    return idx


def forward_cached(model: nn.Module, idx: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
    """Logits (B, T, vocab_size) of the new tokens ``idx`` (B, T), which continue the positions in ``caches`` (one
    ``KVCache`` per block); every cache ends up holding the old and the new positions.

    This is ``GPT.forward`` with caches: the new tokens take positions len(cache) … len(cache) + T - 1, and each
    block's attention appends their keys and values to its cache and attends to all of them.
    """
    logits, _ = model(idx, caches=caches)
    return logits


@torch.no_grad()
def generate_cached(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``generate``'s tokens, computed with a KV cache: the prompt once, then one new token per step.

    When the caches already hold ``block_size`` positions the window has to slide, which shifts every position (the
    cached keys and values were computed at the old ones), so new caches are filled from the last ``block_size``
    tokens: exactly the context ``generate`` feeds the model at that step.
    """
    block_size = model.config.block_size
    caches: list[KVCache] | None = None
    for _ in range(max_new_tokens):
        if caches is None or len(caches[0]) >= block_size:
            caches = [KVCache() for _ in model.transformer.h]  # the prefill, or the window slides
            logits = forward_cached(model, idx[:, -block_size:], caches)
        else:
            logits = forward_cached(model, idx[:, -1:], caches)  # only the newest token; the caches have the rest
        next_id = sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat((idx, next_id), dim=1)
    return idx


@torch.no_grad()
def generate_text(
    model: nn.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """``prompt`` continued by ``max_new_tokens`` tokens of ``model``, as text (lesson 06): the prompt's ids from
    ``tokenizer.encode``, ``generate_cached``, and the whole sequence decoded at once (a token can hold part of a
    character, so decoding token by token could break one). Switching dropout off (``model.eval()``) is the
    caller's job."""
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device)
    out = generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, generator)
    return tokenizer.decode(out[0].tolist())
