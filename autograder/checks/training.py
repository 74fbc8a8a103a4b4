"""Checks for lesson 04, the trainer: batches, the loss, AdamW from scratch, its parameter groups, the learning-rate
schedule, gradient clipping, one training step with gradient accumulation, the evaluation, checkpoints, and the loop.

Every check has a visible half and a hidden half with other sizes and edge cases. Each mistake is the reference with
one plausible error in it; the tests make sure that on each probe no two mistakes, and no mistake and the reference,
give the same outputs. The references are the objects the answer key (``autograder/answer_key.py``) names, those the
reference GPT trains with: ``gpt_reference.data.get_batch``, ``model.cross_entropy``, ``optim.configure_optimizer``
and ``get_lr``, ``trainer.train_step``, ``estimate_loss`` and ``fit``, ``checkpoint.save_checkpoint`` and
``load_checkpoint``, and the PyTorch operations it calls, ``torch.optim.AdamW`` and ``torch.nn.utils.clip_grad_norm_``.

Models are the reference GPT at a tiny size, built inside ``fork_rng`` with a fixed seed; probes draw from private
generators and fork the global random state, so a check never moves the learner's.

Tolerances (float32, stated in the lesson): batches and parameter groups exactly; the loss atol 1e-5, rtol 1e-4;
AdamW after several steps atol 1e-6, rtol 1e-5; the learning rate atol 1e-9, rtol 1e-7 (float64 arithmetic); clipping
atol 1e-6, rtol 1e-5; a training step, the evaluation and checkpoints atol 1e-5, rtol 1e-4; the loop's 20 losses
atol 1e-4, rtol 1e-4.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from functools import partial
from typing import Any

import torch
from torch import nn

from gpt_reference.checkpoint import load_checkpoint, save_checkpoint
from gpt_reference.config import GPTConfig
from gpt_reference.data import get_batch
from gpt_reference.model import GPT, cross_entropy
from gpt_reference.optim import configure_optimizer, get_lr
from gpt_reference.trainer import estimate_loss, fit, train_step

from ..core import Check, Mistake, Outputs, ProbeError, as_tensor, register
from ..probes import flag, register_pair, seeded_randn

LESSON = "04_training"
EXACT = dict(atol=0.0, rtol=0.0)
LOSS_TOLERANCE = dict(atol=1e-5, rtol=1e-4)
ADAM_TOLERANCE = dict(atol=1e-6, rtol=1e-5)
LR_TOLERANCE = dict(atol=1e-9, rtol=1e-7)
STEP_TOLERANCE = dict(atol=1e-5, rtol=1e-4)
LOOP_TOLERANCE = dict(atol=1e-4, rtol=1e-4)


_pair = partial(register_pair, "training", LESSON, tolerance=LOSS_TOLERANCE)


def _scalar(value: Any, what: str) -> torch.Tensor:
    """A float or a 0-d tensor, as a float64 0-d tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ProbeError(f"{what} returned a tensor of shape {tuple(value.shape)}; expected one number")
        return value.detach().reshape(()).double()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    raise ProbeError(f"{what} returned {type(value).__name__}; expected a float or a 0-d tensor")


TINY = dict(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=True)


def _tiny_gpt(seed: int, **overrides: Any) -> GPT:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(GPTConfig(**{**TINY, **overrides}))


def _flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ---- 1 · get_batch --------------------------------------------------------------------------------------------------


def _get_batch_flawed(high_shift: int = 0, shift: int = 1):
    def get_batch(data, block_size, batch_size, generator, device="cpu"):
        starts = torch.randint(len(data) - block_size + high_shift, (batch_size,), generator=generator)
        data = torch.cat([data, data[-1:]])  # a window past the end would fail to stack: the variant must give outputs
        x = torch.stack([data[s : s + block_size] for s in starts])
        y = torch.stack([data[s + shift : s + shift + block_size] for s in starts])
        return x.to(device), y.to(device)
    return get_batch


GET_BATCH_MISTAKES = (
    Mistake("targets not shifted", "y[i, t] is the token that follows x[i, t]: take the window one position later",
            _get_batch_flawed(shift=0)),
    Mistake("offsets that can run past the end", "a window needs block_size + 1 tokens (inputs and the last target): "
            "the largest start is len(data) - block_size - 1, so draw from torch.randint(len(data) - block_size, ...)",
            _get_batch_flawed(high_shift=1)),
    Mistake("offsets that never reach the end", "the last token of data should be a possible target: the largest "
            "start is len(data) - block_size - 1, so draw from torch.randint(len(data) - block_size, ...)",
            _get_batch_flawed(high_shift=-1)),
)


def _batch(fn, data: torch.Tensor, block_size: int, batch_size: int, seed: int) -> Outputs:
    generator = torch.Generator().manual_seed(seed)
    result = fn(data.clone(), block_size, batch_size, generator, "cpu")
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ProbeError(f"get_batch returned {type(result).__name__}; expected a tuple (x, y)")
    x, y = as_tensor(result[0], "get_batch(...)[0]"), as_tensor(result[1], "get_batch(...)[1]")
    for name, t in (("x", x), ("y", y)):
        if t.shape != (batch_size, block_size):
            raise ProbeError(f"get_batch's {name} has shape {tuple(t.shape)}; expected (batch_size, block_size) = "
                             f"{(batch_size, block_size)}")
    return {"x": x, "y": y, "next_draw": torch.randint(1000, (4,), generator=generator)}


def _probe_get_batch(fn) -> Outputs:
    data = torch.arange(100, 160)  # token i is 100 + i: a window shows where it starts
    return _batch(fn, data, block_size=8, batch_size=6, seed=400)


def _probe_get_batch_hidden(fn) -> Outputs:
    long = {f"{k}_long": v for k, v in _batch(fn, torch.arange(3, 503), 16, 4, seed=411).items()}
    short = {f"{k}_short": v for k, v in _batch(fn, torch.arange(50, 62), 1, 32, seed=412).items()}
    return {**long, **short}


_pair("get_batch", "get_batch", get_batch, (_probe_get_batch, _probe_get_batch_hidden), (1, 1),
      "batch_size random windows: x = data[s : s + block_size], y = data[s + 1 : s + 1 + block_size], "
      "s from torch.randint(len(data) - block_size, (batch_size,), generator=generator)",
      GET_BATCH_MISTAKES, {"next_draw": "draw the offsets with one call, torch.randint(..., (batch_size,), "
                                        "generator=generator), and nothing else from the generator"}, tolerance=EXACT,
      inputs={"x": "get_batch(torch.arange(100, 160), block_size=8, batch_size=6, generator seeded 400)",
              "y": "the same call: its targets", "next_draw": "the generator's next draw after the call"},
      cases={"long": "500 tokens, block_size 16, batch_size 4", "short": "12 tokens, block_size 1, batch_size 32"})


# ---- 2 · cross_entropy ----------------------------------------------------------------------------------------------


def _cross_entropy_flawed(flaw: str):
    def cross_entropy(logits, targets, ignore_index=-1):
        logits, targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
        keep = targets != ignore_index
        if flaw == "ignore_index ignored":
            keep = torch.ones_like(keep)
        safe = torch.where(keep & (targets >= 0), targets, 0)  # a variant must not fail on a target of -1
        if flaw == "no max subtraction":
            lse = logits.exp().sum(-1).log()
        elif flaw == "log-sum-exp over the wrong axis":
            lse = torch.logsumexp(logits, dim=0).gather(0, safe.clamp_max(logits.size(0) - 1))
        else:
            lse = torch.logsumexp(logits, dim=-1)
        losses = (lse - logits.gather(1, safe[:, None])[:, 0]) * keep
        count = len(targets) if flaw == "ignored positions counted in the mean" else keep.sum()
        return losses.sum() / count
    return cross_entropy


CROSS_ENTROPY_HINTS = {
    "no max subtraction": "exp(1000) is inf in float32: subtract each row's max before exp and add it back after the log "
                          "(that is what torch.logsumexp does)",
    "log-sum-exp over the wrong axis": "each position's distribution is over the vocabulary: the last axis of logits",
    "ignore_index ignored": "positions whose target equals ignore_index take no part in the loss: leave them out of "
                            "the sum and of the count",
    "ignored positions counted in the mean": "the mean is over the positions that count: divide by how many targets "
                                             "are not ignore_index",
}
CROSS_ENTROPY_MISTAKES = tuple(Mistake(n, h, _cross_entropy_flawed(n)) for n, h in CROSS_ENTROPY_HINTS.items())


def _ce(fn, logits: torch.Tensor, targets: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    loss = as_tensor(fn(logits.clone(), targets.clone(), **kwargs), "cross_entropy(logits, targets)")
    if loss.numel() != 1:
        raise ProbeError(f"cross_entropy returned shape {tuple(loss.shape)}; expected a scalar, the mean loss")
    return loss.reshape(())


def _probe_cross_entropy(fn) -> Outputs:
    logits, targets = seeded_randn(6, 5, seed=420), torch.tensor([0, 4, 2, 2, 1, 3])
    return {"small": _ce(fn, logits, targets),
            "large_logits": _ce(fn, logits.sign() * 1000.0 + logits, targets),
            "batch_and_time": _ce(fn, seeded_randn(2, 3, 7, seed=421), torch.tensor([[1, 6, 0], [3, 3, 5]])),
            "ignore_index": _ce(fn, logits, targets, ignore_index=2)}


def _probe_cross_entropy_hidden(fn) -> Outputs:
    logits = seeded_randn(3, 4, 9, seed=430, scale=3.0)
    targets = torch.tensor([[1, -1, 8, 0], [-1, -1, 2, 5], [4, 4, -1, 7]])
    return {"padding_default": _ce(fn, logits, targets),
            "one_kept": _ce(fn, logits[:1], torch.tensor([[-1, -1, 3, -1]])),
            "huge_negative": _ce(fn, torch.tensor([[-1000.0, -1001.0, -999.0]]), torch.tensor([0])),
            "one_row": _ce(fn, seeded_randn(1, 12, seed=431), torch.tensor([11]))}


_pair("cross_entropy", "cross_entropy", cross_entropy, (_probe_cross_entropy, _probe_cross_entropy_hidden),
      (2, 1), "mean over non-ignored positions of logsumexp(logits) - logits[target], stable for large logits",
      CROSS_ENTROPY_MISTAKES,
      {"large_logits": "logits of ±1000: make it numerically stable",
       "ignore_index": "targets equal to ignore_index are left out of the sum and the count",
       "batch_and_time": "logits of shape (B, T, V): flatten to (B·T, V) and targets to (B·T,)"},
      tolerance=LOSS_TOLERANCE,
      inputs={"small": "cross_entropy(logits, targets), logits (6, 5) from randn, targets [0, 4, 2, 2, 1, 3]",
              "large_logits": "the same, logits moved to about ±1000",
              "batch_and_time": "logits of shape (2, 3, 7), targets of shape (2, 3)",
              "ignore_index": "the small case with ignore_index=2"},
      cases={"padding_default": "targets of -1 (the default ignore_index) among others",
             "one_kept": "a single target that is not ignored", "huge_negative": "logits around -1000",
             "one_row": "a single row of 12 classes"},
      forbidden=("F.cross_entropy", "F.nll_loss"))


# ---- 3 · AdamW ------------------------------------------------------------------------------------------------------


class _FlawedAdamW(torch.optim.Optimizer):
    flaw = ""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if self.flaw == "L2 penalty instead of decoupled decay":
                    grad = grad + wd * p
                else:
                    p.mul_(1 - lr * wd)
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                state["m"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["v"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                m_hat, v_hat = state["m"], state["v"]
                if self.flaw != "missing bias correction":
                    m_hat = m_hat / (1 - beta1 ** state["step"])
                    v_hat = v_hat / (1 - beta2 ** state["step"])
                denom = (v_hat + eps).sqrt() if self.flaw == "eps inside the sqrt" else v_hat.sqrt() + eps
                p.add_(-lr * m_hat / denom)


ADAMW_HINTS = {
    "L2 penalty instead of decoupled decay": "AdamW decays the weights directly, p -= lr·weight_decay·p, apart from "
                                             "the gradient; adding weight_decay·p to the gradient is Adam with L2",
    "missing bias correction": "m and v start at zero, so divide them by 1 - beta1^t and 1 - beta2^t (t counts this "
                               "parameter's steps from 1)",
    "eps inside the sqrt": "torch adds eps after the square root: m_hat / (sqrt(v_hat) + eps)",
}
ADAMW_MISTAKES = tuple(Mistake(n, h, type("FlawedAdamW", (_FlawedAdamW,), {"flaw": n})) for n, h in ADAMW_HINTS.items())


def _adam_run(cls, seed: int, steps: int, lrs: list[float], betas=(0.9, 0.999), eps=1e-8,
              decays=(0.1, 0.0), skip_grad: bool = False, grad_scale: float = 1.0) -> Outputs:
    """Two parameter groups (different weight decay), fixed gradients per step, the learning rate set per step."""
    a, b, c = seeded_randn(4, 3, seed=seed), seeded_randn(5, seed=seed + 1), seeded_randn(2, seed=seed + 2)
    params = [nn.Parameter(a.clone()), nn.Parameter(b.clone()), nn.Parameter(c.clone())]
    groups = [{"params": [params[0]], "weight_decay": decays[0]}, {"params": params[1:], "weight_decay": decays[1]}]
    with torch.random.fork_rng(devices=[]):
        optimizer = cls(groups, lr=lrs[0], betas=betas, eps=eps)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ProbeError(f"AdamW(...) gave a {type(optimizer).__name__}; expected a torch.optim.Optimizer subclass")
    out = {}
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lrs[step % len(lrs)]
        for i, p in enumerate(params):
            p.grad = None if (skip_grad and i == 2 and step % 2 == 0) else \
                seeded_randn(*p.shape, seed=seed + 10 * step + i + 3, scale=grad_scale)
        optimizer.step()
        out[f"step{step + 1}"] = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    return out


def _probe_adamw(cls) -> Outputs:
    out = _adam_run(cls, seed=440, steps=3, lrs=[0.1, 0.05, 0.02])
    out.update({f"tiny_grads_{k}": v for k, v in
                _adam_run(cls, seed=441, steps=2, lrs=[0.1], eps=1e-3, grad_scale=1e-3).items()})
    return out


def _probe_adamw_hidden(cls) -> Outputs:
    out = {f"betas_{k}": v for k, v in
           _adam_run(cls, seed=450, steps=6, lrs=[0.01, 0.03], betas=(0.8, 0.95), decays=(0.5, 0.2)).items()}
    out.update({f"no_grad_{k}": v for k, v in _adam_run(cls, seed=451, steps=4, lrs=[0.05], skip_grad=True).items()})
    return out


_pair("adamw", "AdamW", torch.optim.AdamW, (_probe_adamw, _probe_adamw_hidden), (3, 1),
      "AdamW(params, lr, betas, eps, weight_decay) as a torch.optim.Optimizer: decoupled decay, bias-corrected "
      "moments, eps after the sqrt; the same updates as torch.optim.AdamW", ADAMW_MISTAKES,
      {"tiny_grads_step1": "with tiny gradients eps matters: it goes after the square root",
       "step1": "the very first step: check the bias correction and the decay"}, tolerance=ADAM_TOLERANCE,
      inputs={**{f"step{i}": f"three parameters in two groups (weight_decay 0.1 and 0), after step {i} of 3"
                 for i in (1, 2, 3)},
              "tiny_grads": "tiny gradients (1e-3) and eps=1e-3, after each of 2 steps"},
      cases={"betas": "betas (0.8, 0.95), other decays, 6 steps", "no_grad": "a parameter without a gradient "
             "every other step"},
      forbidden=("torch.optim.AdamW", "torch.optim.Adam"))


# ---- 4 · configure_optimizer ----------------------------------------------------------------------------------------


def _groups_flawed(decayed):
    """configure_optimizer with the parameters in ``decayed(model)`` (a set of ids) decayed and the others not."""
    def configure(model, weight_decay, lr, betas):
        params = [p for p in model.parameters() if p.requires_grad]
        chosen = decayed(model)
        return torch.optim.AdamW([{"params": [p for p in params if id(p) in chosen], "weight_decay": weight_decay},
                                  {"params": [p for p in params if id(p) not in chosen], "weight_decay": 0.0}],
                                 lr=lr, betas=betas)
    return configure


CONFIGURE_MISTAKES = (
    Mistake("decaying biases and LayerNorm", "only parameters with 2 or more dimensions (matrices, embeddings) are "
            "decayed: biases and LayerNorm weights go in a group with weight_decay 0",
            _groups_flawed(lambda model: {id(p) for p in model.parameters()})),
    Mistake("embeddings not decayed (minGPT's rule)", "this course follows nanoGPT: every parameter with p.dim() >= 2 "
            "is decayed, embeddings included (minGPT decays the weights of nn.Linear modules only)",
            _groups_flawed(lambda model: {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)})),
    Mistake("groups swapped", "weight decay goes to the ≥2-D parameters, none to the 1-D ones",
            _groups_flawed(lambda model: {id(p) for p in model.parameters() if p.dim() < 2})),
)


def _configure(fn, model: nn.Module, weight_decay: float, lr: float, betas: tuple[float, float]) -> Outputs:
    optimizer = fn(model, weight_decay, lr, betas)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ProbeError(f"configure_optimizer returned {type(optimizer).__name__}; expected an optimizer")
    group_of: dict[int, dict] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) in group_of:
                raise ProbeError("a parameter appears in two parameter groups (or twice in one); give each once")
            group_of[id(p)] = group
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in group_of]
    if missing:
        raise ProbeError(f"parameters not in any group: {', '.join(missing)}")
    params = [p for _, p in model.named_parameters()]
    return {"weight_decay": torch.tensor([float(group_of[id(p)]["weight_decay"]) for p in params]),
            "lr": torch.tensor([float(group_of[id(p)]["lr"]) for p in params]),
            "betas": torch.tensor([list(group_of[id(p)]["betas"]) for p in params], dtype=torch.float64)}


def _probe_configure(fn) -> Outputs:
    return _configure(fn, _tiny_gpt(460), weight_decay=0.1, lr=3e-4, betas=(0.9, 0.95))


def _probe_configure_hidden(fn) -> Outputs:
    no_bias = _configure(fn, _tiny_gpt(461, bias=False, n_layer=2), weight_decay=0.05, lr=1e-3, betas=(0.8, 0.99))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(462)
        small = nn.Sequential(nn.Embedding(5, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    return {**{f"{k}_no_bias": v for k, v in no_bias.items()},
            **{f"{k}_sequential": v for k, v in _configure(fn, small, 0.2, 0.01, (0.9, 0.9)).items()}}


_pair("configure_optimizer", "configure_optimizer", configure_optimizer,
      (_probe_configure, _probe_configure_hidden), (1, 1),
      "AdamW with two groups: weight_decay for parameters with dim() >= 2, 0 for the rest; lr and betas as given",
      CONFIGURE_MISTAKES, {"lr": "every group uses the given lr", "betas": "every group uses the given betas"},
      tolerance=EXACT,
      inputs={"weight_decay": "each parameter's weight_decay, for a tiny GPT with weight_decay=0.1",
              "lr": "each parameter's lr (3e-4 given)", "betas": "each parameter's betas ((0.9, 0.95) given)"},
      cases={"no_bias": "a GPT with bias=False", "sequential": "an nn.Sequential of Embedding, LayerNorm, Linear"})


# ---- 5 · get_lr -----------------------------------------------------------------------------------------------------


def _get_lr_flawed(flaw: str):
    def lr_at(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
        if it < warmup_iters:
            return max_lr * it / warmup_iters if flaw == "warmup off by one" else max_lr * (it + 1) / (warmup_iters + 1)
        if it >= lr_decay_iters:
            return min_lr
        span = lr_decay_iters if flaw == "cosine that never reaches min_lr" else lr_decay_iters - warmup_iters
        coeff = 0.5 * (1.0 + math.cos(math.pi * (it - warmup_iters) / span))
        return coeff * max_lr if flaw == "cosine down to 0" else min_lr + coeff * (max_lr - min_lr)
    return lr_at


GET_LR_HINTS = {
    "warmup off by one": "step 0 should already move: the warmup is max_lr·(it + 1)/(warmup_iters + 1)",
    "cosine that never reaches min_lr": "the cosine runs over the decay phase only, from warmup_iters to "
                                        "lr_decay_iters: r = (it - warmup_iters)/(lr_decay_iters - warmup_iters)",
    "cosine down to 0": "the cosine ends at min_lr, not 0: min_lr + (max_lr - min_lr)·(1 + cos(π·r))/2",
}
GET_LR_MISTAKES = tuple(Mistake(n, h, _get_lr_flawed(n)) for n, h in GET_LR_HINTS.items())


def _schedule(fn, its, *args: float) -> torch.Tensor:
    return torch.stack([_scalar(fn(it, *args), f"get_lr({it}, ...)") for it in its])


def _probe_get_lr(fn) -> Outputs:
    return {"warmup": _schedule(fn, range(0, 5), 5, 25, 1.0, 0.1),
            "cosine": _schedule(fn, range(5, 25), 5, 25, 1.0, 0.1),
            "after": _schedule(fn, range(25, 30), 5, 25, 1.0, 0.1)}


def _probe_get_lr_hidden(fn) -> Outputs:
    return {"no_warmup": _schedule(fn, range(0, 12), 0, 10, 6e-4, 6e-5),
            "long": _schedule(fn, range(0, 2000, 37), 100, 1800, 3e-3, 3e-4),
            "min_equals_max": _schedule(fn, range(0, 8), 2, 6, 0.5, 0.5)}


_pair("get_lr", "get_lr", get_lr, (_probe_get_lr, _probe_get_lr_hidden), (2, 1),
      "linear warmup max_lr·(it+1)/(warmup_iters+1), cosine to min_lr at lr_decay_iters, min_lr after",
      GET_LR_MISTAKES, {"warmup": "the warmup: it < warmup_iters", "cosine": "the cosine phase",
                        "after": "it >= lr_decay_iters: min_lr"}, tolerance=LR_TOLERANCE,
      inputs={"warmup": "get_lr(it, 5, 25, 1.0, 0.1) for it = 0 … 4", "cosine": "the same for it = 5 … 24",
              "after": "the same for it = 25 … 29"},
      cases={"no_warmup": "warmup_iters = 0", "long": "a long schedule, every 37th step",
             "min_equals_max": "min_lr equal to max_lr"})


# ---- 6 · clip_grad_norm ---------------------------------------------------------------------------------------------


def _clip_flawed(flaw: str):
    def clip(parameters, max_norm):
        if flaw == "parameters iterated twice":
            total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))
            for p in parameters:  # a generator is empty the second time: nothing is scaled
                if p.grad is not None and total > max_norm:
                    p.grad.mul_(max_norm / (total + 1e-6))
            return total
        grads = [p.grad for p in parameters if p.grad is not None]
        total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        for g in grads:
            norm = torch.linalg.vector_norm(g) if flaw == "per-parameter clipping" else total
            if flaw == "always rescaling" or norm > max_norm:
                g.mul_(max_norm / (norm + 1e-6))
        return total
    return clip


CLIP_MISTAKES = (
    Mistake("per-parameter clipping", "the norm is global: the 2-norm of all gradients together, "
            "sqrt(sum of every gradient's squared norm), and every gradient is scaled by the same factor",
            _clip_flawed("per-parameter clipping")),
    Mistake("always rescaling", "gradients whose total norm is already below max_norm are left alone: scale only when "
            "the total norm exceeds max_norm", _clip_flawed("always rescaling")),
    Mistake("parameters iterated twice", "`parameters` may be a generator, as model.parameters() is, and a generator "
            "is empty the second time it is looped over: your norm is right but no gradient was scaled. Make it a "
            "list first, parameters = list(parameters)", _clip_flawed("parameters iterated twice")),
)


def _clip(fn, seed: int, scale: float, max_norm: float, none_grad: bool = False) -> Outputs:
    params = [nn.Parameter(torch.zeros(3, 4)), nn.Parameter(torch.zeros(5)), nn.Parameter(torch.zeros(2, 2))]
    for i, p in enumerate(params):
        if not (none_grad and i == 1):
            p.grad = seeded_randn(*p.shape, seed=seed + i, scale=scale * (i + 1))
    # a generator, as model.parameters() is
    total = _scalar(fn((p for p in params), max_norm), "clip_grad_norm(parameters, max_norm)")
    grads = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
    return {"total_norm": total.float(), "grads": grads}


def _probe_clip(fn) -> Outputs:
    return {**{f"above_{k}": v for k, v in _clip(fn, 470, 1.0, 1.0).items()},
            **{f"below_{k}": v for k, v in _clip(fn, 473, 0.01, 1.0).items()}}


def _probe_clip_hidden(fn) -> Outputs:
    return {**{f"none_grad_{k}": v for k, v in _clip(fn, 480, 2.0, 0.5, none_grad=True).items()},
            **{f"just_below_{k}": v for k, v in _clip(fn, 483, 0.1, 3.0).items()}}


_pair("clip_grad_norm", "clip_grad_norm", torch.nn.utils.clip_grad_norm_, (_probe_clip, _probe_clip_hidden), (1, 1),
      "global-norm clipping in place, returning the total norm before clipping", CLIP_MISTAKES,
      {"above_total_norm": "return the norm before clipping: the 2-norm of all gradients together",
       "below_grads": "below max_norm the gradients stay as they are"}, tolerance=ADAM_TOLERANCE,
      inputs={"above": "clip_grad_norm(three parameters (a generator), max_norm=1.0), total norm above 1",
              "below": "the same, total norm well below max_norm"},
      cases={"none_grad": "a parameter whose .grad is None", "just_below": "a total norm below max_norm"},
      forbidden=("torch.nn.utils.clip_grad_norm_",))


# ---- 7 · train_step -------------------------------------------------------------------------------------------------


def _train_step_flawed(flaw: str):
    def train_step(model, optimizer, batches, grad_clip=1.0):
        total = 0.0
        for x, y in batches:
            _, loss = model(x, y)
            (loss if flaw == "accumulation without dividing the loss" else loss / len(batches)).backward()
            total += loss.item() / len(batches)
        if grad_clip > 0 and flaw != "no clipping":
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if flaw != "no zero_grad":
            optimizer.zero_grad(set_to_none=True)
        return total
    return train_step


TRAIN_STEP_HINTS = {
    "accumulation without dividing the loss": "k micro-batches must give the gradient of one big batch, the mean "
                                              "loss: backward() on loss / k",
    "no zero_grad": "gradients add up across backward() calls: clear them (optimizer.zero_grad) once per step, after "
                    "the update",
    "no clipping": "clip the gradients' global norm to grad_clip before optimizer.step() (when grad_clip > 0)",
}
TRAIN_STEP_MISTAKES = tuple(Mistake(n, h, _train_step_flawed(n)) for n, h in TRAIN_STEP_HINTS.items())


def _token_batches(seed: int, count: int, batch_size: int, block_size: int = 8, vocab: int = 11):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randint(vocab, (batch_size, block_size), generator=generator),
             torch.randint(vocab, (batch_size, block_size), generator=generator)) for _ in range(count)]


def _steps(fn, seed: int, optimizer_cls, accum: int, grad_clip: float, steps: int = 3, **opt: Any) -> Outputs:
    model = _tiny_gpt(seed).train()
    optimizer = optimizer_cls(model.parameters(), **opt)
    losses = []
    for step in range(steps):
        batches = _token_batches(seed + step, accum, batch_size=2)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # the judge runs references under no_grad
            losses.append(_scalar(fn(model, optimizer, batches, grad_clip), "train_step(...)"))
    return {"losses": torch.stack(losses).float(), "params": _flat_params(model)}


def _probe_train_step(fn) -> Outputs:
    sgd = _steps(fn, 490, torch.optim.SGD, accum=3, grad_clip=0.0, lr=0.5)
    clipped = _steps(fn, 491, torch.optim.SGD, accum=1, grad_clip=0.05, lr=0.5)
    return {**{f"accumulate_{k}": v for k, v in sgd.items()}, **{f"clipped_{k}": v for k, v in clipped.items()}}


def _probe_train_step_hidden(fn) -> Outputs:
    adam = _steps(fn, 500, torch.optim.AdamW, accum=2, grad_clip=0.05, steps=4, lr=1e-2)
    sgd = _steps(fn, 501, torch.optim.SGD, accum=4, grad_clip=0.0, steps=2, lr=1.0)
    return {**{f"adamw_{k}": v for k, v in adam.items()}, **{f"sgd_accumulate_{k}": v for k, v in sgd.items()}}


_pair("train_step", "train_step", train_step, (_probe_train_step, _probe_train_step_hidden), (2, 1),
      "one optimizer step over micro-batches: backward of loss / k for each, clip, step, zero_grad; returns the mean "
      "loss", TRAIN_STEP_MISTAKES,
      {"accumulate_params": "with several micro-batches the update should equal one big batch's",
       "clipped_params": "with one micro-batch and a small grad_clip: check the clipping"}, tolerance=STEP_TOLERANCE,
      inputs={"accumulate": "3 steps of SGD (lr 0.5) on a tiny GPT, 3 micro-batches each, grad_clip=0",
              "clipped": "3 steps of SGD, one micro-batch, grad_clip=0.05"},
      cases={"adamw": "AdamW, 2 micro-batches, grad_clip=0.05, 4 steps",
             "sgd_accumulate": "SGD, 4 micro-batches, no clipping"})


# ---- 8 · estimate_loss ----------------------------------------------------------------------------------------------


def _estimate_flawed(flaw: str):
    def estimate_loss(model, get_batch_fn, eval_iters):
        if flaw != "eval left in train mode (dropout on)":
            model.eval()
        with torch.set_grad_enabled(flaw == "gradients tracked"):
            losses = [model(*get_batch_fn())[1].item() for _ in range(eval_iters)]
        if flaw != "not back in train mode":
            model.train()
        return sum(losses) / len(losses)
    return estimate_loss


ESTIMATE_HINTS = {
    "eval left in train mode (dropout on)": "call model.eval() first: dropout must be off while measuring",
    "not back in train mode": "call model.train() before returning, or training goes on without dropout",
    "gradients tracked": "measure under torch.no_grad(): no graph is needed, and it costs memory",
}
ESTIMATE_MISTAKES = tuple(Mistake(n, h, _estimate_flawed(n)) for n, h in ESTIMATE_HINTS.items())


def _estimate(fn, seed: int, eval_iters: int) -> Outputs:
    model = _tiny_gpt(seed, dropout=0.5).train()
    grad_enabled = []
    model.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    batches = iter(_token_batches(seed, eval_iters + 5, batch_size=3))
    calls = []

    def get_batch_fn():
        calls.append(1)
        return next(batches)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        loss = _scalar(fn(model, get_batch_fn, eval_iters), "estimate_loss(...)")
    return {"loss": loss.float(), "batches_drawn": torch.tensor(len(calls)),
            "train_mode_after": flag(model.training), "grad_enabled": flag(any(grad_enabled))}


def _probe_estimate(fn) -> Outputs:
    return _estimate(fn, 510, eval_iters=4)


def _probe_estimate_hidden(fn) -> Outputs:
    return {**{f"{k}_one": v for k, v in _estimate(fn, 511, 1).items()},
            **{f"{k}_many": v for k, v in _estimate(fn, 512, 9).items()}}


_pair("estimate_loss", "estimate_loss", estimate_loss, (_probe_estimate, _probe_estimate_hidden), (1, 1),
      "mean loss over eval_iters batches in eval mode under no_grad, then back to train mode", ESTIMATE_MISTAKES,
      {"batches_drawn": "draw exactly eval_iters batches"}, tolerance=STEP_TOLERANCE,
      inputs={"loss": "estimate_loss(tiny GPT with dropout 0.5 in train mode, get_batch_fn, eval_iters=4)",
              "batches_drawn": "how many batches it drew", "train_mode_after": "model.training afterwards",
              "grad_enabled": "whether gradients were on in the forward passes"},
      cases={"one": "eval_iters = 1", "many": "eval_iters = 9"})


# ---- 9 · checkpoints ------------------------------------------------------------------------------------------------


def _save_flawed(flaw: str):
    def save_checkpoint(path, model, optimizer, iteration):
        state = {"model": model.state_dict(), "iteration": iteration, "rng": torch.get_rng_state()}
        if flaw != "checkpoint without optimizer state":
            state["optimizer"] = optimizer.state_dict()
        torch.save(state, path)
    return save_checkpoint


def _load_flawed(flaw: str):
    def load_checkpoint(path, model, optimizer):
        checkpoint = torch.load(path, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        if flaw != "optimizer state not loaded":
            optimizer.load_state_dict(checkpoint["optimizer"])
        if flaw != "RNG state not restored":
            torch.set_rng_state(checkpoint["rng"])
        return checkpoint["iteration"]
    return load_checkpoint


SAVE_MISTAKES = (Mistake("checkpoint without optimizer state", "AdamW's moments are part of the state: save "
                         "optimizer.state_dict() under 'optimizer', or the resumed run takes different steps",
                         _save_flawed("checkpoint without optimizer state")),)
LOAD_MISTAKES = (
    Mistake("optimizer state not loaded", "load the saved moments back with optimizer.load_state_dict, or the resumed "
            "run takes different steps", _load_flawed("optimizer state not loaded")),
    Mistake("RNG state not restored", "restore the saved generator state with torch.set_rng_state, so dropout and "
            "sampling continue as if the run had never stopped", _load_flawed("RNG state not restored")),
)


def _resume(save, load, seed: int, steps_before: int, iteration: int) -> Outputs:
    """Train a few steps, save, let the RNG move on, load into a fresh model and optimizer, take one more step."""
    batches = _token_batches(seed, steps_before + 1, batch_size=2)

    def step(model, optimizer, batch):
        model(*batch)[1].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with torch.random.fork_rng(devices=[]), torch.enable_grad(), tempfile.TemporaryDirectory(prefix="ckpt-") as tmp:
        model = _tiny_gpt(seed).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for batch in batches[:-1]:
            step(model, optimizer, batch)
        torch.manual_seed(seed)
        path = Path(tmp) / "ckpt.pt"
        save(path, model, optimizer, iteration)
        if not path.exists():
            raise ProbeError("save_checkpoint(path, ...) wrote no file at path")
        torch.rand(7)  # the run goes on after saving: the RNG moves on
        fresh = _tiny_gpt(seed + 1).train()
        fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
        resumed_at = load(path, fresh, fresh_optimizer)
        if not isinstance(resumed_at, int):
            raise ProbeError(f"load_checkpoint returned {type(resumed_at).__name__}; expected the saved iteration, "
                             "an int")
        draw = torch.rand(3)
        step(fresh, fresh_optimizer, batches[-1])
    return {"iteration": torch.tensor(resumed_at), "rng_after_load": draw,
            "params_after_next_step": _flat_params(fresh)}


def _load_what_is_there(path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """The save check's reader: what a learner's file lacks shows in the resumed run, not as a crash."""
    checkpoint = torch.load(path, weights_only=True)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "iteration" not in checkpoint:
        raise ProbeError("save_checkpoint should torch.save a dict with the keys 'model', 'optimizer', 'iteration' and "
                         "'rng'")
    model.load_state_dict(checkpoint["model"])
    if "optimizer" in checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if "rng" in checkpoint:
        torch.set_rng_state(checkpoint["rng"])
    return int(checkpoint["iteration"])


def _probe_save(fn) -> Outputs:
    return _resume(fn, _load_what_is_there, 520, steps_before=2, iteration=2)


def _probe_save_hidden(fn) -> Outputs:
    return {f"{k}_later": v for k, v in _resume(fn, _load_what_is_there, 521, 4, iteration=1234).items()}


def _probe_load(fn) -> Outputs:
    return _resume(save_checkpoint, fn, 523, steps_before=2, iteration=7)


def _probe_load_hidden(fn) -> Outputs:
    return {f"{k}_first": v for k, v in _resume(save_checkpoint, fn, 522, 1, iteration=0).items()}


_RESUME_INPUTS = {"iteration": "the iteration load_checkpoint returns",
                  "rng_after_load": "torch.rand(3) right after loading",
                  "params_after_next_step": "a fresh model's parameters after loading and one more step"}
CHECKPOINT_PARTS = {"rng_after_load": "the RNG state, saved under 'rng' and restored",
                    "iteration": "the iteration, saved under 'iteration' and returned by load_checkpoint"}
_pair("save_checkpoint", "save_checkpoint", save_checkpoint, (_probe_save, _probe_save_hidden), (1, 1),
      "torch.save a dict with 'model', 'optimizer' (state dicts), 'iteration' and 'rng' (torch.get_rng_state())",
      SAVE_MISTAKES, CHECKPOINT_PARTS, tolerance=STEP_TOLERANCE, inputs=_RESUME_INPUTS,
      cases={"later": "a checkpoint at iteration 1234, after 4 steps"})
_pair("load_checkpoint", "load_checkpoint", load_checkpoint, (_probe_load, _probe_load_hidden), (1, 1),
      "load a checkpoint into model and optimizer, restore the RNG state, return the iteration; the resumed run "
      "continues exactly", LOAD_MISTAKES, CHECKPOINT_PARTS, tolerance=STEP_TOLERANCE, inputs=_RESUME_INPUTS,
      cases={"first": "a checkpoint at iteration 0, after 1 step"})


# ---- 10 · the loop --------------------------------------------------------------------------------------------------


def _fit_flawed(flaw: str):
    def fit(model, optimizer, get_batch_fn, max_iters, lr_at, grad_accum_steps=1, grad_clip=1.0, progress=False):
        losses = []
        for it in range(max_iters):
            if flaw != "learning-rate schedule not applied":
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(it + 1 if flaw == "schedule one step ahead" else it)
            batches = [get_batch_fn() for _ in range(grad_accum_steps)]
            losses.append(train_step(model, optimizer, batches, grad_clip))
        return losses
    return fit


FIT_HINTS = {
    "learning-rate schedule not applied": "before each step set every param_group's 'lr' to lr_at(it)",
    "schedule one step ahead": "step it (from 0) uses lr_at(it)",
}
FIT_MISTAKES = tuple(Mistake(n, h, _fit_flawed(n)) for n, h in FIT_HINTS.items())


def _fit(fn, seed: int, iters: int, accum: int, warmup: int) -> Outputs:
    """A tiny GPT learns to copy the previous token shifted by one (a deterministic task), with AdamW and a schedule."""
    model = _tiny_gpt(seed).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0, betas=(0.9, 0.95), weight_decay=0.1)
    generator = torch.Generator().manual_seed(seed)

    def get_batch_fn():
        start = torch.randint(11, (4, 1), generator=generator)
        seq = (start + torch.arange(9)) % 11  # counting modulo 11: each token is the previous plus one
        return seq[:, :-1], seq[:, 1:]

    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        losses = fn(model, optimizer, get_batch_fn, iters, lambda it: get_lr(it, warmup, iters, 3e-2, 3e-3),
                    accum, 1.0)
    try:
        losses = torch.stack([_scalar(v, "fit(...)[i]") for v in losses]).float()
    except TypeError:
        raise ProbeError(f"fit returned {type(losses).__name__}; expected a list of the per-step losses") from None
    if losses.shape != (iters,):
        raise ProbeError(f"fit returned {losses.numel()} losses for max_iters={iters}; expected one per step")
    return {"losses": losses}


def _probe_fit(fn) -> Outputs:
    return _fit(fn, 530, iters=20, accum=1, warmup=4)


def _probe_fit_hidden(fn) -> Outputs:
    return {"accumulate_losses": _fit(fn, 531, iters=12, accum=2, warmup=3)["losses"],
            "no_warmup_losses": _fit(fn, 532, iters=10, accum=1, warmup=0)["losses"]}


register(Check(id="training.loop", lesson=LESSON, target="fit", probe=_probe_fit, reference=fit, points=2,
               description="20 steps of your fit (your train_step, the schedule set per step) on a tiny seeded GPT: "
                           "the loss trajectory matches the reference's", mistakes=FIT_MISTAKES, **LOOP_TOLERANCE,
               inputs={"losses": "fit(tiny GPT, AdamW, counting task, max_iters=20, warmup 4)"}))
register(Check(id="training.loop.hidden", lesson=LESSON, target="fit", probe=_probe_fit_hidden,
               reference=fit, points=1, hidden=True, description="the loop with accumulation, no warmup",
               mistakes=FIT_MISTAKES, **LOOP_TOLERANCE,
               cases={"accumulate": "2 micro-batches per step, 12 steps", "no_warmup": "no warmup, 10 steps"}))
