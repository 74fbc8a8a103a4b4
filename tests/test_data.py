"""Data: finding, verifying and downloading tiny shakespeare, preparing token bins, and drawing batches from them.

Every test gets its own empty cache (GPT_CACHE_DIR = tmp_path), so nothing is written to the home folder and no
test sees another's prepared files. The real tiny shakespeare comes from GPT_DATA_DIR (the ``shakespeare_path``
fixture in conftest.py); tests that need it skip without it.
"""

import hashlib
import io
import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
import tiktoken
import torch

from gpt_reference import data
from gpt_reference.adder import AdditionTask
from gpt_reference.config import DataConfig
from gpt_reference.data import DataError
from gpt_reference.tokenizer import BPETokenizer


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def offline(monkeypatch):
    """No network: any download attempt fails the way urllib fails without one."""

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


@pytest.fixture(scope="module")
def gpt2():
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception:
        pytest.skip("tiktoken cannot load gpt2: set TIKTOKEN_CACHE_DIR (CI: ../shared/data/tiktoken_cache)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- finding, verifying and downloading --------------------------------------------------------------------------


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GPT_CACHE_DIR", str(tmp_path / "mine"))
    assert data.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("GPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "gpt_workbook"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "gpt_workbook"


def test_wrong_file_in_data_dir_is_a_clear_error(monkeypatch, tmp_path, offline):
    bad = tmp_path / "data" / "tinyshakespeare.txt"
    bad.parent.mkdir()
    bad.write_text("First Citizen:\nthis is not the whole play\n")
    monkeypatch.setenv("GPT_DATA_DIR", str(bad.parent))
    with pytest.raises(DataError) as error:
        data.fetch_tinyshakespeare()
    message = str(error.value)
    assert str(bad) in message and "GPT_DATA_DIR" in message
    assert data.TINYSHAKESPEARE_SHA256 in message and sha256(bad.read_bytes()) in message
    # the same through the data_dir argument (--data_dir), which is looked at first
    monkeypatch.delenv("GPT_DATA_DIR")
    with pytest.raises(DataError, match="--data_dir"):
        data.fetch_tinyshakespeare(str(bad.parent))


def test_corrupt_cached_download_is_a_clear_error(own_cache, monkeypatch, offline):
    monkeypatch.delenv("GPT_DATA_DIR", raising=False)
    cached = own_cache / "downloads" / "tinyshakespeare.txt"
    cached.parent.mkdir(parents=True)
    cached.write_text("truncated")
    with pytest.raises(DataError, match="Delete it to download it again") as error:
        data.fetch_tinyshakespeare()
    assert str(cached) in str(error.value)


def test_no_network_says_how_to_supply_the_file(own_cache, monkeypatch, offline):
    monkeypatch.delenv("GPT_DATA_DIR", raising=False)
    with pytest.raises(DataError) as error:
        data.fetch_tinyshakespeare()
    message = str(error.value)
    assert data.TINYSHAKESPEARE_URL in message and "name resolution" in message
    assert str(own_cache / "downloads" / "tinyshakespeare.txt") in message and "GPT_DATA_DIR" in message
    assert list((own_cache / "downloads").iterdir()) == []  # no partial file left behind


def serve(monkeypatch, payload: bytes) -> list[str]:
    """Make urlopen answer every request with ``payload``; returns the list of URLs requested."""
    requested = []

    def urlopen(url, timeout=None):
        assert timeout is not None, "a download without a timeout can hang forever"
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def test_download_is_verified_then_renamed(own_cache, monkeypatch):
    monkeypatch.delenv("GPT_DATA_DIR", raising=False)
    payload = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 1000
    monkeypatch.setattr(data, "TINYSHAKESPEARE_SHA256", sha256(payload))
    requested = serve(monkeypatch, payload)
    path = data.fetch_tinyshakespeare()
    assert requested == [data.TINYSHAKESPEARE_URL]
    assert path == own_cache / "downloads" / "tinyshakespeare.txt" and path.read_bytes() == payload
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file was renamed, not copied
    assert data.fetch_tinyshakespeare() == path and len(requested) == 1  # the second time it comes from the cache


def test_corrupted_download_is_rejected(own_cache, monkeypatch):
    monkeypatch.delenv("GPT_DATA_DIR", raising=False)
    payload = b"half of the play"
    serve(monkeypatch, payload)
    with pytest.raises(DataError, match=f"SHA-256 {sha256(payload)}, expected {data.TINYSHAKESPEARE_SHA256}"):
        data.fetch_tinyshakespeare()
    assert list((own_cache / "downloads").iterdir()) == []


def test_local_copy_is_used_and_verified(shakespeare_path, monkeypatch, offline):
    monkeypatch.setenv("GPT_DATA_DIR", str(shakespeare_path.parent))
    assert data.fetch_tinyshakespeare() == shakespeare_path
    assert data.sha256_of(shakespeare_path) == data.TINYSHAKESPEARE_SHA256


# ---- preparing and reading tiny shakespeare ----------------------------------------------------------------------


@pytest.fixture
def shakespeare_char(shakespeare_path, monkeypatch, offline):
    monkeypatch.setenv("GPT_DATA_DIR", str(shakespeare_path.parent))
    return data.prepare(DataConfig(dataset="shakespeare_char"))


def test_prepare_shakespeare_char(shakespeare_char, shakespeare_path, own_cache):
    folder = shakespeare_char
    assert folder == own_cache / "prepared" / "shakespeare_char"
    meta = data.read_meta(folder)
    assert meta["vocab_size"] == 65 and meta["dtype"] == "uint16" and meta["tokenizer"]["kind"] == "char"
    assert meta["recipe"]["source_sha256"] == data.TINYSHAKESPEARE_SHA256
    train = np.fromfile(folder / "train.bin", dtype=np.uint16)
    val = np.fromfile(folder / "val.bin", dtype=np.uint16)
    assert (len(train), len(val)) == (meta["train_tokens"], meta["val_tokens"]) == (1_003_854, 111_540)
    text = shakespeare_path.read_text(encoding="utf-8")
    dataset = data.TokenBins(folder, block_size=8)
    assert dataset.decode(train.tolist()) == text[: int(len(text) * 0.9)]
    assert dataset.decode(train.tolist()) + dataset.decode(val.tolist()) == text
    assert dataset.encode("\n ") == [0, 1]  # the sorted vocabulary starts with newline and space


def test_prepared_bins_are_reused(shakespeare_char, capsys):
    train_bin = shakespeare_char / "train.bin"
    written = train_bin.stat().st_mtime_ns
    capsys.readouterr()
    assert data.prepare(DataConfig(dataset="shakespeare_char")) == shakespeare_char
    assert "reusing shakespeare_char" in capsys.readouterr().out
    assert train_bin.stat().st_mtime_ns == written
    # a folder made with a different recipe (here: an older format) is rebuilt, not trusted
    meta = data.read_meta(shakespeare_char)
    meta["recipe"]["format"] = 0
    (shakespeare_char / "meta.json").write_text(json.dumps(meta))
    data.prepare(DataConfig(dataset="shakespeare_char"))
    assert "prepared shakespeare_char" in capsys.readouterr().out
    assert data.read_meta(shakespeare_char)["recipe"]["format"] == data.PREPARED_FORMAT


def test_get_batch(shakespeare_char):
    dataset = data.load_dataset(DataConfig(dataset="shakespeare_char"), block_size=32)
    assert (dataset.vocab_size, dataset.block_size) == (65, 32)
    x, y = dataset.get_batch("train", 16, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert x.shape == y.shape == (16, 32) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    # the windows start where the generator says, and nothing else decides: the same seed gives the same batch
    tokens = torch.from_numpy(np.fromfile(shakespeare_char / "train.bin", dtype=np.uint16).astype(np.int64))
    starts = torch.randint(len(tokens) - 32, (16,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.stack([tokens[s : s + 32] for s in starts]))
    assert torch.equal(y, torch.stack([tokens[s + 1 : s + 33] for s in starts]))
    again, _ = dataset.get_batch("train", 16, torch.Generator().manual_seed(0), "cpu")
    other, _ = dataset.get_batch("train", 16, torch.Generator().manual_seed(1), "cpu")
    assert torch.equal(x, again) and not torch.equal(x, other)
    val_x, _ = dataset.get_batch("val", 4, torch.Generator().manual_seed(0), "cpu")
    assert val_x.max() < 65


def test_free_get_batch_reads_tensors_and_memory_maps_alike(tmp_path):
    """Lesson 04's get_batch serves TokenBins (a uint16 memory map) and lesson notebooks (an int64 tensor)."""
    ids = torch.randint(0, 65, (500,), generator=torch.Generator().manual_seed(3))
    ids.numpy().astype(np.uint16).tofile(tmp_path / "ids.bin")
    bins = np.memmap(tmp_path / "ids.bin", dtype=np.uint16, mode="r")
    from_tensor = data.get_batch(ids, 16, 8, torch.Generator().manual_seed(5))
    from_bins = data.get_batch(bins, 16, 8, torch.Generator().manual_seed(5), "cpu")
    for a, b in zip(from_tensor, from_bins, strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype == torch.int64


def test_get_batch_with_a_stride_starts_at_whole_sequences():
    # 50 sequences of 7 tokens end to end; token 100 * sequence + position
    stream = (100 * torch.arange(50)[:, None] + torch.arange(7)).flatten()
    x, y = data.get_batch(stream, 6, 1000, torch.Generator().manual_seed(0), stride=7)
    assert torch.equal(x % 100, torch.arange(6).expand(1000, 6)) and torch.equal(y, x + 1)
    assert set((x[:, 0] // 100).tolist()) == set(range(50))  # every sequence can be drawn, the last one too
    # one draw per row, as for stride 1: torch.randint(number of sequences, ...)
    expected = torch.randint(50, (1000,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 0] // 100, expected)


def test_batch_seeds_differ_per_split_step_and_micro_batch():
    seeds = {data.batch_seed(1, split, step, micro) for split in data.SPLIT_IDS for step in (data.EVAL_STEP, 0, 1)
             for micro in range(3)}  # fmt: skip
    assert len(seeds) == 2 * 3 * 3


# ---- any text file -----------------------------------------------------------------------------------------------


def test_windows_reach_the_end_of_the_data(tmp_path):
    # every character is different, so a window's first token tells where it starts
    text = "".join(chr(0x4E00 + i) for i in range(200))
    path = tmp_path / "distinct.txt"
    path.write_text(text, encoding="utf-8")
    dataset = data.load_dataset(DataConfig(dataset="text", text_path=str(path)), block_size=10)
    assert dataset.vocab_size == 200 and dataset.meta["tokenizer"]["kind"] == "char"
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(50):
        x, y = dataset.get_batch("val", 32, generator, "cpu")
        starts.update(x[:, 0].tolist())
    val_tokens = dataset.tokens["val"]
    assert len(val_tokens) == 20
    # every possible start, from 0 to the one whose last target is the final token
    assert starts == set(val_tokens[: 20 - 10].tolist())


def test_text_file_tokenizers(tmp_path, gpt2):
    path = tmp_path / "poem.txt"
    text = "The quick brown fox jumps over the lazy dog. " * 200 + "Zebras & émigrés.\n" * 50
    path.write_text(text, encoding="utf-8")
    char = data.load_dataset(DataConfig(dataset="text", text_path=str(path)), block_size=16)
    assert char.meta["tokenizer"]["kind"] == "char" and char.vocab_size == len(set(text))
    bpe = data.load_dataset(DataConfig(dataset="text", text_path=str(path), tokenizer="bpe", bpe_vocab_size=270), 16)
    assert bpe.meta["tokenizer"]["kind"] == "bpe" and bpe.vocab_size == 270
    gpt = data.load_dataset(DataConfig(dataset="text", text_path=str(path), tokenizer="gpt2"), block_size=16)
    assert gpt.vocab_size == 50257 and gpt.encode("The quick") == gpt2.encode("The quick")
    for dataset in (char, bpe, gpt):
        decoded = dataset.decode(dataset.tokens["train"].tolist()) + dataset.decode(dataset.tokens["val"].tolist())
        assert decoded == text
    assert len({char.folder, bpe.folder, gpt.folder}) == 3  # each tokenizer has its own prepared folder
    # BPE data sets accept <|endoftext|> in prompts, as the document separator
    assert gpt.encode("<|endoftext|>") == [gpt2.eot_token]
    assert bpe.encode("a<|endoftext|>")[-1] == bpe.tokenizer.special_tokens["<|endoftext|>"]


def test_auto_falls_back_to_our_own_bpe_without_tiktoken(tmp_path, monkeypatch, capsys):
    def cannot_load(name):
        raise ConnectionError("no network and no TIKTOKEN_CACHE_DIR")

    monkeypatch.setattr(tiktoken, "get_encoding", cannot_load)
    monkeypatch.setattr(data, "AUTO_CHAR_MAX_BYTES", 0)  # treat our small file as a large one
    path = tmp_path / "book.txt"
    path.write_text("It was the best of times, it was the worst of times. " * 100, encoding="utf-8")
    dataset = data.load_dataset(DataConfig(dataset="text", text_path=str(path), bpe_vocab_size=280), 8)
    assert dataset.meta["tokenizer"]["kind"] == "bpe" and dataset.vocab_size == 280
    assert "training our own BPE" in capsys.readouterr().out
    # asking for GPT-2's tokenizer explicitly is an error that says how to make it available
    with pytest.raises(DataError, match="TIKTOKEN_CACHE_DIR"):
        data.prepare(DataConfig(dataset="text", text_path=str(path), tokenizer="gpt2"))


def test_configuration_errors(tmp_path):
    with pytest.raises(DataError, match="text_path"):
        data.prepare(DataConfig(dataset="text", text_path=str(tmp_path / "missing.txt")))
    with pytest.raises(DataError, match="tokenizer = auto or char"):
        data.prepare(DataConfig(dataset="shakespeare_char", tokenizer="gpt2"))
    with pytest.raises(DataError, match="unknown dataset 'shakespear'"):
        data.prepare(DataConfig(dataset="shakespear"))
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be, that is the question")
    with pytest.raises(DataError, match="too few for one window"):
        data.load_dataset(DataConfig(dataset="text", text_path=str(short)), block_size=16)


def test_tokenizer_files_for_runs(tmp_path, shakespeare_char, gpt2):
    # a run saves its data set's tokenizer, and sampling loads it back without the prepared data
    dataset = data.load_dataset(DataConfig(dataset="shakespeare_char"), block_size=8)
    data.save_tokenizer(dataset, tmp_path / "char.json")
    char = data.load_tokenizer(tmp_path / "char.json")
    assert char.vocab_size == 65 and char.encode("ROMEO:") == dataset.encode("ROMEO:")
    adder = AdditionTask(n_digits=2)
    data.save_tokenizer(adder, tmp_path / "adder.json")
    assert data.load_tokenizer(tmp_path / "adder.json").encode("5545001") == adder.encode("5545001")
    path = tmp_path / "poem.txt"
    path.write_text("Shall I compare thee to a summer's day? " * 50)
    gpt_dataset = data.load_dataset(DataConfig(dataset="text", text_path=str(path), tokenizer="gpt2"), block_size=8)
    data.save_tokenizer(gpt_dataset, tmp_path / "gpt2.json")
    assert json.loads((tmp_path / "gpt2.json").read_text()) == {"type": "tiktoken", "encoding": "gpt2"}
    assert data.load_tokenizer(tmp_path / "gpt2.json").encode("Shall I") == gpt2.encode("Shall I")
    assert data.load_tokenizer(None).n_vocab == 50257
    BPETokenizer.train("Shall I compare thee", 270).save(tmp_path / "bpe.json")
    assert isinstance(data.load_tokenizer(tmp_path / "bpe.json"), BPETokenizer)
    (tmp_path / "other.json").write_text('{"type": "sentencepiece"}')
    with pytest.raises(ValueError, match="not a saved tokenizer"):
        data.load_tokenizer(tmp_path / "other.json")


def test_adder_through_load_dataset():
    task = data.load_dataset(DataConfig(dataset="adder", adder_digits=3), block_size=9)
    assert isinstance(task, AdditionTask) and (task.n_digits, task.block_size, task.vocab_size) == (3, 9, 10)
    assert data.prepare(DataConfig(dataset="adder")) is None
    with pytest.raises(DataError, match="block_size >= 6"):
        data.load_dataset(DataConfig(dataset="adder", adder_digits=2), block_size=5)


# ---- a folder of documents (the large-corpus path) ---------------------------------------------------------------


def make_corpus(folder):
    documents = [f"Document number {i}. " + "Words, words, words. " * (i + 1) for i in range(7)]
    (folder / "nested").mkdir(parents=True)
    (folder / "a.txt").write_text(documents[0], encoding="utf-8")
    with open(folder / "b.jsonl", "w", encoding="utf-8") as f:
        for document in documents[1:4]:
            f.write(json.dumps({"text": document, "id": "ignored"}) + "\n\n")
    (folder / "c.txt").write_text(documents[4], encoding="utf-8")
    (folder / "nested" / "d.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in documents[5:]))
    (folder / "notes.md").write_text("not a corpus file")
    return documents


def test_prepare_text_dir(tmp_path, gpt2, capsys):
    documents = make_corpus(tmp_path / "corpus")
    out = data.prepare_text_dir(tmp_path / "corpus", tmp_path / "out", num_workers=2, val_every=3, progress=False)
    meta = data.read_meta(out)
    assert (meta["files"], meta["documents"], meta["vocab_size"], meta["dtype"]) == (4, 7, 50257, "uint16")
    train = np.fromfile(out / "train.bin", dtype=np.uint16).tolist()
    val = np.fromfile(out / "val.bin", dtype=np.uint16).tolist()
    assert (len(train), len(val)) == (meta["train_tokens"], meta["val_tokens"])

    def as_documents(ids):
        text = gpt2.decode(ids)
        assert text.endswith("<|endoftext|>")
        return text.split("<|endoftext|>")[:-1]

    # files in sorted order (a.txt, b.jsonl, c.txt, nested/d.jsonl); documents 0, 3 and 6 are every 3rd: val
    assert as_documents(val) == [documents[0], documents[3], documents[6]]
    assert as_documents(train) == [documents[i] for i in (1, 2, 4, 5)]
    assert train.count(gpt2.eot_token) == 4
    assert train[: len(gpt2.encode_ordinary(documents[1]))] == gpt2.encode_ordinary(documents[1])
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]

    capsys.readouterr()
    data.prepare_text_dir(tmp_path / "corpus", tmp_path / "out", num_workers=2, val_every=3, progress=False)
    assert "reusing" in capsys.readouterr().out
    (tmp_path / "corpus" / "c.txt").write_text("A changed document.", encoding="utf-8")
    data.prepare_text_dir(tmp_path / "corpus", tmp_path / "out", num_workers=1, val_every=3, progress=False)
    assert "prepared" in capsys.readouterr().out
    assert "A changed document." in gpt2.decode(np.fromfile(out / "train.bin", dtype=np.uint16).tolist())


def test_textdir_dataset(tmp_path, own_cache, gpt2):
    make_corpus(tmp_path / "corpus")
    config = DataConfig(dataset="textdir", text_path=str(tmp_path / "corpus"))
    dataset = data.load_dataset(config, block_size=8)
    assert dataset.folder.parent == own_cache / "prepared" and dataset.vocab_size == 50257
    x, y = dataset.get_batch("train", 4, torch.Generator().manual_seed(0), "cpu")
    assert x.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .txt or .jsonl files"):
        data.prepare_text_dir(tmp_path / "empty", tmp_path / "empty_out")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jsonl").write_text('{"content": "the wrong field"}\n')
    with pytest.raises(DataError, match=r"x.jsonl, line 1: expected a JSON object with a 'text' field"):
        data.prepare_text_dir(bad, tmp_path / "bad_out", num_workers=1, progress=False)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path / "bad_out"))
