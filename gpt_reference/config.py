"""Configuration: the model's shape, the training recipe, and how a run is described in TOML.

Three dataclasses, each owned by one part of the system:

* ``GPTConfig`` — the architecture (read by ``model.py`` only).
* ``TrainConfig`` — the optimisation recipe (read by ``trainer.py`` only; it knows nothing about GPT).
* ``DataConfig`` — which data set and tokenizer to use (read by ``data.py``).

A run puts the three together in a ``RunConfig``. On disk a run is a TOML file with the sections ``[data]``,
``[model]`` and ``[train]`` (see ``gpt_reference/configs/``). On the command line any field can be overridden as
``--key=value`` (``--n_layer=2`` or, when you want to be explicit, ``--model.n_layer=2``). Values are parsed with
the field's type, and an unknown key is an error, never silently ignored: a typo such as ``--max_iter=10`` should
not train for the default 5000 iterations.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class GPTConfig:
    """The shape of a GPT-2-style model.

    ``bias`` adds biases to the Linear layers and LayerNorms, as GPT-2 does; without them a model is a little
    faster and trains as well (nanoGPT's default for new models).
    """

    block_size: int = 1024  # the longest context the model can see (number of position embeddings)
    vocab_size: int = 50257  # GPT-2's 50,000 merges + 256 bytes + <|endoftext|>
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """A named preset (``gpt2``, ``gpt2-medium``, …, ``gpt-nano``) with optional field overrides."""
        if name not in PRESETS:
            raise KeyError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


# GPT-2's four released sizes, and minGPT's small models for CPUs and lessons.
PRESETS: dict[str, dict[str, int]] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),  # 124M parameters
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),  # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),  # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),  # 1558M
    "gpt-mini": dict(n_layer=6, n_head=6, n_embd=192),
    "gpt-micro": dict(n_layer=4, n_head=4, n_embd=128),
    "gpt-nano": dict(n_layer=3, n_head=3, n_embd=48),
}


@dataclass
class TrainConfig:
    """How to optimise a model. Nothing here is specific to GPT."""

    out_dir: str = "runs/default"
    max_iters: int = 5000
    batch_size: int = 64  # sequences per micro-batch
    grad_accum_steps: int = 1  # micro-batches per optimizer step, summed over all DDP processes
    # AdamW; weight decay applies to matrices (>= 2-D parameters) only
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 disables
    # learning-rate schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters
    decay_lr: bool = True
    warmup_iters: int = 100
    lr_decay_iters: int = 5000
    min_lr: float = 1e-4
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 200
    log_interval: int = 10
    always_save_checkpoint: bool = False  # False: save only when val loss improves
    resume: bool = False  # continue from out_dir/ckpt.pt
    # system
    device: str = "auto"  # auto picks cuda > mps > cpu
    dtype: str = "auto"  # auto: bfloat16 on CUDA when supported, else float16 on CUDA, float32 elsewhere
    compile: bool = False
    seed: int = 1337
    progress: bool = True  # tqdm progress bar


@dataclass
class DataConfig:
    """Which data set to train on and how to tokenize it (see ``gpt_reference.data``)."""

    dataset: str = "shakespeare_char"  # adder | shakespeare_char | shakespeare | text | textdir
    data_dir: str = ""  # where source files live (default: $GPT_DATA_DIR, then the download cache)
    text_path: str = ""  # the file (dataset = "text") or folder (dataset = "textdir") to read
    tokenizer: str = "auto"  # for text data sets: char | bpe | gpt2 | auto
    bpe_vocab_size: int = 2048  # when we train our own BPE
    # the model's vocabulary is the tokenizer's, rounded up to a multiple of this (the extra ids are never targets)
    pad_vocab_to_multiple: int = 1
    adder_digits: int = 2  # the adder task: n-digit addition


@dataclass
class SampleConfig:
    """Text shown after training and used by ``sample``."""

    prompt: str = "\n"
    num_samples: int = 1
    max_new_tokens: int = 300
    temperature: float = 0.8
    top_k: int = 200  # 0 means no top-k filtering
    top_p: float = 1.0


@dataclass
class RunConfig:
    """Everything a ``train`` run needs. ``model_preset`` fills model fields not given explicitly."""

    data: DataConfig = field(default_factory=DataConfig)
    model: GPTConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, sections: dict[str, dict[str, Any]]) -> RunConfig:
        config = cls()
        for section, values in sections.items():
            for key, value in values.items():
                _set_field(config, section, key, value)
        config.model.__post_init__()
        return config


SECTIONS = ("data", "model", "train", "sample")


def _field_type(section_obj: Any, key: str) -> Any:
    hints = typing.get_type_hints(type(section_obj))
    return hints[key]


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check (and, for strings from the command line, parse) a value against a dataclass field's type."""
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{where}: expected a string, got {value!r}")
    raise TypeError(f"{where}: unsupported field type {annotation}")


def _set_field(config: RunConfig, section: str, key: str, value: Any) -> None:
    if section == "model" and key == "preset":
        preset = _coerce(value, str, "model.preset")
        try:
            for name, preset_value in PRESETS[preset].items():
                setattr(config.model, name, preset_value)
        except KeyError:
            raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}") from None
        return
    if section not in SECTIONS:
        raise ValueError(f"unknown config section [{section}]; sections are {', '.join(SECTIONS)}")
    section_obj = getattr(config, section)
    names = {f.name for f in dataclasses.fields(section_obj)}
    if key not in names:
        raise ValueError(f"unknown key {section}.{key}; [{section}] has {', '.join(sorted(names))}")
    setattr(section_obj, key, _coerce(value, _field_type(section_obj, key), f"{section}.{key}"))


def _section_of(key: str) -> str:
    """The section that owns a bare key such as ``n_layer`` (every field name is unique across sections)."""
    if key == "preset":
        return "model"
    owners = [s for s in SECTIONS if key in {f.name for f in dataclasses.fields(_SECTION_TYPES[s])}]
    if not owners:
        known = sorted(f.name for s in SECTIONS for f in dataclasses.fields(_SECTION_TYPES[s]))
        close = [k for k in known if k.startswith(key[:3])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown config key {key!r}{hint}")
    return owners[0]


_SECTION_TYPES = {"data": DataConfig, "model": GPTConfig, "train": TrainConfig, "sample": SampleConfig}


def resolve_config_path(name_or_path: str) -> Path:
    """A config given by name (``adder``, a file in gpt_reference/configs) or by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        return path
    builtin = CONFIG_DIR / f"{name_or_path}.toml"
    if builtin.exists():
        return builtin
    available = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
    raise FileNotFoundError(f"no config {name_or_path!r}: give a .toml path or one of {available}")


def builtin_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


def parse_overrides(args: list[str]) -> list[tuple[str, str, str]]:
    """``["--n_layer=2", "--train.max_iters=10"]`` → ``[("model", "n_layer", "2"), ("train", "max_iters", "10")]``."""
    parsed = []
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"override {arg!r} must look like --key=value")
        key, value = arg[2:].split("=", 1)
        key = key.replace("-", "_")
        if "." in key:
            section, key = key.split(".", 1)
        else:
            section = _section_of(key)
        parsed.append((section, key, value))
    return parsed


def load_config(name_or_path: str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML run config (by built-in name or path), then apply ``--key=value`` overrides in order."""
    sections: dict[str, dict[str, Any]] = {}
    if name_or_path:
        with open(resolve_config_path(name_or_path), "rb") as f:
            sections = tomllib.load(f)
    # a preset goes first so that explicit model fields in the same file win over it
    if "model" in sections and "preset" in sections["model"]:
        sections["model"] = {"preset": sections["model"].pop("preset"), **sections["model"]}
    config = RunConfig.from_dict(sections)
    for section, key, value in parse_overrides(overrides or []):
        _set_field(config, section, key, value)
    config.model.__post_init__()
    return config
