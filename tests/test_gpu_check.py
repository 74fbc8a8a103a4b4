"""bench/gpu_check.py, the one prepared GPU check, run in its tiny mode: every part runs, and what it reports is what
happened (a GPU session runs the full sizes; here the script is kept from rotting in between)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
PARTS = ["shakespeare_char", "gpt2_124m_bench", "ddp", "fp16"]


def gpu_check(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    json_path = tmp_path / "gpu_check.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny", f"--json={json_path}", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    summary = json.loads(result.stdout)  # the JSON is all of stdout: the parts' own output goes to stderr
    assert json.loads(json_path.read_text()) == summary
    return result, summary


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shakespeare_path) -> tuple[subprocess.CompletedProcess, dict]:
    return gpu_check(tmp_path_factory.mktemp("gpu_check"), f"--data_dir={shakespeare_path.parent}")


@pytest.mark.slow
def test_every_part_runs_and_reports_its_setting(tiny_run):
    result, summary = tiny_run
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary["mode"] == "tiny" and summary["all_passed"] is True
    for name in PARTS:
        part = summary[name]
        assert "error" not in part, part
        assert {"device", "torch", "dtype", "passed", "wall_s", "time_cap_s"} <= part.keys(), name
        assert part["wall_s"] <= part["time_cap_s"]


@pytest.mark.slow
def test_shakespeare_char_stops_at_its_target_loss(tiny_run):
    part = tiny_run[1]["shakespeare_char"]
    assert part["passed"] is None  # tiny: the stop is exercised, the 1.47 target is not applied
    assert part["reached_at_iteration"] == part["iterations"] < part["settings"]["max_iters"]
    assert part["best_val_loss"] <= 3.25 < part["val_curve"][str(part["iterations"] - 10)]
    assert part["seconds_to_target"] > 0


@pytest.mark.slow
def test_gpt2_bench_times_steps_and_names_the_attention_kernel(tiny_run):
    part = tiny_run[1]["gpt2_124m_bench"]
    assert part["tokens_per_sec"] > 0 and part["ms_per_iter"] > 0
    assert part["grad_accum_steps"] == 4 and part["steps"] == part["settings"]["steps"]
    # a fused kernel, not the math fallback; on the CPU, SDPA's causal fp32 path is flash attention too
    assert part["attention_kernel"] == "flash" if part["device"] == "cpu" else part["attention_kernel"] != "math"
    assert part["passed"] is None


@pytest.mark.slow
def test_torchrun_matches_one_process_and_fp16_says_why_it_is_skipped(tiny_run):
    ddp = tiny_run[1]["ddp"]
    assert ddp["passed"] is True and ddp["max_loss_difference"] <= 1e-6
    assert ddp["final_losses"]["one_process"] == pytest.approx(ddp["final_losses"]["torchrun"], abs=1e-6)
    fp16 = tiny_run[1]["fp16"]
    if ddp["settings"]["backend"] == "gloo":  # no GPU
        assert ddp["settings"]["processes"] == 2
        assert fp16["passed"] is None and "no GPU" in fp16["skipped"]
    else:
        assert fp16["passed"] is True and fp16["final_scale"] > 0


@pytest.mark.slow
def test_a_failing_part_is_reported_and_the_others_still_run(tmp_path):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "tinyshakespeare.txt").write_text("not Shakespeare\n")
    result, summary = gpu_check(tmp_path, f"--data_dir={bad}", "--parts=shakespeare_char,gpt2_124m_bench")
    assert result.returncode == 1
    assert summary["all_passed"] is False and "ddp" not in summary
    assert summary["shakespeare_char"]["passed"] is False
    assert summary["shakespeare_char"]["error"].startswith("DataError: ")
    assert "error" not in summary["gpt2_124m_bench"] and summary["gpt2_124m_bench"]["tokens_per_sec"] > 0



def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_part_over_its_time_cap_is_stopped_and_reported(tmp_path, shakespeare_path, monkeypatch):
    gpu_check_module = load_gpu_check()
    monkeypatch.setattr(gpu_check_module, "TINY_CAP", 5)  # the DDP part takes ~20 s
    result = gpu_check_module.run_isolated("ddp", True, str(shakespeare_path.parent), tmp_path)
    assert result["passed"] is False and result["error"] == "stopped at its time cap of 5 s"
    assert result["wall_s"] < 5 + 20


@pytest.mark.slow
def test_stopping_a_part_stops_torchruns_workers_too(tmp_path):
    """torchrun starts its workers in sessions of their own: killing the part's process group would leave them
    running (holding the GPUs); they must be stopped through torchrun."""
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import os, pathlib, sys, time\npathlib.Path(sys.argv[1], str(os.getpid())).touch()\n"
                       "time.sleep(120)\n")
    pids = tmp_path / "pids"
    pids.mkdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(sleeper),
                str(pids)]
    part = subprocess.Popen([sys.executable, "-c", f"import subprocess; subprocess.run({torchrun!r})"],
                            start_new_session=True)  # as run_isolated starts a part
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2
    load_gpu_check().stop_process_group(part)
    time.sleep(0.5)
    assert [pid for pid in workers if running(pid)] == []


def running(pid: int) -> bool:
    """The process exists and is not a zombie (dead, waiting for its parent to collect its exit status)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
