"""Smoke tests of ``python -m gpt_reference``: every command runs end to end on tiny settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gpt_reference.checkpoint import read_checkpoint
from gpt_reference.cli import main, padded_vocab_size

TINY = ["--n_layer=1", "--n_head=2", "--n_embd=16", "--eval_iters=2", "--log_interval=1", "--progress=false",
        "--compile=false"]


def test_module_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "gpt_reference", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("prepare", "train", "sample", "bench"):
        assert command in out


@pytest.mark.parametrize("command", ["prepare", "train", "bench", "sample"])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out
    if command != "sample":
        assert "max_iters" in out and "n_layer" in out  # the config keys are listed


def test_unknown_key_is_rejected_with_a_hint(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", "adder", "--max_iter=3"])
    assert exit_info.value.code == 2
    assert "max_iter" in capsys.readouterr().err


def test_train_adder_writes_a_run_and_reports_accuracy(tmp_path, capsys):
    out_dir = tmp_path / "adder"
    main(["train", "--config", "adder", f"--out_dir={out_dir}", "--max_iters=20", "--eval_interval=10", *TINY])
    out = capsys.readouterr().out
    assert "accuracy" in out.lower()
    for name in ("ckpt.pt", "metrics.jsonl", "loss.png", "tokenizer.json"):
        assert (out_dir / name).exists(), name
    lines = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in line for line in lines)


def test_train_resume_and_sample_shakespeare(tmp_path, capsys, shakespeare_path):
    out_dir = tmp_path / "char"
    common = [f"--out_dir={out_dir}", f"--data_dir={shakespeare_path.parent}", "--block_size=16", "--batch_size=4",
              "--pad_vocab_to_multiple=64"]  # fmt: skip
    main(["train", "--config", "shakespeare_char_cpu", *common, "--max_iters=6", "--eval_interval=3", *TINY])
    main(["train", "--config", "shakespeare_char_cpu", *common, "--max_iters=8", "--resume=true", *TINY])
    capsys.readouterr()
    assert read_checkpoint(out_dir / "ckpt.pt")["model"]["lm_head.weight"].shape[0] == 128  # 65 characters, padded
    # an 8-step model samples padding ids (63 of its 128) often: they are left out of the text, never an error
    texts = main_sample(["--out_dir", str(out_dir), "--prompt", "ROMEO:", "--max_new_tokens=40", "--top_k=0",
                         "--temperature=3"], capsys)  # fmt: skip
    text = texts.split("\n---------------")[0]
    assert text.startswith("ROMEO:") and 6 < len(text) < 46


def main_sample(args, capsys) -> str:
    main(["sample", *args])
    return capsys.readouterr().out


def test_padded_vocab_size():
    assert padded_vocab_size(50257, 64) == 50304  # gpt2_124m's, nanoGPT's
    assert padded_vocab_size(65, 1) == 65 and padded_vocab_size(128, 64) == 128 and padded_vocab_size(129, 64) == 192
    with pytest.raises(ValueError, match="at least 1"):
        padded_vocab_size(65, 0)


def test_sample_without_a_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="train first"):
        main(["sample", "--out_dir", str(tmp_path)])


@pytest.mark.parametrize("source", [[], ["--synthetic", "--vocab_size=50", "--block_size=6"]])
def test_bench_writes_json(source, tmp_path, capsys):
    path = tmp_path / "bench.json"
    main(["bench", "--config", "adder", "--steps=2", "--warmup=1", f"--json={path}", "--batch_size=8", *TINY, *source])
    result = json.loads(path.read_text())
    assert result["batch_size"] == 8 and result["block_size"] == 6
    assert result["ms_per_iter"] > 0 and result["tokens_per_sec"] > 0
    assert result["mfu"] is None  # a CPU has no known peak: reported as unknown, not made up
    assert "tok/s" in capsys.readouterr().out


def test_bench_reports_the_compile_that_ran_not_the_one_asked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))  # compile asked for, and unavailable
    path = tmp_path / "bench.json"
    main(["bench", "--config", "adder", "--steps=1", "--warmup=0", f"--json={path}", *TINY, "--compile=true"])
    assert json.loads(path.read_text())["compile"] is False
    assert "compile: off, no C++ compiler" in capsys.readouterr().err


def test_sample_from_hugging_face_weights(tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        pytest.skip("GPT-2's encoding needs TIKTOKEN_CACHE_DIR (or network access)")
    config = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=8, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "tiny-gpt2")
    out = main_sample(["--init_from", str(tmp_path / "tiny-gpt2"), "--prompt", "Hello", "--max_new_tokens=5"], capsys)
    assert out.startswith("Hello")


def test_a_corrupt_data_file_is_an_error_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "tinyshakespeare.txt").write_text("not Shakespeare")
    code = main(["prepare", "--config", "shakespeare_char_cpu", f"--data_dir={tmp_path}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error:") and "SHA-256" in err and "Traceback" not in err


def test_ctrl_c_saves_a_checkpoint_and_exits_quietly(tmp_path):
    out_dir = tmp_path / "interrupted"
    command = [sys.executable, "-m", "gpt_reference", "train", "--config", "adder", f"--out_dir={out_dir}"]
    process = subprocess.Popen(
        [*command, "--max_iters=1000000", "--eval_interval=0", *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    metrics = out_dir / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not metrics.exists() or len(metrics.read_text().splitlines()) < 5):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert (out_dir / "ckpt.pt").exists()
    assert "--resume=true" in stdout + stderr and "Traceback" not in stderr
