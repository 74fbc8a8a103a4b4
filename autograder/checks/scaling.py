"""Checks for lesson 07, scaling up: the arithmetic of a run's speed, the precision it runs in, and the two ways of
making the batch larger than one forward pass holds, in time (gradient accumulation) and across processes (data
parallelism).

* ``scaling.flops_per_token``: ``flops_per_token(config, seq_len=None)``, 6 per non-embedding parameter plus the
  attention term, exactly as ``gpt_reference.model.flops_per_token`` counts;
* ``scaling.mfu``: ``mfu(flops_per_token, tokens_per_sec, peak_flops, world_size=1)``, as ``gpt_reference.metrics``;
* ``scaling.autocast_dtype``: ``autocast_dtype(device_type, bf16_supported)``, as ``gpt_reference.hardware``;
* ``scaling.accumulate_gradients``: ``accumulate_gradients(model, batches)`` on a tiny GPT leaves the gradients of
  the mean loss over all the micro-batches' rows, added to those already there, and returns that loss as a detached
  tensor, as ``gpt_reference.trainer.accumulate_gradients``;
* ``scaling.average_gradients``: ``average_gradients(model)`` run in 2 (hidden: 3) gloo processes, each after its
  backward pass on its slice of the batch, leaves every process with the gradients one process gets on the whole
  batch, as ``gpt_reference.distributed.average_gradients``.

The processes of the last check are forked (the learner's function, defined in a notebook, is not pickled), meet
through a file store in a temporary folder and talk over the loopback device, which is all the jail's network
namespace has. Gloo's own timeout stops a process whose collectives do not match the others', and a deadline stops
them all, so a learner's hanging function cannot hang the grader.

Every check has a visible half and a hidden half with other sizes and edge cases. Each mistake is the reference with
one plausible error in it; the tests make sure that on each probe no two mistakes, and no mistake and the reference,
give the same outputs. Models are the reference GPT at a tiny size, built inside ``fork_rng`` with a fixed seed.

Tolerances (stated in the lesson): FLOPs, dtypes and counts exactly; MFU rtol 1e-9 (float64 arithmetic in any
order); gradients and the loss in float32 atol 1e-6, rtol 1e-4 (the same sums added in another order).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import tempfile
import time
from datetime import timedelta
from functools import partial
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gpt_reference.config import GPTConfig
from gpt_reference.distributed import average_gradients
from gpt_reference.hardware import autocast_dtype
from gpt_reference.metrics import mfu
from gpt_reference.model import GPT, count_params, flops_per_token
from gpt_reference.trainer import accumulate_gradients

from .. import ownwork
from ..core import Mistake, Outputs, ProbeError
from ..probes import flag, register_pair, seeded_randn

LESSON = "07_scaling"
EXACT = dict(atol=0.0, rtol=0.0)
MFU_TOLERANCE = dict(atol=0.0, rtol=1e-9)
GRAD_TOLERANCE = dict(atol=1e-6, rtol=1e-4)

_pair = partial(register_pair, "scaling", LESSON)


def _number(value: Any, what: str) -> torch.Tensor:
    """An int, a float or a one-element tensor, as a float64 0-d tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().reshape(()).double()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    raise ProbeError(f"{what} returned {type(value).__name__}; expected a number")


# ---- 1 · flops_per_token --------------------------------------------------------------------------------------------


def _flops_flawed(flaw: str):
    def flops(config, seq_len=None):
        T = config.block_size if seq_len is None or flaw == "block_size instead of seq_len" else seq_len
        C, L = config.n_embd, config.n_layer
        n = count_params(config)
        if flaw != "position embeddings counted":
            n -= config.block_size * C
        if flaw == "token embeddings left out":
            n -= config.vocab_size * C
        attention = 0 if flaw == "attention term left out" else 12 * L * C * T
        total = 6 * n + attention
        return total // 3 if flaw == "forward pass only" else total
    return flops


FLOPS_HINTS = {
    "position embeddings counted": "the position embeddings are looked up, not multiplied: leave wpe's "
                                   "block_size·n_embd parameters out of N",
    "token embeddings left out": "the token embedding matrix is also lm_head, the output layer, whose matmul costs 6 "
                                 "FLOPs per weight per token: keep it in N",
    "attention term left out": "6·N counts the weights' matmuls; the attention scores and the weighted sum of the "
                               "values cost 12·n_layer·n_embd·T more per token",
    "forward pass only": "training runs the backward pass too, which costs twice the forward: 6 FLOPs per parameter, "
                         "not 2",
    "block_size instead of seq_len": "the attention term grows with the length of the sequences actually trained on: "
                                     "use seq_len when it is given, block_size only when it is None",
}
FLOPS_MISTAKES = tuple(Mistake(n, h, _flops_flawed(n)) for n, h in FLOPS_HINTS.items())

GPT2_SMALL = dict(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True)


def _flops(fn, seq_len: int | None = None, **config: Any) -> torch.Tensor:
    cfg = GPTConfig(**{**GPT2_SMALL, **config})
    call = "flops_per_token(config)" if seq_len is None else f"flops_per_token(config, {seq_len})"
    return _number(fn(cfg) if seq_len is None else fn(cfg, seq_len), call)


def _probe_flops(fn) -> Outputs:
    return {"gpt2": _flops(fn),
            "tiny": _flops(fn, block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128),
            "short_sequences": _flops(fn, 16, block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)}


def _probe_flops_hidden(fn) -> Outputs:
    return {"padded_vocab": _flops(fn, vocab_size=50304),
            "no_bias": _flops(fn, 100, block_size=128, vocab_size=500, n_layer=3, n_head=2, n_embd=48, bias=False),
            "gpt2_xl": _flops(fn, 512, n_layer=48, n_head=25, n_embd=1600)}


_pair("flops_per_token", "flops_per_token", flops_per_token, (_probe_flops, _probe_flops_hidden), (2, 1),
      "6·N + 12·n_layer·n_embd·T, N the parameters without the position embeddings, T = seq_len or block_size",
      FLOPS_MISTAKES, {"short_sequences": "T is seq_len when it is given"}, tolerance=EXACT,
      inputs={"gpt2": "flops_per_token(GPT-2 small's config: 12 layers, n_embd 768, block_size 1024, vocab 50257)",
              "tiny": "flops_per_token(4 layers, n_embd 128, block_size 64, vocab 65)",
              "short_sequences": "the same config with seq_len=16"},
      cases={"padded_vocab": "GPT-2 small with its vocabulary padded to 50304",
             "no_bias": "a config with bias=False, seq_len shorter than block_size",
             "gpt2_xl": "GPT-2 xl's size (48 layers, n_embd 1600) at seq_len 512"})


# ---- 2 · mfu --------------------------------------------------------------------------------------------------------


def _mfu_flawed(flaw: str):
    def model_flops_utilisation(flops_per_token, tokens_per_sec, peak_flops, world_size=1):
        achieved = flops_per_token * tokens_per_sec
        if flaw == "world_size ignored":
            return achieved / peak_flops
        if flaw == "multiplied by world_size":
            return achieved * world_size / peak_flops
        return 100 * achieved / (world_size * peak_flops)  # a percentage
    return model_flops_utilisation


MFU_HINTS = {
    "world_size ignored": "tokens_per_sec counts the tokens of all the processes, and each has its own device: the "
                          "peak to compare with is world_size times one device's",
    "multiplied by world_size": "tokens_per_sec already counts every process's tokens: more processes mean more "
                                "peak to divide by, not more FLOPs",
    "a percentage": "return a fraction between 0 and 1 (0.37, not 37): format it as a percentage when you print it",
}
MFU_MISTAKES = tuple(Mistake(n, h, _mfu_flawed(n)) for n, h in MFU_HINTS.items())


def _probe_mfu(fn) -> Outputs:
    return {"one_gpu": _number(fn(7.3e8, 1.2e5, 312e12), "mfu(7.3e8, 1.2e5, 312e12)"),
            "eight_gpus": _number(fn(7.3e8, 8.1e5, 989e12, 8), "mfu(7.3e8, 8.1e5, 989e12, 8)")}


def _probe_mfu_hidden(fn) -> Outputs:
    return {"keyword": _number(fn(flops_per_token=1.1e10, tokens_per_sec=2.5e4, peak_flops=989e12, world_size=4),
                               "mfu(...)"),
            "tiny_model": _number(fn(1.3e7, 3.0e4, 65e12), "mfu(...)"),
            "two_gpus": _number(fn(4.5e9, 1.0e5, 2250e12, 2), "mfu(...)")}


_pair("mfu", "mfu", mfu, (_probe_mfu, _probe_mfu_hidden), (1, 1),
      "flops_per_token · tokens_per_sec / (world_size · peak_flops), a fraction", MFU_MISTAKES,
      {"eight_gpus": "with several processes, tokens_per_sec is the whole run's and the peak is world_size devices'"},
      tolerance=MFU_TOLERANCE,
      inputs={"one_gpu": "mfu(7.3e8, 1.2e5, 312e12)", "eight_gpus": "mfu(7.3e8, 8.1e5, 989e12, 8)"},
      cases={"keyword": "arguments passed by keyword, 4 processes", "tiny_model": "a small model on one device",
             "two_gpus": "2 processes"})


# ---- 3 · autocast_dtype ---------------------------------------------------------------------------------------------

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _autocast_flawed(flaw: str):
    def choose(device_type, bf16_supported):
        if flaw == "half precision wherever bf16 is supported" and bf16_supported:
            return torch.bfloat16
        if device_type != "cuda":
            return torch.float32
        if flaw == "fp16 on every GPU":
            return torch.float16
        if flaw == "bf16 on every GPU":
            return torch.bfloat16
        return torch.bfloat16 if bf16_supported else torch.float16
    return choose


AUTOCAST_HINTS = {
    "fp16 on every GPU": "a GPU that supports bf16 should use it: bf16 has float32's range, so no loss scaling",
    "bf16 on every GPU": "older GPUs (V100, T4) have no bf16: fall back to fp16 when bf16_supported is False",
    "half precision wherever bf16 is supported": "mixed precision is for CUDA: on the CPU (and, in this course, MPS) "
                                                 "the answer is float32 whatever bf16_supported says",
}
AUTOCAST_MISTAKES = tuple(Mistake(n, h, _autocast_flawed(n)) for n, h in AUTOCAST_HINTS.items())


def _dtype(fn, device_type: str, bf16_supported: bool) -> torch.Tensor:
    value = fn(device_type, bf16_supported)
    if not isinstance(value, torch.dtype):
        raise ProbeError(f"autocast_dtype({device_type!r}, {bf16_supported}) returned {type(value).__name__}; "
                         "expected a torch.dtype such as torch.bfloat16")
    return torch.tensor(DTYPES.index(value) if value in DTYPES else len(DTYPES))


def _probe_autocast(fn) -> Outputs:
    return {"cuda_bf16": _dtype(fn, "cuda", True), "cuda_no_bf16": _dtype(fn, "cuda", False),
            "cpu": _dtype(fn, "cpu", False), "cpu_bf16": _dtype(fn, "cpu", True)}


def _probe_autocast_hidden(fn) -> Outputs:
    return {"mps_bf16": _dtype(fn, "mps", True), "mps_no_bf16": _dtype(fn, "mps", False),
            "gpu_new": _dtype(fn, "cuda", True), "gpu_old": _dtype(fn, "cuda", False)}


_pair("autocast_dtype", "autocast_dtype", autocast_dtype, (_probe_autocast, _probe_autocast_hidden), (1, 1),
      "bf16 on CUDA when supported, else fp16; float32 on every other device", AUTOCAST_MISTAKES,
      {"cuda_bf16": "a GPU with bf16", "cuda_no_bf16": "a GPU without bf16", "cpu": "the CPU: float32",
       "cpu_bf16": "the CPU: float32, whatever bf16_supported says"}, tolerance=EXACT,
      inputs={"cuda_bf16": "autocast_dtype('cuda', True)", "cuda_no_bf16": "autocast_dtype('cuda', False)",
              "cpu": "autocast_dtype('cpu', False)", "cpu_bf16": "autocast_dtype('cpu', True)"},
      cases={"mps_bf16": "Apple's MPS, bf16 supported", "mps_no_bf16": "Apple's MPS, no bf16",
             "gpu_new": "a GPU with bf16", "gpu_old": "a GPU without bf16"})


# ---- 4 · accumulate_gradients ---------------------------------------------------------------------------------------


def _accumulate_flawed(flaw: str):
    def accumulate(model, batches):
        if flaw == "gradients cleared first":
            model.zero_grad(set_to_none=True)
        losses = []
        for x, y in batches:
            if flaw == "gradients zeroed between micro-batches":
                model.zero_grad(set_to_none=True)
            _, loss = model(x, y)
            if flaw == "one backward for all micro-batches":
                losses.append(loss / len(batches))
                continue
            (loss if flaw == "loss not divided by the number of micro-batches" else loss / len(batches)).backward()
            losses.append(loss if flaw == "loss returned with its graph" else loss.detach())
        if flaw == "one backward for all micro-batches":
            total = sum(losses)
            total.backward()
            return total.detach()
        if flaw == "last micro-batch's loss returned":
            return losses[-1]
        mean = sum(losses) / len(losses)
        return mean.item() if flaw == "loss read with .item()" else mean
    return accumulate


ACCUMULATE_HINTS = {
    "loss not divided by the number of micro-batches": "the gradients add up over the micro-batches: backward() on "
                                                       "each loss divided by their number gives the mean's gradient",
    "gradients zeroed between micro-batches": "accumulating means adding: a zero_grad inside the loop throws away the "
                                              "earlier micro-batches' gradients",
    "gradients cleared first": "accumulate_gradients adds to the gradients that are there: clearing them is the "
                               "caller's job, once per optimizer step, after the step",
    "one backward for all micro-batches": "one backward() per micro-batch: then each graph is freed as soon as its "
                                          "gradients are added, and memory holds one micro-batch's activations",
    "last micro-batch's loss returned": "return the mean of all the micro-batches' losses",
    "loss read with .item()": "return the mean loss as a 0-d tensor: .item() waits for the GPU to finish (a host "
                              "sync) at every call; the trainer reads it only every log_interval steps",
    "loss returned with its graph": "add loss.detach() to the total: a sum of the losses themselves keeps every "
                                    "micro-batch's graph, and its activations, alive",
}
ACCUMULATE_MISTAKES = tuple(Mistake(n, h, _accumulate_flawed(n)) for n, h in ACCUMULATE_HINTS.items())

TINY = dict(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=True)


def _tiny_gpt(seed: int, **overrides: Any) -> GPT:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(GPTConfig(**{**TINY, **overrides}))


def _token_batch(seed: int, rows: int, block_size: int = 8, vocab: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(vocab, (rows, block_size), generator=generator),
            torch.randint(vocab, (rows, block_size), generator=generator))


def _flat_grads(model: nn.Module) -> torch.Tensor:
    """Every parameter's gradient, flattened and joined; zeros for a parameter without one."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1).float()
                      for p in model.parameters()])


def _accumulate(fn, seed: int, micro_batches: int, rows: int, existing: bool, **config: Any) -> Outputs:
    model = _tiny_gpt(seed, **config).train()
    x, y = _token_batch(seed, micro_batches * rows)
    batches = list(zip(x.split(rows), y.split(rows)))
    if existing:  # gradients of an earlier call are there already: they are added to
        for i, p in enumerate(model.parameters()):
            p.grad = seeded_randn(*p.shape, seed=seed + i, scale=0.1)
    backward_passes = []
    model.transformer.ln_f.weight.register_hook(lambda grad: backward_passes.append(1))
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # the judge runs references under no_grad
        result = fn(model, batches)
    is_tensor = isinstance(result, torch.Tensor)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"loss": _number(result, "accumulate_gradients(model, batches)").float(), "grads": _flat_grads(model),
            "returns_tensor": flag(is_tensor), "detached": flag(not (is_tensor and result.requires_grad)),
            "backward_passes": torch.tensor(len(backward_passes)), "params_unchanged": flag(torch.equal(before, after))}


def _probe_accumulate(fn) -> Outputs:
    fresh = _accumulate(fn, 700, micro_batches=3, rows=2, existing=False)
    onto = _accumulate(fn, 701, micro_batches=2, rows=3, existing=True)
    return {**{f"fresh_{k}": v for k, v in fresh.items()}, **{f"existing_{k}": v for k, v in onto.items()}}


def _probe_accumulate_hidden(fn) -> Outputs:
    one = _accumulate(fn, 710, micro_batches=1, rows=4, existing=True)
    many = _accumulate(fn, 711, micro_batches=4, rows=1, existing=False, n_layer=2, bias=False)
    return {**{f"one_{k}": v for k, v in one.items()}, **{f"many_{k}": v for k, v in many.items()}}


_pair("accumulate_gradients", "accumulate_gradients", accumulate_gradients,
      (_probe_accumulate, _probe_accumulate_hidden), (2, 1),
      "forward and backward of loss / k for each of the k micro-batches, adding to the gradients there; returns the "
      "mean loss as a detached 0-d tensor; no optimizer step", ACCUMULATE_MISTAKES,
      {"fresh_grads": "the gradients should equal one big batch's: those of the mean loss over all the rows",
       "params_unchanged": "accumulate_gradients only computes gradients: no optimizer step, no change to the weights",
       "returns_tensor": "return the mean loss as a 0-d tensor"}, tolerance=GRAD_TOLERANCE,
      inputs={"fresh": "accumulate_gradients(tiny GPT without gradients, 3 micro-batches of 2 rows)",
              "existing": "accumulate_gradients(tiny GPT whose .grad are already set, 2 micro-batches of 3 rows)"},
      cases={"one": "a single micro-batch, gradients already set", "many": "4 micro-batches of one row, 2 layers, no "
             "biases"})


# ---- 5 · average_gradients ------------------------------------------------------------------------------------------

GLOO_TIMEOUT_S = 10  # a process whose collectives the others never join gives up after this
DEADLINE_S = 30  # and the processes are stopped after this, whatever they are doing


def _average_flawed(flaw: str):
    def average(model):
        world_size = dist.get_world_size()
        for p in model.parameters():
            if p.grad is None:
                continue
            if flaw == "reduced result thrown away":
                dist.all_reduce(p.grad / world_size)  # reduces a new tensor, which nobody keeps
                continue
            dist.all_reduce(p.grad)
            if flaw != "summed, not averaged":
                p.grad /= world_size ** 2 if flaw == "divided twice" else world_size
            if flaw == "only the first parameter averaged":
                return
    return average


AVERAGE_HINTS = {
    "summed, not averaged": "all_reduce sums over the processes: divide by dist.get_world_size() to get the mean",
    "reduced result thrown away": "all_reduce works in place on the tensor it is given: hand it p.grad itself, not "
                                  "an expression, which makes a new tensor that nobody keeps",
    "only the first parameter averaged": "every parameter's gradient needs the average: the loop must not return "
                                         "before the last one",
    "divided twice": "after the sum, one division by the number of processes gives the mean",
}
AVERAGE_MISTAKES = tuple(Mistake(n, h, _average_flawed(n)) for n, h in AVERAGE_HINTS.items())


def _loopback() -> str | None:
    """The loopback device's name (``lo`` on Linux, ``lo0`` on macOS): gloo's processes talk over it, and it is the
    only device in the jail, where the host name does not resolve."""
    names = {name for _, name in socket.if_nameindex()}
    return next((name for name in ("lo", "lo0") if name in names), None)


def _process(fn, rank: int, world_size: int, store_path: str, seed: int, frozen: bool, send) -> None:
    """One process of the data-parallel run: its slice of the batch, backward, the learner's averaging; the
    gradients (or what went wrong) go back through ``send``. Forked: it ends with ``os._exit``, running none of the
    parent's exit handlers."""
    try:
        torch.set_num_threads(1)
        if "GLOO_SOCKET_IFNAME" not in os.environ and (loopback := _loopback()) is not None:
            os.environ["GLOO_SOCKET_IFNAME"] = loopback
        store = dist.FileStore(store_path, world_size)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=GLOO_TIMEOUT_S))
        model = _tiny_gpt(seed).train()
        if frozen:
            model.transformer.wpe.weight.requires_grad_(False)
        x, y = _token_batch(seed, rows=2 * world_size)
        with torch.enable_grad():
            model(x[2 * rank : 2 * rank + 2], y[2 * rank : 2 * rank + 2])[1].backward()
            fn(model)
        send.send(("grads", _flat_grads(model).tolist()))
    except NotImplementedError:
        send.send(("not implemented", ""))
    except BaseException as e:  # the learner's code may raise anything; its message goes back to the judge
        seen = ownwork.seen_in_this_process()  # the learner's code called the reference's: the watch stopped it
        send.send(("borrowed", seen) if seen is not None else ("error", f"{type(e).__name__}: {e}"))
    finally:
        send.close()
        os._exit(0)


def _data_parallel(fn, seed: int, world_size: int, frozen: bool = False) -> Outputs:
    """Run ``fn`` in ``world_size`` forked gloo processes; each process's gradients afterwards."""
    context = multiprocessing.get_context("fork")
    processes, receivers = [], []
    with tempfile.TemporaryDirectory(prefix="gloo-") as folder:
        try:
            for rank in range(world_size):
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_process, args=(fn, rank, world_size, os.path.join(folder, "store"),
                                                                 seed, frozen, send))
                process.start()
                send.close()
                processes.append(process)
                receivers.append(receive)
            deadline = time.monotonic() + DEADLINE_S
            results = []
            for rank, receive in enumerate(receivers):
                if not receive.poll(max(0.0, deadline - time.monotonic())):
                    raise ProbeError(f"average_gradients did not return within {DEADLINE_S} s on rank {rank} of "
                                     f"{world_size} processes: does it loop forever, or wait for something?")
                try:
                    results.append(receive.recv())
                except EOFError:
                    raise ProbeError(f"the process of rank {rank} ended without a result: does average_gradients "
                                     "exit the process?") from None
        finally:
            for process in processes:
                process.join(timeout=5)
                if process.is_alive():
                    process.kill()
                    process.join()
    for rank, (kind, value) in enumerate(results):
        if kind == "borrowed":
            ownwork.seen_in_another_process(value)
        if kind == "not implemented":
            raise NotImplementedError()
        if kind == "error":
            if any(word in value.lower() for word in ("gloo", "timed out", "timeout")):
                raise ProbeError(f"rank {rank} of {world_size} waited in vain in a collective: the other processes "
                                 "had called another one, or none; every process must call all_reduce on the same "
                                 "gradients, in the same order")
            raise ProbeError(f"on rank {rank} of {world_size}, calling `average_gradients` raised {value}")
    return {f"rank{rank}": torch.tensor(value) for rank, (_, value) in enumerate(results)}


def _probe_average(fn) -> Outputs:
    return _data_parallel(fn, 720, world_size=2)


def _probe_average_hidden(fn) -> Outputs:
    three = {f"three_{k}": v for k, v in _data_parallel(fn, 721, world_size=3).items()}
    frozen = {f"frozen_{k}": v for k, v in _data_parallel(fn, 722, world_size=2, frozen=True).items()}
    return {**three, **frozen}


_pair("average_gradients", "average_gradients", average_gradients, (_probe_average, _probe_average_hidden), (2, 1),
      "all_reduce (sum) of every parameter's .grad over the processes, divided by their number", AVERAGE_MISTAKES,
      {"rank1": "every process should end with the same, averaged, gradients"}, tolerance=GRAD_TOLERANCE,
      inputs={"rank0": "2 gloo processes, a tiny GPT, each with 2 rows of the batch: rank 0's gradients afterwards",
              "rank1": "rank 1's gradients afterwards"},
      cases={"three": "3 processes", "frozen": "a frozen parameter (no .grad), 2 processes"})
