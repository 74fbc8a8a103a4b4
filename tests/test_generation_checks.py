"""Lesson 05's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and checks leave the global random state alone.

The mutants are written the way a learner would write them, independently of the variants in
``autograder/checks/generation.py``; the statistical ones draw real samples (``torch.multinomial`` with the
generator) and must still be named. The last section checks the check module's own devices against ``gpt_reference``
(the quantile sampler's frequencies, the probe model's forward, the variants' common base), and that the probes'
greedy choices are never near ties, so that float rounding (cached or not, fused attention or not) cannot change a
correct learner's tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import partial

import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.checks import generation
from autograder.core import ProbeError, ProbeOutcome, _reference_outputs, judge, run_probe
from gpt_reference import sampling
from gpt_reference.model import GPT, KVCache

CHECKS = checks_for("05_generation")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("05_generation", CHECKS)


def checks_of(target):
    return [c.id for c in CHECKS if c.target == target]


# ---- correct alternatives, written the way learners write them ----------------------------------------------------


def top_k_scatter(logits, k):
    values, indices = torch.topk(logits, min(k, logits.size(-1)), dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)


def top_k_sort(logits, k):
    sorted_logits = torch.sort(logits, dim=-1, descending=True).values
    kth = sorted_logits[:, min(k, logits.size(-1)) - 1].unsqueeze(-1)
    return torch.where(logits >= kth, logits, torch.tensor(float("-inf")))


def top_k_nanogpt(logits, k):
    v, _ = torch.topk(logits, min(k, logits.size(-1)))
    logits = logits.clone()
    logits[logits < v[:, [-1]]] = -float("Inf")
    return logits


def top_k_kthvalue(logits, k):
    V = logits.size(-1)
    kth = torch.kthvalue(logits, max(V - k + 1, 1), dim=-1, keepdim=True).values
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_hf(logits, p):
    """Hugging Face's TopPLogitsWarper: sort ascending, drop the tail whose total mass is at most 1 - p."""
    sorted_logits, sorted_indices = torch.sort(logits, descending=False)
    cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    sorted_indices_to_remove = cumulative_probs <= (1 - p)
    sorted_indices_to_remove[..., -1:] = 0  # the most likely token always stays
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return logits.masked_fill(indices_to_remove, -float("Inf"))


def top_p_shifted(logits, p):
    """The classic descending version: the mask shifted right by one, so the token that crosses p stays."""
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    sorted_indices_to_remove = cumulative_probs > p
    sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
    sorted_indices_to_remove[..., 0] = False
    out = logits.clone()
    for row in range(logits.size(0)):
        out[row, sorted_indices[row][sorted_indices_to_remove[row]]] = float("-inf")
    return out


def top_p_loop(logits, p):
    out = torch.full_like(logits, float("-inf"))
    for row in range(logits.size(0)):
        probs = F.softmax(logits[row], dim=-1)
        total = 0.0
        for i in torch.argsort(probs, descending=True).tolist():
            out[row, i] = logits[row, i]
            total += probs[i].item()
            if total >= p:
                break
    return out


def filtered(logits, top_k, top_p):
    if top_k is not None:
        logits = top_k_scatter(logits, top_k)
    if top_p is not None:
        logits = top_p_hf(logits, top_p)
    return logits


def sample_multinomial(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    probs = F.softmax(filtered(logits / temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def sample_inverse_cdf(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1).unsqueeze(-1)
    cdf = F.softmax(filtered(logits / temperature, top_k, top_p), dim=-1).cumsum(dim=-1)
    u = torch.rand(logits.size(0), 1, generator=generator) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)


def sample_gumbel_max(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=generator)))
    return (filtered(logits / temperature, top_k, top_p) + gumbel).argmax(-1, keepdim=True)


def sample_exponential_race(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    probs = F.softmax(filtered(logits / temperature, top_k, top_p), dim=-1)
    race = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / race).argmax(-1, keepdim=True)


def sample_powered_probs(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    probs = F.softmax(logits, dim=-1) ** (1 / temperature)
    probs = probs / probs.sum(dim=-1, keepdim=True)
    probs = F.softmax(filtered(probs.log(), top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate_nanogpt(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    for _ in range(max_new_tokens):
        idx_cond = idx if idx.size(1) <= model.config.block_size else idx[:, -model.config.block_size:]
        logits, _ = model(idx_cond)
        idx_next = sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def generate_preallocated(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    B, T = idx.shape
    out = torch.zeros(B, T + max_new_tokens, dtype=torch.long)
    out[:, :T] = idx
    with torch.no_grad():
        for t in range(T, T + max_new_tokens):
            logits = model(out[:, max(0, t - model.config.block_size) : t])[0]
            out[:, t : t + 1] = sample_gumbel_max(logits[:, -1], temperature, top_k, top_p, generator)
    return out


class ChunkCache:
    """Keeps the appended chunks in a list and concatenates them when asked."""

    def __init__(self):
        self.keys, self.values = [], []

    def __len__(self):
        return sum(k.shape[2] for k in self.keys)

    def append(self, k, v):
        self.keys.append(k)
        self.values.append(v)
        return torch.cat(self.keys, dim=2), torch.cat(self.values, dim=2)


class TensorCache:
    """Keeps the keys and values so far as two tensors, grown by concatenation."""

    def __init__(self):
        self.k = self.v = None

    def __len__(self):
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class PreallocatedCache:
    def __init__(self, capacity=64):
        self.capacity, self.size = capacity, 0
        self.k = self.v = None

    def __len__(self):
        return self.size

    def append(self, k, v):
        B, H, T, D = k.shape
        if self.size + T > self.capacity:
            raise IndexError(f"the cache holds at most {self.capacity} positions")
        if self.k is None:
            self.k, self.v = k.new_zeros(B, H, self.capacity, D), v.new_zeros(B, H, self.capacity, D)
        self.k[:, :, self.size : self.size + T] = k
        self.v[:, :, self.size : self.size + T] = v
        self.size += T
        return self.k[:, :, : self.size], self.v[:, :, : self.size]


def split_heads(t, n_head):
    B, T, C = t.shape
    return t.view(B, T, n_head, C // n_head).transpose(1, 2)


def forward_cached_manual(model, idx, caches):
    B, T = idx.shape
    past = len(caches[0])
    x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(past, past + T))
    for block, cache in zip(model.transformer.h, caches):
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(x.size(-1), dim=2)
        q, k, v = (split_heads(t, block.attn.n_head) for t in (q, k, v))
        k, v = cache.append(k, v)
        att = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        query_pos = torch.arange(past, past + T)[:, None]
        key_pos = torch.arange(past + T)[None, :]
        att = att.masked_fill(key_pos > query_pos, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        x = x + block.attn.c_proj(y.transpose(1, 2).contiguous().view(B, T, -1))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.transformer.ln_f(x))


def forward_cached_sdpa(model, idx, caches):
    B, T = idx.shape
    past = len(caches[0])
    pos = torch.arange(past, past + T, dtype=torch.long)
    x = model.transformer.drop(model.transformer.wte(idx) + model.transformer.wpe(pos))
    for block, cache in zip(model.transformer.h, caches):
        attn = block.attn
        q, k, v = attn.c_attn(block.ln_1(x)).split(attn.n_embd, dim=2)
        q, k, v = (split_heads(t, attn.n_head) for t in (q, k, v))
        k, v = cache.append(k, v)
        mask = torch.ones(T, past + T, dtype=torch.bool).tril(diagonal=past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, attn.n_embd))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.transformer.ln_f(x))


@torch.no_grad()
def generate_cached_in_loop(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    block_size = model.config.block_size
    caches = None
    for _ in range(max_new_tokens):
        if caches is None or len(caches[0]) == block_size:
            caches = [ChunkCache() for _ in model.transformer.h]
            logits = forward_cached_sdpa(model, idx[:, -block_size:], caches)
        else:
            logits = forward_cached_sdpa(model, idx[:, -1:], caches)
        idx = torch.cat([idx, sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)], dim=1)
    return idx


@torch.no_grad()
def generate_cached_prefill_first(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                                  generator=None):
    block_size = model.config.block_size
    caches = [PreallocatedCache() for _ in range(model.config.n_layer)]
    logits = forward_cached_manual(model, idx[:, -block_size:], caches)
    for _ in range(max_new_tokens):
        next_id = sample_inverse_cdf(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat((idx, next_id), dim=1)
        if len(caches[0]) >= block_size:  # the window is full: slide it, and refill new caches
            caches = [PreallocatedCache() for _ in range(model.config.n_layer)]
            logits = forward_cached_manual(model, idx[:, -block_size:], caches)
        else:
            logits = forward_cached_manual(model, next_id, caches)
    return idx


ALTERNATIVES = {
    "top_k_logits": [top_k_scatter, top_k_sort, top_k_nanogpt, top_k_kthvalue],
    "top_p_logits": [top_p_hf, top_p_shifted, top_p_loop],
    "sample_next": [sample_multinomial, sample_inverse_cdf, sample_gumbel_max, sample_exponential_race,
                    sample_powered_probs],
    "generate": [generate_nanogpt, generate_preallocated],
    "KVCache": [ChunkCache, PreallocatedCache, TensorCache],
    "forward_cached": [forward_cached_manual, forward_cached_sdpa],
    "generate_cached": [generate_cached_in_loop, generate_cached_prefill_first],
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_alternatives_pass(check_id):
    check = get_check(check_id)
    for implementation in ALTERNATIVES[check.target]:
        result = run_check(check_id, implementation)
        assert result.passed and result.points == result.max_points, (implementation.__name__, result.message)


@pytest.mark.parametrize("check_id", checks_of("sample_next"))
def test_the_reference_sampler_is_within_tolerance(check_id):
    """The reference's sample_next, one random draw and all, passes the judge's quantile stand-in (handed in as an
    answer it is not the learner's own: tests/test_ownwork.py)."""
    check = get_check(check_id)
    outputs = _reference_outputs(check, sampling.sample_next)
    assert judge(check, ProbeOutcome(outputs=outputs)).passed


# ---- mutants, one per catalogued mistake ---------------------------------------------------------------------------


def top_k_strict(logits, k):
    kth = torch.topk(logits, min(k, logits.size(-1))).values[:, -1:]
    return logits.masked_fill(logits <= kth, float("-inf"))


def top_k_one_too_many(logits, k):
    kth = torch.topk(logits, min(k + 1, logits.size(-1))).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_k_into_zeros(logits, k):
    values, indices = torch.topk(logits, min(k, logits.size(-1)))
    return torch.zeros_like(logits).scatter(-1, indices, values)


def top_k_softmaxed(logits, k):
    return F.softmax(top_k_nanogpt(logits, k), dim=-1)


def top_k_in_place(logits, k):
    v, _ = torch.topk(logits, min(k, logits.size(-1)))
    logits[logits < v[:, [-1]]] = -float("Inf")
    return logits


def top_k_flattened(logits, k):
    kth = torch.topk(logits.view(-1), k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_unshifted(logits, p):
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
    sorted_indices_to_remove = cumulative_probs > p
    indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
    return logits.masked_fill(indices_to_remove, float("-inf"))


def top_p_unsorted(logits, p):
    probs = F.softmax(logits, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    return logits.masked_fill(cumulative - probs >= p, float("-inf"))


def top_p_sorted_mask(logits, p):
    sorted_logits, _ = torch.sort(logits, descending=True)
    probs = F.softmax(sorted_logits, dim=-1)
    remove = probs.cumsum(dim=-1) - probs >= p
    return logits.masked_fill(remove, float("-inf"))


def top_p_in_place(logits, p):
    sorted_logits, sorted_indices = torch.sort(logits, descending=True)
    probs = F.softmax(sorted_logits, dim=-1)
    remove = probs.cumsum(dim=-1) - probs >= p
    logits[remove.scatter(1, sorted_indices, remove)] = float("-inf")
    return logits


def sample_temperature_on_probs(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    probs = F.softmax(filtered(logits, top_k, top_p), dim=-1) / temperature
    return torch.multinomial(probs, 1, generator=generator)


def sample_times_temperature(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    probs = F.softmax(filtered(logits * temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def sample_filters_then_temperature(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    logits = filtered(logits, top_k, top_p)
    probs = F.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


def sample_top_p_then_top_k(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    logits = logits / temperature
    if top_p is not None:
        logits = top_p_hf(logits, top_p)
    if top_k is not None:
        logits = top_k_scatter(logits, top_k)
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


def sample_argmax(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = F.softmax(filtered(logits, top_k, top_p), dim=-1)
    return torch.argmax(probs, dim=-1, keepdim=True)


def generate_mutant(context=lambda idx, block_size: idx[:, -block_size:], pick=lambda logits: logits[:, -1, :]):
    @torch.no_grad()
    def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
        for _ in range(max_new_tokens):
            logits, _ = model(context(idx, model.config.block_size))
            logits = pick(logits)
            next_ids = sample_multinomial(logits.reshape(-1, logits.size(-1)), temperature, top_k, top_p, generator)
            idx = torch.cat((idx, next_ids.view(idx.size(0), -1)), dim=1)
        return idx
    return generate


@torch.no_grad()
def generate_model_once(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    logits, _ = model(idx[:, -model.config.block_size:])
    for _ in range(max_new_tokens):
        idx_next = sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


class OverwritingCache(TensorCache):
    def append(self, k, v):
        self.k, self.v = k, v
        return self.k, self.v


class PrependingCache(TensorCache):
    def append(self, k, v):
        if self.k is not None:
            k, v = torch.cat([k, self.k], dim=2), torch.cat([v, self.v], dim=2)
        self.k, self.v = k, v
        return k, v


class ChunkCountingCache(ChunkCache):
    def __len__(self):
        return len(self.keys)


def offset_causal_attention(q, k, v, past):
    T, n_keys = q.size(2), k.size(2)
    mask = torch.ones(T, n_keys, dtype=torch.bool).tril(diagonal=n_keys - T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def forward_cached_mutant(positions=lambda past, T: torch.arange(past, past + T), attend=offset_causal_attention,
                          use_cache_output=True):
    """forward_cached_sdpa with one step rewritten."""
    def forward_cached(model, idx, caches):
        B, T = idx.shape
        past = len(caches[0])
        x = model.transformer.wte(idx) + model.transformer.wpe(positions(past, T))
        for block, cache in zip(model.transformer.h, caches):
            attn = block.attn
            q, k, v = attn.c_attn(block.ln_1(x)).split(attn.n_embd, dim=2)
            q, k, v = (split_heads(t, attn.n_head) for t in (q, k, v))
            if use_cache_output:
                k, v = cache.append(k, v)
            else:
                cache.append(k, v)
            y = attend(q, k, v, past)
            x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, attn.n_embd))
            x = x + block.mlp(block.ln_2(x))
        return model.lm_head(model.transformer.ln_f(x))
    return forward_cached


@torch.no_grad()
def generate_cached_fresh_caches(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                                 generator=None):
    for _ in range(max_new_tokens):
        caches = [ChunkCache() for _ in model.transformer.h]
        logits = forward_cached_sdpa(model, idx[:, -model.config.block_size:], caches)
        idx = torch.cat([idx, sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)], dim=1)
    return idx


def generate_cached_mutant(when_full):
    """Prefill, then one token per step; ``when_full(model, idx, caches)`` gives the logits once the window is full
    (or None to carry on as if it were not)."""
    @torch.no_grad()
    def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
        caches = [ChunkCache() for _ in model.transformer.h]
        logits = forward_cached_sdpa(model, idx[:, -model.config.block_size:], caches)
        for _ in range(max_new_tokens):
            next_id = sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_id], dim=1)
            if len(caches[0]) == model.config.block_size and when_full is not None:
                caches = [ChunkCache() for _ in model.transformer.h]
                logits = forward_cached_sdpa(model, when_full(idx), caches)
            else:
                logits = forward_cached_sdpa(model, next_id, caches)
        return idx
    return generate_cached


MUTANTS = {
    "top_k_logits": {
        "top-k keeps k-1 tokens": top_k_strict,
        "top-k keeps k+1 tokens": top_k_one_too_many,
        "dropped tokens set to 0 instead of -inf": top_k_into_zeros,
        "returns probabilities, not logits": top_k_softmaxed,
        "changes the caller's logits in place": top_k_in_place,
        "one threshold for the whole batch": top_k_flattened,
    },
    "top_p_logits": {
        "top-p drops the token that crosses p": top_p_unshifted,
        "top-p without sorting": top_p_unsorted,
        "top-p mask left in sorted order": top_p_sorted_mask,
        "changes the caller's logits in place": top_p_in_place,
    },
    "sample_next": {
        "temperature applied after the softmax": sample_temperature_on_probs,
        "logits multiplied by the temperature": sample_times_temperature,
        "top-p applied before the temperature": sample_filters_then_temperature,
        "top-p applied before top-k": sample_top_p_then_top_k,
        "always the most likely token": sample_argmax,
    },
    "generate": {
        "no context cropping": generate_mutant(context=lambda idx, block_size: idx),
        "context cropped to block_size - 1": generate_mutant(context=lambda idx, bs: idx[:, -bs + 1:]),
        "sampling from all positions' logits": generate_mutant(pick=lambda logits: logits),
        "sampling from the first position's logits": generate_mutant(pick=lambda logits: logits[:, 0, :]),
        "the model runs once, before the loop": generate_model_once,
    },
    "KVCache": {
        "the cache forgets to append": OverwritingCache,
        "new positions put before the old ones": PrependingCache,
        "len counts appends, not positions": ChunkCountingCache,
    },
    "forward_cached": {
        "positions restart at 0 on every call": forward_cached_mutant(positions=lambda past, T: torch.arange(T)),
        "cache position embeddings off by one": forward_cached_mutant(
            positions=lambda past, T: torch.arange(1, T + 1) + past),
        "the cache forgets to append (attends only to the new tokens)": forward_cached_mutant(use_cache_output=False),
        "causal mask aligned to the top-left (is_causal=True with a cache)": forward_cached_mutant(
            attend=lambda q, k, v, past: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
        "no causal mask": forward_cached_mutant(attend=lambda q, k, v, past: F.scaled_dot_product_attention(q, k, v)),
        "no mask for several new tokens after a cache": forward_cached_mutant(
            attend=lambda q, k, v, past: F.scaled_dot_product_attention(q, k, v, is_causal=past == 0)),
    },
    "generate_cached": {
        "the cache is not used (the whole context every step)": generate_cached_fresh_caches,
        "the cache grows past block_size": generate_cached_mutant(when_full=None),
        "the window slides by emptying the cache": generate_cached_mutant(when_full=lambda idx: idx[:, -1:]),
    },
}

(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS)


# ---- other wrong answers -------------------------------------------------------------------------------------------


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def raises_value_error(*args, **kwargs):
    raise ValueError("oops")


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_not_implemented(check_id):
    result = run_check(check_id, not_implemented)
    assert not result.passed and result.message == "not implemented yet"


def sample_float_ids(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    return sample_multinomial(logits, temperature, top_k, top_p, generator).float()


def sample_flat(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    return sample_multinomial(logits, temperature, top_k, top_p, generator).view(-1)


def sample_without_greedy_tensor(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = F.softmax(filtered(logits / temperature, top_k, top_p), dim=-1)  # NaNs at temperature 0
    return torch.multinomial(probs, 1, generator=generator)


def sample_without_greedy_python(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    probs = F.softmax(filtered(logits * (1 / temperature), top_k, top_p), dim=-1)  # ZeroDivisionError
    return torch.multinomial(probs, 1, generator=generator)


def sample_global_rng(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    return sample_multinomial(logits, temperature, top_k, top_p)


def sample_categorical(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Correct draws, but Categorical.sample takes no generator: a seeded generator cannot reproduce them."""
    if temperature == 0:
        return logits.argmax(-1, keepdim=True)
    return torch.distributions.Categorical(logits=filtered(logits / temperature, top_k, top_p)).sample().unsqueeze(-1)


def generate_with_grad(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    """generate_nanogpt without its @torch.no_grad()."""
    return generate_nanogpt.__wrapped__(model, idx, max_new_tokens, temperature, top_k, top_p, generator)


def generate_by_the_model(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    return model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=generator)


@torch.no_grad()
def generate_new_tokens_only(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    return generate_nanogpt(model, idx, max_new_tokens, temperature, top_k, top_p, generator)[:, idx.size(1):]


class CacheWithoutLen:
    def __init__(self):
        self.k = self.v = None

    def append(self, k, v):
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class CacheAppendReturnsNothing(TensorCache):
    def append(self, k, v):
        super().append(k, v)


def forward_cached_with_loss(model, idx, caches):
    return forward_cached_sdpa(model, idx, caches), None


def forward_cached_last_only(model, idx, caches):
    return forward_cached_sdpa(model, idx, caches)[:, -1, :]


@torch.no_grad()
def generate_cached_never_slides(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                                 generator=None):
    """Caches sized to the window, which never slides: an IndexError once the window is full."""
    caches = [PreallocatedCache(capacity=model.config.block_size) for _ in model.transformer.h]
    logits = forward_cached_sdpa(model, idx[:, -model.config.block_size:], caches)
    for _ in range(max_new_tokens):
        next_id = sample_multinomial(logits[:, -1, :], temperature, top_k, top_p, generator)
        idx = torch.cat([idx, next_id], dim=1)
        logits = forward_cached_sdpa(model, next_id, caches)
    return idx


def generate_cached_with_grad(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
    """generate_cached_in_loop without its @torch.no_grad()."""
    return generate_cached_in_loop.__wrapped__(model, idx, max_new_tokens, temperature, top_k, top_p, generator)


@pytest.mark.parametrize(("target", "implementation", "expected"), [
    ("top_k_logits", lambda logits, k: torch.topk(logits, k), "returned a tuple of 2 values"),
    ("top_k_logits", lambda logits, k: torch.topk(logits, min(k, logits.size(-1))).values, "expected the same shape"),
    ("top_p_logits", raises_value_error, "raised ValueError: oops"),
    ("sample_next", sample_float_ids, "expected integer token ids (torch.long)"),
    ("sample_next", sample_flat, "one token id per row, as a column"),
    ("sample_next", sample_without_greedy_tensor, "Temperature 0 means greedy decoding"),
    ("sample_next", sample_without_greedy_python, "raised ZeroDivisionError"),
    ("sample_next", sample_without_greedy_python, "Temperature 0 means greedy decoding"),
    ("sample_next", sample_global_rng, "generators seeded alike"),
    ("sample_next", sample_global_rng, "pass `generator` to torch.multinomial"),
    ("sample_next", sample_categorical, "pass `generator` to torch.multinomial"),
    ("generate", generate_with_grad, "decorate generate with @torch.no_grad()"),
    ("generate", generate_by_the_model, "write the loop yourself"),
    ("generate", generate_new_tokens_only, "shape"),
    ("generate", lambda *args, **kwargs: generate_nanogpt(*args, **kwargs).float(), "dtype torch.float32"),
    ("KVCache", CacheWithoutLen, "define __len__"),
    ("KVCache", CacheAppendReturnsNothing, "expected a tuple (k, v)"),
    ("forward_cached", forward_cached_with_loss, "returned a tuple of 2 values"),
    ("forward_cached", forward_cached_last_only, "expected (B, T, vocab_size)"),
    ("generate_cached", generate_cached_never_slides, "raised IndexError"),
    ("generate_cached", generate_cached_with_grad, "decorate generate_cached with @torch.no_grad()"),
    ("generate_cached", generate_by_the_model, "write the loop yourself"),
])
def test_wrong_answers_fail_with_a_useful_message(target, implementation, expected):
    for check_id in checks_of(target):
        result = run_check(check_id, implementation)
        assert not result.passed and result.mistake is None
        assert expected in " ".join(result.message.split()), result.message  # its lines are wrapped


def forgetting(generate, setting):
    """``generate`` as a loop that forgets to pass ``setting`` on to sample_next."""
    def loop(model, idx, max_new_tokens, **settings):
        settings.pop(setting, None)
        return generate(model, idx, max_new_tokens, **settings)
    return loop


@pytest.mark.parametrize("setting", ["top_p", "generator"])
@pytest.mark.parametrize("target", ["generate", "generate_cached"])
def test_loops_that_drop_a_setting_fail(target, setting):
    for check_id in checks_of(target):
        result = run_check(check_id, forgetting(ALTERNATIVES[target][0], setting))
        assert not result.passed
        assert f"pass {setting} on to sample_next" in result.message, result.message


def test_ignoring_the_generator_fails_only_on_reproducibility():
    for check_id in checks_of("sample_next"):
        for implementation in (sample_global_rng, sample_categorical):
            message = run_check(check_id, implementation).message
            hidden = get_check(check_id).hidden  # a hidden part is told by its case, not by its name
            label = "two calls with generators seeded alike: " if hidden else "[reproducible] "
            assert message.startswith(label + "1 of 1 entries wrong"), message
            assert ("right on: temperature 0" if hidden else "right on: greedy") in message


# ---- what messages must never show, and what checks must never touch ------------------------------------------------

NUMBER_LIST = re.compile(r"(-?\d+\.\d+(e-?\d+)?[,\s]+){4,}")


def test_messages_never_show_expected_values():
    for target, mutants in MUTANTS.items():
        for check_id in checks_of(target):
            expected = run_probe(get_check(check_id), ALTERNATIVES[target][0]).outputs
            values = [v for out in expected.values() if out.is_floating_point() for v in out.flatten()[:8].tolist()]
            for implementation in mutants.values():
                message = run_check(check_id, implementation).message
                assert "tensor(" not in message and not re.search(r"(?<!\w)\[\s*-?\d", message), message
                assert not NUMBER_LIST.search(message), message
                for value in (v for v in values if 0.1 < abs(v) < 1e3):  # .3g errors never spell a 4-decimal value
                    assert f"{value:.4f}" not in message, message


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for c in CHECKS:
        run_check(c.id, ALTERNATIVES[c.target][0])
    for implementation in (sample_global_rng, sample_categorical, *MUTANTS["sample_next"].values()):
        run_check("generation.sample_next", implementation)
    assert torch.equal(torch.get_rng_state(), before)


# ---- the check module's own devices, against gpt_reference ---------------------------------------------------------


@pytest.mark.parametrize("config", [generation._SMALL, generation._HIDDEN])
def test_the_probe_model_computes_what_gpt_reference_computes(config):
    """_ProbeGPT only instruments: its forward is GPT's, also past its advertised block_size and with caches."""
    probe_model = generation._probe_model(config, 8, seed=1)
    model = GPT(config).eval()
    model.load_state_dict(probe_model.state_dict())
    idx = generation._prompt(2, 12, config.vocab_size, seed=2)  # longer than the advertised 8 positions
    torch.testing.assert_close(probe_model(idx)[0], model(idx)[0], atol=0, rtol=0)
    assert probe_model.config.block_size == 8 and probe_model.calls == [(12, True)]
    with pytest.raises(ProbeError, match="write the loop yourself"):
        probe_model.generate(idx, 1)
    caches = [KVCache() for _ in range(config.n_layer)]
    pieces = [sampling.forward_cached(probe_model, idx[:, :9], caches),
              sampling.forward_cached(probe_model, idx[:, 9:], caches)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), model(idx)[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", [replace(generation._SMALL, block_size=16),
                                    replace(generation._HIDDEN, block_size=16)])
def test_the_cached_forward_variants_base_is_the_reference(config):
    """_forward_cached_variant with nothing changed computes gpt_reference's forward, so that each mistake differs
    from the reference by its one change."""
    model = generation._probe_model(config, 16, seed=1)
    idx = generation._prompt(2, 12, config.vocab_size, seed=2)
    full = model(idx)[0]
    caches = [KVCache() for _ in range(config.n_layer)]
    pieces = [generation._forward_cached_variant(model, idx[:, :5], caches)]  # the prompt, single tokens, a chunk
    pieces += [generation._forward_cached_variant(model, idx[:, t : t + 1], caches) for t in range(5, 8)]
    pieces.append(generation._forward_cached_variant(model, idx[:, 8:], caches))
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("config", [generation._SMALL, generation._HIDDEN])
@pytest.mark.parametrize("settings", [{"temperature": 0.0}, {"temperature": 1.0, "top_k": 5, "top_p": 0.9}])
def test_the_loops_agree_on_the_probe_model(config, settings):
    """On the probe model (block_size 8), with a window that slides: gpt_reference's generate and generate_cached,
    and the generate variants' common base, give the same tokens."""
    model = generation._probe_model(config, 8, seed=3)
    idx = generation._prompt(2, 6, config.vocab_size, seed=4)  # 6 + 12 tokens: the window slides
    loops = [sampling.generate, sampling.generate_cached, generation._generate_variant]
    outputs = [loop(model, idx, 12, generator=torch.Generator().manual_seed(5), **settings) for loop in loops]
    for out in outputs[1:]:
        assert torch.equal(out, outputs[0])


def test_quantile_draws_have_the_reference_probabilities_as_frequencies():
    logits = torch.randn(1, 12, generator=torch.Generator().manual_seed(6))
    settings = {"temperature": 0.7, "top_k": 9, "top_p": 0.95}
    probs = sampling.next_token_probs(logits, **settings)
    n = generation.DRAWS
    draws = generation.sample_next_by_quantiles(logits.expand(n, -1), **settings)
    frequencies = torch.bincount(draws[:, 0], minlength=12).double() / n
    assert (frequencies - probs[0]).abs().max() <= 1 / n
    assert (frequencies[probs[0] == 0] == 0).all() and (probs[0] == 0).sum() >= 3


def test_quantile_draws_at_temperature_zero_are_the_references_argmax():
    logits = torch.randn(5, 9, generator=torch.Generator().manual_seed(7))
    assert torch.equal(generation.sample_next_by_quantiles(logits, temperature=0.0),
                       sampling.sample_next(logits, temperature=0.0))


def test_greedy_choices_on_the_generation_probes_are_never_near_ties():
    """Cached and uncached passes differ by float rounding (~1e-6): the top two logits at every step the reference
    or a mistake samples from must be much further apart, or a correct learner could get another token."""
    gaps = []

    def recording(generate):
        def run(model, idx, max_new_tokens, **settings):
            def record(module, inputs, logits):
                top2 = logits.topk(2, dim=-1).values
                gaps.append((top2[..., 0] - top2[..., 1]).min().item())

            handle = model.lm_head.register_forward_hook(record)
            try:
                return generate(model, idx, max_new_tokens, **settings)
            finally:
                handle.remove()
        return run

    for target in ("generate", "generate_cached"):
        check = get_check(f"generation.{target}")
        for probe in (check.probe, get_check(f"generation.{target}.hidden").probe):
            for implementation in (check.reference, *(m.implementation for m in check.mistakes)):
                probe(recording(implementation))
    assert min(gaps) > 1e-3
