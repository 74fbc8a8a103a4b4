"""Checks for lesson 06, your GPT end to end: the learner's parts wired into a tokenizer, a model, a training run and
a text generator, each compared with the ``gpt_reference`` object of the same name.

* ``your_gpt.tokenizer``: ``BPETokenizer`` (lesson 01's functions in a class) trains the reference's merges, encodes
  to the reference's ids (special tokens included) and round-trips its corpus and text with multi-byte characters;
* ``your_gpt.gpt``: ``GPT`` (lesson 03's model, with lesson 05's caches inside ``forward``) loaded with the reference's
  weights gives the reference's logits and loss, and its cached logits equal the uncached ones;
* ``your_gpt.train``: ``train`` (lesson 04's parts in a loop) follows ``gpt_reference.loop.train``, which is
  ``Trainer``'s loss trajectory, step by step, for the same seed and config, at the learning rate of every step;
* ``your_gpt.generate_text``: ``generate_text`` (a tokenizer around lesson 05's ``generate_cached``) writes the text
  the reference writes, uncached generation's tokens, and uses the cache.

Every check has a visible half and a hidden half with other sizes and edge cases. Each mistake is the reference with
one plausible wiring error in it; the tests make sure that on each probe no two mistakes, and no mistake and the
reference, give the same outputs. Models are the reference GPT at a tiny size, built inside ``fork_rng`` with a fixed
seed; probes draw from private generators, so a check never moves the learner's random state.

Tolerances (float32, stated in the lesson): token ids, texts, lengths and counts exactly; logits and the loss atol
1e-4, rtol 1e-3 (the full model, as in lesson 03); the loss trajectory, and the learning rates as fractions of
``config.learning_rate``, atol 1e-4, rtol 1e-4 (as lesson 04's loop).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gpt_reference.config import GPTConfig, TrainConfig
from gpt_reference.data import batch_seed, get_batch
from gpt_reference.loop import train
from gpt_reference.model import GPT as ReferenceGPT
from gpt_reference.model import KVCache
from gpt_reference.optim import configure_optimizer, get_lr
from gpt_reference.sampling import generate, generate_cached, generate_text
from gpt_reference.tokenizer import GPT2_SPLIT_PATTERN, BPETokenizer, train_bpe
from gpt_reference.trainer import train_step

from ..core import Mistake, Outputs, ProbeError, as_tensor
from ..probes import build_module, flag, load_reference_weights, register_pair
from ..values import IDS, TEXT, ids_tensor, text_tensor

LESSON = "06_your_gpt"
EXACT = dict(atol=0.0, rtol=0.0)
MODEL_TOLERANCE = dict(atol=1e-4, rtol=1e-3)
LOOP_TOLERANCE = dict(atol=1e-4, rtol=1e-4)

_pair = partial(register_pair, "your_gpt", LESSON)


def _ids(value: Any, what: str) -> torch.Tensor:
    """A list of token ids (or a 1-D integer tensor) as an int64 tensor."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a list of int token ids")
    return ids_tensor(value)


def _text(value: Any, what: str) -> torch.Tensor:
    """A string as the tensor of its code points."""
    if not isinstance(value, str):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a str")
    return text_tensor(value)


# ---- 1 · the tokenizer -----------------------------------------------------------------------------------------------

# The opening of tiny Shakespeare (public domain), and text the probes encode but never train on.
CORPUS = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people.

All:
We know't, we know't.

First Citizen:
Let us kill him, and we'll have corn at our own price.
Is't a verdict?

All:
No more talking on't; let it be done: away, away!
"""
HELD_OUT = "Second Citizen:\nOne word, good citizens.<|endoftext|>MENENIUS:\nWhat work's, my countrymen, in hand?"
UNICODE = "Café au lait, naïve façade: 字 🙂 — the end."
ENDOFTEXT = "<|endoftext|>"


class _FlawedTokenizer(BPETokenizer):
    flaw = ""

    @classmethod
    def train(cls, text, vocab_size, special_tokens=(ENDOFTEXT,), pattern=None):
        special_tokens = list(special_tokens)
        size = vocab_size if cls.flaw == "special tokens counted in the merges" else vocab_size - len(special_tokens)
        chunks = None if cls.flaw == "trained without chunks" else GPT2_SPLIT_PATTERN
        merges = train_bpe(text, size, chunks, special_tokens=special_tokens)
        return cls(merges, {s: 256 + len(merges) + i for i, s in enumerate(special_tokens)})

    def encode(self, text, allowed_special=frozenset()):
        if self.flaw == "allowed special tokens encoded as text":
            return self.encode_ordinary(text)
        return super().encode(text, allowed_special)

    def decode(self, ids):
        if self.flaw == "decode per token":
            return "".join(self.vocab[i].decode("utf-8", errors="replace") for i in ids)
        return super().decode(ids)


TOKENIZER_HINTS = {
    "decode per token": "a token can hold part of a character (é is two bytes): join the bytes of all tokens first and "
                        "decode them once, as lesson 01's decode does",
    "special tokens counted in the merges": "vocab_size counts the special tokens too: train vocab_size - "
                                            "len(special_tokens) merges' worth, and give the special tokens the ids "
                                            "after the merges",
    "trained without chunks": "train with train_bpe_chunked (GPT-2's pre-tokenization), so that no merge spans two "
                              "chunks, as the encoder assumes",
    "allowed special tokens encoded as text": "a special token in allowed_special becomes its one id: cut the text at "
                                              "it (lesson 01's encode_with_special)",
}
TOKENIZER_MISTAKES = tuple(Mistake(n, h, type("FlawedTokenizer", (_FlawedTokenizer,), {"flaw": n}))
                           for n, h in TOKENIZER_HINTS.items())


def _tokenizer(cls, corpus: str, vocab_size: int, specials: tuple[str, ...], held_out: str, suffix: str) -> Outputs:
    if not hasattr(cls, "train"):
        raise ProbeError("BPETokenizer has no train(text, vocab_size, special_tokens) classmethod")
    tokenizer = cls.train(corpus, vocab_size, special_tokens=specials)
    if not hasattr(tokenizer, "encode") or not hasattr(tokenizer, "decode"):
        raise ProbeError(f"BPETokenizer.train returned {type(tokenizer).__name__}; expected a BPETokenizer")
    corpus_ids = _ids(tokenizer.encode(corpus), "encode(corpus)")
    unicode_ids = _ids(tokenizer.encode(UNICODE), "encode(text)")
    return {
        f"vocab_size{suffix}": torch.tensor(int(tokenizer.vocab_size)),
        f"corpus_ids{suffix}": corpus_ids,
        f"held_out_ids{suffix}": _ids(tokenizer.encode(held_out, allowed_special=set(specials)), "encode(text)"),
        f"corpus_round_trip{suffix}": flag(tokenizer.decode(corpus_ids.tolist()) == corpus),
        f"unicode_round_trip{suffix}": flag(tokenizer.decode(unicode_ids.tolist()) == UNICODE),
    }


def _probe_tokenizer(cls) -> Outputs:
    return _tokenizer(cls, CORPUS, 300, (ENDOFTEXT,), HELD_OUT, "")


def _probe_tokenizer_hidden(cls) -> Outputs:
    corpus = (CORPUS + UNICODE) * 2
    held_out = "<|pad|>" + HELD_OUT + "<|pad|>" + UNICODE
    return {**_tokenizer(cls, corpus, 320, (ENDOFTEXT, "<|pad|>"), held_out, "_two_specials"),
            **_tokenizer(cls, CORPUS[:200], 256 + 1, (ENDOFTEXT,), HELD_OUT, "_no_merges")}


_pair("tokenizer", "BPETokenizer", BPETokenizer, (_probe_tokenizer, _probe_tokenizer_hidden), (2, 1),
      "BPETokenizer.train(text, vocab_size, special_tokens), encode(text, allowed_special), decode(ids): the "
      "reference's merges and ids, and decode(encode(text)) == text", TOKENIZER_MISTAKES,
      {"unicode_round_trip": "decode(encode(text)) must give text back, é and 🙂 included"}, tolerance=EXACT,
      kinds={"corpus_ids": IDS, "held_out_ids": IDS},
      inputs={"vocab_size": "BPETokenizer.train(the opening of tiny Shakespeare, 300, ['<|endoftext|>'])",
              "corpus_ids": "encode(the training text)", "held_out_ids": "encode(a text it was not trained on)",
              "corpus_round_trip": "decode(encode(the training text)) == the training text",
              "unicode_round_trip": "decode(encode(text)) == text, for a text with é and 🙂"},
      cases={"two_specials": "two special tokens, a corpus with non-ASCII text",
             "no_merges": "vocab_size 257: no merges, one special token"})


# ---- 2 · the model ---------------------------------------------------------------------------------------------------


class _FlawedGPT(ReferenceGPT):
    """The reference GPT with a flawed forward, written out block by block (lesson 05's cached forward)."""

    flaw = ""

    def forward(self, idx, targets=None, caches=None):
        if self.flaw == "caches ignored":
            return super().forward(idx, targets)
        B, T = idx.shape
        past = 0 if caches is None or self.flaw == "positions restart at 0" else len(caches[0])
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(past, past + T))
        for i, block in enumerate(self.transformer.h):
            attn, C = block.attn, x.size(-1)
            q, k, v = attn.c_attn(block.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, attn.n_head, -1).transpose(1, 2) for t in (q, k, v))
            if caches is not None:
                k, v = caches[i].append(k, v)
            shift = 0 if self.flaw == "top-left causal mask" else k.size(2) - T
            mask = torch.ones(T, k.size(2), dtype=torch.bool).tril(diagonal=shift)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            x = x + attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
            x = x + block.mlp(block.ln_2(x))
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        if self.flaw == "targets shifted again":
            logits, targets = logits[:, :-1], targets[:, 1:]
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)


GPT_HINTS = {
    "caches ignored": "with caches, idx holds only the new tokens: they continue the sequence, attend to the cached "
                      "keys and values, and append their own to the caches",
    "positions restart at 0": "the new tokens take positions len(caches[0]) … len(caches[0]) + T - 1: read the cached "
                              "length before appending",
    "top-left causal mask": "query i is position past + i and sees keys 0 … past + i: the causal mask shifted right "
                            "by past, torch.ones(T, past + T).tril(diagonal=past) (is_causal=True aligns top-left)",
    "targets shifted again": "targets[:, t] is already the token after idx[:, t] (get_batch shifted them): compare "
                             "the logits at t with targets at t",
}
GPT_MISTAKES = tuple(Mistake(n, h, type("FlawedGPT", (_FlawedGPT,), {"flaw": n})) for n, h in GPT_HINTS.items())
GPT2_NAMES = "transformer.wte, transformer.wpe, transformer.h.<i>.ln_1 / attn.c_attn / attn.c_proj / ln_2 / mlp, " \
             "transformer.ln_f, lm_head (lesson 03)"


def _model(cls, config: GPTConfig, seed: int) -> nn.Module:
    """cls(config) with the weights of a seeded reference GPT (drawn large, so that differences show)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reference = ReferenceGPT(config)
        with torch.no_grad():
            for p in reference.parameters():
                p.add_(0.1 * torch.randn_like(p))
    model = build_module(cls, "GPT(config)", config)
    load_reference_weights(model, reference.state_dict(), GPT2_NAMES)
    return model.eval()


def _forward(model: nn.Module, what: str, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    out = model(*args, **kwargs)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ProbeError(f"{what} returned {type(out).__name__}; expected a tuple (logits, loss)")
    return as_tensor(out[0], f"{what}[0], the logits"), out[1]


def _gpt(cls, config: GPTConfig, seed: int, batch: int, chunks: list[int], suffix: str) -> Outputs:
    model = _model(cls, config, seed)
    generator = torch.Generator().manual_seed(seed)
    T = sum(chunks)
    idx = torch.randint(config.vocab_size, (batch, T), generator=generator)
    targets = torch.randint(config.vocab_size, (batch, T), generator=generator)
    targets[:, ::3] = -1  # padding: no prediction at these positions
    with torch.no_grad():
        logits, loss = _forward(model, "model(idx, targets)", idx, targets)
        _, no_loss = _forward(model, "model(idx)", idx)
        caches = [KVCache() for _ in range(config.n_layer)]
        cached, lengths, start = [], [], 0
        for size in chunks:
            step_logits, _ = _forward(model, "model(idx, caches=caches)", idx[:, start : start + size], caches=caches)
            cached.append(step_logits)
            lengths.append(len(caches[0]))
            start += size
    if loss is None:
        raise ProbeError("model(idx, targets) returned no loss; expected the mean cross-entropy")
    return {f"logits{suffix}": logits, f"loss{suffix}": as_tensor(loss, "the loss").reshape(()),
            f"no_targets_no_loss{suffix}": flag(no_loss is None),
            f"cached_logits{suffix}": torch.cat(cached, dim=1), f"cache_lengths{suffix}": torch.tensor(lengths)}


_MODEL = GPTConfig(block_size=16, vocab_size=13, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)


def _probe_gpt(cls) -> Outputs:
    return _gpt(cls, _MODEL, seed=600, batch=2, chunks=[5, 1, 1, 1, 3], suffix="")


def _probe_gpt_hidden(cls) -> Outputs:
    wide = replace(_MODEL, n_layer=3, n_head=4, n_embd=32, vocab_size=29, bias=False)
    return {**_gpt(cls, wide, seed=610, batch=3, chunks=[1, 1, 4, 2, 1, 7], suffix="_no_bias"),
            **_gpt(cls, _MODEL, seed=611, batch=1, chunks=[16], suffix="_full_window")}


_pair("gpt", "GPT", ReferenceGPT, (_probe_gpt, _probe_gpt_hidden), (2, 1),
      "GPT(config) with the reference's weights: the reference's logits and loss, and with caches the logits of the "
      "uncached model at the same positions", GPT_MISTAKES,
      {"cached_logits": "with caches, the new tokens' logits must equal the uncached model's at their positions",
       "loss": "the loss is lesson 04's cross_entropy of the logits and targets (-1: ignored)"},
      tolerance=MODEL_TOLERANCE,
      inputs={"logits": "model(idx, targets), a 2-layer GPT with the reference's weights, idx of shape (2, 11)",
              "loss": "the same call's loss (targets -1 at every third position)",
              "no_targets_no_loss": "model(idx) returns no loss",
              "cached_logits": "the same idx in chunks of 5, 1, 1, 1 and 3 tokens through caches",
              "cache_lengths": "len(caches[0]) after each chunk"},
      cases={"no_bias": "a wider GPT with bias=False, chunks of 1, 1, 4, 2, 1 and 7 tokens",
             "full_window": "one chunk of block_size tokens"})


# ---- 3 · the training loop -------------------------------------------------------------------------------------------


def _train_flawed(flaw: str):
    def train_loop(model, optimizer, train_data, config, start=0, stop=None):
        stop = config.max_iters if stop is None else stop
        block_size = model.config.block_size
        run_generator = torch.Generator().manual_seed(config.seed)
        losses = []
        steps = range(stop - start) if flaw == "start ignored" else range(start, stop)
        for step in steps:
            if flaw != "learning rate never set":
                lr_step = step + 1 if flaw == "steps counted from 1" else step
                lr = config.learning_rate if not config.decay_lr else get_lr(
                    lr_step, config.warmup_iters, config.lr_decay_iters, config.learning_rate, config.min_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
            batches = []
            for micro in range(config.grad_accum_steps):
                if flaw == "one generator for the whole run":
                    generator = run_generator
                else:
                    seed = batch_seed(config.seed, "train", step, 0 if flaw == "micro-batches share a seed" else micro)
                    generator = torch.Generator().manual_seed(seed)
                batches.append(get_batch(train_data, block_size, config.batch_size, generator))
            if flaw == "one optimizer step per micro-batch":
                micro_losses = [train_step(model, optimizer, [batch], config.grad_clip) for batch in batches]
                losses.append(sum(micro_losses) / len(micro_losses))
            else:
                losses.append(train_step(model, optimizer, batches, config.grad_clip))
        return losses
    return train_loop


TRAIN_HINTS = {
    "learning rate never set": "set every parameter group's 'lr' to the schedule's rate for this step, before the step",
    "steps counted from 1": "step s (0-based: the first step is 0) uses get_lr(s, ...), as the Trainer does",
    "one generator for the whole run": "micro-batch g of step s has its own generator, torch.Generator().manual_seed("
                                       "batch_seed(config.seed, 'train', s, g)): the batches then depend on the step "
                                       "number only, as the Trainer's do",
    "micro-batches share a seed": "each micro-batch g of a step reads other rows: seed its generator with batch_seed("
                                  "config.seed, 'train', s, g)",
    "one optimizer step per micro-batch": "the micro-batches of a step are one batch: pass them all to one "
                                          "train_step, which accumulates their gradients and steps once",
    "start ignored": "the steps are numbered start … stop - 1: a run resumed at step 7 takes step 7's learning rate "
                     "and batches",
}
TRAIN_MISTAKES = tuple(Mistake(n, h, _train_flawed(n)) for n, h in TRAIN_HINTS.items())


def _train(fn, seed: int, config: TrainConfig, chunks: list[tuple[int, int | None]], suffix: str) -> Outputs:
    """Train a tiny seeded GPT with ``fn`` in calls ``fn(..., start, stop)`` for each chunk, as a run that stops to
    evaluate (or resumes) does."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ReferenceGPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    optimizer = configure_optimizer(model, config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    lrs: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    # counting mod 11 with a random jump now and then: learnable, so the losses move
    generator = torch.Generator().manual_seed(seed)
    jumps = torch.randint(11, (400,), generator=generator) * (torch.rand(400, generator=generator) < 0.1)
    data = (torch.arange(400) + jumps.cumsum(0)) % 11
    losses: list[float] = []
    for start, stop in chunks:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # the judge runs references under no_grad
            chunk = fn(model, optimizer, data.clone(), config, start, stop)
        if not isinstance(chunk, (list, tuple)):
            raise ProbeError(f"train returned {type(chunk).__name__}; expected a list with each step's loss")
        try:
            losses += [float(loss) for loss in chunk]
        except (TypeError, ValueError):
            raise ProbeError("train's list holds something other than numbers; expected each step's loss") from None
    return {f"losses{suffix}": torch.tensor(losses, dtype=torch.float64),
            f"learning_rates{suffix}": torch.tensor(lrs, dtype=torch.float64) / config.learning_rate,
            f"optimizer_steps{suffix}": torch.tensor(len(lrs))}


_CONFIG = TrainConfig(max_iters=20, batch_size=4, grad_accum_steps=2, learning_rate=3e-3, warmup_iters=4,
                      lr_decay_iters=20, min_lr=3e-4, weight_decay=0.1, grad_clip=1.0, seed=61, device="cpu")


def _probe_train(fn) -> Outputs:
    return _train(fn, 620, _CONFIG, [(0, 12), (12, None)], "")


def _probe_train_hidden(fn) -> Outputs:
    resumed = replace(_CONFIG, grad_accum_steps=3, warmup_iters=2, lr_decay_iters=10, seed=7)
    return {**_train(fn, 630, resumed, [(7, 12)], "_resumed"),
            **_train(fn, 631, replace(_CONFIG, max_iters=6, decay_lr=False, batch_size=2), [(0, None)], "_constant_lr")}


_pair("train", "train", train, (_probe_train, _probe_train_hidden), (3, 1),
      "train(model, optimizer, train_data, config, start, stop): the Trainer's steps, learning rates and losses",
      TRAIN_MISTAKES, {"learning_rates": "before each step set every group's lr to get_lr(step, ...) (or "
                                         "config.learning_rate when config.decay_lr is False)",
                       "optimizer_steps": "one optimizer step per training step"}, tolerance=LOOP_TOLERANCE,
      inputs={"losses": "train(...) from step 0 to 12, then on from 12 to 20 (max_iters 20)",
              "learning_rates": "the learning rate at every optimizer step, as a fraction of config.learning_rate",
              "optimizer_steps": "how many optimizer steps were taken"},
      cases={"resumed": "a run resumed at step 7, with grad_accum_steps 3",
             "constant_lr": "decay_lr False: a constant learning rate"})


# ---- 4 · writing text ------------------------------------------------------------------------------------------------


def _generate_text_flawed(flaw: str):
    @torch.no_grad()
    def generate_text_flawed(model, tokenizer, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                             generator=None):
        idx = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long)
        settings = {} if flaw == "sampling settings not passed on" else dict(
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        loop = generate if flaw == "generate instead of generate_cached" else generate_cached
        ids = loop(model, idx, max_new_tokens, **settings)[0].tolist()
        if flaw == "the prompt left out":
            ids = ids[idx.size(1) :]
        if flaw == "decode per token":
            return "".join(tokenizer.decode([i]) for i in ids)
        return tokenizer.decode(ids)
    return generate_text_flawed


GENERATE_TEXT_HINTS = {
    "decode per token": "a token can hold part of a character: decode all the ids at once",
    "the prompt left out": "return the whole text, the prompt followed by what the model wrote",
    "generate instead of generate_cached": "use lesson 05's generate_cached: the same tokens, a fraction of the work",
    "sampling settings not passed on": "pass temperature, top_k, top_p and generator on to generate_cached",
}
GENERATE_TEXT_MISTAKES = tuple(Mistake(n, h, _generate_text_flawed(n)) for n, h in GENERATE_TEXT_HINTS.items())


def _writer(vocab_size: int, block_size: int, seed: int) -> tuple[nn.Module, list[int]]:
    """A tiny reference GPT with large weights (greedy choices are never near ties), and the list its token
    embedding appends the number of positions of every pass to."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ReferenceGPT(GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=16,
                                       dropout=0.0))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".ln_" not in name and "ln_f" not in name:
                    p.copy_(0.5 * torch.randn_like(p))
    positions: list[int] = []
    model.transformer.wte.register_forward_hook(lambda module, inputs, output: positions.append(inputs[0].size(-1)))
    return model.eval(), positions


_TOKENIZERS: dict[int, BPETokenizer] = {}


def _probe_tokenizer_for(vocab_size: int) -> BPETokenizer:
    if vocab_size not in _TOKENIZERS:
        _TOKENIZERS[vocab_size] = BPETokenizer.train(CORPUS, vocab_size)
    return _TOKENIZERS[vocab_size]


def _write(fn, vocab_size: int, block_size: int, seed: int, prompt: str, new: int, suffix: str,
           **settings: Any) -> Outputs:
    tokenizer = _probe_tokenizer_for(vocab_size)
    model, positions = _writer(tokenizer.vocab_size, block_size, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # a loop that draws without the generator draws the same every time
        text = fn(model, tokenizer, prompt, new, **settings)
    return {f"text{suffix}": _text(text, "generate_text(...)"),
            f"positions_embedded{suffix}": torch.tensor(sum(positions))}


def _probe_generate_text(fn) -> Outputs:
    return {**_write(fn, 300, 16, 640, "Café, my lord", 12, "_greedy", temperature=0.0),
            **_write(fn, 300, 16, 641, "All:\n", 10, "_top_k", temperature=1.0, top_k=5,
                     generator=torch.Generator().manual_seed(642))}


def _probe_generate_text_hidden(fn) -> Outputs:
    return {**_write(fn, 280, 8, 650, "First Citizen: façade", 20, "_slides", temperature=0.0),
            **_write(fn, 320, 32, 651, "é", 6, "_one_character", temperature=0.8, top_p=0.9,
                     generator=torch.Generator().manual_seed(652))}


_pair("generate_text", "generate_text", generate_text, (_probe_generate_text, _probe_generate_text_hidden), (2, 1),
      "generate_text(model, tokenizer, prompt, max_new_tokens, ...): the prompt and what generate_cached wrote, "
      "decoded", GENERATE_TEXT_MISTAKES,
      {"positions_embedded": "use generate_cached: with the cache, each step runs only the newest token"},
      tolerance=EXACT, kinds={"text": TEXT},
      inputs={"greedy": "generate_text(model, tokenizer, 'Café, my lord', 12, temperature=0.0)",
              "top_k": "generate_text(model, tokenizer, 'All:\\n', 10, temperature=1.0, top_k=5, generator seeded)"},
      cases={"slides": "a long greedy run past block_size", "one_character": "a one-character prompt, top_p 0.9"})
