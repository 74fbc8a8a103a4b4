"""Lesson 04's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and checks leave the global random state alone.

The mutants are written the way a learner would write them, independently of the variants in
``autograder/checks/training.py``.
"""

from __future__ import annotations

import math

import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
from torch.nn import functional as F

from autograder import checks_for, get_check, run_check
from autograder.core import ProbeOutcome, _reference_outputs, judge
from gpt_reference.trainer import train_step as reference_train_step

CHECKS = checks_for("04_training")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("04_training", CHECKS)


# ---- correct alternatives, written the way learners write them ----------------------------------------------------


def get_batch_unfold(data, block_size, batch_size, generator, device="cpu"):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    windows = torch.stack([data[i : i + block_size + 1] for i in ix.tolist()])
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def cross_entropy_log_softmax(logits, targets, ignore_index=-1):
    logp = F.log_softmax(logits.view(-1, logits.shape[-1]).float(), dim=-1)
    t = targets.view(-1)
    mask = t != ignore_index
    return -(logp[mask].gather(1, t[mask].unsqueeze(1))).sum() / mask.sum()


def cross_entropy_max_shift(logits, targets, ignore_index=-1):
    z = logits.reshape(-1, logits.size(-1))
    t = targets.reshape(-1)
    m = z.max(dim=-1, keepdim=True).values
    lse = (z - m).exp().sum(-1).log() + m[:, 0]
    losses = lse - z[torch.arange(len(t)), t.clamp(min=0)]
    keep = (t != ignore_index).float()
    return (losses * keep).sum() / keep.sum()


class AdamWTextbook(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    def step(self, closure=None):
        with torch.no_grad():
            for g in self.param_groups:
                b1, b2 = g["betas"]
                for p in g["params"]:
                    if p.grad is None:
                        continue
                    s = self.state[p]
                    if len(s) == 0:
                        s["t"] = 0
                        s["exp_avg"] = torch.zeros_like(p)
                        s["exp_avg_sq"] = torch.zeros_like(p)
                    s["t"] += 1
                    s["exp_avg"] = b1 * s["exp_avg"] + (1 - b1) * p.grad
                    s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1 - b2) * p.grad ** 2
                    p -= g["lr"] * g["weight_decay"] * p
                    step_size = g["lr"] / (1 - b1 ** s["t"])
                    denom = s["exp_avg_sq"].sqrt() / math.sqrt(1 - b2 ** s["t"]) + g["eps"]
                    p -= step_size * s["exp_avg"] / denom


def configure_by_names(model, weight_decay, lr, betas):
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0},
                              {"params": decay, "weight_decay": weight_decay}], lr=lr, betas=betas)


def get_lr_numpy_style(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
    if it >= lr_decay_iters:
        return min_lr
    if it < warmup_iters:
        return (it + 1) * max_lr / (warmup_iters + 1)
    progress = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + (max_lr - min_lr) * 0.5 * (1 + math.cos(progress * math.pi))


def get_lr_nanogpt(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) * (max_lr - min_lr)


def clip_with_min(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for p in params:
        p.grad.mul_(coef)
    return total


def train_step_torch(model, optimizer, batches, grad_clip=1.0):
    optimizer.zero_grad()
    losses = []
    for x, y in batches:
        _, loss = model(x, y)
        losses.append(loss.detach())
        (loss / len(batches)).backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return torch.stack(losses).mean()


@torch.no_grad()
def estimate_loss_tensor(model, get_batch_fn, eval_iters):
    was_training = model.training
    model.eval()
    losses = torch.zeros(eval_iters)
    for k in range(eval_iters):
        x, y = get_batch_fn()
        losses[k] = model(x, y)[1]
    model.train(was_training)
    return losses.mean()


def save_checkpoint_plain(path, model, optimizer, iteration):
    checkpoint = {"iteration": iteration, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
    checkpoint["rng"] = torch.random.get_rng_state()
    torch.save(checkpoint, str(path))


def load_checkpoint_plain(path, model, optimizer):
    ck = torch.load(str(path))
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    torch.random.set_rng_state(ck["rng"])
    return int(ck["iteration"])


def fit_while(model, optimizer, get_batch_fn, max_iters, lr_at, grad_accum_steps=1, grad_clip=1.0, progress=False):
    losses, it = [], 0
    while it < max_iters:
        lr = lr_at(it)
        for g in optimizer.param_groups:
            g["lr"] = lr
        losses.append(reference_train_step(model, optimizer, [get_batch_fn() for _ in range(grad_accum_steps)],
                                           grad_clip))
        it += 1
    return losses


ALTERNATIVES = {
    "get_batch": [get_batch_unfold], "cross_entropy": [cross_entropy_log_softmax, cross_entropy_max_shift],
    "AdamW": [AdamWTextbook], "configure_optimizer": [configure_by_names],
    "get_lr": [get_lr_numpy_style, get_lr_nanogpt], "clip_grad_norm": [clip_with_min],
    "train_step": [train_step_torch], "estimate_loss": [estimate_loss_tensor],
    "save_checkpoint": [save_checkpoint_plain], "load_checkpoint": [load_checkpoint_plain], "fit": [fit_while],
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_alternatives_pass(check_id):
    check = get_check(check_id)
    for implementation in ALTERNATIVES[check.target]:
        result = run_check(check_id, implementation)
        assert result.passed, result.message


THEIRS = {"AdamW": torch.optim.AdamW, "clip_grad_norm": torch.nn.utils.clip_grad_norm_}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS if c.target in THEIRS])
def test_torch_is_within_tolerance(check_id):
    """torch's AdamW and clip_grad_norm_ give outputs the checks accept (handed in as answers they are not the
    learner's own: tests/test_ownwork.py)."""
    check = get_check(check_id)
    outputs = _reference_outputs(check, THEIRS[check.target])
    assert judge(check, ProbeOutcome(outputs=outputs)).passed


def test_learner_adamw_in_configure_optimizer_passes(solution):
    assert run_check("training.configure_optimizer", solution.configure_optimizer).passed
    model = torch.nn.Linear(3, 2)
    assert isinstance(solution.configure_optimizer(model, 0.1, 1e-3, (0.9, 0.95)), solution.AdamW)


# ---- mutants, one per catalogued mistake ---------------------------------------------------------------------------


def get_batch_no_shift(data, block_size, batch_size, generator, device="cpu"):
    ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in ix])
    return x, x.clone()


def get_batch_past_end(data, block_size, batch_size, generator, device="cpu"):
    ix = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
    return (torch.stack([data[i : i + block_size] for i in ix]),
            torch.stack([data[i + 1 : i + block_size + 1] for i in ix]))


def get_batch_short_of_end(data, block_size, batch_size, generator, device="cpu"):
    ix = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    return (torch.stack([data[i : i + block_size] for i in ix]),
            torch.stack([data[i + 1 : i + block_size + 1] for i in ix]))


def ce_naive(logits, targets, ignore_index=-1):
    z, t = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    keep = t != ignore_index
    z, t = z[keep], t[keep]
    return (torch.log(torch.exp(z).sum(dim=1)) - z[torch.arange(len(t)), t]).mean()


def ce_wrong_axis(logits, targets, ignore_index=-1):
    z, t = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    keep = t != ignore_index
    lse = torch.logsumexp(z, dim=0)  # over positions instead of the vocabulary
    idx = t.clamp(0, z.shape[0] - 1)
    losses = lse[idx] - z[torch.arange(len(t)), t.clamp(min=0)]
    return losses[keep].mean()


def ce_no_ignore(logits, targets, ignore_index=-1):
    z, t = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    return -F.log_softmax(z, dim=-1).gather(1, t.clamp(min=0).unsqueeze(1)).mean()


def ce_count_all(logits, targets, ignore_index=-1):
    z, t = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    losses = torch.logsumexp(z, dim=-1) - z[torch.arange(len(t)), t.clamp(min=0)]
    return (losses * (t != ignore_index)).sum() / t.numel()


def adamw_mutant(l2=False, bias_correction=True, eps_inside=False):
    class Mutant(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad + group["weight_decay"] * p if l2 else p.grad
                    st = self.state.setdefault(p, {})
                    if not st:
                        st.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                    st["t"] += 1
                    st["m"] = b1 * st["m"] + (1 - b1) * g
                    st["v"] = b2 * st["v"] + (1 - b2) * g * g
                    m, v = st["m"], st["v"]
                    if bias_correction:
                        m, v = m / (1 - b1 ** st["t"]), v / (1 - b2 ** st["t"])
                    if not l2:
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    denom = torch.sqrt(v + group["eps"]) if eps_inside else torch.sqrt(v) + group["eps"]
                    p.sub_(group["lr"] * m / denom)
    return Mutant


def configure_all_decay(model, weight_decay, lr, betas):
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)


def configure_mingpt(model, weight_decay, lr, betas):
    decay = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    params = list(model.parameters())
    return torch.optim.AdamW([{"params": [p for p in params if id(p) in decay], "weight_decay": weight_decay},
                              {"params": [p for p in params if id(p) not in decay], "weight_decay": 0.0}],
                             lr=lr, betas=betas)


def configure_swapped(model, weight_decay, lr, betas):
    params = list(model.parameters())
    return torch.optim.AdamW([{"params": [p for p in params if p.dim() < 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.0}],
                             lr=lr, betas=betas)


def lr_warmup_from_zero(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
    if it < warmup_iters:
        return max_lr * it / warmup_iters
    return get_lr_numpy_style(it, warmup_iters, lr_decay_iters, max_lr, min_lr)


def lr_cosine_whole_run(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    return min_lr + (max_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (it - warmup_iters) / lr_decay_iters))


def lr_cosine_to_zero(it, warmup_iters, lr_decay_iters, max_lr, min_lr):
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    if it >= lr_decay_iters:
        return min_lr
    return max_lr * 0.5 * (1 + math.cos(math.pi * (it - warmup_iters) / (lr_decay_iters - warmup_iters)))


def clip_each(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
    for p in params:
        norm = p.grad.norm()
        if norm > max_norm:
            p.grad.mul_(max_norm / (norm + 1e-6))
    return total


def clip_always(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in params))
    for p in params:
        p.grad *= max_norm / (total + 1e-6)
    return total


def clip_in_two_passes(parameters, max_norm):
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in parameters if p.grad is not None))
    if total > max_norm:
        for p in parameters:  # a second loop over a generator: it is empty now
            if p.grad is not None:
                p.grad *= max_norm / (total + 1e-6)
    return total


def train_step_mutant(divide=True, zero=True, clip=True):
    def train_step(model, optimizer, batches, grad_clip=1.0):
        total = 0.0
        for x, y in batches:
            loss = model(x, y)[1]
            total += loss.item()
            (loss / len(batches) if divide else loss).backward()
        if clip and grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if zero:
            optimizer.zero_grad()
        return total / len(batches)
    return train_step


def estimate_mutant(eval_mode=True, back=True, no_grad=True):
    def estimate_loss(model, get_batch_fn, eval_iters):
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(not no_grad):
            total = sum(model(*get_batch_fn())[1].item() for _ in range(eval_iters))
        if back:
            model.train()
        return total / eval_iters
    return estimate_loss


def save_model_only(path, model, optimizer, iteration):
    torch.save({"model": model.state_dict(), "iteration": iteration, "rng": torch.get_rng_state()}, path)


def load_mutant(optimizer_too=True, rng=True):
    def load_checkpoint(path, model, optimizer):
        ck = torch.load(path)
        model.load_state_dict(ck["model"])
        if optimizer_too:
            optimizer.load_state_dict(ck["optimizer"])
        if rng:
            torch.set_rng_state(ck["rng"])
        return ck["iteration"]
    return load_checkpoint


def fit_mutant(offset=0, set_lr=True):
    def fit(model, optimizer, get_batch_fn, max_iters, lr_at, grad_accum_steps=1, grad_clip=1.0, progress=False):
        out = []
        for it in range(max_iters):
            if set_lr:
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(it + offset)
            out.append(train_step_mutant()(model, optimizer, [get_batch_fn() for _ in range(grad_accum_steps)],
                                            grad_clip))
        return out
    return fit


MUTANTS = {
    "get_batch": {
        "targets not shifted": get_batch_no_shift,
        "offsets that can run past the end": get_batch_past_end,
        "offsets that never reach the end": get_batch_short_of_end,
    },
    "cross_entropy": {
        "no max subtraction": ce_naive,
        "log-sum-exp over the wrong axis": ce_wrong_axis,
        "ignore_index ignored": ce_no_ignore,
        "ignored positions counted in the mean": ce_count_all,
    },
    "AdamW": {
        "L2 penalty instead of decoupled decay": adamw_mutant(l2=True),
        "missing bias correction": adamw_mutant(bias_correction=False),
        "eps inside the sqrt": adamw_mutant(eps_inside=True),
    },
    "configure_optimizer": {
        "decaying biases and LayerNorm": configure_all_decay,
        "embeddings not decayed (minGPT's rule)": configure_mingpt,
        "groups swapped": configure_swapped,
    },
    "get_lr": {
        "warmup off by one": lr_warmup_from_zero,
        "cosine that never reaches min_lr": lr_cosine_whole_run,
        "cosine down to 0": lr_cosine_to_zero,
    },
    "clip_grad_norm": {
        "per-parameter clipping": clip_each,
        "always rescaling": clip_always,
        "parameters iterated twice": clip_in_two_passes,
    },
    "train_step": {
        "accumulation without dividing the loss": train_step_mutant(divide=False),
        "no zero_grad": train_step_mutant(zero=False),
        "no clipping": train_step_mutant(clip=False),
    },
    "estimate_loss": {
        "eval left in train mode (dropout on)": estimate_mutant(eval_mode=False),
        "not back in train mode": estimate_mutant(back=False),
        "gradients tracked": estimate_mutant(no_grad=False),
    },
    "save_checkpoint": {
        "checkpoint without optimizer state": save_model_only,
    },
    "load_checkpoint": {
        "optimizer state not loaded": load_mutant(optimizer_too=False),
        "RNG state not restored": load_mutant(rng=False),
    },
    "fit": {
        "learning-rate schedule not applied": fit_mutant(set_lr=False),
        "schedule one step ahead": fit_mutant(offset=1),
    },
}
# A window past the end of the hidden probe's 12-token data cannot be stacked: there that mutant fails with its own
# error, as the learner's code would.
CRASHES = {("training.get_batch.hidden", "offsets that can run past the end")}
(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS, CRASHES)


# ---- other wrong answers -------------------------------------------------------------------------------------------


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_not_implemented(check_id):
    result = run_check(check_id, not_implemented)
    assert not result.passed and result.message == "not implemented yet"


def test_wrong_returns_are_explained():
    msg = run_check("training.get_batch", lambda *a, **k: torch.zeros(6, 8)).message
    assert "expected a tuple (x, y)" in msg
    msg = run_check("training.cross_entropy", lambda z, t, ignore_index=-1: torch.logsumexp(z, dim=-1)).message
    assert "expected a scalar" in msg
    msg = run_check("training.configure_optimizer", lambda m, wd, lr, b: [1, 2]).message
    assert "expected an optimizer" in msg
    msg = run_check("training.configure_optimizer", lambda m, wd, lr, b: torch.optim.AdamW(
        [p for p in m.parameters() if p.dim() >= 2], lr=lr)).message
    assert "not in any group" in msg
    msg = run_check("training.get_lr", lambda *a: "0.1").message
    assert "expected a float" in msg
    msg = run_check("training.loop", lambda *a, **k: None).message
    assert "expected a list" in msg
    msg = run_check("training.save_checkpoint", lambda *a: None).message
    assert "wrote no file" in msg


def test_messages_hide_expected_values_and_rng_is_untouched():
    state = torch.get_rng_state()
    result = run_check("training.get_lr", lambda it, w, d, mx, mn: mx * 0.5)
    assert not result.passed and "0.55" not in result.message
    for c in CHECKS:
        run_check(c.id, not_implemented)
    run_check("training.train_step", train_step_torch)
    run_check("training.load_checkpoint", load_checkpoint_plain)
    assert torch.equal(state, torch.get_rng_state())
