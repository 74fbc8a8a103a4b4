"""The lessons' answer key: where each graded object lives in ``gpt_reference``, under the name the lesson gives it.

The reference GPT is built from the very functions and classes the lessons ask for, so a learner who opens
``gpt_reference/`` after the course finds their own code there, by name. Where a lesson has the learner rebuild a
PyTorch operation that the reference itself calls (``torch.optim.AdamW``, ``torch.softmax``), the key names that
operation. Two callers use the key: ``yours`` (a later lesson's stand-in for an earlier object that is not finished
yet) and the tests that pin it (``tests/test_answer_key.py``: every graded object of every lesson is listed here and
importable). Entries are dotted paths, imported on first use, so reading the key costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

ANSWER_KEY: dict[str, dict[str, str]] = {
    "01_tokenization": {
        "CharTokenizer": "gpt_reference.tokenizer.CharTokenizer",
        "get_pair_counts": "gpt_reference.tokenizer.get_pair_counts",
        "merge": "gpt_reference.tokenizer.merge",
        "train_bpe": "gpt_reference.tokenizer.train_bpe",
        "encode": "gpt_reference.tokenizer.encode",
        "decode": "gpt_reference.tokenizer.decode",
        "split_chunks": "gpt_reference.tokenizer.split_chunks",
        "train_bpe_chunked": "gpt_reference.tokenizer.train_bpe_chunked",
        "encode_chunked": "gpt_reference.tokenizer.encode_chunked",
        "encode_with_special": "gpt_reference.tokenizer.encode_with_special",
    },
    "02_attention": {
        "average_past": "gpt_reference.model.average_past",
        "softmax": "torch.softmax",
        "causal_mask": "gpt_reference.model.causal_mask",
        "scaled_dot_product_attention": "gpt_reference.model.scaled_dot_product_attention",
        "CausalSelfAttention": "gpt_reference.model.CausalSelfAttention",
    },
    "03_gpt_block": {
        "LayerNorm": "gpt_reference.model.LayerNorm",
        "gelu": "gpt_reference.model.gelu",
        "MLP": "gpt_reference.model.MLP",
        "Block": "gpt_reference.model.Block",
        "GPT": "gpt_reference.model.GPT",
        "count_params": "gpt_reference.model.count_params",
        "load_hf_state_dict": "gpt_reference.model.load_hf_state_dict",
    },
    "04_training": {
        "get_batch": "gpt_reference.data.get_batch",
        "cross_entropy": "gpt_reference.model.cross_entropy",
        "AdamW": "torch.optim.AdamW",
        "configure_optimizer": "gpt_reference.optim.configure_optimizer",
        "get_lr": "gpt_reference.optim.get_lr",
        "clip_grad_norm": "torch.nn.utils.clip_grad_norm_",
        "train_step": "gpt_reference.trainer.train_step",
        "estimate_loss": "gpt_reference.trainer.estimate_loss",
        "save_checkpoint": "gpt_reference.checkpoint.save_checkpoint",
        "load_checkpoint": "gpt_reference.checkpoint.load_checkpoint",
        "fit": "gpt_reference.trainer.fit",
    },
    "05_generation": {
        "top_k_logits": "gpt_reference.sampling.top_k_logits",
        "top_p_logits": "gpt_reference.sampling.top_p_logits",
        "sample_next": "gpt_reference.sampling.sample_next",
        "generate": "gpt_reference.sampling.generate",
        "KVCache": "gpt_reference.model.KVCache",
        "forward_cached": "gpt_reference.sampling.forward_cached",
        "generate_cached": "gpt_reference.sampling.generate_cached",
    },
    "06_your_gpt": {
        "BPETokenizer": "gpt_reference.tokenizer.BPETokenizer",
        "GPT": "gpt_reference.model.GPT",
        "train": "gpt_reference.loop.train",
        "generate_text": "gpt_reference.sampling.generate_text",
    },
    "07_scaling": {
        "flops_per_token": "gpt_reference.model.flops_per_token",
        "mfu": "gpt_reference.metrics.mfu",
        "autocast_dtype": "gpt_reference.hardware.autocast_dtype",
        "accumulate_gradients": "gpt_reference.trainer.accumulate_gradients",
        "average_gradients": "gpt_reference.distributed.average_gradients",
    },
}


def resolve(dotted: str) -> Any:
    """The object at ``"package.module.name"`` (the longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"cannot import {dotted!r}")


def answer_key(lesson: str) -> dict[str, Any]:
    """The reference's objects for ``lesson`` (``"02_attention"``), by the names the lesson gives them."""
    if lesson not in ANSWER_KEY:
        raise KeyError(f"no lesson {lesson!r} in the answer key; known: {', '.join(ANSWER_KEY)}")
    return {name: resolve(path) for name, path in ANSWER_KEY[lesson].items()}
