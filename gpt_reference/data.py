"""Data: from a text file on the internet to random batches of token ids, in the style of nanoGPT.

Training a language model needs only one thing from its data: many random windows of consecutive tokens. A window
of ``block_size + 1`` tokens gives the inputs ``x = window[:-1]`` and the targets ``y = window[1:]``: at every
position the target is simply the next token. So data preparation, done once, is

    text file  →  tokenizer  →  two long arrays of token ids, train.bin and val.bin (90% / 10% of the text)

written as raw ``uint16`` (``uint32`` for a vocabulary over 65,536), next to the tokenizer (``tokenizer.json``) and a
``meta.json`` that says how they were made. Training then maps the files into memory (``np.memmap``) and reads
random windows from them, so a corpus of billions of tokens costs no RAM.

The data sets (``DataConfig.dataset``):

* ``shakespeare_char`` — tiny shakespeare (1.1 MB, downloaded once), one token per character: 65 tokens.
* ``shakespeare`` — the same text with byte-pair encoding: GPT-2's tokenizer (from ``tiktoken``) when it can be
  loaded, otherwise our own BPE trained on the training split (``bpe_vocab_size`` tokens).
* ``text`` — any UTF-8 text file (``text_path``). ``tokenizer = "auto"`` picks characters for files under 10 MB
  (small data, small vocabulary: the model learns faster) and GPT-2's BPE for bigger ones.
* ``textdir`` — a folder of many ``.txt`` / ``.jsonl`` files (a web corpus for GPT-2 124M), tokenized with GPT-2's
  BPE in parallel and streamed to disk (see ``prepare_text_dir`` and docs/large_corpus.md).
* ``adder`` — n-digit addition, generated on the fly (``gpt_reference.adder``).

Every data set object has ``get_batch(split, batch_size, generator, device)`` (lesson 04's ``get_batch`` on the
split's tokens), ``vocab_size``, ``block_size``, ``encode`` and ``decode``; ``batch_seed`` says which generator
draws each batch of a run. Prepared files live in the cache (``cache_dir()/prepared/<name>``) and are reused as long as
the source file and the tokenizer settings are the same.
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import json
import multiprocessing
import multiprocessing.pool
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tiktoken
import torch
from tqdm import tqdm

from .config import DataConfig
from .hardware import batch_to_device
from .tokenizer import ENDOFTEXT, BPETokenizer, CharTokenizer

if TYPE_CHECKING:  # the adder draws its batches with get_batch below, so it is imported where it is used
    from .adder import AdditionTask

TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINYSHAKESPEARE_FILE = "tinyshakespeare.txt"

TRAIN_FRACTION = 0.9  # the first 90% of a text trains, the last 10% validates
AUTO_CHAR_MAX_BYTES = 10_000_000  # tokenizer = "auto" on a text file: characters below this size, BPE above
PREPARED_FORMAT = 1  # bump when the layout of prepared folders changes, so that old ones are rebuilt
SPLITS = ("train", "val")
# what a tokenizer.json holds for GPT-2's tokenizer: a reference, since tiktoken keeps the tables in its own cache
GPT2_TOKENIZER_JSON = {"type": "tiktoken", "encoding": "gpt2"}


class DataError(RuntimeError):
    """A data set cannot be found, downloaded, verified or prepared. The message says what to do about it."""


# -----------------------------------------------------------------------------------------------------------------
# Finding and downloading source files


def cache_dir() -> Path:
    """Where downloads and prepared data sets go: ``$GPT_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpt_workbook``, else
    ``~/.cache/gpt_workbook``. Source folders (``GPT_DATA_DIR``) are only ever read, so they may be read-only."""
    if os.environ.get("GPT_CACHE_DIR"):
        return Path(os.environ["GPT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gpt_workbook"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_supply(download_path: Path) -> str:
    return (
        f"Download {TINYSHAKESPEARE_URL} on a machine with internet access and either save it as {download_path} "
        f"or put it in a folder as {TINYSHAKESPEARE_FILE} and point GPT_DATA_DIR (or --data_dir) at that folder."
    )


def fetch_tinyshakespeare(data_dir: str | None = None) -> Path:
    """The path of a verified copy of tiny shakespeare, downloading it into the cache if there is none.

    Looks for ``tinyshakespeare.txt`` in ``data_dir``, then in ``$GPT_DATA_DIR``, then in the cache. Whatever copy is
    found, or downloaded, must have the known SHA-256: a truncated download or a different file would otherwise
    silently give different data (and different results) from everyone else's.
    """
    download_path = cache_dir() / "downloads" / TINYSHAKESPEARE_FILE
    places = [("--data_dir", data_dir), ("GPT_DATA_DIR", os.environ.get("GPT_DATA_DIR"))]
    for origin, folder in places:
        if folder and (Path(folder) / TINYSHAKESPEARE_FILE).is_file():
            path = Path(folder) / TINYSHAKESPEARE_FILE
            remedy = f"Replace it with a good copy of {TINYSHAKESPEARE_URL}, or unset {origin} to download one."
            _verify(path, TINYSHAKESPEARE_SHA256, remedy)
            return path
    if download_path.is_file():
        remedy = "Delete it to download it again. " + _how_to_supply(download_path)
        _verify(download_path, TINYSHAKESPEARE_SHA256, remedy)
        return download_path
    _download(TINYSHAKESPEARE_URL, download_path, TINYSHAKESPEARE_SHA256)
    return download_path


def _verify(path: Path, expected_sha256: str, remedy: str) -> None:
    got = sha256_of(path)
    if got != expected_sha256:
        raise DataError(f"{path} is not the expected file: its SHA-256 is {got}, expected {expected_sha256}. {remedy}")


def _download(url: str, path: Path, expected_sha256: str) -> None:
    """Download ``url`` to ``path`` via a temporary file that is renamed only once its checksum is right, so an
    interrupted or corrupted download never leaves a file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"downloading {url} to {path}")
    digest = hashlib.sha256()
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as f:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                f.write(block)
    except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        partial.unlink(missing_ok=True)
        raise DataError(f"could not download {url}: {error}. {_how_to_supply(path)}") from error
    if digest.hexdigest() != expected_sha256:
        partial.unlink()
        raise DataError(
            f"the download of {url} has SHA-256 {digest.hexdigest()}, expected {expected_sha256}: it was cut short "
            f"or the file has changed. Try again, or: {_how_to_supply(path)}"
        )
    os.replace(partial, path)


# -----------------------------------------------------------------------------------------------------------------
# Tokenizers


def _gpt2_encoding() -> tiktoken.Encoding:
    """GPT-2's tokenizer from tiktoken (50,257 tokens). tiktoken downloads it on first use, or reads it from
    ``$TIKTOKEN_CACHE_DIR`` offline."""
    try:
        return tiktoken.get_encoding("gpt2")
    except Exception as error:  # tiktoken raises whatever its download raised (requests, OSError, ValueError...)
        raise DataError(
            f"could not load GPT-2's tokenizer with tiktoken ({type(error).__name__}: {error}). It is downloaded on "
            "first use; offline, set TIKTOKEN_CACHE_DIR to a folder holding tiktoken's cached gpt2 files."
        ) from error


def _choose_bpe(requested: str) -> str:
    """``gpt2`` or ``bpe`` for a BPE data set: ``auto`` means GPT-2's tokenizer if tiktoken can load it."""
    if requested != "auto":
        return requested
    try:
        _gpt2_encoding()
    except DataError as error:
        print(f"tokenizer: {error}\ntokenizer: training our own BPE on the training split instead")
        return "bpe"
    return "gpt2"


def _check_tokenizer(dataset: str, requested: str, allowed: tuple[str, ...]) -> None:
    if requested not in ("auto", *allowed):
        raise DataError(f"dataset {dataset!r} works with tokenizer = auto or {' or '.join(allowed)}, not {requested!r}")


def load_tokenizer(path: str | Path | None) -> CharTokenizer | BPETokenizer | tiktoken.Encoding:
    """The tokenizer saved in a ``tokenizer.json``: one of ours (``CharTokenizer.save``, ``BPETokenizer.save``) or a
    reference to GPT-2's, which is loaded through tiktoken. ``None`` gives GPT-2's tokenizer (for OpenAI's GPT-2
    weights)."""
    if path is None:
        return _gpt2_encoding()
    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    if saved == GPT2_TOKENIZER_JSON:
        return _gpt2_encoding()
    tokenizer_classes = {"char": CharTokenizer, "bpe": BPETokenizer}
    if saved.get("type") not in tokenizer_classes:
        raise ValueError(f'{path} is not a saved tokenizer: its "type" is {saved.get("type")!r}, expected "char", '
                         f'"bpe" or GPT-2\'s {GPT2_TOKENIZER_JSON}')
    return tokenizer_classes[saved["type"]].load(path)


def save_tokenizer(dataset: AdditionTask | TokenBins, path: str | Path) -> None:
    """Write the tokenizer of ``dataset`` to ``path`` (a run's tokenizer.json), so that sampling from a checkpoint
    needs only the run's folder and not the prepared data."""
    from .adder import AdditionTask

    if isinstance(dataset, AdditionTask):
        CharTokenizer("0123456789").save(path)  # character d has id d, exactly the adder's tokens
    else:
        shutil.copyfile(dataset.folder / "tokenizer.json", path)


# -----------------------------------------------------------------------------------------------------------------
# Preparing a text file: tokenize once, write train.bin / val.bin / meta.json


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name and rename: the rename is atomic, so readers see the old file or the new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def read_meta(folder: Path) -> dict:
    return json.loads((Path(folder) / "meta.json").read_text(encoding="utf-8"))


def _is_prepared(folder: Path, recipe: dict) -> bool:
    """A folder is complete when its meta.json (written last) has the same recipe and the bins have the sizes that
    meta.json records."""
    try:
        meta = read_meta(folder)
    except (OSError, json.JSONDecodeError):
        return False
    if meta.get("recipe") != recipe:
        return False
    itemsize = np.dtype(meta["dtype"]).itemsize
    return all(
        (folder / f"{split}.bin").is_file()
        and (folder / f"{split}.bin").stat().st_size == meta[f"{split}_tokens"] * itemsize
        for split in SPLITS
    )


def _describe(name: str, folder: Path, meta: dict) -> str:
    return (
        f"{name}: {meta['tokenizer']['kind']} tokenizer with {meta['vocab_size']:,} tokens; "
        f"train {meta['train_tokens']:,} tokens, val {meta['val_tokens']:,} tokens ({meta['dtype']}) in {folder}"
    )


def prepare_text_file(name: str, source: Path, tokenizer_kind: str, bpe_vocab_size: int = 2048) -> Path:
    """Tokenize one text file into ``cache_dir()/prepared/<name>`` (or reuse what is there), and return the folder.

    The first 90% of the text (by characters) is the training split and the rest the validation split; each is
    encoded on its own. ``tokenizer_kind`` is ``char`` (the vocabulary is every character of the whole text, so the
    validation text can be encoded too), ``bpe`` (our own BPE with ``bpe_vocab_size`` tokens, trained on the
    training split only, so that validation text is unseen) or ``gpt2``.
    """
    folder = cache_dir() / "prepared" / name
    data = source.read_bytes()
    recipe = {
        "format": PREPARED_FORMAT,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "tokenizer": tokenizer_kind,
        "train_fraction": TRAIN_FRACTION,
        **({"bpe_vocab_size": bpe_vocab_size} if tokenizer_kind == "bpe" else {}),
    }
    if _is_prepared(folder, recipe):
        print(f"reusing {_describe(name, folder, read_meta(folder))}")
        return folder

    text = data.decode("utf-8")
    split_at = int(len(text) * TRAIN_FRACTION)
    texts = {"train": text[:split_at], "val": text[split_at:]}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)  # until the new meta.json is written, the folder is incomplete

    if tokenizer_kind == "gpt2":
        encoding = _gpt2_encoding()
        encode, vocab_size = encoding.encode_ordinary, encoding.n_vocab
        _write_atomically(folder / "tokenizer.json", json.dumps(GPT2_TOKENIZER_JSON).encode("utf-8"))
    else:
        if tokenizer_kind == "char":
            tokenizer = CharTokenizer(text)
            encode = tokenizer.encode
        else:
            print(f"training a BPE tokenizer with {bpe_vocab_size:,} tokens on {len(texts['train']):,} characters")
            tokenizer = BPETokenizer.train(texts["train"], bpe_vocab_size)
            encode = tokenizer.to_tiktoken().encode_ordinary  # the same ids as tokenizer.encode_ordinary, faster
        vocab_size = tokenizer.vocab_size
        temporary = folder / f".tokenizer.{os.getpid()}.tmp.json"
        tokenizer.save(temporary)
        os.replace(temporary, folder / "tokenizer.json")

    dtype = _token_dtype(vocab_size)
    token_counts = {}
    for split, split_text in texts.items():
        ids = np.array(encode(split_text), dtype=dtype)
        _write_atomically(folder / f"{split}.bin", ids.tobytes())
        token_counts[f"{split}_tokens"] = len(ids)
    meta = {
        "dataset": name,
        "source": str(source),
        "tokenizer": {"kind": tokenizer_kind, "file": "tokenizer.json"},
        "vocab_size": vocab_size,
        "dtype": dtype.name,
        **token_counts,
        "recipe": recipe,
    }
    _write_atomically(folder / "meta.json", json.dumps(meta, indent=2).encode("utf-8"))
    print(f"prepared {_describe(name, folder, meta)}")
    return folder


# -----------------------------------------------------------------------------------------------------------------
# Preparing a large corpus: many files, tokenized in parallel, streamed to disk


def corpus_files(input_dir: Path) -> list[Path]:
    """The ``.txt`` and ``.jsonl`` files under ``input_dir`` (recursively), in a fixed order."""
    return sorted(p for p in Path(input_dir).rglob("*") if p.suffix in (".txt", ".jsonl") and p.is_file())


def iter_documents(files: list[Path], text_field: str = "text") -> Iterator[str]:
    """Every document of the corpus, one at a time: a ``.txt`` file is one document, and a ``.jsonl`` file has one
    document per line, a JSON object whose ``text_field`` holds the text (as the ``datasets`` library writes it)."""
    for path in files:
        if path.suffix == ".txt":
            yield path.read_text(encoding="utf-8")
            continue
        with open(path, encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)[text_field]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise DataError(
                        f"{path}, line {line_number}: expected a JSON object with a {text_field!r} field ({error})"
                    ) from error
                yield document


def _batches(documents: Iterator[str], characters: int) -> Iterator[list[str]]:
    """Group documents into lists of about ``characters`` characters: one unit of work for a worker process."""
    batch, size = [], 0
    for document in documents:
        batch.append(document)
        size += len(document)
        if size >= characters:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _encode_documents(documents: list[str]) -> list[np.ndarray]:
    """Runs in a worker process: each document → GPT-2 token ids ending with ``<|endoftext|>``.

    ``encode_ordinary`` treats the text as plain text, so a document that happens to contain the string
    "<|endoftext|>" cannot fake a document boundary; the real boundary token is appended here. With it the model
    learns that what follows is unrelated, and at sampling time it can start from <|endoftext|> as "a new document".
    """
    encoding = tiktoken.get_encoding("gpt2")  # loaded once per process: tiktoken caches it
    return [np.array(encoding.encode_ordinary(d) + [encoding.eot_token], dtype=np.uint16) for d in documents]


def _ordered_results(pool: multiprocessing.pool.Pool, function: Callable, work: Iterator, max_pending: int) -> Iterator:
    """``function(item)`` for each item of ``work``, computed by ``pool``, yielded in order.

    Like ``pool.imap``, except that ``imap`` reads all of ``work`` ahead of the workers, which for a corpus means
    reading all of it into memory. Here at most ``max_pending`` items are in flight: enough to keep every worker
    busy while the next item is read, and memory stays flat.
    """
    pending: collections.deque = collections.deque()
    for item in work:
        pending.append(pool.apply_async(function, (item,)))
        if len(pending) >= max_pending:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _corpus_fingerprint(files: list[Path], input_dir: Path) -> str:
    """A hash of every file's name, size and modification time: re-reading a corpus of many GB to hash its bytes
    would take as long as preparing it (this is how ``make`` decides what is out of date)."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(input_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def prepare_text_dir(
    input_dir: str | Path,
    out_dir: str | Path,
    num_workers: int | None = None,
    val_every: int = 1000,
    text_field: str = "text",
    progress: bool = True,
) -> Path:
    """Tokenize a folder of ``.txt`` / ``.jsonl`` documents with GPT-2's BPE into ``out_dir`` (train.bin, val.bin,
    meta.json), without ever holding the corpus in memory, and return ``out_dir``.

    Documents are read in order, grouped into batches of about a million characters and encoded by ``num_workers``
    processes (default: all CPU cores); at most two batches per worker are in flight, so memory stays small however
    big the corpus. Results come back in order and are appended to the bins, so the output is the same whatever the
    number of workers. Every ``val_every``-th document (the 0th, the 1000th, ...) goes to val.bin, the rest to
    train.bin. GPT-2's 50,257 ids fit in ``uint16``. If ``out_dir`` already holds the result for the same files
    (names, sizes and modification times) it is reused.
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    files = corpus_files(input_dir)
    if not files:
        raise DataError(f"no .txt or .jsonl files in {input_dir}")
    encoding = _gpt2_encoding()  # fail early, and with a clear message, if tiktoken cannot load it
    recipe = {
        "format": PREPARED_FORMAT,
        "source_fingerprint": _corpus_fingerprint(files, input_dir),
        "tokenizer": "gpt2",
        "val_every": val_every,
        "text_field": text_field,
    }
    if _is_prepared(out_dir, recipe):
        print(f"reusing {_describe(out_dir.name, out_dir, read_meta(out_dir))}")
        return out_dir

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "meta.json").unlink(missing_ok=True)
    num_workers = num_workers or os.cpu_count() or 1
    temporary = {split: out_dir / f".{split}.bin.{os.getpid()}.tmp" for split in SPLITS}
    token_counts = dict.fromkeys(SPLITS, 0)
    documents = 0
    print(f"tokenizing {len(files):,} files from {input_dir} with {num_workers} processes")
    try:
        with (
            multiprocessing.Pool(num_workers) as pool,
            open(temporary["train"], "wb") as train_file,
            open(temporary["val"], "wb") as val_file,
            tqdm(unit=" docs", disable=not progress) as bar,
        ):
            outputs = {"train": train_file, "val": val_file}
            batches = _batches(iter_documents(files, text_field), characters=1_000_000)
            for encoded in _ordered_results(pool, _encode_documents, batches, max_pending=2 * num_workers):
                for ids in encoded:
                    split = "val" if documents % val_every == 0 else "train"
                    ids.tofile(outputs[split])
                    token_counts[split] += len(ids)
                    documents += 1
                bar.update(len(encoded))
                bar.set_postfix(tokens=f"{sum(token_counts.values()):,}")
        if token_counts["train"] == 0:
            raise DataError(f"{input_dir} has only {documents} document(s) and the first goes to val: add more")
        for split in SPLITS:
            os.replace(temporary[split], out_dir / f"{split}.bin")
    finally:  # an error or Ctrl-C must not leave half-written bins behind
        for path in temporary.values():
            path.unlink(missing_ok=True)
    meta = {
        "dataset": "textdir",
        "source": str(input_dir),
        "files": len(files),
        "documents": documents,
        "tokenizer": {"kind": "gpt2", "file": "tokenizer.json"},
        "vocab_size": encoding.n_vocab,
        "dtype": "uint16",
        "train_tokens": token_counts["train"],
        "val_tokens": token_counts["val"],
        "recipe": recipe,
    }
    _write_atomically(out_dir / "tokenizer.json", json.dumps(GPT2_TOKENIZER_JSON).encode("utf-8"))
    _write_atomically(out_dir / "meta.json", json.dumps(meta, indent=2).encode("utf-8"))
    print(f"prepared {_describe(out_dir.name, out_dir, meta)}")
    return out_dir


# -----------------------------------------------------------------------------------------------------------------
# Batches: random windows of a token sequence, and which rows each batch of a run reads


def get_batch(
    data: torch.Tensor | np.ndarray,
    block_size: int,
    batch_size: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    *,
    stride: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``data``: inputs x and next-token targets y, both (B, block_size) int64.

    ``data`` is one long 1-D sequence of token ids (a tensor, or the NumPy memory map of a prepared ``.bin``). A
    window of ``block_size + 1`` tokens gives ``x = window[:-1]`` and ``y = window[1:]``: at every position the
    target is the next token. The starts are drawn with one call, ``torch.randint(len(data) - block_size, ...,
    generator=generator)``: anything from 0 to ``len(data) - block_size - 1``, so the last token is a target too, and
    nothing but ``generator`` is used, so a seed fixes the batch (lesson 04's ``get_batch``).

    ``stride`` > 1 serves sequences of ``stride`` tokens laid end to end (the adder's problems): windows start at
    multiples of ``stride`` only, drawn as ``stride * torch.randint(number of sequences, ...)``.
    """
    num_starts = (len(data) - block_size - 1) // stride + 1  # len(data) - block_size when stride is 1
    starts = (torch.randint(num_starts, (batch_size,), generator=generator) * stride).tolist()
    windows = torch.from_numpy(np.stack([data[s : s + block_size + 1] for s in starts]).astype(np.int64))
    x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
    return batch_to_device(x, y, device)


SPLIT_IDS = {"train": 0, "val": 1}
EVAL_STEP = -1  # the "step" of evaluation batches; training steps are >= 0, so the two streams never meet
_SEED_MULTIPLIER = 1_000_003  # a prime larger than any split id, step or micro-batch index we expect


def batch_seed(seed: int, split: str, step: int, micro: int) -> int:
    """The seed of the generator that draws micro-batch ``micro`` of optimizer step ``step`` on ``split``.

    The trainer draws micro-batch ``g`` of step ``s`` with ``torch.Generator().manual_seed(batch_seed(seed,
    "train", s, g))`` and evaluation batch ``k`` with ``batch_seed(seed, split, EVAL_STEP, k)``, so which rows a
    batch reads is a pure function of the run: a resumed run needs no data-loader state, DDP processes can share
    out the micro-batches of one step, and a plain loop over the same seeds sees the same batches as the trainer.

    The seed is a polynomial in the four integers, ``(((seed·P + split_id)·P + step)·P + micro) mod 2**63`` with
    ``P = 1_000_003`` and ``split_id`` 0 for train, 1 for val: different (split, step, micro) give different seeds,
    and the same ones give the same seed in every process and every run. (Python's ``hash()`` of a string would
    not: it is randomised per process.)
    """
    value = seed
    for part in (SPLIT_IDS[split], step, micro):
        value = (value * _SEED_MULTIPLIER + part) % 2**63
    return value


# -----------------------------------------------------------------------------------------------------------------
# Reading prepared data: random windows from memory-mapped bins


class TokenBins:
    """A prepared folder as a data set: random windows from ``train.bin`` / ``val.bin``, and its tokenizer.

    The bins are memory-mapped once and kept. (nanoGPT re-creates its ``np.memmap`` for every batch because the
    process's memory use seems to grow as pages are read; those pages are the operating system's file cache, which
    it drops when memory is needed, so keeping the map costs nothing and saves re-opening the file every step.)
    """

    def __init__(self, folder: str | Path, block_size: int) -> None:
        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        self.vocab_size: int = self.meta["vocab_size"]
        self.block_size = block_size
        for split in SPLITS:
            if self.meta[f"{split}_tokens"] <= block_size:
                raise DataError(
                    f"the {split} split of {self.folder} has {self.meta[f'{split}_tokens']:,} tokens, too few for one "
                    f"window of block_size + 1 = {block_size + 1}: use more text or a smaller block_size"
                )
        self.tokens = {
            split: np.memmap(self.folder / f"{split}.bin", dtype=np.dtype(self.meta["dtype"]), mode="r")
            for split in SPLITS
        }
        self.tokenizer = load_tokenizer(self.folder / "tokenizer.json")

    def encode(self, text: str) -> list[int]:
        """Text → ids, e.g. for a prompt. With BPE, ``<|endoftext|>`` in a prompt is the document separator."""
        if isinstance(self.tokenizer, CharTokenizer):
            return self.tokenizer.encode(text)
        return self.tokenizer.encode(text, allowed_special={ENDOFTEXT})

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def get_batch(
        self, split: str, batch_size: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``get_batch`` on the tokens of ``split``: x and y, both (B, block_size) int64, drawn with ``generator``."""
        return get_batch(self.tokens[split], self.block_size, batch_size, generator, device)


# -----------------------------------------------------------------------------------------------------------------
# Entry points for the command line and the trainer


def _short_hash(path: Path) -> str:
    """Tells apart prepared folders of different files with the same name."""
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]


def prepare(config: DataConfig) -> Path | None:
    """Make sure the data set of ``config`` is prepared (download, tokenize, write bins) and return its folder.

    Prints a one-line summary. The adder task is generated on the fly, so it has no folder: ``None``.
    """
    dataset, requested = config.dataset, config.tokenizer
    if dataset == "adder":
        print(f"adder: {config.adder_digits}-digit addition problems are generated on the fly; nothing to prepare")
        return None
    if dataset == "shakespeare_char":
        _check_tokenizer(dataset, requested, ("char",))
        return prepare_text_file(dataset, fetch_tinyshakespeare(config.data_dir or None), "char")
    if dataset == "shakespeare":
        _check_tokenizer(dataset, requested, ("gpt2", "bpe"))
        kind = _choose_bpe(requested)
        name = "shakespeare_gpt2" if kind == "gpt2" else f"shakespeare_bpe{config.bpe_vocab_size}"
        return prepare_text_file(name, fetch_tinyshakespeare(config.data_dir or None), kind, config.bpe_vocab_size)
    if dataset == "text":
        source = Path(config.text_path).expanduser()
        if not config.text_path or not source.is_file():
            raise DataError(f"dataset 'text' needs text_path, a UTF-8 text file to train on (got {config.text_path!r})")
        _check_tokenizer(dataset, requested, ("char", "gpt2", "bpe"))
        if requested == "auto" and source.stat().st_size < AUTO_CHAR_MAX_BYTES:
            kind = "char"
        else:
            kind = _choose_bpe(requested)
        label = f"bpe{config.bpe_vocab_size}" if kind == "bpe" else kind
        name = f"text_{source.stem}_{_short_hash(source)}_{label}"
        return prepare_text_file(name, source, kind, config.bpe_vocab_size)
    if dataset == "textdir":
        source = Path(config.text_path).expanduser()
        if not config.text_path or not source.is_dir():
            raise DataError(f"dataset 'textdir' needs text_path, a folder of documents (got {config.text_path!r})")
        _check_tokenizer(dataset, requested, ("gpt2",))
        return prepare_text_dir(source, cache_dir() / "prepared" / f"textdir_{source.name}_{_short_hash(source)}")
    raise DataError(f"unknown dataset {dataset!r}: choose adder, shakespeare_char, shakespeare, text or textdir")


def load_dataset(config: DataConfig, block_size: int) -> AdditionTask | TokenBins:
    """The data set of ``config``, prepared if needed, serving windows of ``block_size`` tokens.

    The adder's sequences have a fixed length (3 × digits), which must fit in ``block_size``; its own
    ``block_size`` attribute says what that length is.
    """
    if config.dataset == "adder":
        from .adder import AdditionTask

        task = AdditionTask(config.adder_digits)
        if block_size < task.block_size:
            raise DataError(f"{task.n_digits}-digit addition needs block_size >= {task.block_size}, not {block_size}")
        return task
    return TokenBins(prepare(config), block_size)
