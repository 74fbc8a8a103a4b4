"""Benchmark our BPE tokenizer: training time, compression, and encoding speed against its tiktoken twin.

    python bench/bench_bpe.py                      # tiny shakespeare from $GPT_DATA_DIR, vocab_size 1024
    python bench/bench_bpe.py --vocab_size 2048 --text some_file.txt

Encoding is measured twice for our pure-Python tokenizer: "cold" with an empty chunk cache (every distinct chunk is
encoded once) and "warm" on a second pass (every chunk is a dictionary lookup). tiktoken does the same work in Rust.
"""

import argparse
import os
import time
from pathlib import Path

from gpt_reference.tokenizer import BPETokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab_size", type=int, default=1024)
    parser.add_argument("--text", type=Path, help="the text file (default: $GPT_DATA_DIR/tinyshakespeare.txt)")
    args = parser.parse_args()
    path = args.text or Path(os.environ.get("GPT_DATA_DIR", ".")) / "tinyshakespeare.txt"
    if not path.exists():
        parser.error(f"{path} not found: pass --text or set GPT_DATA_DIR to the folder holding tinyshakespeare.txt")
    text = path.read_text(encoding="utf-8")
    n_bytes = len(text.encode("utf-8"))
    megabytes = n_bytes / 1e6
    print(f"{path}: {n_bytes:,} bytes")

    start = time.perf_counter()
    tokenizer = BPETokenizer.train(text, args.vocab_size)
    seconds = time.perf_counter() - start
    print(f"train to vocab_size {tokenizer.vocab_size}: {len(tokenizer.merges)} merges in {seconds:.2f} s")

    start = time.perf_counter()
    ids = tokenizer.encode(text)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    tokenizer.encode(text)
    warm = time.perf_counter() - start
    print(f"compression: {len(ids):,} tokens, {n_bytes / len(ids):.2f} bytes per token")
    print(f"encode, ours (cold cache): {cold:.2f} s, {megabytes / cold:.2f} MB/s")
    print(f"encode, ours (warm cache): {warm:.2f} s, {megabytes / warm:.2f} MB/s")

    start = time.perf_counter()
    encoding = tokenizer.to_tiktoken()
    convert = time.perf_counter() - start
    start = time.perf_counter()
    tiktoken_ids = encoding.encode(text)
    fast = time.perf_counter() - start
    print(f"to_tiktoken(): {convert:.3f} s; encode: {fast:.3f} s, {megabytes / fast:.1f} MB/s")
    print(f"identical ids: {tiktoken_ids == ids}")


if __name__ == "__main__":
    main()
