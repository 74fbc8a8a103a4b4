"""The command line: ``python -m gpt_reference prepare|train|sample|bench``.

    python -m gpt_reference train --config adder                      # the demo: 2-digit addition, CPU, minutes
    python -m gpt_reference train --config shakespeare_char_cpu --max_iters=500
    python -m gpt_reference sample --out_dir runs/shakespeare_char_cpu --prompt "ROMEO:"
    python -m gpt_reference sample --init_from gpt2 --prompt "Hello"  # GPT-2's weights via transformers
    python -m gpt_reference bench --config shakespeare_char --json bench.json

``prepare``, ``train`` and ``bench`` read a run config (``--config``: a built-in name or a .toml path) and then
``--key=value`` overrides of any config field; ``--help`` on each command lists the keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from . import adder, data
from .checkpoint import read_checkpoint
from .config import SECTIONS, GPTConfig, RunConfig, SampleConfig, builtin_configs, load_config
from .hardware import auto_device, batch_to_device, peak_flops, synchronize
from .model import GPT
from .trainer import Trainer


def _config_keys_help() -> str:
    lines = ["config keys (override any with --key=value, or --section.key=value):"]
    defaults = RunConfig()
    for section in SECTIONS:
        fields = dataclasses.fields(getattr(defaults, section))
        keys = ", ".join(f"{f.name}={getattr(getattr(defaults, section), f.name)!r}" for f in fields)
        lines.append(f"  [{section}] {keys}")
    lines.append("  [model] also takes preset=gpt2|gpt2-medium|gpt2-large|gpt2-xl|gpt-mini|gpt-micro|gpt-nano")
    lines.append(f"built-in configs: {', '.join(builtin_configs())}")
    return "\n".join(lines)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gpt_reference", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    formatter = argparse.RawDescriptionHelpFormatter
    for name, summary in [
        ("prepare", "download and tokenize a data set into train.bin / val.bin"),
        ("train", "train a model; checkpoints, metrics.jsonl and loss.png go to out_dir"),
        ("bench", "time training steps: ms/iter, tokens/s and MFU (like nanoGPT's bench.py)"),
    ]:
        command = commands.add_parser(
            name, help=summary, description=summary, epilog=_config_keys_help(), formatter_class=formatter
        )
        command.add_argument("--config", default=None, help="a built-in config name or a .toml path")
        if name == "bench":
            command.add_argument("--steps", type=int, default=20, help="timed optimizer steps (default 20)")
            command.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
            command.add_argument("--json", default=None, help="write the figures to this JSON file")
            command.add_argument("--synthetic", action="store_true", help="random tokens instead of the data set")
    sample = commands.add_parser("sample", help="generate text from a trained run or from GPT-2's weights")
    source = sample.add_mutually_exclusive_group(required=True)
    source.add_argument("--out_dir", help="a run folder holding ckpt.pt (from train)")
    source.add_argument("--init_from", help="a Hugging Face GPT-2 name (gpt2, gpt2-xl, ...) or saved folder")
    defaults = SampleConfig()
    sample.add_argument("--prompt", default=None, help="text to continue; FILE:path reads it from a file")
    sample.add_argument("--num_samples", type=int, default=defaults.num_samples)
    sample.add_argument("--max_new_tokens", type=int, default=defaults.max_new_tokens)
    sample.add_argument("--temperature", type=float, default=defaults.temperature)
    sample.add_argument("--top_k", type=int, default=defaults.top_k, help="0 turns top-k filtering off")
    sample.add_argument("--top_p", type=float, default=defaults.top_p)
    sample.add_argument("--seed", type=int, default=1337)
    sample.add_argument("--device", default="auto")
    return parser


# ---- train --------------------------------------------------------------------------------------------------------


def padded_vocab_size(vocab_size: int, multiple: int) -> int:
    """``vocab_size`` rounded up to a multiple of ``multiple`` (GPT-2's 50,257 and 64: 50,304, as in nanoGPT).

    The embedding and output matrices get that many rows. On a GPU a matrix whose sides are multiples of 64 splits
    into whole tensor-core tiles, and GPT-2's output layer, the largest matmul of the model, runs faster with the
    47 extra rows than without. No target is ever a padding id, so training pushes their logits down.
    """
    if multiple < 1:
        raise ValueError(f"pad_vocab_to_multiple must be at least 1, not {multiple}")
    return -(-vocab_size // multiple) * multiple


def _model_config_for(config: RunConfig, dataset: Any) -> GPTConfig:
    """The data decides the vocabulary (padded as the config says); the adder's fixed-length problems decide the
    context."""
    vocab_size = padded_vocab_size(dataset.vocab_size, config.data.pad_vocab_to_multiple)
    model_config = dataclasses.replace(config.model, vocab_size=vocab_size)
    if config.data.dataset == "adder":
        model_config.block_size = dataset.block_size
    return model_config


def train(config: RunConfig) -> dict[str, Any]:
    torch.manual_seed(config.train.seed)
    dataset = data.load_dataset(config.data, config.model.block_size)
    config.model = _model_config_for(config, dataset)
    model = GPT(config.model)
    out_dir = Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data.save_tokenizer(dataset, out_dir / "tokenizer.json")
    print(f"model: {model.num_params() / 1e6:.2f}M parameters, {dataclasses.asdict(config.model)}")
    trainer = Trainer(
        model,
        config.train,
        dataset,
        flops_per_token=model.flops_per_token(config.model.block_size),
        extra_state={"run_config": config.to_dict()},
    )
    summary = trainer.fit()
    if trainer.is_master:
        _after_training(config, trainer.model, dataset, trainer.device)
    return summary


def _after_training(config: RunConfig, model: GPT, dataset: Any, device: torch.device) -> None:
    if isinstance(dataset, adder.AdditionTask):
        report = adder.evaluate(model, dataset, split="val", device=device)
        print(adder.format_report(report))
        return
    prompt = config.sample.prompt
    ids = torch.tensor([dataset.encode(prompt)], dtype=torch.long, device=device)
    generator = torch.Generator(device=device).manual_seed(config.train.seed)
    out = model.generate(
        ids,
        config.sample.max_new_tokens,
        temperature=config.sample.temperature,
        top_k=config.sample.top_k or None,
        top_p=config.sample.top_p,
        generator=generator,
    )
    print("---- a sample ----")
    print(dataset.decode(_without_padding(out[0].tolist(), dataset.vocab_size)))


# ---- sample -------------------------------------------------------------------------------------------------------


def _without_padding(ids: list[int], vocab_size: int) -> list[int]:
    """The ids the tokenizer knows: a model whose vocabulary is padded (``padded_vocab_size``) can sample a padding
    id, rarely once trained, and the tokenizer has no text for it."""
    return [i for i in ids if i < vocab_size]


def _load_run(out_dir: Path, device: torch.device) -> tuple[GPT, Any, RunConfig]:
    checkpoint_path = out_dir / "ckpt.pt"
    if not checkpoint_path.exists():
        raise SystemExit(f"no checkpoint at {checkpoint_path}: train first (python -m gpt_reference train ...)")
    checkpoint = read_checkpoint(checkpoint_path, map_location=device)
    config = RunConfig.from_dict(checkpoint["extra_state"]["run_config"])
    model = GPT(config.model)
    model.load_state_dict(checkpoint["model"])
    tokenizer = data.load_tokenizer(out_dir / "tokenizer.json")
    return model.to(device), tokenizer, config


def sample(args: argparse.Namespace) -> list[str]:
    device = auto_device(args.device)
    if args.out_dir:
        model, tokenizer, _ = _load_run(Path(args.out_dir), device)
    else:
        model = GPT.from_pretrained(args.init_from).to(device)
        tokenizer = data.load_tokenizer(None)  # GPT-2's own encoding, through tiktoken
    prompt = args.prompt if args.prompt is not None else "\n"
    if prompt.startswith("FILE:"):
        prompt = Path(prompt[5:]).read_text(encoding="utf-8")
    ids = torch.tensor([tokenizer.encode(prompt)] * args.num_samples, dtype=torch.long, device=device)
    if ids.size(1) == 0:
        raise SystemExit("the prompt is empty: give --prompt with at least one token")
    generator = torch.Generator(device=device).manual_seed(args.seed)
    out = model.generate(
        ids,
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k or None,
        top_p=args.top_p,
        generator=generator,
    )
    vocab_size = tokenizer.n_vocab if hasattr(tokenizer, "n_vocab") else tokenizer.vocab_size  # tiktoken's, ours
    texts = [tokenizer.decode(_without_padding(row.tolist(), vocab_size)) for row in out]
    for text in texts:
        print(text)
        print("---------------")
    return texts


# ---- bench --------------------------------------------------------------------------------------------------------


class RandomTokens:
    """Uniformly random token windows: a data set for timing alone (``bench --synthetic``)."""

    def __init__(self, vocab_size: int, block_size: int) -> None:
        self.vocab_size, self.block_size = vocab_size, block_size

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        windows = torch.randint(self.vocab_size, (batch_size, self.block_size + 1), generator=generator)
        return batch_to_device(windows[:, :-1], windows[:, 1:], device)


def bench(
    config: RunConfig, steps: int, warmup: int, json_path: str | None, synthetic: bool = False
) -> tuple[dict[str, Any], Trainer]:
    """Time the trainer's own optimizer steps (forward, backward, clip, AdamW), as nanoGPT's bench.py does. Returns
    the figures, and the trainer it timed (its model and optimizer, for a caller to inspect)."""
    torch.manual_seed(config.train.seed)
    if synthetic:  # random tokens over the config's vocabulary: no data set needed (e.g. gpt2_124m)
        dataset = RandomTokens(config.model.vocab_size, config.model.block_size)
    else:
        dataset = data.load_dataset(config.data, config.model.block_size)
    model_config = _model_config_for(config, dataset)
    model = GPT(model_config)
    train_config = dataclasses.replace(config.train, resume=False, progress=False)
    trainer = Trainer(model, train_config, dataset, flops_per_token=model.flops_per_token(model_config.block_size))
    device = trainer.device
    for _ in range(warmup):
        trainer.step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        _, tokens_per_iter = trainer.step()
    synchronize(device)
    seconds_per_iter = (time.perf_counter() - start) / steps
    mfu = model.estimate_mfu(tokens_per_iter, seconds_per_iter, seq_len=model_config.block_size)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "dtype": str(trainer.dtype).removeprefix("torch."),
        "compile": trainer.compiled,
        "parameters": model.num_params(),
        "batch_size": train_config.batch_size,
        "block_size": model_config.block_size,
        "grad_accum_steps": train_config.grad_accum_steps,
        "ms_per_iter": 1000 * seconds_per_iter,
        "tokens_per_sec": tokens_per_iter / seconds_per_iter,
        "mfu": mfu,
        "peak_flops": peak_flops(device),
        "steps": steps,
    }
    mfu_text = f"{100 * mfu:.1f}%" if mfu is not None else "n/a (no known peak for this device)"
    print(
        f"{result['device']} {result['dtype']}: {result['ms_per_iter']:.1f} ms/iter, "
        f"{result['tokens_per_sec']:,.0f} tok/s, MFU {mfu_text}"
    )
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result, trainer


# ---- entry point --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "sample":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        sample(args)
        return 0
    try:
        config = load_config(args.config, rest)
    except (ValueError, FileNotFoundError, KeyError) as e:
        parser.error(str(e))
    try:
        if args.command == "prepare":
            data.prepare(config.data)
        elif args.command == "train":
            train(config)
        elif args.command == "bench":
            bench(config, args.steps, args.warmup, args.json, args.synthetic)
    except data.DataError as e:  # a missing or corrupt data file: the message says what to do, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the trainer has saved a checkpoint and said how to resume
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
