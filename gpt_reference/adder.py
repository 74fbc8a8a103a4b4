"""Teaching a GPT to add: minGPT's addition task, generated on the fly (nothing to download).

A problem ``a + b = c`` with n-digit numbers is written as one sequence of digit tokens:

    a (n digits, zero padded)  b (n digits, zero padded)  c (n+1 digits, REVERSED)

so with n = 2, ``55 + 45 = 100`` becomes ``5 5 4 5 0 0 1``. The sum is written backwards because a GPT produces
tokens from left to right, and written backwards the ones digit comes first: the model can emit each digit of c
knowing the carry from the digit before it, which is how people add on paper. Written forwards, the first digit
it must produce would depend on every carry still to come.

The model is trained only on the answer. Its inputs are ``x = seq[:-1]`` and its targets ``y = seq[1:]``, and the
targets at the positions that would predict digits of a and b are set to -1, which the loss ignores
(``ignore_index=-1``): those digits are random, so there is nothing to learn in predicting them.

There are (10^n)^2 problems. They are shuffled once with a fixed seed; the first min(20%, 500) are held out as the
test set ("val") and the rest are for training. ``evaluate`` asks the model for the answers to the held-out
problems, greedily, and counts how many are exactly right: a model that has only memorised its training problems
gets few of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import get_batch
from .hardware import batch_to_device

MAX_DIGITS = 3  # (10^n)^2 problems are enumerated and shuffled: 10^6 for n = 3, 10^8 (0.8 GB of ids) for n = 4


class AdditionTask:
    """All n-digit addition problems, split into train and test ("val"), served as batches of digit sequences.

    A problem is identified by one integer, ``a * 10^n + b``. The task has the same interface as the token data
    sets in ``gpt_reference.data``: ``get_batch``, ``vocab_size``, ``block_size``, ``encode`` and ``decode``.
    """

    vocab_size = 10  # the digits 0..9

    def __init__(self, n_digits: int = 2, seed: int = 1337) -> None:
        if not 1 <= n_digits <= MAX_DIGITS:
            raise ValueError(f"n_digits must be between 1 and {MAX_DIGITS}, not {n_digits}")
        self.n_digits = n_digits
        self.block_size = 3 * n_digits  # a sequence has 3n + 1 digits; the model sees all but the last
        num_problems = (10**n_digits) ** 2
        generator = torch.Generator().manual_seed(seed)
        problems = torch.randperm(num_problems, generator=generator)
        num_test = min(int(num_problems * 0.2), 500)
        self.splits = {"val": problems[:num_test], "train": problems[num_test:]}
        # each split's problems written out end to end, one byte per digit: the token sequence batches are cut from
        self.tokens = {split: self.render(ids).flatten().to(torch.uint8) for split, ids in self.splits.items()}

    # ---- one problem ------------------------------------------------------------------------------------------

    def problem(self, problem_id: int) -> tuple[int, int]:
        """The two operands ``(a, b)`` of a problem id."""
        return divmod(problem_id, 10**self.n_digits)

    def encode_problem(self, a: int, b: int) -> list[int]:
        """The prompt for ``a + b``: the 2n digits of a and b, zero padded. The model continues with the answer."""
        return [int(d) for d in f"{a:0{self.n_digits}d}{b:0{self.n_digits}d}"]

    def decode_answer(self, ids: list[int]) -> int:
        """The number that the n+1 answer digits spell, least significant digit first (``[0, 0, 1]`` → 100)."""
        return int("".join(str(int(d)) for d in reversed(ids)))

    def encode(self, text: str) -> list[int]:
        """Digits in a string → token ids (``"5545"`` → ``[5, 5, 4, 5]``); used to type in prompts."""
        if not text.isdigit():
            raise ValueError(f"the adder's vocabulary is the digits 0-9; cannot encode {text!r}")
        return [int(d) for d in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(str(int(i)) for i in ids)

    # ---- batches ----------------------------------------------------------------------------------------------

    def render(self, problem_ids: torch.Tensor) -> torch.Tensor:
        """Problem ids (B,) → full digit sequences (B, 3n+1): a, b, then c reversed. Done with tensor arithmetic."""
        n = self.n_digits
        a, b = problem_ids // 10**n, problem_ids % 10**n
        c = a + b
        most_significant_first = 10 ** torch.arange(n - 1, -1, -1)  # 10^(n-1), …, 10, 1
        least_significant_first = 10 ** torch.arange(n + 1)  # 1, 10, …, 10^n
        digits_a = a[:, None] // most_significant_first % 10
        digits_b = b[:, None] // most_significant_first % 10
        digits_c = c[:, None] // least_significant_first % 10
        return torch.cat((digits_a, digits_b, digits_c), dim=1)

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random problems of ``split`` as inputs x (B, 3n) and targets y (B, 3n).

        ``get_batch`` cuts them from the split's problems laid end to end, one whole problem per window (a stride
        of 3n + 1 tokens). Targets that would predict a digit of a or b are -1 (ignored by the loss): only the
        answer is learned.
        """
        x, y = get_batch(self.tokens[split], self.block_size, batch_size, generator, stride=self.block_size + 1)
        # y[t] is the token after x[t]; positions 0 .. 2n-2 predict digits 2 .. 2n of the prompt
        y[:, : 2 * self.n_digits - 1] = -1
        return batch_to_device(x, y, device)


# ---- evaluation ---------------------------------------------------------------------------------------------


@dataclass
class AdditionResult:
    a: int
    b: int
    predicted: int
    expected: int

    @property
    def correct(self) -> bool:
        return self.predicted == self.expected


@dataclass
class AdderReport:
    """What the model answered for every problem of one split."""

    n_digits: int
    split: str
    results: list[AdditionResult]

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @property
    def failures(self) -> list[AdditionResult]:
        return [r for r in self.results if not r.correct]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    task: AdditionTask,
    split: str = "val",
    device: torch.device | str | None = None,
    batch_size: int = 500,
) -> AdderReport:
    """Exact-match accuracy of ``model`` on every problem of ``split`` (default: the held-out test problems).

    The model is given the 2n prompt digits and asked for n+1 more, greedily (always the most likely digit), and an
    answer counts only if every digit is right. ``model`` needs only ``generate(idx, max_new_tokens, temperature=0.0)``;
    ``device`` defaults to the device of the model's parameters.
    """
    if device is None:
        device = next(model.parameters()).device
    n = task.n_digits
    results = []
    for problems in task.splits[split].split(batch_size):
        prompts = task.render(problems)[:, : 2 * n].to(device)
        answers = model.generate(prompts, n + 1, temperature=0.0)[:, 2 * n :].tolist()
        for problem_id, answer in zip(problems.tolist(), answers, strict=True):
            a, b = task.problem(problem_id)
            results.append(AdditionResult(a, b, predicted=task.decode_answer(answer), expected=a + b))
    return AdderReport(n_digits=n, split=split, results=results)


def format_report(report: AdderReport, examples: int = 5) -> str:
    """A few lines for people: the accuracy, some worked examples and, if any, some of the mistakes."""

    def line(r: AdditionResult) -> str:
        verdict = "✓" if r.correct else f"✗ (the answer is {r.expected})"
        return f"  {r.a} + {r.b} = {r.predicted} {verdict}"

    lines = [
        f"{report.n_digits}-digit addition, {report.split} split: accuracy {report.accuracy:.1%} "
        f"({report.correct}/{report.total} exactly right)"
    ]
    lines += [line(r) for r in report.results[:examples]]
    failures = report.failures
    if failures:
        lines.append(f"mistakes ({len(failures)}), the first {min(examples, len(failures))}:")
        lines += [line(r) for r in failures[:examples]]
    return "\n".join(lines)
