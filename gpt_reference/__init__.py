"""The reference GPT: a complete GPT-2 (tokenizers, model, data, trainer, sampling, CLI) that the workbook's
graders compare learners' code against, and that anyone can use to train and sample models.

    from gpt_reference import GPT, GPTConfig, CharTokenizer, BPETokenizer, Trainer
"""

from .config import GPTConfig, RunConfig, TrainConfig, load_config
from .model import GPT, KVCache
from .sampling import sample_next
from .tokenizer import BPETokenizer, CharTokenizer
from .trainer import Trainer

__all__ = [
    "GPT",
    "GPTConfig",
    "KVCache",
    "RunConfig",
    "TrainConfig",
    "load_config",
    "sample_next",
    "BPETokenizer",
    "CharTokenizer",
    "Trainer",
]
