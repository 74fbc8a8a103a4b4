"""The trainer: schedule, optimizer groups, overfitting, a plain loop of lesson 04's functions that takes the
trainer's steps, exact resume, atomic checkpoints, DDP, divergence, metrics, callbacks and Ctrl-C. Everything runs on
the CPU with tiny models."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.nn import functional as F

from gpt_reference.checkpoint import read_checkpoint, save_checkpoint
from gpt_reference.config import GPTConfig, TrainConfig
from gpt_reference.data import batch_seed, get_batch
from gpt_reference.hardware import compile_unavailable_reason
from gpt_reference.model import GPT
from gpt_reference.optim import configure_optimizer, get_lr
from gpt_reference.trainer import Trainer, TrainingDiverged, fit, train_step

REPO = Path(__file__).resolve().parents[1]
VOCAB, BLOCK = 16, 8


class TinyLM(nn.Module):
    """A generic (not GPT) model: embedding, dropout, LayerNorm, linear head; returns (logits, loss)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 16)
        self.drop = nn.Dropout(dropout)
        self.ln = nn.LayerNorm(16)
        self.head = nn.Linear(16, VOCAB)

    def forward(self, idx, targets=None):
        logits = self.head(torch.tanh(self.ln(self.drop(self.emb(idx)))))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))
        return logits, loss


class Windows:
    """The data contract: random windows of a fixed token sequence, drawn with the given generator only."""

    def __init__(self, n: int = 300) -> None:
        g = torch.Generator().manual_seed(0)
        self.tokens = {s: torch.randint(0, VOCAB, (n,), generator=g) for s in ("train", "val")}
        self.calls: list[tuple[str, int]] = []

    def get_batch(self, split, batch_size, generator, device):
        data = self.tokens[split]
        ix = torch.randint(0, len(data) - BLOCK - 1, (batch_size,), generator=generator)
        self.calls.append((split, int(ix[0])))
        x = torch.stack([data[i : i + BLOCK] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])
        return x.to(device), y.to(device)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and two threads fighting another process for two cores can be
    30 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    base = TrainConfig(
        out_dir=str(tmp_path / "run"),
        max_iters=6,
        batch_size=4,
        grad_accum_steps=1,
        learning_rate=1e-2,
        warmup_iters=2,
        lr_decay_iters=6,
        min_lr=1e-3,
        eval_interval=3,
        eval_iters=2,
        log_interval=1,
        device="cpu",
        progress=False,
    )
    return replace(base, **overrides)


def make_trainer(tmp_path: Path, dropout: float = 0.0, model_seed: int = 0, **overrides) -> Trainer:
    torch.manual_seed(model_seed)
    return Trainer(TinyLM(dropout), tiny_config(tmp_path, **overrides), Windows())


# ---- learning-rate schedule and optimizer ----------------------------------------------------------------------


def test_lr_schedule_exact_values():
    lr = dict(warmup_iters=10, lr_decay_iters=110, max_lr=1.0, min_lr=0.1)
    assert get_lr(0, **lr) == pytest.approx(1 / 11)  # warmup starts above zero: (it + 1) / (warmup + 1)
    assert get_lr(4, **lr) == pytest.approx(5 / 11)
    assert get_lr(9, **lr) == pytest.approx(10 / 11)  # last warmup step
    assert get_lr(10, **lr) == pytest.approx(1.0)  # the cosine starts at the peak
    assert get_lr(60, **lr) == pytest.approx(0.55)  # halfway down: (1.0 + 0.1) / 2
    assert get_lr(35, **lr) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert get_lr(110, **lr) == pytest.approx(0.1)  # min_lr at lr_decay_iters
    assert get_lr(111, **lr) == get_lr(10_000, **lr) == 0.1  # and after
    assert get_lr(0, 0, 100, 1.0, 0.1) == 1.0  # no warmup


def test_decay_lr_off_keeps_the_learning_rate(tmp_path):
    trainer = make_trainer(tmp_path, decay_lr=False, learning_rate=3e-4, max_iters=3, eval_iters=0)
    rates = []
    trainer.add_callback("on_batch_end", lambda t: rates.append(t.optimizer.param_groups[0]["lr"]))
    trainer.fit()
    assert rates == [3e-4] * 3


def test_weight_decay_only_on_matrices():
    class Tied(TinyLM):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(16, VOCAB, bias=False)
            self.out.weight = self.emb.weight  # one tensor, two names

    model = Tied()
    opt = configure_optimizer(model, weight_decay=0.1, lr=1e-3, betas=(0.9, 0.95), device_type="cpu")
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model.emb.weight), id(model.head.weight)}
    assert {id(p) for p in no_decay["params"]} == {id(model.ln.weight), id(model.ln.bias), id(model.head.bias)}
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) == 2 and len(no_decay["params"]) == 3  # the tied matrix counted once
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["lr"] == 1e-3


def test_batch_seed_is_a_fixed_formula():
    p = 1_000_003
    assert batch_seed(1337, "train", 5, 1) == (((1337 * p + 0) * p + 5) * p + 1) % 2**63
    seeds = {batch_seed(1337, s, step, m) for s in ("train", "val") for step in range(-1, 20) for m in range(8)}
    assert len(seeds) == 2 * 21 * 8
    # the same in a fresh interpreter (no hash randomisation)
    out = subprocess.run(
        [sys.executable, "-c", "from gpt_reference.data import batch_seed; print(batch_seed(1337, 'val', 7, 3))"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout
    assert int(out) == batch_seed(1337, "val", 7, 3)


# ---- learning ------------------------------------------------------------------------------------------------------


class OneBatch:
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, VOCAB, (4, BLOCK), generator=g)
        self.y = torch.randint(0, VOCAB, (4, BLOCK), generator=g)

    def get_batch(self, split, batch_size, generator, device):
        return self.x.to(device), self.y.to(device)


def test_overfits_one_batch(tmp_path):
    model_module = pytest.importorskip("gpt_reference.model")
    from gpt_reference.config import GPTConfig

    torch.manual_seed(0)
    model = model_module.GPT(GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=1, n_head=2, n_embd=32, dropout=0.0))
    config = tiny_config(
        tmp_path, max_iters=100, learning_rate=1e-2, warmup_iters=10, lr_decay_iters=100, min_lr=1e-3,
        weight_decay=0.0, eval_interval=0, eval_iters=1, log_interval=0,
    )
    trainer = Trainer(model, config, OneBatch(), flops_per_token=model.flops_per_token())
    summary = trainer.fit()
    assert summary["iterations"] == 100
    assert trainer.last_eval["train"] < 0.1, trainer.last_eval  # ln(16) = 2.77 at the start
    assert summary["mfu"] is None  # no known peak on the CPU


def test_grad_accum_equals_one_big_batch(tmp_path):
    """2 micro-batches of 4 rows with accumulation give the gradient of the mean loss over the 8 rows."""
    trainer = make_trainer(tmp_path, grad_accum_steps=2, max_iters=1, grad_clip=0.0)
    reference = TinyLM()
    reference.load_state_dict(trainer.model.state_dict())
    grads = {}
    step = trainer.optimizer.step

    def capture_then_step(*args, **kwargs):
        grads.update({name: p.grad.clone() for name, p in trainer.model.named_parameters()})
        return step(*args, **kwargs)

    trainer.optimizer.step = capture_then_step
    trainer.fit()
    # micro-batch g of step 0 is drawn with batch_seed(seed, "train", 0, g)
    batches = [trainer.data.get_batch("train", 4, torch.Generator().manual_seed(batch_seed(1337, "train", 0, g)), "cpu")
               for g in range(2)]
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    reference(x, y)[1].backward()
    assert grads
    for name, p in reference.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-6)


class TokenSequence:
    """A data object over one token sequence per split, cut with the free ``get_batch`` (as ``TokenBins`` does)."""

    def __init__(self, n: int = 400) -> None:
        g = torch.Generator().manual_seed(1)
        self.tokens = {split: torch.randint(0, VOCAB, (n,), generator=g) for split in ("train", "val")}

    def get_batch(self, split, batch_size, generator, device):
        return get_batch(self.tokens[split], BLOCK, batch_size, generator, device)


def test_a_plain_loop_of_the_free_functions_takes_the_trainers_steps(tmp_path):
    """Lesson 06's recipe: the same seed, config and data give the Trainer's per-step losses, with get_batch on
    batch_seed's generators, get_lr, configure_optimizer and train_step (or lesson 04's fit)."""
    gpt = GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    cfg = tiny_config(tmp_path, max_iters=20, grad_accum_steps=2, warmup_iters=4, lr_decay_iters=20, eval_interval=10,
                      weight_decay=0.1, grad_clip=1.0, seed=7)  # fmt: skip
    data = TokenSequence()
    torch.manual_seed(0)
    trainer = Trainer(GPT(gpt), cfg, data)
    trainer_losses = []
    trainer.add_callback("on_batch_end", lambda t: trainer_losses.append(t.last_loss))
    trainer.fit()

    def fresh_model_and_optimizer():
        torch.manual_seed(0)
        model = GPT(gpt)
        return model, configure_optimizer(model, cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2))

    def batch(step, micro):
        generator = torch.Generator().manual_seed(batch_seed(cfg.seed, "train", step, micro))
        return get_batch(data.tokens["train"], BLOCK, cfg.batch_size, generator)

    def lr_at(step):
        return get_lr(step, cfg.warmup_iters, cfg.lr_decay_iters, cfg.learning_rate, cfg.min_lr)

    model, optimizer = fresh_model_and_optimizer()
    loop_losses = []
    for step in range(cfg.max_iters):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        batches = [batch(step, micro) for micro in range(cfg.grad_accum_steps)]
        loop_losses.append(train_step(model, optimizer, batches, cfg.grad_clip))
    torch.testing.assert_close(torch.tensor(loop_losses), torch.tensor(trainer_losses), rtol=0, atol=1e-4)
    for p, q in zip(model.parameters(), trainer.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5)

    # lesson 04's fit draws micro-batch g of step s as its (s * grad_accum_steps + g)-th call of get_batch_fn
    model, optimizer = fresh_model_and_optimizer()
    calls = itertools.count()
    fit_losses = fit(model, optimizer, lambda: batch(*divmod(next(calls), cfg.grad_accum_steps)), cfg.max_iters, lr_at,
                     cfg.grad_accum_steps, cfg.grad_clip)  # fmt: skip
    torch.testing.assert_close(torch.tensor(fit_losses), torch.tensor(trainer_losses), rtol=0, atol=1e-4)


# ---- checkpoints and resume ----------------------------------------------------------------------------------------


def assert_same_training_state(a: Trainer, b: Trainer) -> None:
    for (name, pa), (_, pb) in zip(a.model.named_parameters(), b.model.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for key in sa["state"]:
        for name, value in sa["state"][key].items():
            assert torch.equal(value, sb["state"][key][name]), (key, name)


def test_resume_is_bit_identical(tmp_path):
    common = dict(dropout=0.3, max_iters=6, grad_accum_steps=2, eval_interval=2)
    straight = make_trainer(tmp_path / "a", **common)
    straight.fit()

    first = make_trainer(tmp_path / "b", **{**common, "max_iters": 3})
    first.fit()
    assert read_checkpoint(first.ckpt_path)["iteration"] == 3
    # a new process would build the model from another seed: everything must come from the checkpoint
    resumed = make_trainer(tmp_path / "b", model_seed=123, **common, resume=True)
    assert resumed.iter_num == 3
    resumed.fit()
    assert resumed.iter_num == straight.iter_num == 6
    assert_same_training_state(straight, resumed)
    assert resumed.best_val_loss == straight.best_val_loss
    # metrics of the resumed run continue the first part's, without duplicates
    iters = [r["iter"] for r in map(json.loads, resumed.metrics.path.read_text().splitlines()) if r["type"] == "train"]
    assert iters == [1, 2, 3, 4, 5, 6]


def test_checkpoint_contents(tmp_path):
    trainer = Trainer(TinyLM(), tiny_config(tmp_path, max_iters=2), Windows(), extra_state={"model": {"n": 1}})
    trainer.fit()
    ckpt = read_checkpoint(trainer.ckpt_path)  # weights_only=True: plain tensors and values only
    # lesson 04's four entries, then the trainer's own
    assert set(ckpt) == {"model", "optimizer", "iteration", "rng", "scaler", "best_val_loss", "config", "extra_state",
                         "rng_states"}
    assert ckpt["iteration"] == 2 and ckpt["config"]["max_iters"] == 2 and ckpt["extra_state"] == {"model": {"n": 1}}
    assert ckpt["rng"].dtype == torch.uint8 and set(ckpt["rng_states"][0]) >= {"python", "numpy", "torch"}
    assert set(ckpt["model"]) == set(TinyLM().state_dict())
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in ckpt["model"])


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        make_trainer(tmp_path, resume=True)


def test_checkpoint_write_killed_midway_keeps_the_previous_one(tmp_path):
    path = tmp_path / "ckpt.pt"
    script = textwrap.dedent(
        f"""
        import os, torch
        from gpt_reference.checkpoint import save_checkpoint
        model = torch.nn.Linear(10, 100)
        torch.nn.init.ones_(model.weight)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        save_checkpoint({str(path)!r}, model, optimizer, 1)
        def dying_save(obj, f, *args, **kwargs):
            f.write(b"half a checkpoint" * 1000)
            f.flush()
            os._exit(1)   # the process dies in the middle of writing
        torch.save = dying_save
        save_checkpoint({str(path)!r}, model, optimizer, 2)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    ckpt = read_checkpoint(path)
    assert ckpt["iteration"] == 1 and torch.equal(ckpt["model"]["weight"], torch.ones(100, 10))
    # the half-written temporary file is there, but not under the checkpoint's name; the next save removes it
    assert [p.name for p in tmp_path.iterdir() if p.name != "ckpt.pt"] != []
    model = nn.Linear(10, 100)
    save_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
    assert read_checkpoint(path)["iteration"] == 3


# ---- DDP -----------------------------------------------------------------------------------------------------------


def test_ddp_two_processes_match_one_process_with_grad_accum(tmp_path):
    spec = importlib.util.spec_from_file_location("ddp_worker", Path(__file__).with_name("ddp_worker.py"))
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    single = worker.run(str(tmp_path / "single"), grad_accum_steps=2)

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(worker.__file__)), str(tmp_path / "ddp"), "2"]
    # a session of its own, so that a hang takes torchrun's workers down with it (a plain timeout kills torchrun alone)
    run = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # fmt: skip
    try:
        output, _ = run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        pytest.fail("torchrun's two processes did not finish in 120 s:\n" + run.communicate()[0][-3000:])
    assert run.returncode == 0, output[-6000:]

    a = read_checkpoint(tmp_path / "single" / "ckpt.pt")
    b = read_checkpoint(tmp_path / "ddp" / "ckpt.pt")
    assert a["iteration"] == b["iteration"] == 5
    assert len(b["rng_states"]) == 2  # both processes' RNG states are kept
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=0, atol=1e-6)
    assert b["best_val_loss"] == pytest.approx(single["best_val_loss"], abs=1e-6)


# ---- failures, metrics, callbacks ----------------------------------------------------------------------------------


class DivergesAt(TinyLM):
    """Returns a NaN loss from the forward pass that belongs to optimizer step ``step`` (grad_accum 1)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.train_calls = step, 0

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        if self.training:
            self.train_calls += 1
            if self.train_calls == self.step + 1:
                loss = loss * float("nan")
        return logits, loss


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(tmp_path, always_save_checkpoint=True, eval_interval=2, log_interval=5)
    trainer = Trainer(DivergesAt(step=3), config, Windows())
    with pytest.raises(TrainingDiverged, match=r"at iteration 3 \(learning rate") as info:
        trainer.fit()
    assert "learning_rate" in str(info.value) and "grad_clip" in str(info.value)
    # the losses are read before the evaluation of iteration 4, which would have saved the diverged weights
    assert trainer.iter_num == 4 and "seen after iteration 4" in str(info.value)
    assert read_checkpoint(trainer.ckpt_path)["iteration"] == 2  # saved at the evaluation of iteration 2
    assert all(torch.isfinite(p).all() for p in read_checkpoint(trainer.ckpt_path)["model"].values())


def test_the_losses_are_read_every_log_interval_steps(tmp_path):
    torch.manual_seed(0)
    trainer = Trainer(DivergesAt(step=0), tiny_config(tmp_path, max_iters=8, eval_interval=0, log_interval=3),
                      Windows())  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"at iteration 0 \(learning rate"):
        trainer.fit()
    assert trainer.iter_num == 3  # steps 1 and 2 went on without waiting for step 0's loss
    assert not trainer.ckpt_path.exists()

    trainer = Trainer(DivergesAt(step=0), tiny_config(tmp_path / "quiet", max_iters=8, eval_interval=0,
                                                      log_interval=0), Windows())  # fmt: skip
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    assert trainer.iter_num == 1  # without log lines, after every step


def test_train_step_raises_before_the_step(tmp_path):
    torch.manual_seed(0)
    model = DivergesAt(step=0)
    optimizer = configure_optimizer(model, 0.1, 1e-2, (0.9, 0.99))
    before = [p.detach().clone() for p in model.parameters()]
    batch = Windows().get_batch("train", 4, torch.Generator().manual_seed(0), "cpu")
    with pytest.raises(TrainingDiverged, match="the loss became nan"):
        train_step(model, optimizer, [batch])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())


def test_compile_without_a_compiler_says_why_and_runs_eagerly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    trainer = make_trainer(tmp_path, compile=True, max_iters=2)
    assert f"compile: off, no C++ compiler ({tmp_path / 'no-such-compiler'})" in capsys.readouterr().err
    assert trainer._train_model is trainer.model and trainer.compiled is False
    assert trainer.fit()["iterations"] == 2


def test_compiled_on_the_cpu_training_repeats_bit_for_bit_and_agrees_with_eager(tmp_path):
    if (reason := compile_unavailable_reason(torch.device("cpu"))) is not None:
        pytest.skip(reason)
    torch.set_num_threads(2)  # the compiler's own backward of the lookups added rows from both threads in any order
    config = GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=1, n_head=2, n_embd=16, dropout=0.0, bias=True)
    runs = []
    for compile in (True, True, False):
        torch.manual_seed(0)
        trainer = Trainer(GPT(config), tiny_config(tmp_path / str(len(runs)), compile=compile, batch_size=32), Windows())
        trainer.fit()
        runs.append([p.detach().clone() for p in trainer.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    for compiled, eager in zip(runs[0], runs[2]):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)


def test_metrics_plot_callbacks_and_summary(tmp_path):
    trainer = make_trainer(tmp_path, max_iters=5, eval_interval=2, log_interval=1, progress=True)
    seen = {event: [] for event in ("on_batch_end", "on_eval_end", "on_train_end")}
    for event in seen:
        trainer.add_callback(event, lambda t, event=event: seen[event].append((t.iter_num, dict(t.last_eval))))
    with pytest.raises(ValueError, match="unknown event"):
        trainer.add_callback("on_epoch_end", print)
    summary = trainer.fit()

    assert [it for it, _ in seen["on_batch_end"]] == [1, 2, 3, 4, 5]
    assert [it for it, _ in seen["on_eval_end"]] == [0, 2, 4, 5]  # before training, every 2, at the end
    assert [it for it, _ in seen["on_train_end"]] == [5]
    assert set(seen["on_eval_end"][-1][1]) == {"train", "val"}
    assert trainer.model.training  # estimate_loss put it back in train mode

    records = [json.loads(line) for line in trainer.metrics.path.read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    evals = [r for r in records if r["type"] == "eval"]
    assert [r["iter"] for r in train] == [1, 2, 3, 4, 5]
    assert set(train[0]) == {"type", "iter", "loss", "lr", "tokens_per_sec", "mfu", "time"}
    assert [r["lr"] for r in train] == pytest.approx([get_lr(i, 2, 6, 1e-2, 1e-3) for i in range(5)])
    assert all(r["mfu"] is None and r["tokens_per_sec"] > 0 for r in train)
    assert [r["iter"] for r in evals] == [0, 2, 4, 5]
    assert evals[-1]["val_loss"] == pytest.approx(summary["val_loss"])
    png = Path(trainer.out_dir, "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    assert summary["iterations"] == 5 and summary["tokens_per_sec"] > 0 and summary["wall_time"] > 0
    assert trainer.is_master and trainer.world_size == 1
    assert summary["last_loss"] == trainer.last_loss and summary["best_val_loss"] == trainer.best_val_loss
    assert math.isfinite(summary["train_loss"]) and summary["train_loss"] < math.log(VOCAB) + 0.5


def test_evaluation_batches_are_fixed(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.data.calls.clear()
    first = trainer.estimate_loss()
    calls = list(trainer.data.calls)
    trainer.fit()
    trainer.data.calls.clear()
    trainer.estimate_loss()
    assert trainer.data.calls == calls and len(calls) == 2 * trainer.config.eval_iters
    assert set(first) == {"train", "val"}


def test_keyboard_interrupt_saves_a_checkpoint(tmp_path, capsys):
    trainer = make_trainer(tmp_path, max_iters=10, eval_interval=0, progress=True)

    def interrupt(t):
        if t.iter_num == 3:
            raise KeyboardInterrupt

    trainer.add_callback("on_batch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert read_checkpoint(trainer.ckpt_path)["iteration"] == 3
    err = capsys.readouterr().err
    assert str(trainer.ckpt_path) in err and "--resume=true" in err
    # and the run goes on from there
    resumed = make_trainer(tmp_path, max_iters=5, eval_interval=0, resume=True)
    assert resumed.fit()["iterations"] == 5
