"""Run configs: presets, TOML files and type-checked --key=value overrides."""

from __future__ import annotations

import pytest

from gpt_reference.config import GPTConfig, load_config, parse_overrides


def test_presets():
    assert GPTConfig.from_preset("gpt2-medium").n_layer == 24
    assert GPTConfig.from_preset("gpt-nano", vocab_size=10).n_embd == 48
    with pytest.raises(KeyError, match="gpt-nano"):
        GPTConfig.from_preset("gpt3")


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)


def test_toml_config_and_overrides():
    config = load_config("shakespeare_char_cpu", ["--n_layer=2", "--train.max_iters=10", "--learning_rate=3e-4"])
    assert config.model.n_layer == 2 and config.model.n_embd == 128  # the rest comes from the file
    assert config.train.max_iters == 10
    assert config.train.learning_rate == 3e-4
    assert config.data.dataset == "shakespeare_char"


def test_overrides_are_type_checked():
    with pytest.raises(ValueError, match="integer"):
        load_config("adder", ["--max_iters=ten"])
    with pytest.raises(ValueError, match="true or false"):
        load_config("adder", ["--compile=maybe"])
    assert load_config("adder", ["--compile=true"]).train.compile is True


def test_unknown_keys_are_errors_not_ignored():
    with pytest.raises(ValueError, match="max_iter"):
        load_config("adder", ["--max_iter=10"])
    with pytest.raises(ValueError, match="unknown key"):
        load_config("adder", ["--model.learning_rate=1"])
    with pytest.raises(ValueError, match="--key=value"):
        parse_overrides(["max_iters=3"])


def test_preset_then_explicit_fields(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nn_layer = 2\npreset = "gpt-mini"\n')
    config = load_config(str(path))
    assert (config.model.n_layer, config.model.n_embd) == (2, 192)  # an explicit field beats the preset
    assert load_config(str(path), ["--preset=gpt-micro"]).model.n_embd == 128


def test_unknown_config_name_lists_the_builtin_ones():
    with pytest.raises(FileNotFoundError, match="shakespeare_char_cpu"):
        load_config("no_such_config")
