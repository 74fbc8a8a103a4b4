"""The addition task: how problems are written as tokens, the train/test split, and how a model is graded."""

import pytest
import torch

from gpt_reference.adder import AdditionTask, evaluate, format_report


def test_sequence_is_a_then_b_then_reversed_sum():
    task = AdditionTask(n_digits=2)
    seq = task.render(torch.tensor([55 * 100 + 45, 7 * 100 + 3, 99 * 100 + 99]))
    assert [task.decode(row) for row in seq.tolist()] == ["5545001", "0703010", "9999891"]
    assert task.encode_problem(55, 45) == [5, 5, 4, 5]
    assert task.decode_answer([0, 0, 1]) == 100
    assert task.decode_answer([8, 9, 1]) == 198
    assert task.encode("5545") == [5, 5, 4, 5]
    with pytest.raises(ValueError, match="digits"):
        task.encode("55+45")


def test_three_digit_problems():
    task = AdditionTask(n_digits=3)
    assert (task.vocab_size, task.block_size) == (10, 9)
    seq = task.render(torch.tensor([123 * 1000 + 989]))
    assert task.decode(seq[0].tolist()) == "123989" + "2111"  # 123 + 989 = 1112, reversed
    with pytest.raises(ValueError, match="n_digits"):
        AdditionTask(n_digits=4)  # 10^8 problems: too many to enumerate


def test_batches_train_only_on_the_answer():
    task = AdditionTask(n_digits=2)
    x, y = task.get_batch("train", 64, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert x.shape == y.shape == (64, 6) and x.dtype == y.dtype == torch.int64
    # the targets that predict digits of a and b are masked; the rest are x shifted left by one
    assert (y[:, :3] == -1).all()
    assert (y[:, 3:-1] == x[:, 4:]).all()
    # every unmasked target completes a correct sum: rebuild the full sequence and check it
    seq = torch.cat((x, y[:, -1:]), dim=1)
    a = seq[:, 0] * 10 + seq[:, 1]
    b = seq[:, 2] * 10 + seq[:, 3]
    c = seq[:, 4] + seq[:, 5] * 10 + seq[:, 6] * 100
    assert (a + b == c).all()


def test_train_and_test_problems_are_disjoint():
    task = AdditionTask(n_digits=2)
    train, test = set(task.splits["train"].tolist()), set(task.splits["val"].tolist())
    assert (len(train), len(test)) == (9500, 500)
    assert not train & test
    assert train | test == set(range(10_000))
    # one-digit addition has 100 problems: 20 are held out
    assert len(AdditionTask(n_digits=1).splits["val"]) == 20


def test_split_and_batches_are_deterministic():
    first, second = AdditionTask(n_digits=2), AdditionTask(n_digits=2)
    assert torch.equal(first.splits["val"], second.splits["val"])
    assert not torch.equal(first.splits["val"], AdditionTask(n_digits=2, seed=1).splits["val"])
    batch = [t.get_batch("val", 32, torch.Generator().manual_seed(7), "cpu") for t in (first, second)]
    assert torch.equal(batch[0][0], batch[1][0]) and torch.equal(batch[0][1], batch[1][1])
    other = first.get_batch("val", 32, torch.Generator().manual_seed(8), "cpu")
    assert not torch.equal(batch[0][0], other[0])


def test_val_batches_come_from_the_test_problems():
    task = AdditionTask(n_digits=2)
    x, _ = task.get_batch("val", 256, torch.Generator().manual_seed(0), "cpu")
    ids = (x[:, 0] * 1000 + x[:, 1] * 100 + x[:, 2] * 10 + x[:, 3]).tolist()
    assert set(ids) <= set(task.splits["val"].tolist())


class Oracle:
    """Stands in for a trained GPT: answers every prompt with the true sum, reversed (``wrong_when`` spoils some)."""

    def __init__(self, task, wrong_when=lambda a, b: False):
        self.task, self.wrong_when = task, wrong_when
        self.prompts_seen = []

    def generate(self, idx, max_new_tokens, temperature=1.0, **kwargs):
        assert temperature == 0 and max_new_tokens == self.task.n_digits + 1
        rows = []
        for prompt in idx.tolist():
            digits = self.task.decode(prompt)
            a, b = int(digits[:2]), int(digits[2:])
            self.prompts_seen.append(a * 100 + b)
            total = a + b + (1 if self.wrong_when(a, b) else 0)
            rows.append(prompt + [int(d) for d in reversed(f"{total:03d}")])
        return torch.tensor(rows)


def test_evaluate_a_perfect_model():
    task = AdditionTask(n_digits=2)
    oracle = Oracle(task)
    report = evaluate(oracle, task, device="cpu", batch_size=128)
    assert (report.correct, report.total, report.accuracy) == (500, 500, 1.0)
    assert report.failures == []
    # graded on exactly the held-out problems, each once, and none of the training problems
    assert sorted(oracle.prompts_seen) == sorted(task.splits["val"].tolist())
    text = format_report(report, examples=3)
    assert "accuracy 100.0% (500/500 exactly right)" in text and text.count("✓") == 3 and "✗" not in text


def test_evaluate_reports_mistakes():
    task = AdditionTask(n_digits=2)
    report = evaluate(Oracle(task, wrong_when=lambda a, b: a % 10 + b % 10 >= 10), task, device="cpu")
    carries = [r for r in report.results if r.a % 10 + r.b % 10 >= 10]
    assert 0 < len(carries) < 500
    assert report.accuracy == pytest.approx(1 - len(carries) / 500)
    assert len(report.failures) == len(carries)
    assert all(f.predicted == f.expected + 1 == f.a + f.b + 1 for f in report.failures)
    text = format_report(report)
    assert f"({500 - len(carries)}/500 exactly right)" in text and "mistakes" in text
    first = report.failures[0]
    assert f"{first.a} + {first.b} = {first.predicted} ✗ (the answer is {first.expected})" in text


def test_evaluate_a_real_model_end_to_end():
    from gpt_reference.model import GPT, GPTConfig

    task = AdditionTask(n_digits=2)
    model = GPT(GPTConfig(block_size=task.block_size, vocab_size=10, n_layer=1, n_head=1, n_embd=8))
    report = evaluate(model, task, split="val")
    assert report.total == 500 and all(0 <= r.predicted <= 999 for r in report.results)
    x, y = task.get_batch("train", 8, torch.Generator().manual_seed(0), "cpu")
    _, loss = model(x, y)
    assert torch.isfinite(loss)
