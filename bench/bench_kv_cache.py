"""Benchmark KV-cached generation against recomputing the whole context at every step.

    python bench/bench_kv_cache.py                 # lesson 05's model: 6 layers, 6 heads, 384 wide, 512-token window
    python bench/bench_kv_cache.py --new_tokens 512 --prompt_tokens 64 --device cuda

Both runs are greedy from the same random model and prompt, so they must produce the same tokens (checked). Each
run is timed step by step from one generation: a hook on the token embedding, which every step passes through once,
records the time. Without a cache, step t runs the model on all T + t tokens of the context; with one, on the newest
token only (but it still reads every weight), so the speed-up grows with the length generated.
"""

import argparse
import time

import torch

from gpt_reference.config import GPTConfig
from gpt_reference.hardware import auto_device, synchronize
from gpt_reference.model import GPT


def step_times(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool) -> tuple[torch.Tensor, list[float]]:
    """Generate greedily; return the tokens and the time from the start to the end of every step."""
    device = prompt.device
    marks: list[float] = []

    def mark(*_: object) -> None:
        synchronize(device)
        marks.append(time.perf_counter())

    handle = model.transformer.wte.register_forward_hook(mark)
    try:
        synchronize(device)
        start = time.perf_counter()
        out = model.generate(prompt, new_tokens, temperature=0.0, use_cache=use_cache)
        synchronize(device)
        end = time.perf_counter()
    finally:
        handle.remove()
    # a step ends when the next one starts (its embedding); the last one at the end of generate
    return out, [t - start for t in marks[1:]] + [end - start]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new_tokens", type=int, default=256)
    parser.add_argument("--prompt_tokens", type=int, default=1)
    parser.add_argument("--n_layer", type=int, default=6)
    parser.add_argument("--n_head", type=int, default=6)
    parser.add_argument("--n_embd", type=int, default=384)
    parser.add_argument("--block_size", type=int, default=512)
    parser.add_argument("--vocab_size", type=int, default=65)
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    args = parser.parse_args()
    if args.prompt_tokens + args.new_tokens > args.block_size:
        parser.error("prompt_tokens + new_tokens must fit in block_size, or the window slides and the cache is rebuilt")

    device = auto_device(args.device)
    config = GPTConfig(block_size=args.block_size, vocab_size=args.vocab_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0, bias=False)
    torch.manual_seed(0)
    model = GPT(config).to(device).eval()
    prompt = torch.randint(config.vocab_size, (1, args.prompt_tokens), device=device)
    print(f"{model.num_params() / 1e6:.1f}M parameters on {device}, {torch.get_num_threads()} threads; "
          f"{args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy")
    model.generate(prompt, 4, temperature=0.0)  # warm-up

    uncached, slow = step_times(model, prompt, args.new_tokens, use_cache=False)
    cached, fast = step_times(model, prompt, args.new_tokens, use_cache=True)
    print(f"identical tokens: {torch.equal(uncached, cached)}")
    print(f"{'new tokens':>10} {'uncached s':>11} {'cached s':>9} {'speed-up':>9}")
    lengths = sorted({2**i for i in range(4, args.new_tokens.bit_length()) if 2**i < args.new_tokens}
                     | {args.new_tokens})
    for n in lengths:
        print(f"{n:>10} {slow[n - 1]:>11.3f} {fast[n - 1]:>9.3f} {slow[n - 1] / fast[n - 1]:>8.1f}×")
    print(f"cached: {1e3 * fast[-1] / args.new_tokens:.2f} ms/token; "
          f"uncached: {1e3 * slow[-1] / args.new_tokens:.2f} ms/token on average")


if __name__ == "__main__":
    main()
