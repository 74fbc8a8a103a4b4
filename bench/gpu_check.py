"""One prepared GPU check: the reference's GPU paths run once, summed up in a JSON (the last thing printed).

    PYTHONPATH=. python bench/gpu_check.py --data_dir shared/data --json gpu_check.json   # ~5 min on one H100/H200
    python bench/gpu_check.py --tiny          # tiny sizes, under a minute on 2 CPU cores (automatic without CUDA)

Four parts, each a key of the JSON, each run in a process of its own under a time cap, so that a crash, a hang or
an out-of-memory in one is reported there (``error``) while the others still run:

* ``shakespeare_char`` — nanoGPT's character-level Shakespeare recipe (``configs/shakespeare_char.toml``,
  ``torch.compile`` on) until the val loss reaches 1.47, checked at every evaluation (every 250 iterations) and at
  most 2500 iterations of the recipe's 5000-iteration schedule: the wall time to get there (nanoGPT: ~3 min on an
  A100).
* ``gpt2_124m_bench`` — GPT-2 124M training steps on random tokens (``python -m gpt_reference bench --config gpt2_124m
  --synthetic``): bf16 autocast, ``torch.compile``, fused AdamW, and the attention kernel SDPA picked (flash, we
  hope). Tokens/s and MFU against the device's peak; target 45% (nanoGPT reports ~37% on an A100).
* ``ddp`` — the same short run (no dropout) with ``python -m gpt_reference train`` in one process and under
  ``torchrun`` on every GPU present, with the same ``grad_accum_steps``: their losses must agree (1e-3 on GPUs, whose
  kernels are not bit-deterministic; 1e-6 with 2 gloo processes on the CPU).
* ``fp16`` — fp16 autocast with a GradScaler, the path for GPUs without bf16: the loss stays finite and goes down;
  the scaler's final scale. Skipped on the CPU, where the reference's autocast does nothing.

Each part says its device, torch version, dtype, settings, wall seconds, target and ``passed`` (true/false; null
where no target applies: tiny sizes, or a skipped part). Tiny mode (``--tiny``, and always without CUDA) shrinks
every model and run; it applies only the DDP agreement, which holds at any size. tests/test_gpu_check.py runs it, so
that this script cannot rot between the rare sessions that have a GPU. Runs go to a temporary folder; the data set
is read from ``--data_dir`` (default ``$GPT_DATA_DIR``), as the CLI reads it. The exit status is 1 when a part
failed or broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from gpt_reference import data
from gpt_reference.checkpoint import read_checkpoint
from gpt_reference.cli import bench
from gpt_reference.config import RunConfig, load_config
from gpt_reference.hardware import auto_device, autocast, resolve_dtype
from gpt_reference.model import GPT
from gpt_reference.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
# every model of tiny mode: big enough to learn something in a few dozen steps, small enough for seconds on a CPU
TINY_MODEL = ["--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=32"]
LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")

Result = dict[str, Any]


# ---- (a) nanoGPT's shakespeare_char recipe to val loss 1.47 ------------------------------------------------------


def shakespeare_char(tiny: bool, data_dir: str, work: Path) -> Result:
    target = 1.47
    overrides = [f"--out_dir={work / 'shakespeare_char'}", "--progress=false", "--max_iters=2500", "--compile=true"]
    if tiny:  # the stop is exercised at a loss this tiny model reaches by iteration ~40 (of 60)
        target = 3.25
        overrides += [*TINY_MODEL, "--batch_size=8", "--max_iters=60", "--lr_decay_iters=60", "--warmup_iters=5",
                      "--learning_rate=1e-2", "--eval_interval=10", "--eval_iters=4", "--compile=false"]  # fmt: skip
    config = load_config("shakespeare_char", overrides + _data_dir_override(data_dir))
    torch.manual_seed(config.train.seed)
    dataset = data.load_dataset(config.data, config.model.block_size)
    config.model.vocab_size = dataset.vocab_size
    model = GPT(config.model)
    trainer = Trainer(model, config.train, dataset, flops_per_token=model.flops_per_token(config.model.block_size))
    settings = _settings(config)  # before the stop below shortens max_iters
    val_curve: dict[int, float] = {}  # iteration: val loss
    reached: Result = {}

    def stop_at_target(t: Trainer) -> None:
        val_curve[t.iter_num] = round(t.last_eval["val"], 4)
        if t.last_eval["val"] <= target and not reached:
            reached.update(iteration=t.iter_num, seconds=round(time.perf_counter() - start, 1))
            t.config.max_iters = t.iter_num  # the run ends here: fit's loop stops, saves and returns

    trainer.add_callback("on_eval_end", stop_at_target)
    start = time.perf_counter()
    summary = trainer.fit()
    best_iteration = min(val_curve, key=val_curve.__getitem__)
    return {
        "dtype": _name(trainer.dtype),
        "settings": settings,
        "target": f"val loss <= {target}" + (" (tiny: a stop, not a target)" if tiny else ""),
        "passed": None if tiny else bool(reached),
        "reached_at_iteration": reached.get("iteration"),
        "seconds_to_target": reached.get("seconds"),  # from the start of fit: compilation included
        "best_val_loss": val_curve[best_iteration],
        "best_at_iteration": best_iteration,
        "iterations": summary["iterations"],
        "fit_seconds": round(summary["wall_time"], 1),
        "tokens_per_sec": summary["tokens_per_sec"],
        "mfu": summary["mfu"],
        "val_curve": val_curve,
    }


# ---- (b) GPT-2 124M training steps: tokens/s and MFU --------------------------------------------------------------


def gpt2_124m_bench(tiny: bool, data_dir: str, work: Path) -> Result:
    target_mfu = 0.45
    overrides = [f"--out_dir={work / 'gpt2_124m'}", f"--batch_size={_micro_batch(tiny)}", "--grad_accum_steps=4"]
    if tiny:
        overrides += [*TINY_MODEL, "--vocab_size=512", "--compile=false"]
    config = load_config("gpt2_124m", overrides)
    steps, warmup = (2, 1) if tiny else (20, 5)
    result, trainer = bench(config, steps, warmup, json_path=None, synthetic=True)
    return {
        **result,
        "settings": _settings(config, steps=steps, warmup=warmup),
        "target": f"mfu >= {target_mfu}" + (" (not applied: tiny)" if tiny else ""),
        "passed": None if tiny else result["mfu"] is not None and result["mfu"] >= target_mfu,
        "attention_kernel": attention_kernel(trainer.model, trainer.dtype),
        "fused_adamw": bool(trainer.optimizer.defaults.get("fused")),
    }


def _micro_batch(tiny: bool) -> int:
    """Sequences of 1024 tokens per micro-batch: the more the GPU holds, the better it is used (an H200's 141 GB
    take 64, an H100's 80 GB 32; nanoGPT's 12 gives ~37% MFU on an A100)."""
    if tiny:
        return 4
    memory_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    return 64 if memory_gib >= 120 else 32 if memory_gib >= 60 else 16


def attention_kernel(model: GPT, dtype: torch.dtype) -> str:
    """Which kernel ``F.scaled_dot_product_attention`` runs for ``model`` (flash, efficient, cudnn or math), seen by
    the profiler in one forward and backward pass of one full-length row."""
    device = next(model.parameters()).device
    x = torch.randint(model.config.vocab_size, (1, model.config.block_size), device=device)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:  # the aten op's name tells the kernel
        with autocast(device, dtype):
            _, loss = model(x, x)
        loss.backward()
    names = " ".join(event.key for event in profiler.key_averages())
    for kernel in ("flash", "efficient", "cudnn"):  # the CPU's is _scaled_dot_product_flash_attention_for_cpu
        if f"_scaled_dot_product_{kernel}_attention" in names:
            return kernel
    return "math"


# ---- (c) torchrun + DDP against one process -----------------------------------------------------------------------


def ddp(tiny: bool, data_dir: str, work: Path) -> Result:
    on_gpu = torch.cuda.is_available()
    processes = torch.cuda.device_count() if on_gpu else 2  # on the CPU, 2 gloo processes
    tolerance = 1e-3 if on_gpu else 1e-6
    max_iters = 10 if tiny else 50
    overrides = ["--dropout=0.0", f"--grad_accum_steps={2 * processes}", f"--max_iters={max_iters}",
                 f"--eval_interval={max_iters}", f"--eval_iters={4 if tiny else 20}", "--log_interval=5",
                 "--compile=false"]  # fmt: skip
    if tiny:
        overrides += [*TINY_MODEL, "--batch_size=8"]
    if not on_gpu:
        overrides.append("--device=cpu")
    single = train_run(work / "single", overrides, data_dir)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    distributed = train_run(work / "torchrun", overrides, data_dir, launcher=torchrun)
    pairs = list(zip(single["losses"], distributed["losses"], strict=True))
    difference = max(abs(a - b) for a, b in pairs)
    result = {
        "dtype": _name(resolve_dtype(auto_device())),
        "settings": {"config": "shakespeare_char", "overrides": overrides, "processes": processes,
                     "backend": "nccl" if on_gpu else "gloo"},  # fmt: skip
        "target": f"every logged loss within {tolerance}",
        "passed": difference <= tolerance,
        "max_loss_difference": difference,
        "final_losses": {"one_process": single["losses"][-2:], "torchrun": distributed["losses"][-2:]},
        "seconds": {"one_process": single["seconds"], "torchrun": distributed["seconds"]},
    }
    if processes == 1:
        result["note"] = "one process: DDP and its process group run, but averaging across processes needs 2+ GPUs"
    return result


# ---- (d) fp16 with a gradient scaler ------------------------------------------------------------------------------


def fp16(tiny: bool, data_dir: str, work: Path) -> Result:
    if not torch.cuda.is_available():
        return {"dtype": "float16", "passed": None,
                "skipped": "no GPU: the reference's autocast and gradient scaler work on CUDA only"}  # fmt: skip
    max_iters = 20 if tiny else 200
    overrides = ["--dtype=float16", f"--max_iters={max_iters}", f"--eval_interval={max_iters}", "--eval_iters=20",
                 "--compile=false"]  # fmt: skip
    if tiny:
        overrides += [*TINY_MODEL, "--batch_size=8"]
    run = train_run(work / "fp16", overrides, data_dir)
    (_, first_val), (_, last_val) = run["evals"][0], run["evals"][-1]
    scale = run["scaler"].get("scale")
    finite = all(math.isfinite(loss) for loss in run["losses"])
    return {
        "dtype": "float16",
        "settings": {"config": "shakespeare_char", "overrides": overrides},
        "target": "losses finite, val loss lower at the end than at the start, a gradient scaler in use",
        "passed": finite and last_val < first_val and scale is not None,
        "val_loss": {"start": first_val, "end": last_val},
        "final_scale": scale,
        "seconds": run["seconds"],
    }


# ---- runs of the command line -------------------------------------------------------------------------------------


def train_run(out_dir: Path, overrides: list[str], data_dir: str, launcher: list[str] | None = None) -> Result:
    """``python -m gpt_reference train --config shakespeare_char`` (under ``launcher``, e.g. torchrun): the losses
    of its metrics.jsonl (the logged training losses, then the evaluations' val losses), its evaluations and the
    gradient scaler's state from its checkpoint."""
    args = ["-m", "gpt_reference", "train", "--config=shakespeare_char", f"--out_dir={out_dir}", "--progress=false",
            "--max_new_tokens=8", *overrides, *_data_dir_override(data_dir)]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run([*(launcher or [sys.executable]), *args], cwd=REPO, env=_child_env(), capture_output=True,
                            text=True)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(launcher or ['python'])} {' '.join(args)} exited with status "
                           f"{result.returncode}:\n{(result.stdout + result.stderr)[-2000:]}")  # fmt: skip
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(r["iter"], r["val_loss"]) for r in records if r["type"] == "eval"]
    losses = [r["loss"] for r in records if r["type"] == "train"] + [val for _, val in evals]
    checkpoint = read_checkpoint(out_dir / "ckpt.pt", mmap=True)
    return {"losses": losses, "evals": evals, "scaler": checkpoint["scaler"],
            "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


# ---- the parts, each in its own process ---------------------------------------------------------------------------

PARTS: dict[str, tuple[Callable[[bool, str, Path], Result], int]] = {  # the part and its time cap on a GPU, seconds
    "shakespeare_char": (shakespeare_char, 240),  # two compilations (training, evaluation), ~2000 iterations
    "gpt2_124m_bench": (gpt2_124m_bench, 140),  # a compilation, 25 steps
    "ddp": (ddp, 60),  # 2 eager runs of 50 iterations
    "fp16": (fp16, 40),  # an eager run of 200 iterations
}
TINY_CAP = 180  # seconds for any part in tiny mode, on a busy CPU


def run_part(name: str, tiny: bool, data_dir: str, work: Path) -> Result:
    """One part in this process: its result, or the error that stopped it."""
    fn, _ = PARTS[name]
    device = auto_device()
    common = {"device": torch.cuda.get_device_name() if device.type == "cuda" else device.type,
              "torch": torch.__version__}  # fmt: skip
    try:
        return {**common, **fn(tiny, data_dir, work)}
    except Exception as error:  # reported in the JSON; the other parts still run
        return {**common, "passed": False, "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc()[-3000:]}  # fmt: skip


def run_isolated(name: str, tiny: bool, data_dir: str, work: Path) -> Result:
    """Run one part in a child process (its output goes to our stderr) under its time cap; a part that overruns
    is killed with everything it started (torchrun's workers too)."""
    cap = TINY_CAP if tiny else PARTS[name][1]
    result_path = work / f"{name}.json"
    command = [sys.executable, __file__, "--run_part", name, "--result", str(result_path), f"--data_dir={data_dir}"]
    start = time.perf_counter()
    child = subprocess.Popen(command + (["--tiny"] if tiny else []), cwd=REPO, env=_child_env(), stdout=sys.stderr,
                             start_new_session=True)  # fmt: skip
    try:
        child.wait(timeout=cap)
        overran = False
    except subprocess.TimeoutExpired:
        stop_process_group(child)
        overran = True
    wall = round(time.perf_counter() - start, 1)
    if result_path.exists():
        result = json.loads(result_path.read_text())
    elif overran:
        result = {"passed": False, "error": f"stopped at its time cap of {cap} s"}
    else:
        result = {"passed": False, "error": f"the part's process died with exit status {child.returncode}"}
    print(f"gpu_check: {name}: passed={result.get('passed')} in {wall} s", file=sys.stderr)
    return {**result, "wall_s": wall, "time_cap_s": cap}


def stop_process_group(child: subprocess.Popen) -> None:
    """Stop ``child`` and every process of its group: SIGTERM, which torchrun passes on to its workers (they run in
    sessions of their own), then, for whatever is left after 20 s, SIGKILL."""
    os.killpg(child.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=10)
    for _ in range(50):  # torchrun, in the same group, may still be stopping its workers
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _child_env() -> dict[str, str]:
    """Our environment for a child process: this checkout's gpt_reference first, no launcher variables of ours."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _data_dir_override(data_dir: str) -> list[str]:
    return [f"--data_dir={data_dir}"] if data_dir else []


def _settings(config: RunConfig, **extra: Any) -> Result:
    train = ("batch_size", "grad_accum_steps", "max_iters", "learning_rate", "lr_decay_iters", "eval_interval",
             "eval_iters", "compile", "dtype")  # fmt: skip
    return {"model": asdict(config.model), **{key: getattr(config.train, key) for key in train},
            **extra}  # fmt: skip


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (automatic without CUDA)")
    parser.add_argument("--data_dir", default=os.environ.get("GPT_DATA_DIR", ""),
                        help="the folder holding tinyshakespeare.txt (default: $GPT_DATA_DIR)")  # fmt: skip
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts, comma-separated: {','.join(PARTS)}")
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    parser.add_argument("--run_part", choices=PARTS, help=argparse.SUPPRESS)  # a child process: one part
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tiny = args.tiny or not torch.cuda.is_available()
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else ""  # the parts run from the repository root
    if args.run_part:
        result = run_part(args.run_part, tiny, data_dir, Path(args.result).parent)
        Path(args.result).write_text(json.dumps(result))
        return 0
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {', '.join(sorted(unknown))}; the parts are {', '.join(PARTS)}")

    start = time.perf_counter()
    summary: Result = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "mode": "tiny" if tiny else "full",
    }
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        for name in parts:
            summary[name] = run_isolated(name, tiny, data_dir, Path(work))
    summary["total_wall_s"] = round(time.perf_counter() - start, 1)
    summary["all_passed"] = all(summary[name]["passed"] is not False for name in parts)
    text = json.dumps(summary, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0 if summary["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
