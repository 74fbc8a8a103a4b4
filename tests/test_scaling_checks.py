"""Lesson 07's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers (a hang among them) fail with a message that helps, and checks leave the global
random state alone. The reference's own properties come first: accumulation equals one big batch, and the averaged
gradients of 2 gloo processes equal one process's on the whole batch (and DDP's: tests/test_distributed.py).

The mutants are written the way a learner would write them, independently of the variants in
``autograder/checks/scaling.py``.
"""

from __future__ import annotations

import time

import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import torch
import torch.distributed as dist

from autograder import checks_for, get_check, run_check
from autograder.checks import scaling
from autograder.core import _reference_outputs
from gpt_reference.config import GPTConfig
from gpt_reference.model import GPT, count_params
from gpt_reference.trainer import accumulate_gradients

CHECKS = checks_for("07_scaling")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("07_scaling", CHECKS)


# ---- the reference does what the lesson says ------------------------------------------------------------------------


def test_accumulating_micro_batches_gives_one_big_batchs_gradients():
    """Within the tolerance the check (and the lesson) states, and far from the nearest mistake's."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=16, dropout=0.0))
    x, y = torch.randint(11, (12, 8)), torch.randint(11, (12, 8))
    model(x, y)[1].backward()
    big = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    loss = accumulate_gradients(model, list(zip(x.split(3), y.split(3))))
    assert loss.shape == () and not loss.requires_grad
    assert torch.allclose(loss, model(x, y)[1].detach(), **_tolerance("scaling.accumulate_gradients"))
    for a, b in zip(big, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, **_tolerance("scaling.accumulate_gradients"))
        assert not torch.allclose(4 * a, b, **_tolerance("scaling.accumulate_gradients")) or a.abs().max() < 1e-6


def test_averaged_gradients_equal_one_process_on_the_whole_batch():
    outputs = _reference_outputs(get_check("scaling.average_gradients"), scaling.average_gradients)
    model = scaling._tiny_gpt(720).train()
    x, y = scaling._token_batch(720, rows=4)
    with torch.enable_grad():
        model(x, y)[1].backward()
    whole = scaling._flat_grads(model)
    for rank in ("rank0", "rank1"):
        assert torch.allclose(outputs[rank], whole, **_tolerance("scaling.average_gradients"))


def _tolerance(check_id):
    check = get_check(check_id)
    return dict(atol=check.atol, rtol=check.rtol)


# ---- correct alternatives, written the way learners write them ----------------------------------------------------


def flops_by_hand(config, seq_len=None):
    C, L, V, T0 = config.n_embd, config.n_layer, config.vocab_size, config.block_size
    b = 1 if config.bias else 0
    per_layer = 12 * C * C + b * (3 * C + C + 4 * C + C) + 2 * (C + b * C)
    n = V * C + L * per_layer + (C + b * C)
    T = T0 if seq_len is None else seq_len
    return 6 * n + 12 * L * C * T


def flops_with_count_params(config, seq_len=None):
    n = count_params(config) - config.n_embd * config.block_size
    t = seq_len if seq_len is not None else config.block_size
    return 6.0 * n + 12.0 * config.n_layer * config.n_embd * t


def mfu_step_by_step(flops_per_token, tokens_per_sec, peak_flops, world_size=1):
    flops_per_sec = flops_per_token * tokens_per_sec
    per_device = flops_per_sec / world_size
    return per_device / peak_flops


def autocast_by_table(device_type, bf16_supported):
    if device_type == "cuda":
        return {True: torch.bfloat16, False: torch.float16}[bf16_supported]
    return torch.float32


def accumulate_stacked(model, batches):
    losses = []
    for x, y in batches:
        logits, loss = model(x, y)
        (loss / len(batches)).backward()
        losses.append(loss.detach())
    return torch.stack(losses).mean()


def accumulate_running_sum(model, batches):
    total = torch.zeros(())
    for x, y in batches:
        loss = model(x, y)[1] / len(batches)
        loss.backward()
        total += loss.detach()
    return total


def average_dividing_first(model):
    n = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            p.grad.div_(n)
            dist.all_reduce(p.grad)


def average_with_avg_op(model):
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.AVG)


def average_in_one_bucket(model):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


ALTERNATIVES = {
    "flops_per_token": [flops_by_hand, flops_with_count_params], "mfu": [mfu_step_by_step],
    "autocast_dtype": [autocast_by_table], "accumulate_gradients": [accumulate_stacked, accumulate_running_sum],
    "average_gradients": [average_dividing_first, average_with_avg_op, average_in_one_bucket],
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_alternatives_pass(check_id):
    check = get_check(check_id)
    for implementation in ALTERNATIVES[check.target]:
        result = run_check(check_id, implementation)
        assert result.passed, result.message


# ---- mutants, one per catalogued mistake ---------------------------------------------------------------------------


def flops_mutant(wpe=False, wte=True, attention=True, backward=True, use_seq_len=True):
    def flops_per_token(config, seq_len=None):
        n = count_params(config)
        if not wpe:
            n -= config.block_size * config.n_embd
        if not wte:
            n -= config.vocab_size * config.n_embd
        T = seq_len if (seq_len is not None and use_seq_len) else config.block_size
        per_param, attn = (6, 12) if backward else (2, 4)
        return per_param * n + (attn * config.n_layer * config.n_embd * T if attention else 0)
    return flops_per_token


def mfu_no_world(flops_per_token, tokens_per_sec, peak_flops, world_size=1):
    return flops_per_token * tokens_per_sec / peak_flops


def mfu_times_world(flops_per_token, tokens_per_sec, peak_flops, world_size=1):
    return flops_per_token * tokens_per_sec * world_size / peak_flops


def mfu_percent(flops_per_token, tokens_per_sec, peak_flops, world_size=1):
    return round(flops_per_token * tokens_per_sec / (peak_flops * world_size) * 100, 12)


def autocast_always_fp16(device_type, bf16_supported):
    return torch.float16 if device_type == "cuda" else torch.float32


def autocast_always_bf16(device_type, bf16_supported):
    return torch.bfloat16 if device_type == "cuda" else torch.float32


def autocast_bf16_anywhere(device_type, bf16_supported):
    if bf16_supported:
        return torch.bfloat16
    return torch.float16 if device_type == "cuda" else torch.float32


def accumulate_mutant(divide=True, zero_inside=False, zero_first=False, one_backward=False, last=False, item=False,
                      keep_graph=False):
    def accumulate_gradients(model, batches):
        if zero_first:
            for p in model.parameters():
                p.grad = None
        k = len(batches)
        total, pending = 0.0, []
        for x, y in batches:
            if zero_inside:
                model.zero_grad()
            _, loss = model(x, y)
            if one_backward:
                pending.append(loss)
            else:
                (loss / k if divide else loss).backward()
            if last:
                total = loss.detach()
            elif item:
                total += loss.item() / k
            elif keep_graph:
                total = total + loss / k
            else:
                total = total + loss.detach() / k
        if one_backward:
            mean = sum(pending) / k
            mean.backward()
            return mean.detach()
        return total
    return accumulate_gradients


def average_sum_only(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def average_on_a_copy(model):
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            g = p.grad / world
            dist.all_reduce(g)


def average_first_only(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()
            return


def average_divided_twice(model):
    n = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            p.grad /= n
            dist.all_reduce(p.grad)
            p.grad /= n


MUTANTS = {
    "flops_per_token": {
        "position embeddings counted": flops_mutant(wpe=True),
        "token embeddings left out": flops_mutant(wte=False),
        "attention term left out": flops_mutant(attention=False),
        "forward pass only": flops_mutant(backward=False),
        "block_size instead of seq_len": flops_mutant(use_seq_len=False),
    },
    "mfu": {"world_size ignored": mfu_no_world, "multiplied by world_size": mfu_times_world,
            "a percentage": mfu_percent},
    "autocast_dtype": {"fp16 on every GPU": autocast_always_fp16, "bf16 on every GPU": autocast_always_bf16,
                       "half precision wherever bf16 is supported": autocast_bf16_anywhere},
    "accumulate_gradients": {
        "loss not divided by the number of micro-batches": accumulate_mutant(divide=False),
        "gradients zeroed between micro-batches": accumulate_mutant(zero_inside=True),
        "gradients cleared first": accumulate_mutant(zero_first=True),
        "one backward for all micro-batches": accumulate_mutant(one_backward=True),
        "last micro-batch's loss returned": accumulate_mutant(last=True),
        "loss read with .item()": accumulate_mutant(item=True),
        "loss returned with its graph": accumulate_mutant(keep_graph=True),
    },
    "average_gradients": {"summed, not averaged": average_sum_only, "reduced result thrown away": average_on_a_copy,
                          "only the first parameter averaged": average_first_only,
                          "divided twice": average_divided_twice},
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


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_not_implemented(check_id):
    result = run_check(check_id, not_implemented)
    assert not result.passed and result.message == "not implemented yet", result.message


def test_wrong_returns_are_explained():
    assert "expected a number" in run_check("scaling.flops_per_token", lambda c, s=None: "6N").message
    assert "expected a torch.dtype" in run_check("scaling.autocast_dtype", lambda d, b: "bfloat16").message
    msg = run_check("scaling.accumulate_gradients", lambda model, batches: None).message
    assert "expected a number" in msg
    msg = run_check("scaling.average_gradients", lambda model: dist.all_reduce(None)).message
    assert "on rank 0 of 2, calling `average_gradients` raised" in msg


def test_calling_the_reference_in_the_processes_is_not_yours():
    from gpt_reference.distributed import average_gradients

    def average_by_the_reference(model):
        average_gradients(model)

    result = run_check("scaling.average_gradients", average_by_the_reference)
    assert not result.passed and result.mistake == "not your own code", result.message
    assert "this calls" in result.message


def test_the_hidden_frozen_parameter_case_is_told_in_words():
    def average_every_parameter(model):
        for p in model.parameters():
            dist.all_reduce(p.grad)
            p.grad /= dist.get_world_size()

    assert run_check("scaling.average_gradients", average_every_parameter).passed
    result = run_check("scaling.average_gradients.hidden", average_every_parameter)
    assert not result.passed and "raised" in result.message


def test_mismatched_collectives_and_hangs_end_with_a_diagnosis(monkeypatch):
    monkeypatch.setattr(scaling, "GLOO_TIMEOUT_S", 2)
    monkeypatch.setattr(scaling, "DEADLINE_S", 6)

    def rank0_only(model):
        if dist.get_rank() == 0:
            for p in model.parameters():
                dist.all_reduce(p.grad)

    def forever(model):
        while True:
            time.sleep(0.1)

    start = time.monotonic()
    assert "waited in vain in a collective" in run_check("scaling.average_gradients", rank0_only).message
    assert "did not return within 6 s" in run_check("scaling.average_gradients", forever).message
    assert time.monotonic() - start < 30


def test_messages_hide_expected_values_and_rng_is_untouched():
    state = torch.get_rng_state()
    result = run_check("scaling.flops_per_token.hidden", lambda config, seq_len=None: 6 * count_params(config) + 1)
    assert not result.passed and "a config with bias=False" in result.message
    for value in _reference_outputs(get_check("scaling.flops_per_token.hidden"), scaling.flops_per_token).values():
        assert str(int(value)) not in result.message and f"{float(value):.3g}" not in result.message
    for c in CHECKS:
        run_check(c.id, not_implemented)
    run_check("scaling.accumulate_gradients", accumulate_stacked)
    run_check("scaling.average_gradients", average_dividing_first)
    assert torch.equal(state, torch.get_rng_state())
