"""The benchmark scripts run and report what they claim (their speed figures are read by people, not asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from autograder.core import checks_for

BENCH = Path(__file__).parents[1] / "bench"


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_train_cpu_bench_runs_both_loops_on_the_same_steps(tmp_path, shakespeare_path):
    path = tmp_path / "bench.json"
    out = run("bench_train_cpu.py", "--steps=4", "--rounds=2", f"--json={path}",
              f"--data_dir={shakespeare_path.parent}", "--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=8",
              "--batch_size=2", "--compile=false")
    assert "reference (Trainer.step)" in out and "nanoGPT-style eager loop" in out and "speed-up" in out
    result = json.loads(path.read_text())
    assert set(result["tokens_per_sec"]) == {"reference", "nanogpt"} and result["compile"] is False
    assert result["loss_difference"] < 1e-5  # the same model, rows and updates: float rounding only
    assert abs(result["loss"]["reference"] - math.log(65)) < 0.5  # 4 steps from a random start


def test_kv_cache_bench_checks_tokens_and_reports_every_length():
    out = run("bench_kv_cache.py", "--n_layer=1", "--n_head=2", "--n_embd=32", "--block_size=64", "--new_tokens=40")
    assert "identical tokens: True" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:2].isdigit()]
    assert [row[0] for row in rows] == ["16", "32", "40"]
    assert all(row[-1].endswith("×") and float(row[-1][:-1]) > 0 for row in rows)


def test_kv_cache_bench_refuses_a_run_that_would_slide_the_window():
    result = subprocess.run([sys.executable, str(BENCH / "bench_kv_cache.py"), "--block_size=32", "--new_tokens=40"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "must fit in block_size" in result.stderr


def test_bpe_bench_reports_identical_ids(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200 + "To be, or not to be!\n" * 50)
    out = run("bench_bpe.py", "--vocab_size=300", f"--text={text}")
    assert "identical ids: True" in out
    assert "merges in" in out


def test_ownwork_bench_times_every_check_and_the_solutions_pass_watched():
    out = run("bench_ownwork.py", "--lessons", "02_attention", "--repeats", "1")
    assert "every solution passes watched: True" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("attention.")]
    assert [row[0] for row in rows] == [check.id for check in checks_for("02_attention")]


def test_feedback_bench_times_every_self_check_and_grade_of_a_lesson():
    out = run("bench_feedback.py", "--lessons", "02_attention", "--no-status")
    checks = [line.split() for line in out.splitlines() if line.startswith("attention.")]
    assert [row[0] for row in checks] == ["attention.average_past", "attention.softmax", "attention.causal_mask",
                                          "attention.scaled_dot_product_attention", "attention.causal_self_attention"]
    assert all(row[2] == "✓" for row in checks), out
    assert "slowest self-check: attention." in out
    assert any(line.startswith("02_attention") and "15/15" in line for line in out.splitlines()), out
