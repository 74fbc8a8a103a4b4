"""Lesson 01's checks: correct implementations pass, every catalogued mistake is recognised by name when a learner
makes it, other wrong answers fail with a message that helps, and a named mistake's message shows no expected values.

The mutants below are written the way a learner would write them, independently of the mistake variants in
``autograder/checks/tokenization.py``: a mutant that is not named means the catalogue misses how the mistake looks.
"""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from lesson_contract import mistake_catalogue_tests, solution_notebook_tests
import regex
import tiktoken
import torch

from autograder import checks_for, run_check
from autograder.answer_key import answer_key
from autograder.core import run_probe
from gpt_reference import tokenizer as reference

CHECKS = checks_for("01_tokenization")
solution, test_solution_notebook_awards_every_check = solution_notebook_tests("01_tokenization", CHECKS)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
TIKTOKEN_GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def checks_of(target: str) -> list[str]:
    return [c.id for c in CHECKS if c.target == target]


# ---- correct implementations, as a learner would write them ---------------------------------------------------------


class CharTokenizer:
    def __init__(self, text):
        chars = sorted(list(set(text)))
        self.vocab_size = len(chars)
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}

    def encode(self, s):
        try:
            return [self.stoi[c] for c in s]
        except KeyError as e:
            raise ValueError(f"unknown character {e}") from None

    def decode(self, ids):
        return "".join(self.itos[i] for i in ids)


class CharTokenizerWithValueCheck(CharTokenizer):
    def encode(self, s):
        out = []
        for c in s:
            if c not in self.stoi:
                raise ValueError(f"{c!r} is not in the vocabulary")
            out.append(self.stoi[c])
        return out


def get_pair_counts(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def get_pair_counts_counter(ids):
    return Counter(zip(ids, ids[1:]))


def merge(ids, pair, idx):
    newids = []
    i = 0
    while i < len(ids):
        if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            newids.append(idx)
            i += 2
        else:
            newids.append(ids[i])
            i += 1
    return newids


def merge_with_skip_flag(ids, pair, new_id):
    out, skip = [], False
    for a, b in zip(ids, ids[1:] + [None]):
        if skip:
            skip = False
        elif (a, b) == pair:
            out.append(new_id)
            skip = True
        else:
            out.append(a)
    return out


def train_bpe(text, vocab_size):
    ids = list(text.encode("utf-8"))
    merges = {}
    for i in range(vocab_size - 256):
        stats = get_pair_counts(ids)
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        ids = merge(ids, pair, 256 + i)
        merges[pair] = 256 + i
    return merges


def train_bpe_sorted(text, vocab_size):
    ids = list(text.encode("utf-8"))
    merges = {}
    while len(merges) < vocab_size - 256 and len(ids) > 1:
        best = sorted(get_pair_counts_counter(ids).items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        merges[best] = 256 + len(merges)
        ids = merge_with_skip_flag(ids, best, merges[best])
    return merges


def encode(text, merges):
    tokens = list(text.encode("utf-8"))
    while len(tokens) >= 2:
        stats = get_pair_counts(tokens)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        tokens = merge(tokens, pair, merges[pair])
    return tokens


def encode_in_merge_order(text, merges):
    """Every merge once, in the order learned: the same ids as the lowest-rank loop, more slowly."""
    ids = list(text.encode("utf-8"))
    for pair, idx in merges.items():
        ids = merge(ids, pair, idx)
    return ids


def decode(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def decode_bytearray(ids, vocab):
    data = bytearray()
    for i in ids:
        data += vocab[i]
    return bytes(data).decode("utf-8", "replace")


def split_chunks(text):
    return regex.findall(GPT2_PATTERN, text)


def split_chunks_tiktoken_pattern(text):
    return regex.findall(TIKTOKEN_GPT2_PATTERN, text)


def train_bpe_chunked(text, vocab_size):
    chunks = [list(chunk.encode("utf-8")) for chunk in split_chunks(text)]
    merges = {}
    for i in range(vocab_size - 256):
        stats = {}
        for chunk in chunks:
            for pair in zip(chunk, chunk[1:]):
                stats[pair] = stats.get(pair, 0) + 1
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        chunks = [merge(chunk, pair, 256 + i) for chunk in chunks]
        merges[pair] = 256 + i
    return merges


def train_bpe_chunked_counter(text, vocab_size):
    return reference.train_bpe(text, vocab_size, GPT2_PATTERN)


def encode_chunked(text, merges):
    ids = []
    for chunk in split_chunks(text):
        ids.extend(encode(chunk, merges))
    return ids


def encode_with_special(text, merges, special_tokens, allowed_special=frozenset()):
    for token in special_tokens:
        if token in text and token not in allowed_special:
            raise ValueError(f"disallowed special token {token!r} in text")
    if not allowed_special:
        return encode_chunked(text, merges)
    pattern = "(" + "|".join(regex.escape(t) for t in allowed_special) + ")"
    ids = []
    for part in regex.split(pattern, text):
        if part in allowed_special:
            ids.append(special_tokens[part])
        elif part:
            ids.extend(encode_chunked(part, merges))
    return ids


def encode_with_special_tiktoken(text, merges, special_tokens, allowed_special=frozenset()):
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), i in merges.items():
        vocab[i] = vocab[a] + vocab[b]
    encoding = tiktoken.Encoding("mine", pat_str=GPT2_PATTERN, mergeable_ranks={t: i for i, t in vocab.items()},
                                 special_tokens=special_tokens)
    return encoding.encode(text, allowed_special=set(allowed_special))


CORRECT = {
    "CharTokenizer": [CharTokenizer, CharTokenizerWithValueCheck],
    "get_pair_counts": [get_pair_counts, get_pair_counts_counter],
    "merge": [merge, merge_with_skip_flag],
    "train_bpe": [train_bpe, train_bpe_sorted],
    "encode": [encode, encode_in_merge_order],
    "decode": [decode, decode_bytearray],
    "split_chunks": [split_chunks, split_chunks_tiktoken_pattern],
    "train_bpe_chunked": [train_bpe_chunked, train_bpe_chunked_counter],
    "encode_chunked": [encode_chunked],
    "encode_with_special": [encode_with_special, encode_with_special_tiktoken],
}


@pytest.mark.parametrize("check_id", [c.id for c in CHECKS])
def test_correct_implementations_pass(check_id):
    target = next(c.target for c in CHECKS if c.id == check_id)
    for implementation in CORRECT[target]:
        result = run_check(check_id, implementation)
        assert result.passed, f"{implementation.__name__}: {result.message}"
        assert result.points == result.max_points


def test_lesson_has_visible_and_hidden_checks_for_every_object():
    ids = {c.id for c in CHECKS}
    for name in ("char_tokenizer", "get_pair_counts", "merge", "train_bpe", "encode", "decode", "split_chunks",
                 "train_bpe_chunked", "encode_chunked", "encode_with_special"):
        assert {f"tokenization.{name}", f"tokenization.{name}.hidden"} <= ids


# ---- mutants: one per catalogued mistake ----------------------------------------------------------------------------


class CharFirstSeen(CharTokenizer):
    def __init__(self, text):
        chars = []
        for c in text:
            if c not in chars:
                chars.append(c)
        self.vocab_size = len(chars)
        self.stoi = {ch: i for i, ch in enumerate(chars)}
        self.itos = {i: ch for i, ch in enumerate(chars)}


class CharDropsUnknown(CharTokenizer):
    def encode(self, s):
        return [self.stoi[c] for c in s if c in self.stoi]


class CharKeyError(CharTokenizer):
    def encode(self, s):
        return [self.stoi[c] for c in s]


def counts_step_two(ids):
    counts = {}
    for i in range(0, len(ids) - 1, 2):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
    return counts


def counts_off_by_one(ids):
    counts = {}
    for i in range(len(ids) - 2):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
    return counts


def merge_no_skip(ids, pair, idx):
    newids = []
    for i in range(len(ids)):
        if i < len(ids) - 1 and (ids[i], ids[i + 1]) == pair:
            newids.append(idx)
        else:
            newids.append(ids[i])
    return newids


def merge_first(ids, pair, idx):
    ids = list(ids)
    i = 0
    while i < len(ids) - 1:
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            ids[i : i + 2] = [idx]
            break
        i += 1
    return ids


def merge_forgets_last(ids, pair, idx):
    newids, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            newids.append(idx)
            i += 2
        else:
            newids.append(ids[i])
            i += 1
    return newids


def train_with(choose=None, first_id=None, merge_fn=merge, merges_wanted=None, units=None):
    """A learner's train_bpe, with one line written differently."""

    def train(text, vocab_size):
        ids = list(text.encode("utf-8")) if units is None else units(text)
        idx = 256 if first_id is None else first_id(ids)
        merges = {}
        for _ in range(vocab_size - 256 if merges_wanted is None else merges_wanted(vocab_size)):
            stats = get_pair_counts(ids)
            if not stats:
                break
            pair = (choose or (lambda s: min(s, key=lambda p: (-s[p], p))))(stats)
            ids = merge_fn(ids, pair, idx)
            merges[pair] = idx
            idx += 1
        return merges

    return train


def encode_most_frequent(text, merges):
    ids = list(text.encode("utf-8"))
    while True:
        stats = get_pair_counts(ids)
        candidates = {p: n for p, n in stats.items() if p in merges}
        if not candidates:
            return ids
        pair = max(candidates, key=candidates.get)
        ids = merge(ids, pair, merges[pair])


def encode_first_found(text, merges):
    ids = list(text.encode("utf-8"))
    changed = True
    while changed:
        changed = False
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) in merges:
                ids = merge(ids, (ids[i], ids[i + 1]), merges[(ids[i], ids[i + 1])])
                changed = True
                break
    return ids


def encode_single_pass(text, merges):
    ids = list(text.encode("utf-8"))
    present = set(zip(ids, ids[1:]))
    for pair in sorted((p for p in present if p in merges), key=merges.get):
        ids = merge(ids, pair, merges[pair])
    return ids


def split_ascii(text):
    return re.findall(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?\d+| ?[^\sA-Za-z\d]+|\s+(?!\S)|\s+""", text)


def split_word_chars(text):
    return re.findall(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\w+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""", text)


def split_without_lookahead(text):
    return regex.findall(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+""", text)


def split_without_space(text):
    return regex.findall(r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""", text)


def train_chunked_joined(text, vocab_size):
    ids = [b for chunk in split_chunks(text) for b in chunk.encode("utf-8")]
    merges = {}
    for i in range(vocab_size - 256):
        stats = get_pair_counts(ids)
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        ids = merge(ids, pair, 256 + i)
        merges[pair] = 256 + i
    return merges


def train_chunked_set(text, vocab_size):
    chunks = [list(chunk.encode("utf-8")) for chunk in set(split_chunks(text))]
    merges = {}
    for i in range(vocab_size - 256):
        stats = Counter()
        for chunk in chunks:
            stats.update(zip(chunk, chunk[1:]))
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        chunks = [merge(chunk, pair, 256 + i) for chunk in chunks]
        merges[pair] = 256 + i
    return merges


def special_ignored(text, merges, special_tokens, allowed_special=frozenset()):
    return encode_chunked(text, merges)


def special_never_raises(text, merges, special_tokens, allowed_special=frozenset()):
    if not allowed_special:
        return encode_chunked(text, merges)
    ids = []
    for part in regex.split("(" + "|".join(map(regex.escape, allowed_special)) + ")", text):
        ids += [special_tokens[part]] if part in allowed_special else encode_chunked(part, merges)
    return ids


def special_all_allowed(text, merges, special_tokens, allowed_special=frozenset()):
    ids = []
    for part in regex.split("(" + "|".join(map(regex.escape, special_tokens)) + ")", text):
        ids += [special_tokens[part]] if part in special_tokens else encode_chunked(part, merges)
    return ids


def special_split_without_group(text, merges, special_tokens, allowed_special=frozenset()):
    for token in special_tokens:
        if token in text and token not in allowed_special:
            raise ValueError(token)
    if not allowed_special:
        return encode_chunked(text, merges)
    ids = []
    for part in regex.split("|".join(map(regex.escape, allowed_special)), text):
        ids += encode_chunked(part, merges)
    return ids


MUTANTS = {
    "CharTokenizer": {
        "unsorted vocabulary": CharFirstSeen,
        "unknown character silently dropped": CharDropsUnknown,
        "unknown character raises KeyError": CharKeyError,
    },
    "get_pair_counts": {"pairs counted without overlap": counts_step_two, "last pair missed": counts_off_by_one},
    "merge": {
        "overlapping occurrences merged": merge_no_skip,
        "only the first occurrence merged": merge_first,
        "last id dropped": merge_forgets_last,
    },
    "train_bpe": {
        "ties broken by first occurrence": train_with(choose=lambda stats: max(stats, key=stats.get)),
        "ties broken by the largest pair": train_with(
            choose=lambda stats: max(stats.items(), key=lambda kv: (kv[1], kv[0]))[0]),
        "new ids not starting at 256": train_with(first_id=lambda ids: max(ids) + 1),
        "vocab_size taken as the number of merges": train_with(merges_wanted=lambda vocab_size: vocab_size),
        "overlapping occurrences merged": train_with(merge_fn=merge_no_skip),
        "trained on characters, not bytes": train_with(units=lambda text: list(map(ord, text))),
    },
    "encode": {
        "merges applied by frequency instead of rank": encode_most_frequent,
        "leftmost mergeable pair first": encode_first_found,
        "pairs looked up only once": encode_single_pass,
    },
    "decode": {
        "tokens decoded one by one": lambda ids, vocab: "".join(vocab[i].decode("utf-8", "replace") for i in ids),
        "invalid bytes dropped": lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore"),
    },
    "split_chunks": {
        "ASCII-only letters and digits": split_ascii,
        "\\w used for letters": split_word_chars,
        "no \\s+(?!\\S) rule": split_without_lookahead,
        "words without their leading space": split_without_space,
    },
    "train_bpe_chunked": {
        "pairs counted across chunk boundaries": train_chunked_joined,
        "repeated chunks counted once": train_chunked_set,
    },
    "encode_chunked": {"merges applied across chunk boundaries": lambda text, merges: encode(text, merges)},
    "encode_with_special": {
        "special token split into ordinary bytes": special_ignored,
        "disallowed special token not refused": special_never_raises,
        "allowed_special ignored": special_all_allowed,
        "special tokens dropped by the split": special_split_without_group,
    },
}

(
    test_every_mistake_is_named,
    test_every_mutant_is_in_the_catalogue,
    test_each_catalogued_variant_is_named_as_itself,
    test_no_two_variants_agree,
) = mistake_catalogue_tests(CHECKS, MUTANTS)


def test_ascii_pattern_mistakes_are_caught_by_the_visible_probe_too():
    """A learner who pre-tokenizes with `re` and an ASCII pattern must hear it before the hidden tests."""
    for implementation in (split_ascii, split_word_chars):
        assert run_check("tokenization.split_chunks", implementation).mistake is not None


# ---- other wrong answers: a useful message, never a crash -----------------------------------------------------------


def raises_value_error(*args, **kwargs):
    raise ValueError("oops")


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def returning(value):
    return lambda *args, **kwargs: value


COMMON_WRONG = [
    (raises_value_error, "raised ValueError: oops"),
    (not_implemented, "not implemented yet"),
    (None, "is not defined"),
    (returning(None), "returned NoneType"),
]


class CharWithoutVocabSize(CharTokenizer):
    def __init__(self, text):
        super().__init__(text)
        del self.vocab_size


class CharReturnsTensor(CharTokenizer):
    def encode(self, s):
        return torch.tensor(super().encode(s), dtype=torch.float32)


@pytest.mark.parametrize(("target", "implementation", "expected_message"), [
    *[(target, implementation, message) for target in ("get_pair_counts", "merge", "train_bpe", "encode", "decode",
                                                       "split_chunks", "train_bpe_chunked", "encode_chunked",
                                                       "encode_with_special")
      for implementation, message in COMMON_WRONG],
    ("CharTokenizer", not_implemented, "not implemented yet"),
    ("CharTokenizer", CharWithoutVocabSize, "has no `vocab_size`"),
    ("CharTokenizer", CharReturnsTensor, "expected a list of int token ids"),
    ("get_pair_counts", lambda ids: list(zip(ids, ids[1:])), "expected a dict"),
    ("get_pair_counts", lambda ids: {f"{a},{b}": 1 for a, b in zip(ids, ids[1:])}, "expected pairs of ids"),
    ("merge", lambda ids, pair, new_id: tuple(ids), "first difference at position"),
    ("merge", lambda ids, pair, new_id: [float(i) for i in ids], "contains a float where an int was expected"),
    ("train_bpe", lambda text, vocab_size: list(train_bpe(text, vocab_size)), "expected a dict"),
    ("train_bpe", lambda text, vocab_size: {}, "missing (of"),
    ("encode", lambda text, merges: text.encode("utf-8"), "returned bytes; expected a list of int token ids"),
    ("encode", lambda text, merges: list(text.encode("utf-8")), "first difference at position"),
    ("decode", lambda ids, vocab: b"".join(vocab[i] for i in ids), "returned bytes; expected a str"),
    ("decode", lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8"), "UnicodeDecodeError"),
    ("split_chunks", lambda text: re.findall(GPT2_PATTERN, text), "the `regex` package"),
    ("split_chunks", lambda text: text.split(), "first difference at position"),
    ("split_chunks", lambda text: [list(text)], "expected a list of str chunks"),
    ("encode_chunked", lambda text, merges: [encode(w, merges) for w in split_chunks(text)],
     "merges) contains a list where an int was expected"),
    ("encode_with_special", lambda text, merges, special, allowed_special=(): encode_chunked(text, merges)[:-1],
     "first difference at position"),
])  # fmt: skip
def test_wrong_answers_fail_with_a_useful_message(target, implementation, expected_message):
    for check_id in checks_of(target):
        result = run_check(check_id, implementation)
        assert not result.passed and result.mistake is None, result.line()
        assert expected_message in " ".join(result.message.split()), result.message  # its lines are wrapped


def test_a_partly_right_answer_is_told_where_it_goes_wrong():
    def encode_empty_fails(text, merges):
        if not text:
            return [0]
        return encode(text, merges)

    result = run_check("tokenization.encode.hidden", encode_empty_fails)
    assert "right on: " in result.message and "an empty text has no tokens" in result.message


# ---- what messages must never do, and what checks must never touch --------------------------------------------------

NUMBER_LIST = re.compile(r"(-?\d+(\.\d+)?[,\s]+){4,}")


def test_messages_never_show_expected_values():
    for target, mutants in MUTANTS.items():
        for implementation in mutants.values():
            for check_id in checks_of(target):
                message = run_check(check_id, implementation).message
                assert "tensor(" not in message and not re.search(r"\[\s*-?\d", message), message
                assert not NUMBER_LIST.search(message), message


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    for check in CHECKS:
        run_check(check.id, CORRECT[check.target][0])
    assert torch.equal(torch.get_rng_state(), before)


# ---- the lesson's source notebook agrees with its checks ------------------------------------------------------------

NOTEBOOK = Path(__file__).parents[1] / "solutions" / "01_tokenization" / "01_tokenization.ipynb"


def test_the_notebook_imports_matplotlib_only_in_demo_cells():
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code" and "demo" not in cell["metadata"].get("tags", []):
            assert "matplotlib" not in "".join(cell["source"])


def test_probes_return_tensors_only():
    """The sandbox carries tensors back, nothing else."""
    for check in CHECKS:
        outputs = run_probe(check, CORRECT[check.target][0]).outputs
        assert outputs and all(isinstance(v, torch.Tensor) for v in outputs.values()), check.id


def test_the_reference_has_every_graded_object_under_the_lessons_name_and_signature(solution):
    """The answer key's objects are the checks' references, and take every argument the lesson's own do."""
    key = answer_key("01_tokenization")
    assert set(key) == {c.target for c in CHECKS}
    for check in CHECKS:
        assert check.reference is key[check.target], check.id
    for name, reference_object in key.items():
        lesson_parameters = inspect.signature(getattr(solution, name)).parameters
        reference_parameters = inspect.signature(reference_object).parameters
        assert list(reference_parameters)[: len(lesson_parameters)] == list(lesson_parameters), name
        assert all(p.default is not inspect.Parameter.empty or p.kind is inspect.Parameter.KEYWORD_ONLY
                   for p in list(reference_parameters.values())[len(lesson_parameters):]), name
