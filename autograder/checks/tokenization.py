"""Checks for lesson 01, tokenization: a character tokenizer, then byte-level BPE as GPT-2 does it — pair counts,
merges, training with GPT-2's tie-break, encoding by rank, decoding bytes, regex pre-tokenization and special
tokens.

Tokenizers return lists, strings and dicts, but probes return tensors (the sandbox carries only tensors back), so
every output is converted on the way out:

* token ids (a list of ints) → a 1-D int64 tensor (kind ``ids``, ``autograder.values``);
* text (a str) → the int64 tensor of its code points (kind ``text``);
* merges ``{(left, right): new_id}`` → an (N, 3) int64 tensor, rows in the dict's order (the order they were
  learned); pair counts ``{(left, right): count}`` → the same, rows sorted by pair (a count dict has no order)
  (kind ``pairs``);
* a list of chunks (strs) → their lengths (kind ``ids``), plus their text joined (kind ``text``);
* "did this raise, and was it a ValueError?" → two 0-d bool tensors.

Everything is compared exactly (atol = rtol = 0). The reference is ``gpt_reference.tokenizer``; each mistake is it
with one plausible error, and the tests make sure that on every probe no two mistakes, and no mistake and the
reference, give the same outputs. Probe inputs are small, so a naive, readable learner implementation is graded in
well under a second: speed is taught in the lesson, never graded by wall time.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache, partial

import regex
import torch

from gpt_reference.tokenizer import (
    ENDOFTEXT,
    CharTokenizer,
    Merges,
    build_vocab,
    decode,
    encode,
    encode_chunked,
    encode_with_special,
    get_pair_counts,
    merge,
    split_chunks,
    train_bpe,
    train_bpe_chunked,
)

from ..core import Mistake, Outputs, ProbeError
from ..probes import register_pair
from ..values import IDS, PAIRS, TEXT, ids_tensor, pairs_tensor, text_tensor

LESSON = "01_tokenization"
EXACT = dict(atol=0.0, rtol=0.0)


_pair = partial(register_pair, "tokenization", LESSON, tolerance=EXACT)


# ---- turning the learner's return values into tensors ------------------------------------------------------------


def _int(value, what: str) -> int:
    if isinstance(value, bool):
        raise ProbeError(f"{what} contains a bool where an int was expected")
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_floating_point:
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise ProbeError(f"{what} contains a {type(value).__name__} where an int was expected") from None


def _ids(value, what: str) -> torch.Tensor:
    """A list of token ids (or a 1-D integer tensor) as an int64 tensor."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 1 or value.dtype.is_floating_point:
            raise ProbeError(f"{what} returned a {value.dtype} tensor of shape {tuple(value.shape)}; expected a "
                             "list of int token ids")
        return value.long()
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a list of int token ids")
    return ids_tensor(_int(v, what) for v in value)


def _text(value, what: str) -> torch.Tensor:
    """A str as the tensor of its code points."""
    if isinstance(value, bytes):
        raise ProbeError(f"{what} returned bytes; expected a str: turn the joined bytes into text with "
                         ".decode('utf-8', errors='replace')")
    if not isinstance(value, str):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a str")
    return text_tensor(value)


def _pair_table(value, what: str, sort: bool) -> torch.Tensor:
    """A dict ``{(a, b): n}`` as an (N, 3) int64 tensor, in the dict's order or sorted by pair."""
    if not isinstance(value, dict):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a dict {{(left id, right id): int}}")
    rows = []
    for key, n in value.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ProbeError(f"{what} has the key {key!r}; expected pairs of ids, tuples (left id, right id)")
        rows.append((_int(key[0], what), _int(key[1], what), _int(n, what)))
    return pairs_tensor(sorted(rows) if sort else rows)


def _chunks(value, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of strs as (their lengths, their text joined)."""
    if not isinstance(value, list | tuple) or not all(isinstance(chunk, str) for chunk in value):
        raise ProbeError(f"{what} returned {type(value).__name__}; expected a list of str chunks")
    return ids_tensor(len(chunk) for chunk in value), text_tensor("".join(value))


def _raises(call: Callable[[], object]) -> tuple[torch.Tensor, torch.Tensor]:
    """(did ``call`` raise?, was it a ValueError?) as two 0-d bool tensors. NotImplementedError goes through."""
    try:
        call()
    except NotImplementedError:
        raise
    except ValueError:
        return torch.tensor(True), torch.tensor(True)
    except Exception:
        return torch.tensor(True), torch.tensor(False)
    return torch.tensor(False), torch.tensor(False)


# ---- CharTokenizer ------------------------------------------------------------------------------------------------


def _char_first_seen(text: str):
    """A CharTokenizer whose vocabulary is in order of first appearance, not sorted."""
    tokenizer = CharTokenizer(text)
    tokenizer.chars = list(dict.fromkeys(text))
    tokenizer.stoi = {c: i for i, c in enumerate(tokenizer.chars)}
    tokenizer.itos = dict(enumerate(tokenizer.chars))
    return tokenizer


class _CharDroppingUnknown(CharTokenizer):
    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text if c in self.stoi]


class _CharKeyError(CharTokenizer):
    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text]


CHAR_MISTAKES = (
    Mistake("unsorted vocabulary",
            "your ids follow the order in which characters first appear in the text; sort the distinct characters, "
            "so that the ids do not depend on that order (sorted(set(text)))", _char_first_seen),
    Mistake("unknown character silently dropped",
            "encoding a character that is not in the vocabulary skipped it: the text cannot be decoded back, and "
            "nobody is told. Raise a ValueError that names the character instead",
            _CharDroppingUnknown),
    Mistake("unknown character raises KeyError",
            "a plain dict lookup raises KeyError with just the character in it; catch it and raise a ValueError "
            "that says the character is not in the vocabulary", _CharKeyError),
)


def _char_parts(cls, text: str, encode: str, decode: list[int], unknown: str) -> Outputs:
    tokenizer = cls(text)
    vocab_size = getattr(tokenizer, "vocab_size", None)
    if vocab_size is None:
        raise ProbeError("your CharTokenizer has no `vocab_size`: set it in __init__ (the number of distinct "
                         "characters)")
    ids = tokenizer.encode(encode)
    raised, value_error = _raises(lambda: tokenizer.encode(unknown))
    return {
        "vocab_size": torch.tensor(_int(vocab_size, "CharTokenizer.vocab_size")),
        "encode": _ids(ids, f"encode({encode!r})"),
        "decode": _text(tokenizer.decode(list(decode)), f"decode({decode})"),
        "round_trip": _text(tokenizer.decode(list(ids)), "decode(encode(text))"),
        "unknown_raises": raised,
        "unknown_value_error": value_error,
    }


def _probe_char(cls) -> Outputs:
    return _char_parts(cls, "hello world, hi!\n", encode="hello world", decode=[4, 1, 7, 6, 3],
                       unknown="hello, Bob?")


def _probe_char_hidden(cls) -> Outputs:
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll: Speak, speak. Ünïcödé 字!"
    outputs = _char_parts(cls, text, encode="Speak, Citizen: Ünï字\n", decode=list(range(20, 0, -3)),
                          unknown="speak, 1 more")
    single = cls("aaa")
    outputs["single_char_vocab"] = _ids(single.encode("a"), "encode('a')")
    outputs["empty_text"] = _ids(single.encode(""), "encode('')")
    outputs["empty_ids"] = _text(single.decode([]), "decode([])")
    return outputs


CHAR_HINTS = {
    "vocab_size": "vocab_size is the number of distinct characters of the training text",
    "unknown_raises": "encoding a character that is not in the vocabulary must raise an error, not skip it",
    "unknown_value_error": "the error for an unknown character must be a ValueError",
}

_pair("char_tokenizer", "CharTokenizer", CharTokenizer, (_probe_char, _probe_char_hidden),
      (1, 1), "sorted character vocabulary, encode/decode, ValueError on an unknown character", CHAR_MISTAKES,
      CHAR_HINTS, kinds={"encode": IDS, "decode": TEXT, "round_trip": TEXT, "single_char_vocab": IDS,
                         "empty_text": IDS, "empty_ids": TEXT},
      inputs={"vocab_size": "CharTokenizer('hello world, hi!\\n').vocab_size",
              "encode": "encode('hello world'), trained on 'hello world, hi!\\n'",
              "decode": "decode([4, 1, 7, 6, 3]), trained on 'hello world, hi!\\n'",
              "round_trip": "decode(encode('hello world'))", "unknown": "encode('hello, Bob?'): 'B', ',' and '?' are "
              "not in the vocabulary"},
      cases={"vocab_size": "a text with non-ASCII letters and '字'", "encode": "encoding text with non-ASCII letters",
             "decode": "decoding a list of ids in descending order", "round_trip": "decode(encode(text)), non-ASCII",
             "unknown": "a character outside the vocabulary", "single_char_vocab": "a one-character vocabulary",
             "empty_text": "encoding ''", "empty_ids": "decoding []"})


# ---- get_pair_counts ------------------------------------------------------------------------------------------------


def _counts_without_overlap(ids: list[int]) -> dict[tuple[int, int], int]:
    return dict(Counter(zip(ids[::2], ids[1::2])))


def _counts_missing_last(ids: list[int]) -> dict[tuple[int, int], int]:
    return dict(Counter(zip(ids[:-1], ids[1:-1])))


PAIR_COUNT_MISTAKES = (
    Mistake("pairs counted without overlap",
            "you count the pairs (0, 1), (2, 3), …; every position i starts a pair (ids[i], ids[i + 1]), so "
            "the ids 7, 7, 7 hold the pair (7, 7) twice", _counts_without_overlap),
    Mistake("last pair missed",
            "an off-by-one: the last two ids form a pair too (there are len(ids) - 1 pairs)", _counts_missing_last),
)


def _counts(fn, ids: list[int]) -> torch.Tensor:
    return _pair_table(fn(list(ids)), f"get_pair_counts({ids if len(ids) < 12 else '[…]'})", sort=True)


def _probe_pair_counts(fn) -> Outputs:
    return {"example": _counts(fn, [1, 2, 3, 1, 2]), "repeats": _counts(fn, [7, 7, 7]),
            "ends_with_pair": _counts(fn, [4, 5, 6, 4, 5])}


def _probe_pair_counts_hidden(fn) -> Outputs:
    generator = torch.Generator().manual_seed(10)
    long = torch.randint(0, 5, (200,), generator=generator).tolist()
    return {"empty": _counts(fn, []), "single": _counts(fn, [9]), "four_same": _counts(fn, [3, 3, 3, 3]),
            "long": _counts(fn, long), "large_ids": _counts(fn, [300, 256, 300, 256, 97])}


_pair("get_pair_counts", "get_pair_counts", get_pair_counts, (_probe_pair_counts, _probe_pair_counts_hidden),
      (1, 1), "counts of adjacent pairs (overlapping windows)", PAIR_COUNT_MISTAKES,
      {"empty": "an empty list (or a single id) has no pairs: return an empty dict"}, kinds={"*": PAIRS},
      inputs={"example": "get_pair_counts([1, 2, 3, 1, 2])", "repeats": "get_pair_counts([7, 7, 7])",
              "ends_with_pair": "get_pair_counts([4, 5, 6, 4, 5])"},
      cases={"empty": "an empty list", "single": "a single id", "four_same": "four equal ids in a row",
             "long": "200 random ids", "large_ids": "ids above 255"})


# ---- merge --------------------------------------------------------------------------------------------------------


def _merge_overlapping(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1  # also after a merge: the pair's second id is looked at again, and may start another pair
    return out


def _merge_first_only(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


def _merge_dropping_last(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


MERGE_MISTAKES = (
    Mistake("overlapping occurrences merged",
            "after merging ids[i] and ids[i + 1], continue at i + 2: the second id is used up, it is neither "
            "copied nor the start of another pair, so merging (7, 7) in 7, 7, 7 gives new_id, 7", _merge_overlapping),
    Mistake("only the first occurrence merged",
            "replace every occurrence of the pair, scanning the whole list left to right", _merge_first_only),
    Mistake("last id dropped",
            "when the scan reaches the last id there is no pair left to test, but the id itself must still be "
            "copied to the output", _merge_dropping_last),
)


def _merged(fn, ids: list[int], pair: tuple[int, int], new_id: int = 256) -> torch.Tensor:
    return _ids(fn(list(ids), pair, new_id), f"merge({ids if len(ids) < 12 else '[…]'}, {pair}, {new_id})")


def _probe_merge(fn) -> Outputs:
    return {"example": _merged(fn, [5, 6, 7, 5, 6], (5, 6)), "aaa": _merged(fn, [7, 7, 7], (7, 7)),
            "absent": _merged(fn, [1, 2, 3], (3, 1)), "pair_inside": _merged(fn, [1, 2, 3, 4], (2, 3))}


def _probe_merge_hidden(fn) -> Outputs:
    generator = torch.Generator().manual_seed(11)
    long = torch.randint(0, 3, (100,), generator=generator).tolist()
    return {"four_same": _merged(fn, [7, 7, 7, 7], (7, 7)), "five_same": _merged(fn, [7, 7, 7, 7, 7], (7, 7), 300),
            "empty": _merged(fn, [], (1, 2)), "single": _merged(fn, [1], (1, 2)), "long": _merged(fn, long, (1, 1)),
            "merged_ids": _merged(fn, [256, 258, 256, 258, 256], (258, 256), 300)}


_pair("merge", "merge", merge, (_probe_merge, _probe_merge_hidden), (1, 1),
      "replace a pair by a new id, left to right, without overlaps", MERGE_MISTAKES,
      {"aaa": "merging (7, 7) in 7, 7, 7: merge left to right, and an id that was merged cannot be reused",
       "empty": "an empty list stays empty", "single": "a single id has no pairs: return it unchanged"},
      kinds={"*": IDS},
      inputs={"example": "merge([5, 6, 7, 5, 6], (5, 6), 256)", "aaa": "merge([7, 7, 7], (7, 7), 256)",
              "absent": "merge([1, 2, 3], (3, 1), 256)", "pair_inside": "merge([1, 2, 3, 4], (2, 3), 256)"},
      cases={"four_same": "four equal ids, their pair merged", "five_same": "five equal ids, their pair merged",
             "empty": "an empty list", "single": "a single id", "long": "100 random ids",
             "merged_ids": "ids above 255, merged again"})


# ---- train_bpe (no pre-tokenization: the whole text is one sequence of bytes) -----------------------------------


def _naive_train(text: str, vocab_size: int, *, choose=None, next_id=None, merge_fn=merge,
                 characters: bool = False) -> Merges:
    """Training as a learner writes it, with hooks for the mistakes: which pair wins, which id it gets, what the
    text is split into."""
    ids = [ord(c) for c in text] if characters else list(text.encode("utf-8"))
    choose = choose or (lambda counts: min(counts, key=lambda p: (-counts[p], p)))
    new_id = 256 if next_id is None else next_id(ids)
    merges = {}
    while len(merges) < vocab_size - 256:
        counts = get_pair_counts(ids)
        if not counts:
            break
        pair = choose(counts)
        ids = merge_fn(ids, pair, new_id)
        merges[pair] = new_id
        new_id += 1
    return merges


TRAIN_MISTAKES = (
    Mistake("ties broken by first occurrence",
            "several pairs often share the highest count. max(counts, key=counts.get) returns the first one in the "
            "dict, i.e. the one seen first in the text; this course (like gpt_reference) breaks ties by the "
            "smallest pair: min(counts, key=lambda p: (-counts[p], p))",
            partial(_naive_train, choose=lambda counts: max(counts, key=counts.get))),
    Mistake("ties broken by the largest pair",
            "several pairs often share the highest count; break ties by the smallest pair (first id, then second), "
            "e.g. min(counts, key=lambda p: (-counts[p], p))",
            partial(_naive_train, choose=lambda counts: max(counts, key=lambda p: (counts[p], p)))),
    Mistake("new ids not starting at 256",
            "ids 0..255 are the 256 possible bytes, whether or not the text uses them all: the first merge "
            "creates id 256, the next 257, and so on", partial(_naive_train, next_id=lambda ids: max(ids) + 1)),
    Mistake("vocab_size taken as the number of merges",
            "the vocabulary holds the 256 bytes plus one id per merge, so training makes vocab_size - 256 merges",
            lambda text, vocab_size: train_bpe(text, vocab_size + 256)),
    Mistake("overlapping occurrences merged",
            "your training merges overlapping occurrences of a pair: fix `merge` first (its own check "
            "says more)", partial(_naive_train, merge_fn=_merge_overlapping)),
    Mistake("trained on characters, not bytes",
            "byte-level BPE starts from the UTF-8 bytes of the text, list(text.encode('utf-8')): 'é' is two bytes, "
            "'字' three, and ord(c) of a character can be above 255, where the new ids start",
            partial(_naive_train, characters=True)),
)


def _trained(fn, text: str, vocab_size: int) -> torch.Tensor:
    shown = text if len(text) < 30 else text[:20] + "…"
    return _pair_table(fn(text, vocab_size), f"train_bpe({shown!r}, {vocab_size})", sort=False)


def _probe_train(fn) -> Outputs:
    return {
        "classic": _trained(fn, "aaabdaaabac", 259),
        "ties": _trained(fn, "zyzy xwxw abab dcdc", 262),
        "sentence": _trained(fn, "the cat sat on the mat, the rat sat on the hat", 270),
        "accents": _trained(fn, "crème brûlée, crème", 262),
    }


def _probe_train_hidden(fn) -> Outputs:
    return {
        "non_ascii": _trained(fn, "héllo wörld, héllo wörld! ünïcödé 字字", 275),
        "runs_out": _trained(fn, "abcab", 300),
        "no_merges": _trained(fn, "hello", 256),
        "long_runs": _trained(fn, "aaaaaaaa bbbbbb aaaa", 266),
    }


_pair("train_bpe", "train_bpe", train_bpe, (_probe_train, _probe_train_hidden), (2, 2),
      "byte-level BPE training: vocab_size - 256 merges, ids from 256, ties → smallest pair", TRAIN_MISTAKES,
      {"runs_out": "when no pair is left (the whole text is one token), stop early and return the merges so far",
       "no_merges": "vocab_size 256 means no merges at all: return an empty dict"},
      kinds={"*": PAIRS},
      inputs={"classic": "train_bpe('aaabdaaabac', 259)", "ties": "train_bpe('zyzy xwxw abab dcdc', 262)",
              "sentence": "train_bpe('the cat sat on the mat, the rat sat on the hat', 270)",
              "accents": "train_bpe('crème brûlée, crème', 262)"},
      cases={"non_ascii": "a text with accented letters and '字' (several bytes each)",
             "runs_out": "a vocab_size larger than the text allows (it runs out of pairs)",
             "no_merges": "vocab_size 256", "long_runs": "long runs of one letter"})


# ---- encode (no pre-tokenization) -----------------------------------------------------------------------------------


def _encode_by_frequency(text: str, merges: Merges) -> list[int]:
    ids = list(text.encode("utf-8"))
    while True:
        counts = get_pair_counts(ids)
        known = [p for p in counts if p in merges]
        if not known:
            return ids
        pair = max(known, key=counts.get)
        ids = merge(ids, pair, merges[pair])


def _encode_leftmost(text: str, merges: Merges) -> list[int]:
    ids = list(text.encode("utf-8"))
    while True:
        pair = next((p for p in zip(ids, ids[1:]) if p in merges), None)
        if pair is None:
            return ids
        ids = merge(ids, pair, merges[pair])


def _encode_one_pass(text: str, merges: Merges) -> list[int]:
    ids = list(text.encode("utf-8"))
    for pair in sorted(get_pair_counts(ids), key=lambda p: merges.get(p, float("inf"))):
        if pair in merges:
            ids = merge(ids, pair, merges[pair])
    return ids


ENCODE_MISTAKES = (
    Mistake("merges applied by frequency instead of rank",
            "encoding replays training: among the pairs present, merge the one that was learned first (the lowest "
            "new id), whatever its count in this text", _encode_by_frequency),
    Mistake("leftmost mergeable pair first",
            "the position of a pair in the text does not matter: merge the pair that was learned first (the lowest "
            "new id) everywhere, then look again", _encode_leftmost),
    Mistake("pairs looked up only once",
            "a merge creates new pairs (with the new id) that may have merges too: recount the pairs after every "
            "merge, until none of them has a merge", _encode_one_pass),
)


@lru_cache(maxsize=None)
def _merges_of(text: str, vocab_size: int, chunked: bool) -> tuple[tuple[tuple[int, int], int], ...]:
    """Reference merges for the probes, trained once (returned as a tuple, copied into a fresh dict per call)."""
    return tuple((train_bpe_chunked if chunked else train_bpe)(text, vocab_size).items())


TRAIN_TEXT = ("the cat sat on the mat. the rat sat on the hat! that cat, that rat: they sat and sat. "
              "café crème, café noir, crème brûlée.")
SHAKESPEARE = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n")


def _encoded(fn, text: str, merges, name: str = "encode") -> torch.Tensor:
    shown = text if len(text) < 30 else text[:20] + "…"
    return _ids(fn(text, dict(merges)), f"{name}({shown!r}, merges)")


def _probe_encode(fn) -> Outputs:
    merges = _merges_of(TRAIN_TEXT, 300, False)
    return {
        "rank_not_frequency": _encoded(fn, "abcbcbc", {(97, 98): 256, (98, 99): 257}),
        "chained_merges": _encoded(fn, "abcd", {(97, 98): 256, (256, 99): 257, (257, 100): 258}),
        "training_text": _encoded(fn, TRAIN_TEXT, merges),
        "new_text": _encoded(fn, "that hat sat on a mat; the cat ate crème", merges),
    }


def _probe_encode_hidden(fn) -> Outputs:
    merges = _merges_of(SHAKESPEARE, 320, False)
    return {
        "empty": _encoded(fn, "", merges),
        "one_char": _encoded(fn, "F", merges),
        "no_merges": _encoded(fn, "hello", {}),
        "shakespeare": _encoded(fn, "Before we speak, hear me: all are resolved to famish. Ünïcödé 字", merges),
        "leftmost_is_not_first": _encoded(fn, "xyzyz", {(121, 122): 256, (120, 121): 257, (256, 256): 258}),
        "frequent_is_not_first": _encoded(fn, "xyxyxyz", {(121, 122): 256, (120, 121): 257}),
    }


_pair("encode", "encode", encode, (_probe_encode, _probe_encode_hidden), (2, 1),
      "apply merges to a text's bytes, lowest rank (earliest learned) first", ENCODE_MISTAKES,
      {"rank_not_frequency": "merge the pair that was learned first (lowest new id), not the most frequent one",
       "chained_merges": "a merge can create a pair that another merge joins: keep going until no pair has a merge",
       "empty": "an empty text has no tokens: return []",
       "no_merges": "with no merges the ids are the text's UTF-8 bytes"},
      kinds={"*": IDS},
      inputs={"rank_not_frequency": "encode('abcbcbc', {(97, 98): 256, (98, 99): 257})",
              "chained_merges": "encode('abcd', {(97, 98): 256, (256, 99): 257, (257, 100): 258})",
              "training_text": "encode(the training text, its 44 merges)",
              "new_text": "encode('that hat sat on a mat; the cat ate crème', the same merges)"},
      cases={"empty": "an empty text", "one_char": "a one-character text", "no_merges": "no merges at all",
             "shakespeare": "a text with non-ASCII characters and a merge table from another text",
             "leftmost_is_not_first": "a pair learned first that is not the leftmost",
             "frequent_is_not_first": "a frequent pair learned after a rarer one"})


# ---- decode ---------------------------------------------------------------------------------------------------------


DECODE_MISTAKES = (
    Mistake("tokens decoded one by one",
            "a token may hold part of a character (é is two bytes, an emoji four): join the bytes of all tokens "
            "first, then decode once",
            lambda ids, vocab: "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)),
    Mistake("invalid bytes dropped",
            "errors='ignore' silently removes bytes that are not valid UTF-8; use errors='replace', which shows "
            "them as '\ufffd'",
            lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")),
)


def _decoded(fn, ids: list[int], merges) -> torch.Tensor:
    what = f"decode({ids if len(ids) < 12 else '[…]'}, vocab)"
    try:
        text = fn(list(ids), build_vocab(dict(merges)))
    except UnicodeDecodeError as e:
        raise ProbeError(f"{what} raised UnicodeDecodeError ({e.reason}): a model can generate any ids, so decode "
                         "the joined bytes with errors='replace'") from None
    return _text(text, what)


def _probe_decode(fn) -> Outputs:
    merges = _merges_of(TRAIN_TEXT, 300, False)
    return {
        "merged_tokens": _decoded(fn, encode("the cat sat on the mat", dict(merges)), merges),
        "split_character": _decoded(fn, list("café €".encode("utf-8")), merges),
        "invalid_bytes": _decoded(fn, [104, 105, 255, 33], merges),
    }


def _probe_decode_hidden(fn) -> Outputs:
    merges = _merges_of(TRAIN_TEXT + " 字字字 🙂🙂", 320, False)
    return {
        "empty": _decoded(fn, [], merges),
        "emoji_bytes": _decoded(fn, list("ok 🙂!".encode("utf-8")), merges),
        "partial_tokens": _decoded(fn, encode("crème 字 🙂", dict(merges)), merges),
        "truncated_character": _decoded(fn, list("字".encode("utf-8"))[:2], merges),
    }


_pair("decode", "decode", decode, (_probe_decode, _probe_decode_hidden), (1, 1),
      "join the tokens' bytes, then decode UTF-8 with errors='replace'", DECODE_MISTAKES,
      {"empty": "no ids decode to the empty string"}, kinds={"*": TEXT},
      inputs={"merged_tokens": "decode(encode('the cat sat on the mat'), vocab)",
              "split_character": "decode(list('café €'.encode('utf-8')), vocab)",
              "invalid_bytes": "decode([104, 105, 255, 33], vocab): byte 255 is not valid UTF-8"},
      cases={"empty": "no ids", "emoji_bytes": "an emoji, one byte per id",
             "partial_tokens": "tokens that hold parts of characters",
             "truncated_character": "the first two of a character's three bytes"})


# ---- split_chunks: GPT-2's pre-tokenization -------------------------------------------------------------------------


def _split_with(pattern: str) -> Callable[[str], list[str]]:
    return partial(split_chunks, pattern=pattern)


SPLIT_MISTAKES = (
    Mistake("ASCII-only letters and digits",
            "a-z, A-Z and 0-9 only know the English alphabet and digits: 'café' loses its 'é' to another chunk "
            "and '字' is not a letter. Use \\p{L} and \\p{N} (any letter, any number), which need the `regex` "
            "package: import regex; regex.findall(pattern, text)",
            _split_with(r"'s|'t|'re|'ve|'m|'ll|'d| ?[a-zA-Z]+| ?[0-9]+| ?[^\sa-zA-Z0-9]+|\s+(?!\S)|\s+")),
    Mistake("\\w used for letters",
            "\\w matches letters, but also digits and the underscore, so 'x2' and 'snake_case' stay one chunk: "
            "use \\p{L} for letters and \\p{N} for numbers (with the `regex` package)",
            _split_with(r"'s|'t|'re|'ve|'m|'ll|'d| ?\w+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+")),
    Mistake("no \\s+(?!\\S) rule",
            "before a word, a run of spaces must leave its last space to the word (' world' is the common "
            "token): add \\s+(?!\\S) before the plain \\s+",
            _split_with(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+")),
    Mistake("words without their leading space",
            "GPT-2 keeps a word's leading space with it (' world', not ' ' and 'world'): start the letter, number "
            "and symbol alternatives with an optional space ' ?'",
            _split_with(r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")),
)


def _split(fn, text: str, name: str) -> Outputs:
    shown = text if len(text) < 30 else text[:20] + "…"
    try:
        lengths, joined = _chunks(fn(text), f"split_chunks({shown!r})")
    except re.error as e:
        raise ProbeError(f"the pattern does not compile with Python's `re` ({e}): \\p{{L}} and \\p{{N}} need the "
                         "`regex` package (import regex; regex.findall(pattern, text))") from None
    return {f"{name}_lengths": lengths, f"{name}_text": joined}


def _probe_split(fn) -> Outputs:
    return {**_split(fn, "Hello world! It's 2024, isn't it?", "english"),
            **_split(fn, "Café naïve 字 x2 snake_case", "non_ascii"),
            **_split(fn, "one   two\n\nthree  ", "whitespace")}


def _probe_split_hidden(fn) -> Outputs:
    return {**_split(fn, "", "empty"),
            **_split(fn, "I'll say we've 3.14159 reasons; you'd agree?!", "contractions"),
            **_split(fn, "Ünïcödé  数字123abc\t\ttabs   🙂🙂 end ", "mixed"),
            **_split(fn, "    indented\n    code_block(x_1)\n", "code")}


_pair("split_chunks", "split_chunks", split_chunks, (_probe_split, _probe_split_hidden), (1, 1),
      "GPT-2's regex pre-tokenization (regex package, \\p{L}, \\p{N})", SPLIT_MISTAKES,
      {"empty_lengths": "an empty text has no chunks: return []"}, kinds={"lengths": IDS, "text": TEXT},
      inputs={"english": "split_chunks(\"Hello world! It's 2024, isn't it?\"): the chunks' lengths, their text",
              "non_ascii": "split_chunks('Café naïve 字 x2 snake_case'): the chunks' lengths, their text",
              "whitespace": "split_chunks('one   two\\n\\nthree  '): the chunks' lengths, their text"},
      cases={"empty": "an empty text", "contractions": "contractions and a decimal number",
             "mixed": "non-Latin letters, digits, tabs and emoji", "code": "indented code"})


# ---- train_bpe_chunked ----------------------------------------------------------------------------------------------


def _train_distinct_chunks(text: str, vocab_size: int) -> Merges:
    """Chunked training on each distinct chunk once, whatever its number of occurrences."""
    words = [list(chunk.encode("utf-8")) for chunk in dict.fromkeys(split_chunks(text))]
    merges = {}
    while len(merges) < vocab_size - 256:
        counts = {}
        for word in words:
            get_pair_counts(word, counts)
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges[pair] = 256 + len(merges)
        words = [merge(word, pair, merges[pair]) for word in words]
    return merges


TRAIN_CHUNKED_MISTAKES = (
    Mistake("pairs counted across chunk boundaries",
            "your merges span chunks: count pairs inside each chunk separately (a list of ids per chunk) and add "
            "the counts up; never join the chunks' ids into one list", train_bpe),
    Mistake("repeated chunks counted once",
            "a chunk that occurs n times contributes its pairs n times: keep the count of each distinct chunk "
            "(collections.Counter), not just a set of them", _train_distinct_chunks),
)


def _probe_train_chunked(fn) -> Outputs:
    return {"sentence": _trained(fn, "the cat sat on the mat. the rat ate the hat. that is that!", 275),
            "spaces_and_digits": _trained(fn, "a1 a1 a1   b2 b2   c3.c3.c3", 265)}


def _probe_train_chunked_hidden(fn) -> Outputs:
    return {"shakespeare": _trained(fn, SHAKESPEARE, 300),
            "non_ascii": _trained(fn, "naïve café, naïve café; 字字 字字! it's it's", 280),
            "runs_out": _trained(fn, "ab ab", 300)}


_pair("train_bpe_chunked", "train_bpe_chunked", train_bpe_chunked,
      (_probe_train_chunked, _probe_train_chunked_hidden), (1, 1),
      "BPE training within split_chunks' chunks: no merge crosses a chunk boundary", TRAIN_CHUNKED_MISTAKES,
      {"runs_out": "when every chunk has become one token, no pair is left: stop and return the merges so far"},
      kinds={"*": PAIRS},
      inputs={"sentence": "train_bpe_chunked('the cat sat on the mat. the rat ate the hat. that is that!', 275)",
              "spaces_and_digits": "train_bpe_chunked('a1 a1 a1   b2 b2   c3.c3.c3', 265)"},
      cases={"shakespeare": "a few lines of Shakespeare", "non_ascii": "non-ASCII words and contractions",
             "runs_out": "a vocab_size larger than the text allows (it runs out of pairs)"})


# ---- encode_chunked -------------------------------------------------------------------------------------------------


ENCODE_CHUNKED_MISTAKES = (
    Mistake("merges applied across chunk boundaries",
            "encode each chunk of split_chunks(text) on its own and concatenate the results: a merge must never "
            "join the end of one chunk to the start of the next", encode),
)


def _encoded_chunked(fn, text: str, merges) -> torch.Tensor:
    return _encoded(fn, text, merges, name="encode_chunked")


def _probe_encode_chunked(fn) -> Outputs:
    text = "the cat sat on the hat."
    return {"chunked_merges": _encoded_chunked(fn, text, _merges_of(TRAIN_TEXT, 300, True)),
            "unchunked_merges": _encoded_chunked(fn, text, _merges_of(TRAIN_TEXT, 300, False))}


def _probe_encode_chunked_hidden(fn) -> Outputs:
    merges = _merges_of(SHAKESPEARE, 320, False)
    return {"empty": _encoded_chunked(fn, "", merges),
            "shakespeare": _encoded_chunked(fn, "Speak, citizen:   we are resolved.\n\nAll: famish?", merges),
            "non_ascii": _encoded_chunked(fn, "café crème... brûlée!", _merges_of(TRAIN_TEXT, 300, True))}


_pair("encode_chunked", "encode_chunked", encode_chunked,
      (_probe_encode_chunked, _probe_encode_chunked_hidden), (1, 1),
      "encode each chunk of split_chunks(text) with the merges, then concatenate", ENCODE_CHUNKED_MISTAKES,
      {"empty": "an empty text has no tokens: return []"}, kinds={"*": IDS},
      inputs={"chunked_merges": "encode_chunked('the cat sat on the hat.', merges trained in chunks)",
              "unchunked_merges": "encode_chunked('the cat sat on the hat.', merges trained across chunks)"},
      cases={"empty": "an empty text", "shakespeare": "punctuation, runs of spaces and newlines",
             "non_ascii": "accented words and an ellipsis"})


# ---- encode_with_special ------------------------------------------------------------------------------------------


def _special_as_text(text, merges, special_tokens, allowed_special=frozenset()) -> list[int]:
    return encode_chunked(text, merges)


def _special_never_refused(text, merges, special_tokens, allowed_special=frozenset()) -> list[int]:
    allowed = {s: i for s, i in special_tokens.items() if s in allowed_special}
    return encode_with_special(text, merges, allowed, allowed_special)


def _special_allowed_ignored(text, merges, special_tokens, allowed_special=frozenset()) -> list[int]:
    return encode_with_special(text, merges, special_tokens, allowed_special=special_tokens)


def _special_dropped(text, merges, special_tokens, allowed_special=frozenset()) -> list[int]:
    encode_with_special(text, merges, special_tokens, allowed_special)  # refuses what the reference refuses
    allowed = sorted(set(allowed_special), key=len, reverse=True)
    if not allowed:
        return encode_chunked(text, merges)
    parts = regex.split("|".join(regex.escape(s) for s in allowed), text)
    return [i for part in parts for i in encode_chunked(part, merges)]


SPECIAL_MISTAKES = (
    Mistake("special token split into ordinary bytes",
            "'<|endoftext|>' came out as the tokens of its 13 characters: cut the text at the allowed special "
            "tokens first, give each its own id, and encode only the text between them", _special_as_text),
    Mistake("disallowed special token not refused",
            "text that contains a special token which is not in allowed_special must raise a ValueError (as "
            "tiktoken does): text from users must not be able to insert <|endoftext|> by accident",
            _special_never_refused),
    Mistake("allowed_special ignored",
            "only the special tokens in allowed_special become their id; any other special token found in the text "
            "is an error (ValueError)", _special_allowed_ignored),
    Mistake("special tokens dropped by the split",
            "regex.split(pattern, text) drops the separators unless the pattern is in a capturing group: split "
            "with '(' + ... + ')' so the special tokens stay in the list, then give each its id", _special_dropped),
)


def _special_parts(fn, name: str, text: str, merges, special_tokens: dict[str, int], allowed,
                   refused: bool = False) -> Outputs:
    """The ids of ``text``; for a text the reference refuses, also whether the learner's function raised, and what."""
    shown = text if len(text) < 30 else text[:20] + "…"
    what = f"encode_with_special({shown!r}, merges, special_tokens, allowed_special={set(allowed) or 'set()'})"
    call = partial(fn, text, dict(merges), dict(special_tokens), allowed_special=set(allowed))
    if not refused:
        return {f"{name}_ids": _ids(call(), what)}
    returned = []
    raised, value_error = _raises(lambda: returned.append(call()))
    ids = _ids(returned[0], what) if returned else torch.zeros(0, dtype=torch.int64)
    return {f"{name}_ids": ids, f"{name}_raises": raised, f"{name}_value_error": value_error}


def _probe_special(fn) -> Outputs:
    merges = _merges_of(TRAIN_TEXT, 300, True)
    special = {ENDOFTEXT: 256 + len(merges)}
    text = f"the cat sat.{ENDOFTEXT}the rat sat."
    return {**_special_parts(fn, "plain", "the cat sat on the hat.", merges, special, set()),
            **_special_parts(fn, "allowed", text, merges, special, {ENDOFTEXT}),
            **_special_parts(fn, "not_allowed", text, merges, special, set(), refused=True)}


def _probe_special_hidden(fn) -> Outputs:
    merges = _merges_of(SHAKESPEARE, 300, True)
    special = {ENDOFTEXT: 256 + len(merges), "<|pad|>": 257 + len(merges)}
    both = f"{ENDOFTEXT}All:{ENDOFTEXT}{ENDOFTEXT} speak<|pad|>"
    return {
        **_special_parts(fn, "both_allowed", both, merges, special, {ENDOFTEXT, "<|pad|>"}),
        **_special_parts(fn, "one_not_allowed", both, merges, special, {ENDOFTEXT}, refused=True),
        **_special_parts(fn, "other_absent", f"First Citizen:{ENDOFTEXT}", merges, special, {ENDOFTEXT}),
        **_special_parts(fn, "only_special", ENDOFTEXT, merges, special, {ENDOFTEXT}),
    }


_pair("encode_with_special", "encode_with_special", encode_with_special,
      (_probe_special, _probe_special_hidden), (1, 1),
      "special tokens: allowed ones get their id, others in the text raise ValueError", SPECIAL_MISTAKES,
      {"allowed_ids": "an allowed special token becomes its single id from special_tokens",
       "not_allowed_raises": "a special token in the text that is not allowed must raise an error",
       "not_allowed_value_error": "the error for a special token that is not allowed must be a ValueError",
       "one_not_allowed_raises": "a special token in the text that is not in allowed_special must raise, even when "
                                 "another one is allowed"},
      kinds={"plain_ids": IDS, "allowed_ids": IDS, "not_allowed_ids": IDS, "both_allowed_ids": IDS,
             "one_not_allowed_ids": IDS, "other_absent_ids": IDS, "only_special_ids": IDS},
      inputs={"plain": "encode_with_special('the cat sat on the hat.', merges, special_tokens, allowed_special=set())",
              "allowed": "'the cat sat.<|endoftext|>the rat sat.' with allowed_special={'<|endoftext|>'}",
              "not_allowed": "'the cat sat.<|endoftext|>the rat sat.' with allowed_special=set()"},
      cases={"both_allowed": "two special tokens, both allowed, side by side",
             "one_not_allowed": "two special tokens, one of them not allowed",
             "other_absent": "one special token allowed, another one not in the text",
             "only_special": "a text that is one special token"})
