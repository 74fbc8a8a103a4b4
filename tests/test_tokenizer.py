"""Tests for gpt_reference.tokenizer: the character tokenizer, lesson 01's BPE functions (with the lesson's worked
examples), BPE training and encoding, special tokens, saving, and exact agreement with tiktoken (our own tokenizers
and GPT-2's, through BPETokenizer and through the lesson's free functions).

Tests that need tiny shakespeare read it from $GPT_DATA_DIR and are skipped without it; the GPT-2 tests need
tiktoken's gpt2 files (offline: $TIKTOKEN_CACHE_DIR) and are skipped when they cannot be loaded.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import regex
import tiktoken

import gpt_reference.tokenizer as tokenizer_module
from gpt_reference.tokenizer import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    apply_merges,
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

# Texts that tokenizers get wrong: empty and whitespace-only text, whitespace runs, contractions, digits, emoji
# (with skin tones, zero-width joiners and flags, several code points per visible character), CJK, combining marks,
# control characters, and other scripts.
VARIED_TEXTS = [
    "",
    " ",
    "     ",
    "\n",
    "\n\n\n",
    "  hello  ",
    "hello world",
    "Hello, World! How's it going? I'm fine; we've been... they're 'quoted' and you'll see, he'd know.",
    "'s 've 're 'll 'd 'm 't",
    "The year 2024 had 366 days; pi is 3.14159 and a million is 1,000,000.",
    "emoji: 👍 👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 heart ❤️",
    "中文字符和日本語のテキスト、한국어도 있습니다。",
    "combining: e\u0301 cafe\u0301 versus caf\u00e9, n\u0303, a\u030a\u0301",
    "tabs\tand\r\nwindows line endings\r\n",
    "  leading and trailing spaces   \n  indented line\n\n\n    deeper",
    "curly ‘quotes’ “double” — dashes – and … ellipses",
    "non-breaking\u00a0space, thin\u2009space, ideographic\u3000space",
    "Ωμέγα Привет мир עברית العربية हिन्दी",
    "control \x00 null \x07 bell \x7f del",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "x " * 20 + "yy" * 15,
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n",
    "MiXeD CaSe WORDS and UPPERCASE",
]
# what the small BPE tokenizer below is trained on: a little of everything, so that its merges touch all of the above
TRAINING_TEXT = (
    "\n".join(VARIED_TEXTS) * 3
    + (
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
        "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
    )
    * 5
)


def read_tinyshakespeare() -> str:
    data_dir = os.environ.get("GPT_DATA_DIR")
    path = Path(data_dir) / "tinyshakespeare.txt" if data_dir else None
    if path is None or not path.exists():
        pytest.skip("tiny shakespeare not found: set GPT_DATA_DIR to the folder holding tinyshakespeare.txt")
    return path.read_text(encoding="utf-8")


def naive_train_bpe(text: str, vocab_size: int, pattern: str | None) -> tuple[dict, list[int]]:
    """BPE training exactly as specified, with no speed-ups: recount every pair of every chunk after each merge.

    Returns the merges and the ids the training text ended up as.
    """
    chunks = regex.findall(pattern, text) if pattern is not None else [text]
    chunk_ids = [list(chunk.encode("utf-8")) for chunk in chunks]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = {}
        for ids in chunk_ids:
            get_pair_counts(ids, counts)
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))
        merges[pair] = new_id
        chunk_ids = [merge(ids, pair, new_id) for ids in chunk_ids]
    return merges, [i for ids in chunk_ids for i in ids]


@pytest.fixture(scope="module")
def small_bpe() -> BPETokenizer:
    return BPETokenizer.train(TRAINING_TEXT, vocab_size=400)


@pytest.fixture(scope="module")
def gpt2() -> tuple[BPETokenizer, tiktoken.Encoding]:
    try:
        encoding = tiktoken.get_encoding("gpt2")
    except Exception as error:  # no cached files and no network
        pytest.skip(f"tiktoken's gpt2 encoding cannot be loaded (set TIKTOKEN_CACHE_DIR to a cache of it): {error}")
    return BPETokenizer.from_tiktoken("gpt2"), encoding


# --- character tokenizer -----------------------------------------------------------------------------------------


def test_char_tokenizer_sorted_vocabulary_and_round_trip():
    tokenizer = CharTokenizer("hello world\n")
    assert tokenizer.itos == {0: "\n", 1: " ", 2: "d", 3: "e", 4: "h", 5: "l", 6: "o", 7: "r", 8: "w"}
    assert tokenizer.stoi == {c: i for i, c in tokenizer.itos.items()}
    assert tokenizer.vocab_size == 9
    assert tokenizer.encode("hello") == [4, 3, 5, 5, 6]
    assert tokenizer.decode(tokenizer.encode("world hello\n")) == "world hello\n"
    assert CharTokenizer("lo").encode("lol") == CharTokenizer("ollo").encode("lol") == [0, 1, 0]
    assert CharTokenizer("").vocab_size == 0 and CharTokenizer("aaa").encode("") == []


def test_char_tokenizer_errors_name_the_problem():
    tokenizer = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"'z'.*training text"):
        tokenizer.encode("abz")
    with pytest.raises(ValueError, match="3"):
        tokenizer.decode([0, 3])


def test_char_tokenizer_save_load(tmp_path):
    tokenizer = CharTokenizer("Hello, wörld! 👋\n")
    path = tmp_path / "char.json"
    tokenizer.save(path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"type": "char", "chars": tokenizer.chars}
    loaded = CharTokenizer.load(path)
    assert loaded.stoi == tokenizer.stoi and loaded.vocab_size == tokenizer.vocab_size
    with pytest.raises(ValueError, match="'char'"):
        BPETokenizer.load(path)


# --- BPE building blocks -----------------------------------------------------------------------------------------


def test_get_pair_counts():
    assert get_pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_pair_counts(list(b"aaa")) == {(97, 97): 2}  # overlapping windows
    assert get_pair_counts([5]) == {} and get_pair_counts([]) == {}
    counts = get_pair_counts([1, 2])
    assert get_pair_counts([1, 2, 1], counts) is counts  # adds to the dict it is given
    assert counts == {(1, 2): 2, (2, 1): 1}


def test_merge_is_left_to_right_without_overlaps():
    assert merge([5, 6, 7, 5, 6], (5, 6), 256) == [256, 7, 256]
    assert merge(list(b"aaa"), (97, 97), 256) == [256, 97]
    assert merge(list(b"aaaa"), (97, 97), 256) == [256, 256]
    assert merge([1, 2, 3], (3, 1), 256) == [1, 2, 3]
    ids = [1, 2]
    assert merge(ids, (1, 2), 300) == [300] and ids == [1, 2]  # returns a new list


def test_train_bpe_new_ids_count_up_from_256():
    merges = train_bpe_chunked(TRAINING_TEXT, 300)
    assert list(merges.values()) == list(range(256, 300))
    counts = {}
    for chunk in regex.findall(GPT2_SPLIT_PATTERN, TRAINING_TEXT):
        get_pair_counts(list(chunk.encode("utf-8")), counts)
    assert next(iter(merges)) == min(counts, key=lambda p: (-counts[p], p))  # the first merge: the most common pair
    assert all(left < new_id and right < new_id for (left, right), new_id in merges.items())


def test_tie_break_prefers_the_highest_count_then_the_smallest_pair():
    # every pair occurs once: (97, 98) < (98, 99) < (99, 100); then (99, 100) < (256, 99) because 99 < 256
    assert train_bpe("abcd", 259) == {(97, 98): 256, (99, 100): 257, (256, 257): 258}
    # equal first ids: the second id decides, (97, 98) before (97, 99)
    assert train_bpe("acab", 257) == {(97, 98): 256}
    # a higher count beats a smaller pair
    assert train_bpe("abxyxy", 257) == {(120, 121): 256}


def test_training_stops_only_when_no_pair_is_left():
    assert train_bpe("ab", 1000) == {(97, 98): 256}
    assert train_bpe("abcd", 1000) == {(97, 98): 256, (99, 100): 257, (256, 257): 258}
    assert train_bpe("", 1000) == {} and train_bpe_chunked("", 1000) == {}
    tokenizer = BPETokenizer.train("ab", 1000)
    assert tokenizer.special_tokens == {ENDOFTEXT: 257} and tokenizer.vocab_size == 258


def test_merges_never_cross_chunk_boundaries():
    # with the GPT-2 pattern "a b" is the chunks "a" and " b"; as one chunk, "a" and " " can merge
    assert train_bpe_chunked("a b", 1000) == train_bpe("a b", 1000, GPT2_SPLIT_PATTERN) == {(32, 98): 256}
    assert train_bpe("a b", 1000) == {(32, 98): 256, (97, 256): 257}
    # special tokens are cut out of the training text: only "ab" is left to learn from
    assert train_bpe(f"ab{ENDOFTEXT}ab", 1000, special_tokens=[ENDOFTEXT]) == {(97, 98): 256}


@pytest.mark.parametrize("seed", range(6))
def test_training_equals_naive_reference(seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", "c", " ", "aa", "ab", " the", "\n", "é", "👍"][: 4 + seed]
    text = "".join(rng.choice(alphabet) for _ in range(300))  # few symbols: lots of tied counts
    for pattern in (GPT2_SPLIT_PATTERN, None):
        merges, final_ids = naive_train_bpe(text, 256 + 60, pattern)
        assert train_bpe(text, 256 + 60, pattern) == merges
        # encoding the training text replays training exactly
        assert BPETokenizer(merges, pattern=pattern).encode(text) == final_ids


def test_training_equals_naive_reference_on_shakespeare():
    text = read_tinyshakespeare()[:10_000]
    merges, final_ids = naive_train_bpe(text, 356, GPT2_SPLIT_PATTERN)
    assert train_bpe_chunked(text, 356) == merges
    assert encode_chunked(text, merges) == final_ids
    assert BPETokenizer(merges).encode(text) == final_ids


def test_training_is_deterministic_across_processes():
    # the same merges in the same order, also when Python's string hashing (and so set and dict layout) differs
    assert train_bpe_chunked(TRAINING_TEXT, 400) == train_bpe_chunked(TRAINING_TEXT, 400)
    # load tokenizer.py on its own: importing the gpt_reference package would start torch, which is slow
    program = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('tokenizer', {str(Path(tokenizer_module.__file__))!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(list(module.train_bpe_chunked(sys.stdin.read(), 400).items()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            input=TRAINING_TEXT,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {str(list(train_bpe_chunked(TRAINING_TEXT, 400).items())) + "\n"}


def test_encoding_applies_merges_by_rank_not_frequency():
    # "bc" was learned first, so "abc" becomes a + bc even though ab would also merge
    assert apply_merges(list(b"abc"), {(98, 99): 256, (97, 98): 257}) == [97, 256]
    assert apply_merges(list(b"abc"), {(97, 98): 256, (98, 99): 257}) == [256, 99]
    assert apply_merges(list(b"abc"), {(97, 98): 256, (256, 99): 257}) == [257]
    assert encode("yyxyy", {(120, 121): 256, (121, 121): 257}) == [257, 256, 121]
    # rank decides even where the other pair is more frequent in the text being encoded
    tokenizer = BPETokenizer({(120, 121): 256, (121, 121): 257}, pattern=None)
    assert tokenizer.encode("yyxyy") == [257, 256, 121]


# --- lesson 01's functions, as the lesson states them ---------------------------------------------------------


def test_lesson_worked_examples():
    # Wikipedia's "aaabdaaabac": aa, then ab (tied with (aa, a) at two, and (97, 98) is the smaller pair), then aaab
    assert train_bpe("aaabdaaabac", 259) == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert encode("abc", {(97, 98): 256, (256, 99): 257}) == [257]
    assert encode("", {(97, 98): 256}) == [] and encode("hello", {}) == list(b"hello")
    assert split_chunks("Hello world! It's 2024,   ok\n") == [
        "Hello", " world", "!", " It", "'s", " 2024", ",", "  ", " ok", "\n"
    ]
    assert split_chunks("") == [] and split_chunks("a b", pattern=None) == ["a b"]


def test_build_vocab_and_decode_round_trip():
    merges = train_bpe("café crème, café noir, crème brûlée", 300)
    vocab = build_vocab(merges)
    assert len(vocab) == 256 + len(merges) and vocab[97] == b"a"
    assert all(vocab[new_id] == vocab[left] + vocab[right] for (left, right), new_id in merges.items())
    for text in VARIED_TEXTS + ["crème café"]:
        assert decode(encode(text, merges), vocab) == text
        assert decode(encode_chunked(text, merges), vocab) == text
    e_acute = list("é".encode("utf-8"))
    assert decode(e_acute[:1], vocab) == "\ufffd" and decode(e_acute, vocab) == "é"  # bytes joined, then decoded
    with pytest.raises(ValueError, match="unknown token id 999"):
        decode([97, 999], vocab)


def test_chunked_functions_never_merge_across_chunks():
    text = "a b a b a b"
    merges = train_bpe(text, 260)  # learned across chunks: "a" and " " merge
    assert len(encode(text, merges)) < len(encode_chunked(text, merges))
    assert encode_chunked(text, merges) == [i for chunk in split_chunks(text) for i in encode(chunk, merges)]
    assert any(b" " in token[1:] for token in build_vocab(merges).values())
    assert all(b" " not in token[1:] for token in build_vocab(train_bpe_chunked(text, 260)).values())  # a space
    # only ever starts a token: chunks keep a word's leading space with it, and merges stay within chunks


def test_bpe_tokenizer_is_built_from_the_lesson_functions():
    merges = train_bpe_chunked(TRAINING_TEXT, 400)
    special = {ENDOFTEXT: 400, "<|pad|>": 401}
    tokenizer = BPETokenizer(merges, special)
    assert {i: t for i, t in tokenizer.vocab.items() if i < 400} == build_vocab(merges)
    for text in VARIED_TEXTS + [TRAINING_TEXT]:
        ids = encode_chunked(text, merges)
        assert tokenizer.encode_ordinary(text) == ids
        assert tokenizer.decode(ids) == decode(ids, build_vocab(merges)) == text
    for text in (f"hello{ENDOFTEXT}world<|pad|>", f"{ENDOFTEXT}{ENDOFTEXT}", "no special tokens"):
        expected = encode_with_special(text, merges, special, allowed_special=set(special))
        assert tokenizer.encode(text, allowed_special="all") == expected


def test_encode_with_special():
    merges = train_bpe_chunked(TRAINING_TEXT, 300)
    special = {ENDOFTEXT: 300, "<|pad|>": 301}
    text = f"hello{ENDOFTEXT}world<|pad|>"
    expected = encode_chunked("hello", merges) + [300] + encode_chunked("world", merges) + [301]
    assert encode_with_special(text, merges, special, allowed_special={ENDOFTEXT, "<|pad|>"}) == expected
    with pytest.raises(ValueError, match=r"<\|pad\|>"):
        encode_with_special(text, merges, special, allowed_special={ENDOFTEXT})
    with pytest.raises(ValueError, match="allowed_special"):
        encode_with_special(text, merges, special)
    assert encode_with_special("hello world", merges, special) == encode_chunked("hello world", merges)
    # a longer special token wins over one that is its prefix
    assert encode_with_special("<|a|>b", {}, {"<|a|>": 256, "<|a|>b": 257}, {"<|a|>", "<|a|>b"}) == [257]


def test_lesson_functions_give_tiktoken_ids():
    """Lesson 01, section 8: build_vocab, inverted, is tiktoken's mergeable_ranks, and the ids are the same."""
    merges = train_bpe_chunked(TRAINING_TEXT, 400)
    special = {ENDOFTEXT: 400}
    fast = tiktoken.Encoding(name="lesson-01", pat_str=GPT2_SPLIT_PATTERN, special_tokens=special,
                             mergeable_ranks={token: i for i, token in build_vocab(merges).items()})
    for text in VARIED_TEXTS + [TRAINING_TEXT]:
        assert fast.encode_ordinary(text) == encode_chunked(text, merges)
        with_special = f"{text}{ENDOFTEXT}{text}"
        assert fast.encode(with_special, allowed_special={ENDOFTEXT}) == encode_with_special(
            with_special, merges, special, allowed_special={ENDOFTEXT})
    whole = train_bpe(TRAINING_TEXT[:2000], 300)  # no chunks: one pattern match for the whole text
    fast_whole = tiktoken.Encoding(name="lesson-01-whole", pat_str=r"[\s\S]+", special_tokens={},
                                   mergeable_ranks={token: i for i, token in build_vocab(whole).items()})
    for text in VARIED_TEXTS:
        assert fast_whole.encode_ordinary(text) == encode(text, whole)


# --- BPE tokenizer -----------------------------------------------------------------------------------------------


def test_train_gives_special_tokens_the_last_ids(small_bpe):
    assert len(small_bpe.merges) == 400 - 256 - 1
    assert small_bpe.special_tokens == {ENDOFTEXT: 399}
    assert small_bpe.vocab_size == 400 and len(small_bpe.vocab) == 400
    assert small_bpe.vocab[399] == ENDOFTEXT.encode()
    for (left, right), new_id in small_bpe.merges.items():
        assert small_bpe.vocab[new_id] == small_bpe.vocab[left] + small_bpe.vocab[right]
    with pytest.raises(ValueError, match="at least 257"):
        BPETokenizer.train(TRAINING_TEXT, vocab_size=256)
    with pytest.raises(ValueError, match="at least 256"):
        train_bpe(TRAINING_TEXT, 255)


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_round_trip(small_bpe, text):
    ids = small_bpe.encode(text)
    assert small_bpe.decode(ids) == text
    assert b"".join(small_bpe.vocab[i] for i in ids) == text.encode("utf-8")


def test_trained_tokenizer_compresses_its_training_text(small_bpe):
    # words repeated in the training text become single tokens, and more merges mean fewer tokens
    assert [small_bpe.vocab[i] for i in small_bpe.encode("First Citizen")] == [b"First", b" Citizen"]
    fewer_merges = BPETokenizer.train(TRAINING_TEXT, vocab_size=300)
    n_bytes = len(TRAINING_TEXT.encode("utf-8"))
    assert len(small_bpe.encode(TRAINING_TEXT)) < len(fewer_merges.encode(TRAINING_TEXT)) < n_bytes


def test_decode_joins_bytes_before_decoding():
    tokenizer = BPETokenizer({})  # no merges: one token per byte
    ids = tokenizer.encode("aéb")  # "é" is the two bytes C3 A9
    assert ids == [97, 0xC3, 0xA9, 98]
    assert tokenizer.decode(ids[:2]) == "a\ufffd"  # only the broken character is replaced
    assert tokenizer.decode(ids[2:]) == "\ufffdb"
    assert tokenizer.decode(ids) == "aéb"  # the whole sequence is lossless
    assert tokenizer.vocab[0xC3] == b"\xc3"
    with pytest.raises(ValueError, match="256"):
        tokenizer.decode([256])


def test_special_tokens(small_bpe):
    eot = small_bpe.special_tokens[ENDOFTEXT]
    text = f"hello{ENDOFTEXT}world"
    with pytest.raises(ValueError, match="allowed_special"):
        small_bpe.encode(text)
    expected = small_bpe.encode_ordinary("hello") + [eot] + small_bpe.encode_ordinary("world")
    assert small_bpe.encode(text, allowed_special="all") == expected
    assert small_bpe.encode(text, allowed_special={ENDOFTEXT}) == expected
    ordinary = small_bpe.encode_ordinary(text)
    assert eot not in ordinary and small_bpe.decode(ordinary) == text
    assert small_bpe.decode(expected) == text
    with pytest.raises(TypeError, match="set"):
        small_bpe.encode(text, allowed_special=ENDOFTEXT)
    with pytest.raises(ValueError, match="not special tokens"):
        small_bpe.encode("hi", allowed_special={"<|unknown|>"})


def test_only_the_allowed_special_tokens_are_split_out():
    tokenizer = BPETokenizer({}, special_tokens={"<|a|>": 256, "<|b|>": 257})
    assert tokenizer.encode("x<|a|>", allowed_special={"<|a|>"}) == [120, 256]
    with pytest.raises(ValueError, match=r"<\|b\|>"):
        tokenizer.encode("x<|a|><|b|>", allowed_special={"<|a|>"})


def test_save_load_round_trip(tmp_path, small_bpe):
    path = tmp_path / "bpe.json"
    small_bpe.save(path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["type"] == "bpe" and saved["special_tokens"] == {ENDOFTEXT: 399}
    assert saved["merges"][0][:3] == [*next(iter(small_bpe.merges)), 256]
    loaded = BPETokenizer.load(path)
    assert loaded.merges == small_bpe.merges and loaded.pattern == small_bpe.pattern
    for text in VARIED_TEXTS + [f"a{ENDOFTEXT}b"]:
        assert loaded.encode(text, allowed_special="all") == small_bpe.encode(text, allowed_special="all")


def test_constructor_rejects_inconsistent_merges():
    with pytest.raises(ValueError, match="earlier token"):
        BPETokenizer({(97, 300): 256})
    with pytest.raises(ValueError, match="already taken"):
        BPETokenizer({(97, 98): 256}, special_tokens={ENDOFTEXT: 256})


# --- tiktoken ----------------------------------------------------------------------------------------------------


def test_to_tiktoken_gives_identical_ids(small_bpe):
    encoding = small_bpe.to_tiktoken()
    for text in VARIED_TEXTS + [TRAINING_TEXT, f"one{ENDOFTEXT}two {ENDOFTEXT}"]:
        assert encoding.encode(text, allowed_special="all") == small_bpe.encode(text, allowed_special="all")
    no_pattern = BPETokenizer(train_bpe(TRAINING_TEXT[:2000], 300), pattern=None)
    for text in VARIED_TEXTS:
        assert no_pattern.to_tiktoken().encode(text) == no_pattern.encode(text)


def test_to_tiktoken_on_shakespeare():
    text = read_tinyshakespeare()
    tokenizer = BPETokenizer.train(text, 1024)
    assert len(tokenizer.merges) == 767 and tokenizer.special_tokens == {ENDOFTEXT: 1023}
    assert len(set(tokenizer.vocab.values())) == 1024  # no two tokens have the same bytes
    ids = tokenizer.encode(text)
    assert tokenizer.to_tiktoken().encode(text) == ids
    assert len(text.encode("utf-8")) / len(ids) > 2.3  # bytes per token
    assert tokenizer.decode(ids) == text


def test_to_tiktoken_rejects_merges_that_tiktoken_would_apply_differently():
    # by hand: "bc" first, then "ab", then "ab"+"c". Our encoding of "abc" is a + bc, but tiktoken would join
    # a + bc into "abc" because that is a token, so the conversion must refuse.
    tokenizer = BPETokenizer({(98, 99): 256, (97, 98): 257, (257, 99): 258}, pattern=None)
    assert tokenizer.encode("abc") == [97, 256]
    with pytest.raises(ValueError, match="not to itself"):
        tokenizer.to_tiktoken()


def test_gpt2_ids_equal_tiktoken(gpt2):
    ours, theirs = gpt2
    assert ours.vocab_size == 50257 and ours.special_tokens == {ENDOFTEXT: 50256}
    assert ours.byte_ids[ord("!")] == 0 and ours.byte_ids[ord("a")] != ord("a")  # GPT-2 orders bytes its own way
    assert ours.vocab[464] == b"The"
    for text in VARIED_TEXTS + [f"end of one document.{ENDOFTEXT}Start of the next"]:
        assert split_chunks(text) == regex.findall(theirs._pat_str, text)
        assert ours.encode(text, allowed_special="all") == theirs.encode(text, allowed_special="all")
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)
        assert ours.decode(theirs.encode(text, allowed_special="all")) == text


def test_gpt2_merges_in_the_lesson_encoder(gpt2):
    """Lesson 01, section 9: GPT-2's merges, renumbered to our byte ids, in encode_chunked give GPT-2's ids."""
    ours, theirs = gpt2
    byte_of_id = {byte_id: b for b, byte_id in enumerate(ours.byte_ids)}  # GPT-2's ids 0..255 are the bytes, shuffled
    assert sorted(byte_of_id) == list(range(256))
    merges = {(byte_of_id.get(a, a), byte_of_id.get(b, b)): new_id for (a, b), new_id in ours.merges.items()}
    for text in VARIED_TEXTS:
        ids = [ours.byte_ids[i] if i < 256 else i for i in encode_chunked(text, merges)]
        assert ids == theirs.encode_ordinary(text)


def test_gpt2_ids_equal_tiktoken_on_shakespeare(gpt2):
    ours, theirs = gpt2
    text = read_tinyshakespeare()[:200_000]
    assert ours.encode(text) == theirs.encode(text)


def test_gpt2_save_load(tmp_path, gpt2):
    ours, theirs = gpt2
    path = tmp_path / "gpt2.json"
    ours.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.byte_ids == ours.byte_ids and loaded.merges == ours.merges
    text = VARIED_TEXTS[7] + VARIED_TEXTS[10]
    assert loaded.encode(text) == theirs.encode(text)
