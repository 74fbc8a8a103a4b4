"""Lesson 06's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and checks leave the global random state alone.

The mutants are written the way a learner wires the earlier lessons' parts, independently of the variants in
``autograder/checks/your_gpt.py``: the tokenizers on lesson 01's functions (the solution notebook's), the models as
subclasses of lesson 03's GPT (the reference's), the loops and writers on lesson 04's and 05's functions (the
reference's). The last section checks the answer key's promises: ``gpt_reference.loop.train`` is the ``Trainer``'s
trajectory, and ``generate_text`` writes the tokens of uncached generation.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import regex
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.checks import your_gpt
from autograder.loader import load_notebook
from gpt_reference.config import GPTConfig, TrainConfig
from gpt_reference.data import batch_seed, get_batch
from gpt_reference.loop import train
from gpt_reference.model import GPT as ReferenceGPT
from gpt_reference.model import KVCache
from gpt_reference.optim import configure_optimizer, get_lr
from gpt_reference.sampling import generate, generate_cached, generate_text
from gpt_reference.tokenizer import BPETokenizer as ReferenceTokenizer
from gpt_reference.trainer import Trainer, train_step

CHECKS = checks_for("06_your_gpt")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("06_your_gpt", CHECKS)
LESSON_01 = load_notebook(Path(__file__).parents[1] / "solutions" / "01_tokenization" / "01_tokenization.ipynb").module


# ---- tokenizers, on lesson 01's functions ----------------------------------------------------------------------------


def tokenizer_class(train_merges="chunked", count_specials=True, decode_joined=True, specials_allowed=True):
    """A learner's BPETokenizer; the defaults are right, each argument is one way of wiring it wrong."""

    class Tokenizer:
        def __init__(self, merges, special_tokens=None):
            self.merges, self.special_tokens = dict(merges), dict(special_tokens or {})
            self.vocab = LESSON_01.build_vocab(self.merges)
            self.vocab.update({i: s.encode("utf-8") for s, i in self.special_tokens.items()})

        @property
        def vocab_size(self):
            return len(self.vocab)

        @classmethod
        def train(cls, text, vocab_size, special_tokens=("<|endoftext|>",)):
            size = vocab_size - len(special_tokens) if count_specials else vocab_size
            trainer = LESSON_01.train_bpe_chunked if train_merges == "chunked" else LESSON_01.train_bpe
            merges = trainer(text, size)
            return cls(merges, {s: len(merges) + 256 + i for i, s in enumerate(special_tokens)})

        def encode(self, text, allowed_special=frozenset()):
            if not specials_allowed:
                return LESSON_01.encode_chunked(text, self.merges)
            return LESSON_01.encode_with_special(text, self.merges, self.special_tokens, allowed_special)

        def decode(self, ids):
            if not decode_joined:
                return "".join(LESSON_01.decode([i], self.vocab) for i in ids)
            return LESSON_01.decode(ids, self.vocab)

    return Tokenizer


class CachingTokenizer:
    """Another right answer: each distinct chunk encoded once, the special tokens cut out with a regex."""

    def __init__(self, merges, special_tokens=None):
        self.merges, self.special_tokens = merges, special_tokens or {}
        self.vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), i in merges.items():
            self.vocab[i] = self.vocab[a] + self.vocab[b]
        for s, i in self.special_tokens.items():
            self.vocab[i] = s.encode()
        self.cache = {}

    vocab_size = property(lambda self: max(self.vocab) + 1)

    @classmethod
    def train(cls, text, vocab_size, special_tokens=("<|endoftext|>",)):
        merges = LESSON_01.train_bpe_chunked(text, vocab_size - len(special_tokens))
        return cls(merges, {s: 256 + len(merges) + i for i, s in enumerate(special_tokens)})

    def encode(self, text, allowed_special=frozenset()):
        for s in self.special_tokens:
            if s in text and s not in allowed_special:
                raise ValueError(f"special token {s} not allowed")
        parts = [text]
        if allowed_special:
            parts = regex.split("(" + "|".join(map(regex.escape, allowed_special)) + ")", text)
        ids = []
        for k, part in enumerate(parts):
            if k % 2:
                ids.append(self.special_tokens[part])
                continue
            for chunk in LESSON_01.split_chunks(part):
                if chunk not in self.cache:
                    self.cache[chunk] = LESSON_01.encode(chunk, self.merges)
                ids += self.cache[chunk]
        return ids

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")


# ---- models: lesson 03's GPT with caches and a loss ------------------------------------------------------------------


def gpt_class(positions_from_past=True, shifted_mask=True, use_caches=True, shift_targets=False):
    class LearnerGPT(ReferenceGPT):
        def forward(self, idx, targets=None, caches=None):
            if caches is None or not use_caches:
                logits, _ = super().forward(idx)
            else:
                logits = self.cached(idx, caches)
            if targets is None:
                return logits, None
            if shift_targets:
                logits, targets = logits[:, :-1, :], targets[:, 1:]
            return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)

        def cached(self, idx, caches):
            B, T = idx.shape
            past = len(caches[0])
            start = past if positions_from_past else 0
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(start, start + T))
            n_head = self.config.n_head
            for block, cache in zip(self.transformer.h, caches):
                q, k, v = block.attn.c_attn(block.ln_1(x)).chunk(3, dim=-1)
                q, k, v = [t.reshape(B, T, n_head, -1).permute(0, 2, 1, 3) for t in (q, k, v)]
                k, v = cache.append(k, v)
                scores = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
                allowed = torch.ones(T, k.size(2), dtype=torch.bool).tril(past if shifted_mask else 0)
                att = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
                x = x + block.attn.c_proj((att @ v).permute(0, 2, 1, 3).reshape(B, T, -1))
                x = x + block.mlp(block.ln_2(x))
            return self.lm_head(self.transformer.ln_f(x))

    return LearnerGPT


class CachesAlwaysGPT(ReferenceGPT):
    """Another right answer: the uncached pass is the cached one, with fresh caches."""

    def forward(self, idx, targets=None, caches=None):
        if caches is None:
            caches = [KVCache() for _ in self.transformer.h]
        logits, _ = super().forward(idx, caches=caches)
        loss = None
        if targets is not None:
            keep = targets != -1
            loss = -F.log_softmax(logits[keep], dim=-1).gather(1, targets[keep][:, None]).mean()
        return logits, loss


# ---- loops, on lesson 04's parts -------------------------------------------------------------------------------------


def train_loop(set_lr=True, lr_offset=0, per_step_generators=True, micro_index=True, one_step=True,
               honour_start=True):
    def learner_train(model, optimizer, train_data, config, start=0, stop=None):
        stop = stop or config.max_iters
        run_generator = torch.Generator().manual_seed(config.seed)
        losses = []
        for i, step in enumerate(range(start, stop)):
            s = step if honour_start else i
            if set_lr:
                lr = get_lr(s + lr_offset, config.warmup_iters, config.lr_decay_iters, config.learning_rate,
                            config.min_lr) if config.decay_lr else config.learning_rate
                for group in optimizer.param_groups:
                    group["lr"] = lr
            batches = []
            for g in range(config.grad_accum_steps):
                gen = run_generator
                if per_step_generators:
                    gen = torch.Generator().manual_seed(batch_seed(config.seed, "train", s, g if micro_index else 0))
                batches.append(get_batch(train_data, model.config.block_size, config.batch_size, gen))
            if one_step:
                losses.append(train_step(model, optimizer, batches, config.grad_clip))
            else:
                losses.append(sum(train_step(model, optimizer, [b], config.grad_clip) for b in batches) / len(batches))
        return losses

    return learner_train


def train_while(model, optimizer, train_data, config, start=0, stop=None):
    """Another right answer: a while loop, the learning rate through the schedule's own formula."""
    step, stop, losses = start, config.max_iters if stop is None else stop, []
    while step < stop:
        if not config.decay_lr:
            lr = config.learning_rate
        elif step < config.warmup_iters:
            lr = config.learning_rate * (step + 1) / (config.warmup_iters + 1)
        elif step >= config.lr_decay_iters:
            lr = config.min_lr
        else:
            ratio = (step - config.warmup_iters) / (config.lr_decay_iters - config.warmup_iters)
            lr = config.min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (config.learning_rate - config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        gens = [torch.Generator().manual_seed(batch_seed(config.seed, "train", step, g))
                for g in range(config.grad_accum_steps)]
        losses.append(train_step(model, optimizer, [get_batch(train_data, model.config.block_size, config.batch_size,
                                                              g) for g in gens], config.grad_clip))
        step += 1
    return losses


# ---- writers, on lesson 05's generate_cached -------------------------------------------------------------------------


def writer(cached=True, whole_text=True, joined=True, settings=True):
    def learner_generate_text(model, tokenizer, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                              generator=None):
        prompt_ids = tokenizer.encode(prompt)
        idx = torch.tensor(prompt_ids).unsqueeze(0)
        loop = generate_cached if cached else generate
        if settings:
            out = loop(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                       generator=generator)
        else:
            out = loop(model, idx, max_new_tokens)
        ids = out[0].tolist() if whole_text else out[0, len(prompt_ids) :].tolist()
        return tokenizer.decode(ids) if joined else "".join(tokenizer.decode([i]) for i in ids)

    return learner_generate_text


def write_with_model_generate(model, tokenizer, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                              generator=None):
    """Another right answer: the reference model's own generate, which is generate_cached."""
    idx = torch.tensor([tokenizer.encode(prompt)])
    return tokenizer.decode(model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                           generator=generator)[0].tolist())


ALTERNATIVES = {
    "BPETokenizer": [tokenizer_class(), CachingTokenizer],
    "GPT": [gpt_class(), CachesAlwaysGPT],
    "train": [train_loop(), train_while],
    "generate_text": [writer(), write_with_model_generate],
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_alternatives_pass(check_id):
    check = get_check(check_id)
    for implementation in ALTERNATIVES[check.target]:
        result = run_check(check_id, implementation)
        assert result.passed, result.message


# ---- mutants, one per catalogued mistake -----------------------------------------------------------------------------


MUTANTS = {
    "BPETokenizer": {
        "decode per token": tokenizer_class(decode_joined=False),
        "special tokens counted in the merges": tokenizer_class(count_specials=False),
        "trained without chunks": tokenizer_class(train_merges="whole text"),
        "allowed special tokens encoded as text": tokenizer_class(specials_allowed=False),
    },
    "GPT": {
        "caches ignored": gpt_class(use_caches=False),
        "positions restart at 0": gpt_class(positions_from_past=False),
        "top-left causal mask": gpt_class(shifted_mask=False),
        "targets shifted again": gpt_class(shift_targets=True),
    },
    "train": {
        "learning rate never set": train_loop(set_lr=False),
        "steps counted from 1": train_loop(lr_offset=1),
        "one generator for the whole run": train_loop(per_step_generators=False),
        "micro-batches share a seed": train_loop(micro_index=False),
        "one optimizer step per micro-batch": train_loop(one_step=False),
        "start ignored": train_loop(honour_start=False),
    },
    "generate_text": {
        "decode per token": writer(joined=False),
        "the prompt left out": writer(whole_text=False),
        "generate instead of generate_cached": writer(cached=False),
        "sampling settings not passed on": writer(settings=False),
    },
}
(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS)


# ---- other wrong answers ---------------------------------------------------------------------------------------------


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


class NotImplementedTokenizer:
    @classmethod
    def train(cls, text, vocab_size, special_tokens=("<|endoftext|>",)):
        raise NotImplementedError()


class NotImplementedGPT(ReferenceGPT):
    def forward(self, idx, targets=None, caches=None):
        raise NotImplementedError()


STUBS = {"BPETokenizer": NotImplementedTokenizer, "GPT": NotImplementedGPT, "train": not_implemented,
         "generate_text": not_implemented}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_not_implemented(check_id):
    result = run_check(check_id, STUBS[get_check(check_id).target])
    assert not result.passed and result.message == "not implemented yet"


class StringIds(tokenizer_class()):
    def encode(self, text, allowed_special=frozenset()):
        return " ".join(map(str, super().encode(text, allowed_special)))


class LogitsOnly(ReferenceGPT):
    def forward(self, idx, targets=None, caches=None):
        return super().forward(idx, targets, caches)[0]


class OtherNames(ReferenceGPT):
    def __init__(self, config):
        super().__init__(config)
        self.head = self.lm_head
        del self.lm_head


def test_wrong_returns_are_explained():
    assert "expected a list of int token ids" in run_check("your_gpt.tokenizer", StringIds).message
    assert "expected a tuple (logits, loss)" in run_check("your_gpt.gpt", LogitsOnly).message
    assert "Use GPT-2's names" in run_check("your_gpt.gpt", OtherNames).message
    assert "expected a list" in run_check("your_gpt.train", lambda *a, **k: None).message
    assert "expected a str" in run_check("your_gpt.generate_text", lambda *a, **k: [1, 2, 3]).message


def test_messages_hide_expected_values_and_rng_is_untouched():
    state = torch.get_rng_state()
    result = run_check("your_gpt.tokenizer", tokenizer_class(count_specials=False))
    assert str(300) not in result.message.replace("(atol", "")
    for c in CHECKS:
        run_check(c.id, STUBS[c.target])
    for target, implementations in ALTERNATIVES.items():
        run_check(next(c.id for c in CHECKS if c.target == target), implementations[0])
    assert torch.equal(state, torch.get_rng_state())


def test_the_solution_writes_with_the_reference_tokenizer_and_its_own_model(solution):
    """The lesson's pieces fit each other: its tokenizer, model and writer together, as the run uses them."""
    tokenizer = solution.BPETokenizer.train(your_gpt.CORPUS, 300)
    torch.manual_seed(0)
    model = solution.GPT(GPTConfig(block_size=16, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2,
                                   n_embd=16)).eval()
    text = solution.generate_text(model, tokenizer, "All:\n", 20, temperature=0.0)
    idx = torch.tensor([tokenizer.encode("All:\n")])
    assert text == tokenizer.decode(generate(model, idx, 20, temperature=0.0)[0].tolist())


# ---- the answer key's promises ---------------------------------------------------------------------------------------


def test_reference_train_follows_the_trainer():
    data = torch.randint(11, (500,), generator=torch.Generator().manual_seed(0))

    class Windows:
        def get_batch(self, split, batch_size, generator, device):
            return get_batch(data, 8, batch_size, generator, device)

    def model():
        torch.manual_seed(3)
        return ReferenceGPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16, dropout=0.0))

    with tempfile.TemporaryDirectory() as out_dir:
        config = TrainConfig(out_dir=out_dir, max_iters=20, batch_size=4, grad_accum_steps=3, learning_rate=3e-3,
                             warmup_iters=3, lr_decay_iters=15, min_lr=3e-4, grad_clip=0.5, eval_iters=0,
                             log_interval=0, progress=False, device="cpu", seed=5)
        trainer_losses = []
        trainer = Trainer(model(), config, Windows())
        trainer.add_callback("on_batch_end", lambda t: trainer_losses.append(t.last_loss))
        trainer.fit()
    plain = model()
    optimizer = configure_optimizer(plain, config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    losses = train(plain, optimizer, data, config, 0, 9) + train(plain, optimizer, data, config, 9)
    assert len(losses) == 20
    assert max(abs(a - b) for a, b in zip(losses, trainer_losses)) < 1e-5


@pytest.mark.parametrize("block_size", [8, 32])
def test_reference_generate_text_is_uncached_generation(block_size):
    tokenizer = ReferenceTokenizer.train(your_gpt.CORPUS, 300)
    model, _ = your_gpt._writer(tokenizer.vocab_size, block_size, seed=0)
    for settings in (dict(temperature=0.0), dict(temperature=1.0, top_k=5)):
        text = generate_text(model, tokenizer, "Café, my lord", 20, generator=torch.Generator().manual_seed(1),
                             **settings)
        idx = torch.tensor([tokenizer.encode("Café, my lord")])
        uncached = generate(model, idx, 20, generator=torch.Generator().manual_seed(1), **settings)
        assert text == tokenizer.decode(uncached[0].tolist())
