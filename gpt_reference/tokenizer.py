"""Tokenizers: turning text into a list of integers, and back.

A language model reads and writes integers ("token ids"), not text. A tokenizer is the two-way dictionary between
them: ``encode(text) -> ids`` and ``decode(ids) -> text``. This module has the two tokenizers the course uses.

``CharTokenizer``: one id per character, for the characters of the training text. Tiny and easy to understand, but
every character costs the model one step, and a character it never saw in training cannot be encoded at all.

``BPETokenizer``: byte-level Byte Pair Encoding, as in GPT-2. Text is first turned into UTF-8 bytes, so *any* text
can be encoded (ids 0..255 are the 256 possible bytes). Training then repeatedly finds the most frequent adjacent
pair of ids and *merges* it into a new id: 256, 257, ... . Frequent words end up as a single id, so a text needs
fewer tokens than it has characters. Three rules make the result exact and reproducible:

1. *Pre-tokenization.* Before counting pairs, the text is cut into chunks with a regular expression
   (``GPT2_SPLIT_PATTERN``: words with their leading space, numbers, punctuation runs, whitespace runs), and merges
   never cross a chunk boundary. Without it BPE learns tokens such as ``"dog."`` and ``"dog!"`` that waste the
   vocabulary on combinations of a word and punctuation.
2. *Tie-break.* When several pairs share the highest count, training merges the smallest pair, comparing the first
   id and then the second: the pair ``min(counts, key=lambda p: (-counts[p], p))``.
3. *Encoding by rank.* Encoding new text replays the merges in the order they were learned: while some adjacent pair
   of the text has a merge, apply the merge that was learned *first* (the one with the lowest new id). Frequencies
   in the new text play no part.

Special tokens such as ``<|endoftext|>`` (which separates documents) get ids of their own after the merges. They are
never produced from ordinary text by accident: ``encode`` refuses text that contains one unless you allow it, with
the same rules as OpenAI's ``tiktoken`` library.

The free functions are lesson 01's exercises, under the lesson's names and signatures, and the reference your own
functions are checked against: ``get_pair_counts``, ``merge``, ``train_bpe`` (the whole text as one sequence of bytes,
unless given a ``pattern``), ``build_vocab``, ``encode``, ``decode``, ``split_chunks``, ``train_bpe_chunked``,
``encode_chunked`` and ``encode_with_special`` (GPT-2's pre-tokenization and special tokens). ``BPETokenizer`` is
built from them and adds what a tokenizer used for real needs: GPT-2's numbering of the bytes, a cache of encoded
chunks, saving and loading. It is plain Python, so encoding is slow; ``BPETokenizer.to_tiktoken()`` gives the same
tokenizer as a ``tiktoken.Encoding``, which encodes the same text to the same ids, much faster.
``BPETokenizer.from_tiktoken("gpt2")`` goes the other way and loads GPT-2's own tokenizer.
"""

from __future__ import annotations

import heapq
import json
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import regex
import tiktoken

# GPT-2's pre-tokenization pattern (written for the `regex` package, which understands \p{L} "any letter" and
# \p{N} "any number"). In order of preference it matches: common English contractions ('s 't 're 've 'm 'll 'd);
# an optional space followed by letters; an optional space followed by digits; an optional space followed by other
# symbols; a run of whitespace that is not followed by a non-space (so the last space of "   word" stays with the
# word); any other whitespace. (tiktoken's copy of it is written differently, with possessive quantifiers such as
# \p{L}++ that make it faster, but it cuts every text into the same chunks.)
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"

Merges = dict[tuple[int, int], int]  # {(left id, right id): new id}, in the order the merges were learned


# -----------------------------------------------------------------------------------------------------------------
# Character-level tokenizer


class CharTokenizer:
    """One token per character of a training text.

    The vocabulary is the sorted list of distinct characters, so id ``i`` is the ``i``-th character in Unicode order:
    for tiny shakespeare, id 0 is ``"\\n"`` and id 1 is ``" "``. Sorting makes the ids independent of the order in
    which characters first appear in the text.
    """

    def __init__(self, text: str):
        self.chars: list[str] = sorted(set(text))
        self.vocab_size: int = len(self.chars)
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}  # string to id
        self.itos: dict[int, str] = dict(enumerate(self.chars))  # id to string

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s characters; a ValueError naming any character that is not in the vocabulary."""
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(
                f"characters not in the vocabulary: {', '.join(map(repr, unknown))}. A CharTokenizer can only encode "
                f"the {self.vocab_size} characters of the text its vocabulary was built from (the training text)."
            )
        return [self.stoi[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        try:
            return "".join(self.itos[i] for i in ids)
        except KeyError as error:
            raise ValueError(f"unknown token id {error.args[0]!r}: ids go from 0 to {self.vocab_size - 1}") from None

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON: ``{"type": "char", "chars": ["\\n", " ", "!", ...]}``."""
        text = json.dumps({"type": "char", "chars": self.chars}, ensure_ascii=False)
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        data = _read_tokenizer_json(path, expected_type="char")
        return cls("".join(data["chars"]))


# -----------------------------------------------------------------------------------------------------------------
# Byte-level BPE, one function per step of lesson 01. Ids are ints; a pair is a tuple of two ids.


def get_pair_counts(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count every adjacent pair of ``ids`` (overlapping windows).

    ``[1, 2, 3, 1, 2]`` gives ``{(1, 2): 2, (2, 3): 1, (3, 1): 1}``, and ``[7, 7, 7]`` gives ``{(7, 7): 2}``: each
    position ``i`` contributes the pair ``(ids[i], ids[i + 1])``. Pass ``counts`` to add to an existing dict (it is
    updated in place and returned); this is how the counts of many chunks are added up.
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, scanning left to right without overlaps.

    ``merge([5, 6, 7, 5, 6], (5, 6), 256)`` is ``[256, 7, 256]``. Occurrences cannot overlap: once two ids have been
    merged, the scan continues after them, so ``merge([7, 7, 7], (7, 7), 256)`` is ``[256, 7]``. Returns a new list.
    """
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2  # both ids are used up
        else:
            merged.append(ids[i])
            i += 1
    return merged


def train_bpe(
    text: str,
    vocab_size: int,
    pattern: str | None = None,
    *,
    special_tokens: Iterable[str] = (),
) -> Merges:
    """Learn ``vocab_size - 256`` byte-level BPE merges from ``text``.

    Returns the merges as a dict ``{(left id, right id): new id}`` in the order they were learned; the first merge
    creates id 256, the next 257, and so on. The rules:

    * ``text`` is cut into chunks by ``split_chunks(text, pattern)``: with no ``pattern`` (the default, as in
      lesson 01's ``train_bpe``) the whole text is one chunk; ``train_bpe_chunked`` uses GPT-2's pattern. Each
      chunk is turned into its UTF-8 bytes, ids 0..255. Pairs are counted within chunks only, so no merge ever spans
      two chunks. Any ``special_tokens`` strings are cut out of the text first and take no part.
    * Each step counts adjacent pairs over all chunks (as ``get_pair_counts`` does: overlapping windows), takes the
      pair with the highest count, breaking ties by the smallest pair (first id, then second id), i.e.
      ``min(counts, key=lambda p: (-counts[p], p))``, and merges it everywhere (as ``merge`` does: left to right,
      no overlaps).
    * A pair that occurs only once is still merged when it is the best one left. Training stops early, returning
      fewer merges, only when no pair is left at all (every chunk has become a single token).

    Doing this naively, recounting everything after each merge as the lesson does, takes minutes on a megabyte of
    text. Three observations make it fast while giving exactly the same merges:

    1. Chunks repeat (" the" occurs thousands of times), so each *distinct* chunk is stored once with its count.
    2. A merge only changes the chunks that contain the merged pair, so pair counts are updated for those chunks
       only. An index from each pair to the chunks containing it finds them without a scan.
    3. The best pair comes from a heap of ``(-count, pair)`` entries, whose smallest entry is the highest count with
       the smallest pair, which is the tie-break. When a count changes we push a fresh entry and leave the old one in
       place; an entry whose count no longer matches is out of date and is skipped when popped ("lazy deletion").
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (one id per byte), got {vocab_size}")
    chunk_counts: Counter[str] = Counter()
    for segment in _split_on_special_tokens(text, special_tokens)[::2]:  # odd indices are the special tokens
        chunk_counts.update(split_chunks(segment, pattern))

    # words[w] is the current list of ids of distinct chunk number w; it occurs frequencies[w] times in the text
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    frequencies = list(chunk_counts.values())
    pair_counts: dict[tuple[int, int], int] = {}
    words_with_pair: dict[tuple[int, int], set[int]] = {}
    for w, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + frequencies[w]
            words_with_pair.setdefault(pair, set()).add(w)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: Merges = {}
    while len(merges) < vocab_size - 256 and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -negative_count:
            continue  # out of date: this pair's count changed after the entry was pushed
        new_id = 256 + len(merges)
        merges[pair] = new_id

        count_changes: dict[tuple[int, int], int] = {}
        for w in words_with_pair.pop(pair):
            old_pairs = list(zip(words[w], words[w][1:]))
            words[w] = merge(words[w], pair, new_id)
            new_pairs = list(zip(words[w], words[w][1:]))
            for p in old_pairs:
                count_changes[p] = count_changes.get(p, 0) - frequencies[w]
            for p in new_pairs:
                count_changes[p] = count_changes.get(p, 0) + frequencies[w]
            for p in set(old_pairs).difference(new_pairs):
                if p != pair:  # the merged pair's index entry has been popped already
                    words_with_pair[p].discard(w)
            for p in set(new_pairs).difference(old_pairs):
                words_with_pair.setdefault(p, set()).add(w)
        for p, change in count_changes.items():
            if change == 0:
                continue
            count = pair_counts.get(p, 0) + change
            if count > 0:
                pair_counts[p] = count
                heapq.heappush(heap, (-count, p))
            else:  # the pair is gone from the text (the merged pair always ends here)
                del pair_counts[p]
                words_with_pair.pop(p, None)
    return merges


def build_vocab(merges: Merges, byte_ids: Iterable[int] = range(256)) -> dict[int, bytes]:
    """The bytes of every id: one byte for 0..255, then each merge's two halves joined, in the order learned.

    ``byte_ids[b]`` is the id of the single byte ``b``: ``b`` itself for merges learned by ``train_bpe``, GPT-2's own
    numbering for GPT-2's merges (see ``BPETokenizer``). Merges that use an id no earlier token has, or give an id
    twice, are an error.
    """
    vocab = {byte_id: bytes([b]) for b, byte_id in enumerate(byte_ids)}
    for (left, right), new_id in sorted(merges.items(), key=lambda item: item[1]):
        if left not in vocab or right not in vocab:
            raise ValueError(f"merge {(left, right)} -> {new_id} uses an id that no earlier token has")
        if new_id in vocab:
            raise ValueError(f"merge {(left, right)} -> {new_id}: id {new_id} is already taken")
        vocab[new_id] = vocab[left] + vocab[right]
    return vocab


def apply_merges(ids: list[int], merges: Merges) -> list[int]:
    """Apply ``merges`` to ``ids`` in the order they were learned: the heart of ``encode``.

    While some adjacent pair of ``ids`` has a merge, merge (everywhere) the pair whose merge was learned first, which
    is the one with the lowest new id. For example with ``merges = {(97, 98): 256, (256, 99): 257}``, ``[97, 98, 99]``
    ("abc") becomes ``[256, 99]`` and then ``[257]``. This replays training exactly, so a chunk of the training text
    becomes the same tokens it became during training. Frequencies, and where a pair sits, play no part.
    """
    ids = list(ids)
    while len(ids) >= 2:
        counts = get_pair_counts(ids)
        pair = min(counts, key=lambda p: merges.get(p, float("inf")))  # the earliest-learned pair present
        if pair not in merges:
            break  # no pair left that has a merge
        ids = merge(ids, pair, merges[pair])
    return ids


def encode(text: str, merges: Merges) -> list[int]:
    """The ids of ``text``: its UTF-8 bytes, with ``merges`` applied earliest-learned first until none applies.

    The whole text is one sequence of bytes, as in ``train_bpe`` without a pattern; ``encode_chunked`` is the
    encoder that goes with ``train_bpe_chunked``.
    """
    return apply_merges(list(text.encode("utf-8")), merges)


def decode(ids: Iterable[int], vocab: dict[int, bytes]) -> str:
    """The text of ``ids``: the tokens' bytes (``vocab``, see ``build_vocab``) joined, then decoded as UTF-8.

    A token can hold part of a character: "é" is two bytes in UTF-8, and a token may end after the first. So the
    bytes of all tokens are joined *first* and only then decoded. Bytes that are not valid UTF-8 (a model can
    generate any sequence of ids) become the replacement character "\ufffd" instead of raising an error.
    """
    try:
        data = b"".join(vocab[i] for i in ids)
    except KeyError as error:
        raise ValueError(f"unknown token id {error.args[0]!r}: the vocabulary has {len(vocab)} tokens") from None
    return data.decode("utf-8", errors="replace")


def split_chunks(text: str, pattern: str | None = GPT2_SPLIT_PATTERN) -> list[str]:
    """``text`` cut into chunks by ``pattern``, GPT-2's pre-tokenization by default (``None``: one chunk)."""
    if pattern is None:
        return [text] if text else []
    return regex.findall(pattern, text)


def train_bpe_chunked(text: str, vocab_size: int) -> Merges:
    """``train_bpe`` with pairs counted within the chunks of ``split_chunks(text)`` only, as GPT-2 was trained."""
    return train_bpe(text, vocab_size, GPT2_SPLIT_PATTERN)


def encode_chunked(text: str, merges: Merges) -> list[int]:
    """Each chunk of ``split_chunks(text)`` encoded on its own, the ids concatenated: no merge crosses a chunk."""
    return [i for chunk in split_chunks(text) for i in encode(chunk, merges)]


def encode_with_special(
    text: str, merges: Merges, special_tokens: dict[str, int], allowed_special: Iterable[str] = frozenset()
) -> list[int]:
    """Like ``encode_chunked``, but each allowed special token becomes its id from ``special_tokens``.

    A special token that occurs in ``text`` without being in ``allowed_special`` raises a ValueError (tiktoken's
    rule): text from users or from the web must not be able to insert ``<|endoftext|>`` by accident.
    """
    return _encode_around_special_tokens(
        text, special_tokens, allowed_special, encode_ordinary=lambda part: encode_chunked(part, merges)
    )


def _encode_around_special_tokens(
    text: str,
    special_tokens: dict[str, int],
    allowed_special: Iterable[str],
    encode_ordinary: Callable[[str], list[int]],
) -> list[int]:
    """Refuse the special tokens of ``text`` that are not allowed, then give each allowed one its id and encode the
    text between them with ``encode_ordinary``."""
    allowed = set(allowed_special)
    for special in sorted(special_tokens.keys() - allowed):
        if special in text:
            raise ValueError(
                f"the text contains the special token {special!r}, which is not allowed. To encode it as the "
                f"special token, pass allowed_special={{{special!r}}}; to encode it as ordinary text, use "
                "encode_chunked (BPETokenizer.encode_ordinary)."
            )
    ids = []
    for i, part in enumerate(_split_on_special_tokens(text, allowed)):
        ids.extend([special_tokens[part]] if i % 2 == 1 else encode_ordinary(part))
    return ids


def _split_on_special_tokens(text: str, special_tokens: Iterable[str]) -> list[str]:
    """Split ``text`` at every occurrence of the special tokens, keeping them: odd indices hold the special tokens."""
    special_tokens = sorted(special_tokens, key=len, reverse=True)  # longest first, so a longer token wins a tie
    if not special_tokens:
        return [text]
    return regex.split("(" + "|".join(regex.escape(s) for s in special_tokens) + ")", text)


# -----------------------------------------------------------------------------------------------------------------
# GPT-2's merges, from tiktoken


def recover_merges(mergeable_ranks: dict[bytes, int]) -> Merges:
    """Turn tiktoken's ``{token bytes: rank}`` table into merges ``{(left id, right id): new id}``.

    tiktoken stores only the bytes of each token, ranked in the order the merges were learned (its ids are these
    ranks). The merge that created a multi-byte token of rank ``r`` is found by running byte-level BPE on the token's
    own bytes with the tokens of rank below ``r`` only: this stops with exactly two parts, and those are the pair.
    """
    merges = {}
    for token, rank in sorted(mergeable_ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = _byte_pair_merge(mergeable_ranks, token, max_rank=rank)
        if len(parts) != 2:
            raise ValueError(f"token {token!r} (rank {rank}) cannot be made by merging two earlier tokens")
        merges[(mergeable_ranks[parts[0]], mergeable_ranks[parts[1]])] = rank
    return merges


def _byte_pair_merge(mergeable_ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's algorithm: repeatedly join the adjacent parts whose joined bytes have the lowest rank < max_rank."""
    parts = [bytes([b]) for b in token]
    while True:
        ranks = [mergeable_ranks.get(a + b, max_rank) for a, b in zip(parts, parts[1:])]
        if not ranks or min(ranks) >= max_rank:
            return parts
        i = ranks.index(min(ranks))
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


def render_token(token: bytes) -> str:
    """A printable form of a token's bytes, for people: UTF-8 text with control characters such as ``\\n`` escaped.

    A token that is only part of a multi-byte character (GPT-2 has many) shows the replacement character "\ufffd".
    """
    text = token.decode("utf-8", errors="replace")
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c).startswith("C") else c for c in text)


# -----------------------------------------------------------------------------------------------------------------
# Byte-level BPE tokenizer


class BPETokenizer:
    """A byte-level BPE tokenizer, as used by GPT-2, built from the functions above.

    It is defined by its merges ``{(left id, right id): new id}``, its special tokens ``{text: id}`` and its
    pre-tokenization ``pattern``. ``byte_ids[b]`` is the id of the single byte ``b``: for tokenizers trained here
    byte ``b`` is simply id ``b``, but GPT-2 numbers the 256 bytes in a different order (its id 0 is ``b"!"``), and
    following its numbering is what makes our ids equal to GPT-2's.

    ``vocab`` maps every id to its bytes (``build_vocab``, plus the special tokens' UTF-8).
    """

    def __init__(
        self,
        merges: Merges,
        special_tokens: dict[str, int] | None = None,
        pattern: str | None = GPT2_SPLIT_PATTERN,
        byte_ids: list[int] | None = None,
    ):
        byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        if len(byte_ids) != 256 or len(set(byte_ids)) != 256:
            raise ValueError("byte_ids must give 256 different ids, one for each byte value 0..255")
        self.merges: Merges = dict(merges)
        self.special_tokens: dict[str, int] = dict(special_tokens or {})
        self.pattern: str | None = pattern
        self.byte_ids = byte_ids

        vocab = build_vocab(self.merges, byte_ids)
        for special, special_id in self.special_tokens.items():
            if special_id in vocab:
                raise ValueError(f"special token {special!r} -> {special_id}: id {special_id} is already taken")
            vocab[special_id] = special.encode("utf-8")
        self.vocab: dict[int, bytes] = vocab
        # Encoding a chunk is slow in pure Python, and real text repeats the same chunks (" the", ",", "\n") over
        # and over, so remember the ids of chunks already seen (forgetting them all when there are too many).
        self._chunk_cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """The number of ids, including special tokens: every id is in ``range(vocab_size)``."""
        return max(self.vocab) + 1

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = (ENDOFTEXT,),
        pattern: str | None = GPT2_SPLIT_PATTERN,
    ) -> BPETokenizer:
        """Train on ``text`` (see ``train_bpe``). ``vocab_size`` counts the special tokens, which get the last ids.

        With the defaults and ``vocab_size=1024`` there are 767 merges (ids 256..1022) and ``<|endoftext|>`` is id
        1023. Special tokens in ``text`` are cut out before training, so no merge is learned across them. If training
        runs out of pairs before reaching ``vocab_size`` (a tiny text), the vocabulary is smaller than asked for.
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        if vocab_size < 256 + len(special_tokens):
            raise ValueError(
                f"vocab_size={vocab_size} is too small: a byte-level BPE vocabulary has the 256 byte values plus "
                f"{len(special_tokens)} special token(s), so it needs at least {256 + len(special_tokens)}"
            )
        merges = train_bpe(text, vocab_size - len(special_tokens), pattern, special_tokens=special_tokens)
        first_special_id = 256 + len(merges)
        specials = {special: first_special_id + i for i, special in enumerate(special_tokens)}
        return cls(merges, specials, pattern)

    # --- encoding and decoding ---------------------------------------------------------------------------------

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` as plain text: a special token's text such as ``"<|endoftext|>"`` becomes ordinary tokens.

        This is ``encode_chunked`` with this tokenizer's pattern and byte numbering, and a cache of encoded chunks.
        """
        ids = []
        for chunk in split_chunks(text, self.pattern):
            if chunk not in self._chunk_cache:
                if len(self._chunk_cache) >= 100_000:
                    self._chunk_cache.clear()
                byte_ids = [self.byte_ids[b] for b in chunk.encode("utf-8")]
                self._chunk_cache[chunk] = apply_merges(byte_ids, self.merges)
            ids.extend(self._chunk_cache[chunk])
        return ids

    def encode(self, text: str, allowed_special: str | Iterable[str] = frozenset()) -> list[int]:
        """Encode ``text``, with tiktoken's rules for special tokens (see ``encode_with_special``).

        ``allowed_special`` is a set of special tokens (or ``"all"``) that become their single id where they appear
        in ``text``. A special token that appears in ``text`` but is not allowed is an error: text from users or from
        the web must not be able to insert ``<|endoftext|>`` by accident. Use ``encode_ordinary`` to encode such text
        as plain text.
        """
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif isinstance(allowed_special, str):
            raise TypeError(f'allowed_special must be a set of strings or "all", got the string {allowed_special!r}')
        else:
            allowed = set(allowed_special)
            unknown = allowed - self.special_tokens.keys()
            if unknown:
                raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        return _encode_around_special_tokens(text, self.special_tokens, allowed, self.encode_ordinary)

    def decode(self, ids: Iterable[int]) -> str:
        """Decode ``ids`` to text: the tokens' bytes joined, then decoded with errors="replace" (see ``decode``)."""
        return decode(ids, self.vocab)

    # --- saving and loading ------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON that people can read.

        Each merge is one line ``[left id, right id, new id, "the new token"]``; the last item is only there for
        readers (``render_token`` of its bytes) and ``load`` ignores it.
        """
        header = {
            "type": "bpe",
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "byte_ids": self.byte_ids,
        }
        lines = [f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}," for key, value in header.items()]
        merge_lines = [
            json.dumps([left, right, new_id, render_token(self.vocab[new_id])], ensure_ascii=False)
            for (left, right), new_id in self.merges.items()
        ]
        text = "{\n" + "\n".join(lines) + '\n  "merges": [\n    ' + ",\n    ".join(merge_lines) + "\n  ]\n}\n"
        Path(path).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        data = _read_tokenizer_json(path, expected_type="bpe")
        merges = {(left, right): new_id for left, right, new_id, *_ in data["merges"]}
        return cls(merges, data["special_tokens"], data["pattern"], data["byte_ids"])

    # --- tiktoken ----------------------------------------------------------------------------------------------

    def to_tiktoken(self, name: str = "gpt-workbook-bpe") -> tiktoken.Encoding:
        """The same tokenizer as a ``tiktoken.Encoding``: same ids for the same text, and much faster.

        tiktoken knows each token only by its bytes and its rank (which is its id, the order it was learned in). It
        encodes a chunk by repeatedly joining the two adjacent pieces whose joined bytes are the token of lowest
        rank; we instead apply the earliest-learned merge of two adjacent ids. The two agree whenever every token's
        own bytes encode to that single token, because then two adjacent pieces whose bytes form token ``T`` are
        always the two halves of ``T``'s merge. Tokenizers trained by ``train_bpe`` always have this property (a
        chunk evolves during training exactly as its bytes would on their own), and so does GPT-2's; merges made by
        hand may not, which is checked here. It also rules out two ids with the same bytes, which tiktoken cannot
        represent.
        """
        mergeable_ranks: dict[bytes, int] = {}
        for token_id, token in sorted(self.vocab.items()):
            if token_id in self.special_tokens.values():
                continue
            own_encoding = apply_merges([self.byte_ids[b] for b in token], self.merges)
            if own_encoding != [token_id]:
                raise ValueError(
                    f"token {token_id} ({token!r}) encodes to {own_encoding}, not to itself, so tiktoken would "
                    "encode some text differently; this happens only with merges that were not learned by train_bpe"
                )
            mergeable_ranks[token] = token_id
        return tiktoken.Encoding(
            name=name,
            # with no pattern the whole text is one chunk; [\s\S]+ matches everything, newlines included
            pat_str=self.pattern if self.pattern is not None else r"[\s\S]+",
            mergeable_ranks=mergeable_ranks,
            special_tokens=self.special_tokens,
        )

    @classmethod
    def from_tiktoken(cls, name: str = "gpt2") -> BPETokenizer:
        """Load one of tiktoken's tokenizers (GPT-2's by default) as a ``BPETokenizer`` with exactly the same ids.

        tiktoken downloads the vocabulary on first use; set ``TIKTOKEN_CACHE_DIR`` to a folder holding it to work
        offline. Recovering the 50,000 merges of GPT-2 takes a few seconds.
        """
        encoding = tiktoken.get_encoding(name)
        # tiktoken keeps its tables in private attributes; these three are all a BPE tokenizer is made of
        mergeable_ranks: dict[bytes, int] = encoding._mergeable_ranks
        byte_ids = [mergeable_ranks[bytes([b])] for b in range(256)]
        return cls(recover_merges(mergeable_ranks), dict(encoding._special_tokens), encoding._pat_str, byte_ids)


def _read_tokenizer_json(path: str | Path, expected_type: str) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("type") != expected_type:
        raise ValueError(f"{path} holds a tokenizer of type {data.get('type')!r}, not {expected_type!r}")
    return data
