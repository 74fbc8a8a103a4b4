"""Checks for lesson 05, generation: top-k and top-p filtering, sampling the next token, the generation loop, a KV
cache, the cached forward pass and cached generation.

Every check has a visible half and a hidden half with other sizes and edge cases. Each mistake is the reference with
one plausible error in it; the tests make sure that on each probe no two mistakes, and no mistake and the reference,
give the same outputs.

The references are ``gpt_reference``'s own objects, by the lesson's names (``gpt_reference.sampling.top_k_logits``,
``…top_p_logits``, ``…generate``, ``…forward_cached``, ``…generate_cached``, ``gpt_reference.model.KVCache``), with one
judging device for ``sample_next``, below.

Sampling is checked statistically. The probe asks the learner's ``sample_next`` for N = 10,000 draws from one
distribution (N identical rows) and reports the frequency of every token, and whether any draw fell outside the tokens
that top-k / top-p allow. Judged against the reference's own random draws, a correct learner's frequencies would be
off by the noise of two samples; so the judge's stand-in for ``gpt_reference.sampling.sample_next``,
``sample_next_by_quantiles``, is the reference with its one random step replaced: the same greedy path and the same
distribution (``gpt_reference.sampling.next_token_probs``, temperature, top-k, top-p, softmax), drawn *stratified*:
row j takes the token at quantile (j + ½)/N of the cumulative distribution, so the frequencies are the reference's
probabilities themselves, to within 1/N. (The tests run the real ``sample_next`` through the check too.) A correct
learner's frequencies are off by sampling noise only, at most √(p(1-p)/N) ≤ 0.005 (one standard deviation), and the
tolerance is atol 0.025 (five of them); every mistake is more than 0.05 away somewhere. Whether any draw fell outside
the allowed tokens is a flag, compared exactly: one such draw in 10,000 fails the check.

Generation is checked on the reference GPT at a tiny size, with weights drawn large (N(0, 0.5)) so that the greedy
choice is never a near tie, built inside ``fork_rng``. The model is instrumented, not rewritten (``_ProbeGPT``): a
hook on the token embedding records, for every pass, the context length and whether gradients were on. Its position
table has more rows than its ``config.block_size`` says, and its forward lets them all be used, so that a loop that
forgets to crop, or a cache that grows past the window, gives wrong tokens (and a name) rather than an error. It has
no ``generate`` of its own to call.

Tolerances (float32, stated in the lesson): filtered logits atol 1e-6, rtol 1e-5; frequencies atol 0.025; token ids
and counts exactly; the cached forward's logits atol 1e-4, rtol 1e-3, as for the full model in lesson 03.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gpt_reference.config import GPTConfig
from gpt_reference.model import GPT, KVCache
from gpt_reference.sampling import (
    forward_cached,
    generate,
    generate_cached,
    next_token_probs,
    sample_next,
    top_k_logits,
    top_p_logits,
)

from ..core import Mistake, Outputs, ProbeError, as_tensor
from ..probes import flag, register_pair, seeded_randn

LESSON = "05_generation"
FILTER_TOLERANCE = dict(atol=1e-6, rtol=1e-5)
FREQUENCY_TOLERANCE = dict(atol=0.025, rtol=0.0)
EXACT = dict(atol=0.0, rtol=0.0)
MODEL_TOLERANCE = dict(atol=1e-4, rtol=1e-3)
DRAWS = 10_000

_pair = partial(register_pair, "generation", LESSON, tolerance=FILTER_TOLERANCE)


# ---- top-k ----------------------------------------------------------------------------------------------------------


def _kth_largest_threshold(logits: torch.Tensor, k: int, keep_threshold: bool, fill: float = -math.inf) -> torch.Tensor:
    """Keep the entries above the (clamped) k-th largest of each row, and the k-th itself when ``keep_threshold``."""
    k = max(1, min(k, logits.size(-1)))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    drop = logits < kth if keep_threshold else logits <= kth
    return logits.masked_fill(drop, fill)


def _top_k_in_place(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    logits[logits < kth] = -math.inf
    return logits


def _top_k_one_threshold(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits.flatten(), min(k, logits.numel())).values[-1]
    return logits.masked_fill(logits < kth, -math.inf)


TOP_K_MISTAKES = (
    Mistake("top-k keeps k-1 tokens", "tokens *equal* to the k-th largest logit stay: drop only those strictly below it "
            "(`logits < kth`, not `<=`)", lambda logits, k: _kth_largest_threshold(logits, k, keep_threshold=False)),
    Mistake("top-k keeps k+1 tokens", "the threshold is the k-th largest logit, `torch.topk(logits, k).values[..., -1:]`"
            " (index k-1 counting from 0), not the (k+1)-th",
            lambda logits, k: _kth_largest_threshold(logits, k + 1, keep_threshold=True)),
    Mistake("dropped tokens set to 0 instead of -inf", "a logit of 0 still has probability e^0 / Σ > 0 after the "
            "softmax: set the dropped logits to -inf (`float('-inf')`)",
            lambda logits, k: _kth_largest_threshold(logits, k, keep_threshold=True, fill=0.0)),
    Mistake("returns probabilities, not logits", "return the filtered *logits* (-inf for dropped tokens); the softmax "
            "comes later, in sample_next", lambda logits, k: F.softmax(top_k_logits(logits, k), dim=-1)),
    Mistake("changes the caller's logits in place", "the caller may still need its logits: work on a copy "
            "(`logits.clone()`, or `masked_fill` which returns a new tensor)", _top_k_in_place),
    Mistake("one threshold for the whole batch", "each row is its own distribution: take the k-th largest along the "
            "last dimension, per row (`torch.topk(logits, k, dim=-1)`), not over the flattened batch",
            _top_k_one_threshold),
)

_FILTER_HINTS = {
    "input_unchanged": "leave the caller's logits unchanged: work on a copy",
}


def _filter_parts(fn, name: str, argument: str, cases: dict[str, tuple[torch.Tensor, float]]) -> Outputs:
    out, unchanged = {}, True
    for part, (logits, value) in cases.items():
        given = logits.clone()
        result = as_tensor(fn(given, value), f"{name}(logits of shape {tuple(logits.shape)}, {argument}={value})")
        if result.shape != logits.shape:
            raise ProbeError(f"{name} returned shape {tuple(result.shape)} for logits of shape {tuple(logits.shape)}; "
                             "expected the same shape, with -inf for the dropped tokens")
        out[part] = result.detach().clone()
        unchanged &= torch.equal(given, logits)
    out["input_unchanged"] = flag(unchanged)
    return out


def _probe_top_k(fn) -> Outputs:
    return _filter_parts(fn, "top_k_logits", "k", {
        "k3": (seeded_randn(4, 10, seed=500), 3),
        "k1": (seeded_randn(3, 10, seed=501, scale=2.0), 1),
    })  # fmt: skip


def _probe_top_k_hidden(fn) -> Outputs:
    return _filter_parts(fn, "top_k_logits", "k", {
        "k5_wide": (seeded_randn(2, 50, seed=510, scale=3.0), 5),
        "k_equals_vocab": (seeded_randn(3, 7, seed=511), 7),
        "k_above_vocab": (seeded_randn(2, 6, seed=512), 10),
        "one_row": (seeded_randn(1, 20, seed=513), 4),
    })  # fmt: skip


_pair("top_k_logits", "top_k_logits", top_k_logits, (_probe_top_k, _probe_top_k_hidden), (1, 1),
      "top_k_logits(logits, k): keep each row's k largest logits, set the others to -inf", TOP_K_MISTAKES,
      {**_FILTER_HINTS, "k1": "k = 1 keeps only the largest logit of each row",
       "k_above_vocab": "a k at or above the vocabulary size keeps every token (clamp k before torch.topk)",
       "k_equals_vocab": "k equal to the vocabulary size keeps every token"},
      inputs={"k3": "top_k_logits(logits, 3), logits of shape (4, 10) from randn",
              "k1": "top_k_logits(logits, 1), logits of shape (3, 10) from randn",
              "input_unchanged": "the logits passed in, after the calls"},
      cases={"k5_wide": "k = 5 of 50 tokens", "k_equals_vocab": "k equal to the vocabulary size",
             "k_above_vocab": "k larger than the vocabulary (k ≥ vocab size)", "one_row": "a single row",
             "input_unchanged": "the logits passed in, after the calls"})


# ---- top-p ----------------------------------------------------------------------------------------------------------


def _top_p_variant(logits: torch.Tensor, p: float, *, keep_crossing: bool = True, sort: bool = True,
                   unsort: bool = True, in_place: bool = False) -> torch.Tensor:
    if p >= 1.0:
        return logits
    if sort:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
    else:
        ordered, order = logits, torch.arange(logits.size(-1)).expand_as(logits)
    probs = F.softmax(ordered, dim=-1)
    cumulative = probs.cumsum(dim=-1)
    drop_ordered = (cumulative - probs >= p) if keep_crossing else (cumulative > p)
    drop = torch.zeros_like(drop_ordered).scatter(-1, order, drop_ordered) if unsort else drop_ordered
    if in_place:
        logits[drop] = -math.inf
        return logits
    return logits.masked_fill(drop, -math.inf)


TOP_P_MISTAKES = (
    Mistake("top-p drops the token that crosses p", "keep the smallest set whose probability *reaches* p: the token "
            "that takes the running total past p stays. Drop a token only when the mass *before* it is already ≥ p "
            "(`cumulative - probs >= p`)", partial(_top_p_variant, keep_crossing=False)),
    Mistake("top-p without sorting", "the nucleus is made of the *most likely* tokens: sort the probabilities in "
            "descending order before the running total", partial(_top_p_variant, sort=False)),
    Mistake("top-p mask left in sorted order", "the drop mask is computed on the sorted probabilities: put it back in "
            "vocabulary order (`scatter` with the sort's indices) before applying it to the logits",
            partial(_top_p_variant, unsort=False)),
    Mistake("changes the caller's logits in place", "the caller may still need its logits: work on a copy "
            "(`logits.clone()`, or `masked_fill` which returns a new tensor)", partial(_top_p_variant, in_place=True)),
)


def _log_probs(*probs: float) -> torch.Tensor:
    return torch.tensor(probs).log()


def _probe_top_p(fn) -> Outputs:
    # 0.15 crosses 0.9; the order is shuffled so that sorting matters
    return _filter_parts(fn, "top_p_logits", "p", {
        "crossing": (_log_probs(0.05, 0.3, 0.15, 0.5)[None].repeat(2, 1), 0.9),
        "p0.5": (seeded_randn(3, 12, seed=520, scale=1.5), 0.5),
        "p0.8": (seeded_randn(2, 12, seed=521), 0.8),
    })  # fmt: skip


def _probe_top_p_hidden(fn) -> Outputs:
    return _filter_parts(fn, "top_p_logits", "p", {
        "tiny_p": (seeded_randn(3, 16, seed=530, scale=2.0), 0.01),
        "p1": (seeded_randn(2, 9, seed=531), 1.0),
        "wide": (seeded_randn(2, 64, seed=532, scale=3.0), 0.7),
        "crossing_last": (_log_probs(0.2, 0.1, 0.4, 0.3)[None], 0.95),
    })  # fmt: skip


_pair("top_p_logits", "top_p_logits", top_p_logits, (_probe_top_p, _probe_top_p_hidden), (2, 1),
      "top_p_logits(logits, p): keep the smallest set of most likely tokens whose probability reaches p",
      TOP_P_MISTAKES,
      {**_FILTER_HINTS,
       "crossing": "with probabilities (0.5, 0.3, 0.15, 0.05) and p = 0.9, three tokens stay: 0.5 + 0.3 is short "
                   "of 0.9, and the token that crosses it is kept",
       "tiny_p": "the most likely token always stays, however small p is",
       "p1": "p = 1 keeps every token"},
      inputs={"crossing": "top_p_logits(log([0.05, 0.3, 0.15, 0.5]), 0.9), two equal rows",
              "p0.5": "top_p_logits(logits, 0.5), logits of shape (3, 12) from randn",
              "p0.8": "top_p_logits(logits, 0.8), logits of shape (2, 12) from randn",
              "input_unchanged": "the logits passed in, after the calls"},
      cases={"tiny_p": "a tiny p (0.01)", "p1": "p = 1", "wide": "64 tokens, p = 0.7",
             "crossing_last": "the token that crosses p is the last one kept",
             "input_unchanged": "the logits passed in, after the calls"})


# ---- sample_next ------------------------------------------------------------------------------------------------------


def _stratified(probs: torch.Tensor) -> torch.Tensor:
    """Row j draws the token at quantile (j + ½)/N: frequencies equal the probabilities to within 1/N."""
    n = probs.size(0)
    quantiles = ((torch.arange(n, dtype=torch.float64) + 0.5) / n)[:, None]
    cdf = probs.double().cumsum(dim=-1)
    cdf = cdf / cdf[:, -1:]
    return torch.searchsorted(cdf, quantiles).clamp_max(probs.size(-1) - 1)


def _by_quantiles(distribution: Callable[[torch.Tensor, float, int | None, float | None], torch.Tensor]):
    """A sample_next that draws stratified from ``distribution(logits, temperature, top_k, top_p)``, and takes
    gpt_reference's greedy path at temperature 0."""

    def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        if temperature == 0:
            return sample_next(logits, temperature=0.0)
        return _stratified(distribution(logits.double(), temperature, top_k, top_p))

    return sample


# The judge's stand-in for gpt_reference.sampling.sample_next (see the module's docstring): the reference's greedy path
# and its distribution, next_token_probs, drawn by quantiles instead of torch.multinomial.
sample_next_by_quantiles = _by_quantiles(next_token_probs)


def _misordered(order: tuple[str, ...]):
    """The filtered softmax with its steps (temperature, top_k, top_p) in another ``order``."""

    def distribution(z: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
        for step in order:
            if step == "temperature":
                z = z / temperature
            elif step == "top_k" and top_k is not None:
                z = top_k_logits(z, top_k)
            elif step == "top_p" and top_p is not None:
                z = top_p_logits(z, top_p)
        return F.softmax(z, dim=-1)

    return distribution


def _always_argmax(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    return sample_next(logits, temperature=0.0)


SAMPLE_MISTAKES = (
    Mistake("temperature applied after the softmax", "dividing probabilities by T changes nothing once they are "
            "renormalised: divide the *logits* by the temperature, then softmax",
            _by_quantiles(lambda z, temperature, top_k, top_p: next_token_probs(z, 1.0, top_k, top_p))),
    Mistake("logits multiplied by the temperature", "a low temperature must sharpen the distribution: divide the "
            "logits by T (T < 1 makes them larger)",
            _by_quantiles(lambda z, temperature, top_k, top_p: next_token_probs(z, 1 / temperature, top_k, top_p))),
    Mistake("top-p applied before the temperature", "the nucleus is measured on the distribution you sample from: "
            "divide by the temperature first, then top-k, then top-p",
            _by_quantiles(_misordered(("top_k", "top_p", "temperature")))),
    Mistake("top-p applied before top-k", "the order is temperature, top-k, then top-p: the nucleus is taken among "
            "the k tokens left, renormalised", _by_quantiles(_misordered(("temperature", "top_p", "top_k")))),
    Mistake("always the most likely token", "with temperature > 0, *draw* from the distribution "
            "(`torch.multinomial(probs, 1, generator=generator)`); only temperature 0 means argmax",
            _always_argmax),
)

# The distributions sampled from; their order is shuffled, so that a filter that forgets to sort shows.
_VISIBLE_LOGITS = torch.tensor([1.0, -0.5, 2.2, 0.3, -1.2, 1.6, -0.1, 0.6])
_HIDDEN_LOGITS = torch.tensor([0.2, 2.5, -1.0, 1.1, 0.0, -2.0, 1.9, 0.7, -0.4, 3.0, -0.8, 0.5])


def _token_ids(ids: torch.Tensor, what: str) -> torch.Tensor:
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ProbeError(f"{what} returned dtype {ids.dtype}; expected integer token ids (torch.long)")
    return ids


def _draws(fn, logits: torch.Tensor, n: int, seed: int, settings: dict[str, Any]) -> torch.Tensor:
    batch = logits.expand(n, -1).clone()
    what = "sample_next(logits, " + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"
    ids = as_tensor(fn(batch, generator=torch.Generator().manual_seed(seed), **settings), what)
    if ids.shape != (n, 1):
        raise ProbeError(f"{what} returned shape {tuple(ids.shape)} for logits of shape {tuple(batch.shape)}; "
                         f"expected ({n}, 1): one token id per row, as a column (torch.multinomial(probs, 1) gives it)")
    _token_ids(ids, what)
    if ids.numel() and (ids.min() < 0 or ids.max() >= logits.numel()):
        raise ProbeError(f"{what} returned ids outside 0 … {logits.numel() - 1}, the vocabulary")
    return ids.long()[:, 0]


def _sample_parts(fn, logits: torch.Tensor, cases: dict[str, dict[str, Any]], greedy: torch.Tensor,
                  seed: int) -> Outputs:
    out = {}
    with torch.random.fork_rng(devices=[]):
        for i, (part, settings) in enumerate(cases.items()):
            ids = _draws(fn, logits, DRAWS, seed + i, settings)
            allowed = next_token_probs(logits[None], settings.get("temperature", 1.0), settings.get("top_k"),
                                       settings.get("top_p"))[0] > 0
            out[f"freq_{part}"] = torch.bincount(ids, minlength=logits.numel()).double() / DRAWS
            out[f"outside_{part}"] = flag((~allowed[ids]).any())
        try:
            out["greedy"] = as_tensor(fn(greedy.clone(), temperature=0.0), "sample_next(logits, temperature=0)")
        except ProbeError:
            raise
        except Exception as e:
            raise ProbeError(f"sample_next(logits, temperature=0) raised {type(e).__name__}: {e}. Temperature 0 "
                             "means greedy decoding: return the argmax, without dividing by 0") from None
        first, second = (_draws(fn, logits, 200, seed, {"temperature": 1.0}) for _ in range(2))
        out["reproducible"] = flag(torch.equal(first, second))
    return out


_VISIBLE_SAMPLES = {
    "t1": {"temperature": 1.0},
    "t0.5": {"temperature": 0.5},
    "t2": {"temperature": 2.0},
    "top_k3": {"temperature": 1.0, "top_k": 3},
    "top_p0.75": {"temperature": 1.0, "top_p": 0.75},
    "t0.5_top_p0.8": {"temperature": 0.5, "top_p": 0.8},
    "top_k4_top_p0.7": {"temperature": 1.0, "top_k": 4, "top_p": 0.7},
}
_HIDDEN_SAMPLES = {
    "t0.7": {"temperature": 0.7},
    "t1.5_top_k5": {"temperature": 1.5, "top_k": 5},
    "top_k1": {"temperature": 1.0, "top_k": 1},
    "t1.3_top_p0.6": {"temperature": 1.3, "top_p": 0.6},
    "t0.8_top_k4_top_p0.8": {"temperature": 0.8, "top_k": 4, "top_p": 0.8},
}


def _samples_described(samples: dict[str, dict[str, Any]], logits: int) -> dict[str, str]:
    return {part: f"{DRAWS:,} draws from {logits} logits, " + ", ".join(f"{k}={v}" for k, v in settings.items())
            for part, settings in samples.items()}


def _probe_sample(fn) -> Outputs:
    return _sample_parts(fn, _VISIBLE_LOGITS, _VISIBLE_SAMPLES, greedy=seeded_randn(4, 8, seed=540), seed=541)


def _probe_sample_hidden(fn) -> Outputs:
    return _sample_parts(fn, _HIDDEN_LOGITS, _HIDDEN_SAMPLES, greedy=seeded_randn(6, 12, seed=550, scale=3.0),
                         seed=551)


_SAMPLE_HINTS = {
    "greedy": "temperature 0 means greedy: the argmax of each row, shape (B, 1)",
    "reproducible": "pass `generator` to torch.multinomial, so that a seeded generator gives the same draws again",
}
for _part in ("top_k3", "t1.5_top_k5", "top_k1"):
    _SAMPLE_HINTS[f"outside_{_part}"] = "a token outside the top k was drawn: filter with top_k_logits first"
for _part in ("top_p0.75", "t1.3_top_p0.6"):
    _SAMPLE_HINTS[f"outside_{_part}"] = "a token outside the nucleus was drawn: filter with top_p_logits first"
for _part in ("t0.5", "t2", "t0.7"):
    _SAMPLE_HINTS[f"freq_{_part}"] = "the frequencies with a temperature are off: divide the logits by it"

_pair("sample_next", "sample_next", sample_next_by_quantiles, (_probe_sample, _probe_sample_hidden), (2, 1),
      "sample_next(logits, temperature, top_k, top_p, generator): one draw per row from the filtered softmax",
      SAMPLE_MISTAKES, _SAMPLE_HINTS, tolerance=FREQUENCY_TOLERANCE,
      inputs={"greedy": "sample_next(logits, temperature=0), logits of shape (4, 8)",
              "reproducible": "two calls with generators seeded alike",
              **_samples_described(_VISIBLE_SAMPLES, len(_VISIBLE_LOGITS))},
      cases={"greedy": "temperature 0 on wider logits", "reproducible": "two calls with generators seeded alike",
             **_samples_described(_HIDDEN_SAMPLES, len(_HIDDEN_LOGITS))})


# ---- the model the generation checks run ----------------------------------------------------------------------------


class _ProbeGPT(GPT):
    """The reference GPT as the generation checks hand it to the learner: instrumented, not rewritten.

    ``config.block_size`` says ``block_size``; the position table keeps the rows of the config it was built with
    (more), and ``forward`` lets them all be used, so that a loop that forgets to crop (or a cache that grows past the
    window) computes wrong tokens instead of failing on GPT's length check. ``calls`` records, for every pass through
    the token embedding, the number of positions and whether gradients were on.
    """

    def __init__(self, config: GPTConfig, block_size: int) -> None:
        super().__init__(config)
        self.config = replace(config, block_size=block_size)
        self.calls: list[tuple[int, bool]] = []
        self.transformer.wte.register_forward_hook(self._record)

    def _record(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        self.calls.append((inputs[0].size(-1), torch.is_grad_enabled()))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, caches: list[KVCache] | None = None):
        """GPT.forward, with its length limit lifted to the position rows for the duration of the call."""
        advertised = self.config
        self.config = replace(advertised, block_size=self.transformer.wpe.num_embeddings)
        try:
            return super().forward(idx, targets, caches=caches)
        finally:
            self.config = advertised

    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise ProbeError("the check's model has no generate() to call: write the loop yourself")


def _probe_model(config: GPTConfig, block_size: int, seed: int) -> _ProbeGPT:
    """A seeded _ProbeGPT with large weights (N(0, 0.5); LayerNorm gains around 1), so greedy choices are clear."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _ProbeGPT(config, block_size)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".ln_" in name or name.startswith("transformer.ln_f"):
                    p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
                else:
                    p.copy_(0.5 * torch.randn_like(p))
    return model.eval()


_SMALL = GPTConfig(block_size=32, vocab_size=11, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)
_HIDDEN = GPTConfig(block_size=32, vocab_size=17, n_layer=3, n_head=3, n_embd=24, dropout=0.0, bias=False)


def _prompt(batch: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def _tokens(fn, name: str, model: _ProbeGPT, prompt: torch.Tensor, new: int, settings: dict[str, Any]) -> torch.Tensor:
    what = f"{name}(model, idx of shape {tuple(prompt.shape)}, {new}, " + ", ".join(
        f"{k}={v}" for k, v in settings.items()) + ")"
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # the judge runs references under no_grad
        out = as_tensor(fn(model, prompt.clone(), new, **settings), what)
    if out.dim() != 2 or out.size(0) != prompt.size(0):
        raise ProbeError(f"{what} returned shape {tuple(out.shape)}; expected (B, T + max_new_tokens) = "
                         f"({prompt.size(0)}, {prompt.size(1) + new}): the prompt followed by the new tokens")
    return _token_ids(out, what)


# ---- generate ---------------------------------------------------------------------------------------------------------


@torch.no_grad()
def _generate_variant(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, *,
                      context: str = "crop", position: str = "last", once: bool = False) -> torch.Tensor:
    block_size = model.config.block_size
    crop = {"crop": block_size, "crop_minus_one": block_size - 1, "none": None}[context]
    logits = None
    for _ in range(max_new_tokens):
        if logits is None or not once:
            logits, _ = model(idx if crop is None else idx[:, -crop:])
        if position == "all":  # every position's next token appended
            B, T, V = logits.shape
            next_ids = sample_next(logits.reshape(B * T, V), temperature, top_k, top_p, generator=generator)
            next_ids = next_ids.view(B, T)
        else:
            next_ids = sample_next(logits[:, -1 if position == "last" else 0, :], temperature, top_k, top_p,
                                   generator=generator)
        idx = torch.cat((idx, next_ids), dim=1)
    return idx


GENERATE_MISTAKES = (
    Mistake("no context cropping", "the model only knows block_size positions: feed it the last block_size tokens, "
            "`idx[:, -model.config.block_size:]`", partial(_generate_variant, context="none")),
    Mistake("context cropped to block_size - 1", "feed the last block_size tokens, `idx[:, -block_size:]`: all of "
            "the window the model was trained on", partial(_generate_variant, context="crop_minus_one")),
    Mistake("sampling from all positions' logits", "the logits at position t predict token t+1: only the *last* "
            "position's, `logits[:, -1, :]`, predict the next token", partial(_generate_variant, position="all")),
    Mistake("sampling from the first position's logits", "the next token is predicted by the *last* position: "
            "`logits[:, -1, :]`", partial(_generate_variant, position="first")),
    Mistake("the model runs once, before the loop", "every new token changes the context: call the model inside the "
            "loop, on the sequence so far", partial(_generate_variant, once=True)),
)


def _generate_parts(fn, name: str, config: GPTConfig, seed: int, batch: int) -> Outputs:
    model = _probe_model(config, 8, seed)
    vocab = config.vocab_size
    out = {"short": _tokens(fn, name, model, _prompt(batch, 3, vocab, seed + 1), 4, {"temperature": 0.0})}
    model.calls.clear()
    out["long"] = _tokens(fn, name, model, _prompt(batch, 6, vocab, seed + 2), 8, {"temperature": 0.0})
    out["context_lengths"] = torch.tensor([length for length, _ in model.calls], dtype=torch.int64)
    out.update(_settings_parts(fn, name, model, vocab, seed, top_k_prompt=4, top_k_new=5))
    return out


def _settings_parts(fn, name: str, model: _ProbeGPT, vocab: int, seed: int, top_k_prompt: int,
                    top_k_new: int) -> Outputs:
    """What both loops must pass on to sample_next: top_k (top-1 sampling is the argmax), top_p (a tiny nucleus is
    the argmax too), and a seeded generator that must reproduce its draws; and whether gradients were off in every
    call the model has seen."""
    out = {"top_k_1": _tokens(fn, name, model, _prompt(1, top_k_prompt, vocab, seed + 3), top_k_new,
                              {"temperature": 1.0, "top_k": 1, "generator": torch.Generator().manual_seed(seed)})}
    prompt = _prompt(1, 2, vocab, seed + 4)
    out["top_p_tiny"] = _tokens(fn, name, model, prompt, 4, {"temperature": 3.0, "top_p": 1e-3})
    runs = []
    with torch.random.fork_rng(devices=[]):
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            runs.append(_tokens(fn, name, model, prompt, 6, {"temperature": 3.0,
                                                             "generator": torch.Generator().manual_seed(seed)}))
    out["reproducible"] = flag(torch.equal(*runs))
    out["no_grad"] = flag(not any(grad for _, grad in model.calls))
    return out


_SETTINGS_HINTS = {
    "top_k_1": "pass temperature, top_k, top_p and generator on to sample_next",
    "top_p_tiny": "pass top_p on to sample_next",
    "reproducible": "pass generator on to sample_next, so that a seeded generator gives the same tokens again",
}


def _probe_generate(fn) -> Outputs:
    return _generate_parts(fn, "generate", _SMALL, 560, batch=2)


def _probe_generate_hidden(fn) -> Outputs:
    out = _generate_parts(fn, "generate", _HIDDEN, 570, batch=3)
    model = _probe_model(_HIDDEN, 8, 575)
    full = _prompt(2, 8, _HIDDEN.vocab_size, 576)
    out["full_window_prompt"] = _tokens(fn, "generate", model, full, 3, {"temperature": 0.0})
    out["zero_new_tokens"] = _tokens(fn, "generate", model, full, 0, {"temperature": 0.0})
    return out


_GENERATION_INPUTS = {  # what the two loops' probes share
    "short": "a prompt of 3 tokens, 4 new, temperature 0 (block_size 8)",
    "top_k_1": "top_k=1 with a seeded generator", "top_p_tiny": "top_p=0.001 at temperature 3",
    "reproducible": "twice with generators seeded alike, the global seed changed",
    "no_grad": "whether gradients were on in any call of the model",
}
_GENERATION_CASES = {
    "short": "a bigger model, batch of 3, a short prompt",
    "top_k_1": "top_k=1", "top_p_tiny": "a tiny top_p", "reproducible": "generators seeded alike",
    "no_grad": "gradients in any call of the model",
}

_GENERATE_HINTS = {
    **_SETTINGS_HINTS,
    "context_lengths": "the model saw contexts of the wrong lengths: crop to the last block_size tokens every step",
    "no_grad": "generation needs no gradients: decorate generate with @torch.no_grad() (a graph would be kept for "
               "every step)",
    "zero_new_tokens": "max_new_tokens = 0 returns the prompt as it is",
}

_pair("generate", "generate", generate, (_probe_generate, _probe_generate_hidden), (2, 1),
      "generate(model, idx, max_new_tokens, ...): crop to block_size, sample from the last position, append",
      GENERATE_MISTAKES, _GENERATE_HINTS, tolerance=EXACT,
      inputs={**_GENERATION_INPUTS, "long": "a prompt of 6 tokens, 8 new, temperature 0 (past block_size 8)",
              "context_lengths": "the context lengths the model saw while generating `long`"},
      cases={**_GENERATION_CASES, "long": "a bigger model, past block_size",
             "context_lengths": "the context lengths the model saw, past block_size",
             "full_window_prompt": "a prompt of block_size tokens", "zero_new_tokens": "max_new_tokens = 0"})


# ---- the KV cache ---------------------------------------------------------------------------------------------------


class _CacheVariant(KVCache):
    """KVCache with one thing done differently (``how``)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.appends = 0

    def __len__(self) -> int:
        return self.appends if self.how == "count_calls" else super().__len__()

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.appends += 1
        if self.k is None or self.how == "replace":
            self.k, self.v = k, v
        else:
            first, second = ((k, self.k), (v, self.v)) if self.how == "prepend" else ((self.k, k), (self.v, v))
            self.k, self.v = torch.cat(first, dim=2), torch.cat(second, dim=2)
        return self.k, self.v


CACHE_MISTAKES = (
    Mistake("the cache forgets to append", "append must add the new keys and values to the stored ones "
            "(`torch.cat([self.k, k], dim=2)`) and return all of them, not only the new",
            partial(_CacheVariant, "replace")),
    Mistake("new positions put before the old ones", "positions are in time order: the stored ones first, then the "
            "new, `torch.cat([self.k, k], dim=2)`", partial(_CacheVariant, "prepend")),
    Mistake("len counts appends, not positions", "len(cache) is the number of positions stored, `self.k.size(2)` "
            "(one append may add several)", partial(_CacheVariant, "count_calls")),
)


def _cache_parts(cls, shape: tuple[int, int, int], chunks: tuple[int, ...], seed: int, two: bool) -> Outputs:
    B, H, D = shape
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        caches = [cls() for _ in range(2 if two else 1)]
    for cache in caches:
        if not hasattr(cache, "append"):
            raise ProbeError(f"KVCache() gave a {type(cache).__name__} without an append(k, v) method")
    out, lengths = {}, []
    try:
        lengths.append(len(caches[0]))
    except TypeError as e:
        raise ProbeError(f"len(KVCache()) failed ({e}): define __len__, the number of positions stored") from None
    for i, t in enumerate(chunks):
        for j, cache in enumerate(caches):
            k = torch.randn(B, H, t, D, generator=generator)
            v = torch.randn(B, H, t, D, generator=generator)
            result = cache.append(k.clone(), v.clone())
            if not (isinstance(result, tuple) and len(result) == 2):
                raise ProbeError(f"KVCache.append(k, v) returned {type(result).__name__}; expected a tuple (k, v) of "
                                 "all the keys and values stored so far")
            keys = as_tensor(result[0], "KVCache.append(k, v)[0]")
            values = as_tensor(result[1], "KVCache.append(k, v)[1]")
            if i == 0 and j == 0:
                out["first_keys"], out["first_values"] = keys.clone(), values.clone()
        lengths.append(len(caches[0]))
    out["keys"], out["values"] = keys.clone(), values.clone()
    out["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    return out


def _probe_cache(cls) -> Outputs:
    return _cache_parts(cls, (2, 3, 4), (3, 1, 1), seed=580, two=False)


def _probe_cache_hidden(cls) -> Outputs:
    return _cache_parts(cls, (1, 2, 5), (1, 1, 4, 1, 2), seed=590, two=True)


_pair("kv_cache", "KVCache", KVCache, (_probe_cache, _probe_cache_hidden), (1, 1),
      "KVCache: append(k, v) stores keys and values along the time axis and returns all so far; len() = positions",
      CACHE_MISTAKES,
      {"lengths": "len(cache) is the number of positions stored: 0 when empty",
       "first_keys": "the first append returns exactly the keys it was given"}, tolerance=EXACT,
      inputs={"first": "the first append, 3 positions", "keys": "keys after appends of 3, 1 and 1 positions",
              "values": "values after appends of 3, 1 and 1 positions", "lengths": "len(cache) after each append"},
      cases={"first": "the first append, one position", "keys": "five appends, two caches side by side",
             "values": "five appends, two caches side by side", "lengths": "len(cache) after each of five appends"})


# ---- forward_cached -----------------------------------------------------------------------------------------------


@torch.no_grad()
def _forward_cached_variant(model: nn.Module, idx: torch.Tensor, caches: list[KVCache], *,
                            positions: str = "continue", attend: str = "all", mask: str = "offset") -> torch.Tensor:
    """The cached forward pass spelled out, with one step done differently."""
    B, T = idx.shape
    past = len(caches[0])
    start = {"continue": past, "restart": 0, "plus_one": past + 1}[positions]
    x = model.transformer.wte(idx) + model.transformer.wpe(torch.arange(start, start + T))
    for block, cache in zip(model.transformer.h, caches):
        attn = block.attn
        C, H = x.size(-1), attn.n_head
        q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        keys, values = cache.append(k, v)
        if attend == "new":
            keys, values = k, v
        n_keys = keys.size(2)
        scores = q @ keys.transpose(-2, -1) / math.sqrt(C // H)
        if mask == "offset" or (mask == "none_after_cache" and n_keys == T):
            allowed = torch.ones(T, n_keys, dtype=torch.bool).tril(diagonal=n_keys - T)
        elif mask == "top_left":
            allowed = torch.ones(T, n_keys, dtype=torch.bool).tril()
        else:  # "none", or "none_after_cache" with a cache
            allowed = torch.ones(T, n_keys, dtype=torch.bool)
        y = scores.masked_fill(~allowed, -math.inf).softmax(dim=-1) @ values
        x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp(block.ln_2(x))
    return model.lm_head(model.transformer.ln_f(x))


FORWARD_MISTAKES = (
    Mistake("positions restart at 0 on every call", "the new tokens continue the sequence: their positions start at "
            "len(cache), `torch.arange(past, past + T)`", partial(_forward_cached_variant, positions="restart")),
    Mistake("cache position embeddings off by one", "the first new token's position is the number of tokens already "
            "cached (positions count from 0): `torch.arange(past, past + T)` with past = len(caches[0]) *before* "
            "appending", partial(_forward_cached_variant, positions="plus_one")),
    Mistake("the cache forgets to append (attends only to the new tokens)", "attend to the keys and values that "
            "cache.append returns (the old and the new), not only to this call's",
            partial(_forward_cached_variant, attend="new")),
    Mistake("causal mask aligned to the top-left (is_causal=True with a cache)", "with past cached positions, query i "
            "is position past + i and sees keys 0 … past + i: the mask is tril(diagonal=past). "
            "F.scaled_dot_product_attention(is_causal=True) aligns its mask to the top-left when there are more keys "
            "than queries", partial(_forward_cached_variant, mask="top_left")),
    Mistake("no causal mask", "several new tokens at once (the prompt) must not see the ones after them: mask as in "
            "lesson 02", partial(_forward_cached_variant, mask="none")),
    Mistake("no mask for several new tokens after a cache", "a single new token may see everything, but a chunk of T "
            "new tokens after past cached ones needs the shifted mask tril(diagonal=past)",
            partial(_forward_cached_variant, mask="none_after_cache")),
)


def _forward_parts(fn, config: GPTConfig, seed: int, batch: int, prefill: int, steps: int, chunk: int) -> Outputs:
    model = _probe_model(config, config.block_size, seed)
    idx = _prompt(batch, prefill + steps + chunk, config.vocab_size, seed + 1)
    caches = [KVCache() for _ in range(config.n_layer)]

    def call(part: torch.Tensor) -> torch.Tensor:
        what = f"forward_cached(model, idx of shape {tuple(part.shape)}, caches)"
        logits = as_tensor(fn(model, part.clone(), caches), what)
        if logits.shape != (*part.shape, config.vocab_size):
            raise ProbeError(f"{what} returned shape {tuple(logits.shape)}; expected (B, T, vocab_size) = "
                             f"{(*part.shape, config.vocab_size)}, the logits of the new tokens")
        return logits

    with torch.random.fork_rng(devices=[]):
        out = {"prefill": call(idx[:, :prefill])}
        out["steps"] = torch.cat([call(idx[:, t : t + 1]) for t in range(prefill, prefill + steps)], dim=1)
        out["chunk"] = call(idx[:, prefill + steps :])
    out["cache_lengths"] = torch.tensor([len(cache) for cache in caches], dtype=torch.int64)
    return out


def _probe_forward(fn) -> Outputs:
    return _forward_parts(fn, replace(_SMALL, block_size=16), 600, batch=2, prefill=5, steps=3, chunk=3)


def _probe_forward_hidden(fn) -> Outputs:
    return _forward_parts(fn, replace(_HIDDEN, block_size=12), 610, batch=1, prefill=3, steps=3, chunk=4)


_pair("forward_cached", "forward_cached", forward_cached, (_probe_forward, _probe_forward_hidden), (2, 1),
      "forward_cached(model, idx, caches): logits of the new tokens, reusing and extending the caches",
      FORWARD_MISTAKES,
      {"prefill": "the first call (empty caches, several tokens) is an ordinary causal forward pass",
       "steps": "one new token at a time: its position is len(cache), and it attends to every cached key",
       "chunk": "several new tokens after a cache: positions past … past + T - 1, mask tril(diagonal=past)",
       "cache_lengths": "every layer's cache must hold every position processed (append once per call)"},
      tolerance=MODEL_TOLERANCE,
      inputs={"prefill": "5 tokens, empty caches", "steps": "then 3 calls of one token",
              "chunk": "then 3 tokens at once", "cache_lengths": "len of every layer's cache at the end"},
      cases={"prefill": "a bigger model: 3 tokens, empty caches", "steps": "a bigger model: one token at a time",
             "chunk": "a bigger model: 4 tokens at once after a cache",
             "cache_lengths": "len of every layer's cache at the end"})


# ---- generate_cached ----------------------------------------------------------------------------------------------


@torch.no_grad()
def _generate_cached_variant(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None, *,
                             slide: str) -> torch.Tensor:
    """generate_cached whose window, once the caches are full, slides the wrong way: ``"never"`` (the caches grow past
    block_size) or ``"empty"`` (new caches holding the newest token only)."""
    block_size = model.config.block_size
    caches = None
    for _ in range(max_new_tokens):
        if caches is None:
            caches = [KVCache() for _ in model.transformer.h]
            logits = forward_cached(model, idx[:, -block_size:], caches)
        elif len(caches[0]) >= block_size and slide == "empty":
            caches = [KVCache() for _ in model.transformer.h]
            logits = forward_cached(model, idx[:, -1:], caches)
        else:
            logits = forward_cached(model, idx[:, -1:], caches)
        idx = torch.cat((idx, sample_next(logits[:, -1, :], temperature, top_k, top_p, generator=generator)), dim=1)
    return idx


GENERATE_CACHED_MISTAKES = (
    Mistake("the cache is not used (the whole context every step)", "after the prompt, feed only the newest token "
            "to forward_cached: the cache holds the keys and values of everything before it", generate),
    Mistake("the cache grows past block_size", "when the cache already holds block_size positions, the window must "
            "slide: start new caches and run the last block_size tokens through forward_cached (as generate crops)",
            partial(_generate_cached_variant, slide="never")),
    Mistake("the window slides by emptying the cache", "emptying the cache throws away the context: start new caches "
            "and fill them with the last block_size tokens (every position shifts when the window slides)",
            partial(_generate_cached_variant, slide="empty")),
)


def _generate_cached_parts(fn, config: GPTConfig, seed: int, batch: int) -> Outputs:
    name = "generate_cached"
    model = _probe_model(config, 8, seed)
    vocab = config.vocab_size
    out = {"short": _tokens(fn, name, model, _prompt(batch, 3, vocab, seed + 1), 5, {"temperature": 0.0})}
    # generate would embed 3 + 4 + 5 + 6 + 7 = 25 tokens; the cached loop 3 + 1 + 1 + 1 + 1
    out["uses_cache"] = flag(sum(length for length, _ in model.calls) < 25)
    out["sliding"] = _tokens(fn, name, model, _prompt(batch, 6, vocab, seed + 2), 8, {"temperature": 0.0})
    out.update(_settings_parts(fn, name, model, vocab, seed, top_k_prompt=2, top_k_new=4))
    return out


def _probe_generate_cached(fn) -> Outputs:
    return _generate_cached_parts(fn, _SMALL, 620, batch=2)


def _probe_generate_cached_hidden(fn) -> Outputs:
    out = _generate_cached_parts(fn, _HIDDEN, 630, batch=3)
    model = _probe_model(_HIDDEN, 8, 635)
    out["full_window_prompt"] = _tokens(fn, "generate_cached", model, _prompt(2, 8, _HIDDEN.vocab_size, 636), 3,
                                        {"temperature": 0.0})
    out["one_token_prompt"] = _tokens(fn, "generate_cached", model, _prompt(2, 1, _HIDDEN.vocab_size, 637), 10,
                                      {"temperature": 0.0})
    return out


_pair("generate_cached", "generate_cached", generate_cached,
      (_probe_generate_cached, _probe_generate_cached_hidden), (2, 1),
      "generate_cached(model, idx, max_new_tokens, ...): the same tokens as generate, one new token per step",
      GENERATE_CACHED_MISTAKES,
      {"uses_cache": "after the prompt, feed only the newest token: the cache remembers the rest",
       "sliding": "when the window is full, rebuild the caches from the last block_size tokens",
       "full_window_prompt": "a prompt of block_size tokens fills the window at once: the next step must slide",
       **_SETTINGS_HINTS,
       "no_grad": "generation needs no gradients: decorate generate_cached with @torch.no_grad()"},
      tolerance=EXACT,
      inputs={**_GENERATION_INPUTS, "sliding": "a prompt of 6 tokens, 8 new, temperature 0 (past block_size 8)",
              "uses_cache": "whether the model saw fewer tokens than uncached generation feeds it"},
      cases={**_GENERATION_CASES, "uses_cache": "whether the cache is used",
             "sliding": "a bigger model, past block_size", "full_window_prompt": "a prompt of block_size tokens",
             "one_token_prompt": "a one-token prompt, 10 new tokens"})
