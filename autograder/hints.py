"""Hints on demand: ``hint("attention.softmax")`` in a cell prints the next hint for that exercise.

Every exercise has two or more levels, keyed by its visible check id: first a nudge (where to look, which property
matters), then the key idea (the method, the shapes, the formula in words). No level is the solution: a hint never
holds a line of the answer's code, so the learner still writes it (``tests/test_hints.py`` holds every hint against
the solutions notebooks). A learner who has read every level is pointed back to the lesson text.

The levels seen are remembered per notebook folder, which is the kernel's working directory, in ``.hints.json``
(``{check_id: levels seen}``): the next call, or a new kernel, goes on from there, and ``python -m autograder status``
counts them. A folder that cannot be written (read-only, a full disk) is no reason to fail the cell: the hint is
printed and this kernel remembers it. While a notebook is graded (``core.grading()``) ``hint`` prints nothing and
writes nothing: a grader running the notebook is not the learner asking, and it does not write into a submission.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from .core import grading

HINTS_FILE = ".hints.json"

# (folder, check id) → levels seen in this kernel: what a folder that cannot be written still remembers
_seen_in_kernel: dict[tuple[str, str], int] = {}


def hint(check_id: str) -> None:
    """Print the next hint for the exercise checked by ``check_id`` (as in its check cell: ``"attention.softmax"``)."""
    if grading():
        return
    exercise = _exercise(check_id)
    if exercise is None:
        return
    levels = HINTS[exercise]
    folder = Path.cwd()
    stored = _read(folder)
    seen = max(stored.get(exercise, 0), _seen_in_kernel.get((str(folder), exercise), 0))
    if seen >= len(levels):
        print(f"no more hints for {exercise}: you have read all {len(levels)}. The lesson text above the exercise, and "
              f"the diagnosis its check cell prints, say the rest. The last one again:")  # fmt: skip
    level = min(seen + 1, len(levels))
    print(f"hint {level} of {len(levels)} · {exercise}: {levels[level - 1]}")
    _seen_in_kernel[(str(folder), exercise)] = level
    _record(folder, stored, exercise, level)


def hints_used(folder: str | os.PathLike) -> int:
    """How many hints were read in a notebook folder: the levels seen, summed over its exercises."""
    return sum(_read(Path(folder)).values())


def _exercise(check_id: object) -> str | None:
    """The exercise a check id names (a hidden check's is its visible twin's), or None after saying why not."""
    if not isinstance(check_id, str):
        example = 'hint("attention.softmax")'
        print(f"hint takes the check id of an exercise, in quotes, as in its check cell: {example}, "
              f"not a {type(check_id).__name__}")  # fmt: skip
        return None
    exercise = check_id.strip().removesuffix(".hidden")
    if exercise in HINTS:
        return exercise
    close = difflib.get_close_matches(exercise, HINTS, n=3, cutoff=0.6)
    if not close:  # a name without its lesson's topic, as "softmax" or "gpt"
        names = difflib.get_close_matches(exercise, {check.split(".", 1)[1] for check in HINTS}, n=2, cutoff=0.6)
        close = [check for name in names for check in HINTS if check.split(".", 1)[1] == name]
    suggestion = f"did you mean {' or '.join(close)}?" if close else "its check cell has the id, e.g. attention.softmax"
    print(f"no hints for {check_id!r}: {suggestion}")
    return None


def _read(folder: Path) -> dict[str, int]:
    """The levels seen in a folder, as its hints file has them; nothing when it is missing or unreadable."""
    try:
        stored = json.loads((folder / HINTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {key: value for key, value in stored.items() if key in HINTS and type(value) is int and value > 0}


def _record(folder: Path, stored: dict[str, int], exercise: str, level: int) -> None:
    """The folder's hints file, as ``_read`` gave it (``stored``), with ``exercise`` seen up to ``level``."""
    stored[exercise] = max(stored.get(exercise, 0), level)
    try:
        (folder / HINTS_FILE).write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only folder: this kernel remembers (_seen_in_kernel), and the hint was printed


# ---- the hints, by exercise -----------------------------------------------------------------------------------------
# Level 1 nudges (where to look, which property matters), level 2 gives the key idea (the method, the shapes, the
# formula in words), a third, where there is one, the pitfall or edge case the checks see most. Never code that solves
# the exercise. docs/authoring.md, "Hints", says how to write them.

HINTS: dict[str, tuple[str, ...]] = {
    # 01_tokenization
    "tokenization.char_tokenizer": (
        "The ids must depend only on which characters the text holds, not on where each first appears: start from"
        " the set of its characters, in sorted order.",
        "Build two dicts once, in `__init__`: character to id and id to character. `encode` and `decode` are then"
        " one lookup per character or per id, and `vocab_size` is the number of distinct characters.",
        "`encode` must fail loudly: before looking anything up, find the characters of the text that are not in "
        "the vocabulary, and raise a `ValueError` whose message names them.",
    ),
    "tokenization.get_pair_counts": (
        "Every position but the last starts a pair with its right-hand neighbour, so the windows overlap: [7, 7, "
        "7] holds the pair (7, 7) twice.",
        "Walk over the list and the list without its first element side by side (`zip` does that), and add 1 to "
        "the count of each (left, right) tuple: a dict with a default of 0, or a `collections.Counter`, does the "
        "counting.",
    ),
    "tokenization.merge": (
        "Scan left to right with an index you move yourself: once a pair is merged both of its ids are used up, "
        "so the scan jumps past them. [7, 7, 7] merging (7, 7) gives [256, 7].",
        "Build a new list. At position i, when the ids at i and i + 1 form the pair (and i + 1 is still inside "
        "the list), append new_id and move on by 2; otherwise append the id at i and move on by 1.",
    ),
    "tokenization.train_bpe": (
        "Start from the text's UTF-8 bytes, as a list of ints 0..255, and reuse your `get_pair_counts` and "
        "`merge`: training is a loop of count, pick, merge.",
        "Each round: count the pairs of the current ids, pick the most frequent, give it the id 256 plus the "
        "number of merges so far, record it in the dict of merges and merge it into the ids. Stop after "
        "vocab_size - 256 merges, or earlier when no pair is left.",
        "Ties decide every later id: among the pairs with the highest count, the smallest pair wins (the first "
        "id, then the second). Taking the max by count alone keeps the pair seen first instead: order by count, "
        "highest first, then by the pair itself.",
    ),
    "tokenization.encode": (
        "Frequencies in the new text play no part: encoding replays the training merges, and what decides which "
        "pair goes first is when it was learned, that is its new id.",
        "Start from the text's bytes. While two or more ids are left: among the adjacent pairs present, find the "
        "one whose merge was learned first (pairs without a merge count as infinitely late). If even that pair "
        "has no merge, stop; otherwise merge it everywhere with your `merge`.",
        "A text of 0 or 1 bytes has no pairs at all: make sure the loop ends there and returns the bytes as they "
        "are.",
    ),
    "tokenization.decode": (
        "A token can hold only part of a character (é is two bytes), so decoding token by token breaks the "
        "characters that straddle two tokens.",
        "Look up each id's bytes in `vocab`, join them all into one bytes object first, then decode that once as "
        "UTF-8 with errors set to \"replace\": invalid bytes become � instead of an exception.",
    ),
    "tokenization.split_chunks": (
        "Python's built-in `re` does not know \\p{L} (any letter) or \\p{N} (any number): use the `regex` package, "
        "whose `findall` returns the list of matching chunks.",
        "Join the lesson's alternatives with | in exactly the table's order: contractions, letters, numbers, "
        "other symbols, whitespace not followed by a non-space, any whitespace. At each position the first "
        "alternative that matches wins. Write the pattern as a raw triple-quoted string: it holds both quote "
        "characters and backslashes.",
        "The usual slips: [a-zA-Z] or \\w instead of \\p{L} (é and 字 are letters, and \\w also takes digits and _), "
        "a missing optional space in front of letters, numbers or symbols, or a lost (?!\\S), which leaves the "
        "last space of a run to the word after it.",
    ),
    "tokenization.train_bpe_chunked": (
        "The loop is `train_bpe`'s; only the counting changes: pairs are counted inside each chunk, never across "
        "the boundary between two chunks.",
        "Cut the text with `split_chunks` and turn each chunk into its own list of bytes. Each round, add up the "
        "pair counts of all chunks, pick the best pair with the same tie-break, and merge it inside every chunk.",
        "For speed, keep each distinct chunk once with its number of occurrences (a `collections.Counter` of the "
        "chunks) and count its pairs that many times. Ids, ties and the early stop are `train_bpe`'s.",
    ),
    "tokenization.encode_chunked": (
        "Encoding must cut the text the way training did, so that no token spans a chunk boundary.",
        "Split the text with your `split_chunks`, encode each chunk on its own with your `encode` and the merges,"
        " and concatenate the ids, in order, into one flat list.",
    ),
    "tokenization.encode_with_special": (
        "Two jobs: refuse a special token that occurs in the text without being allowed (a `ValueError`), and "
        "turn each allowed one into its single id.",
        "First, for each special token not in allowed_special, test whether it occurs in the text, and raise a "
        "`ValueError` if it does. Then cut the text at the allowed tokens with `regex.split`: their "
        "`regex.escape`d texts, joined with |, inside a capturing group, so that the tokens stay in the list of "
        "pieces, at the odd positions.",
        "Pieces at even positions are ordinary text for `encode_chunked`; pieces at odd positions are special "
        "tokens, whose ids `special_tokens` holds. With nothing allowed there is nothing to cut (an empty pattern"
        " would cut everywhere), and ordering the allowed tokens longest first lets a longer one win over its own"
        " prefix.",
    ),
    # 02_attention
    "attention.average_past": (
        "Position t is a weighted mean of positions 0..t: one (T, T) matrix of weights does it for every position"
        " at once, and `@` broadcasts it over the batch.",
        "Start from a (T, T) matrix of ones, keep its lower triangle, diagonal included (`torch.tril`), then "
        "divide each row by its own sum: row t then holds 1/(t+1) in columns 0..t, and the result is that matrix "
        "times x.",
        "If the early positions come out wrong, look at the division: sum along the rows and keep the summed "
        "dimension, so that the (T, 1) sums broadcast across the columns. Build the matrix with x's dtype and "
        "device.",
    ),
    "attention.softmax": (
        "exp overflows: in float32, e^89 is already inf. Softmax does not change when the same number is "
        "subtracted from every entry along `dim`: which number makes every exponent at most 0?",
        "Subtract the largest entry along `dim` (keeping that dimension, so that it broadcasts), exponentiate, "
        "then divide by the sum along the same `dim`, again keeping the dimension. Every reduction uses `dim`, "
        "never a fixed axis.",
        "The max along a dimension returns values and indices: take the values. A -inf entry needs no special "
        "case: its exp is exactly 0, and the others still sum to 1.",
    ),
    "attention.causal_mask": (
        "Row t is the query and column s the key, and t may attend to s when s ≤ t. Which triangle of the matrix "
        "is that, and is the diagonal in it?",
        "Start from a (T, T) matrix of True (or of ones), keep its lower triangle with the diagonal "
        "(`torch.tril`), and make sure the result's dtype is `torch.bool`.",
    ),
    "attention.scaled_dot_product_attention": (
        "Three steps, in this order: the scaled scores of every query against every key; the blocked scores set "
        "to -inf, before the softmax; the softmax over the keys, then the weighted sum of the values.",
        "The scores are q times k with k's last two dimensions swapped: (…, T_q, D) @ (…, D, T_k) gives (…, T_q, "
        "T_k). Divide them by the square root of the head size D, the last dimension of q and k, not of the "
        "scores.",
        "Only when a mask is given: fill the scores with -inf where the mask is False (`masked_fill` with the "
        "negated mask), and use the mask as it comes, since it broadcasts, (T, T) or (B, 1, 1, T), and the scores"
        " need not be square. Then your softmax along the last axis, and `@ v`.",
    ),
    "attention.causal_self_attention": (
        "Follow the lesson's five steps and keep GPT-2's names exactly (c_attn, c_proj): the check loads the "
        "reference's weights by name. Both Linear layers take their bias setting from the config.",
        "c_attn maps C channels to 3·C: split its output into q, k and v along the channels. View each (B, T, C) "
        "as (B, T, n_head, head size), then swap the T and head axes to get (B, n_head, T, head size); attention "
        "with your causal mask gives that shape back.",
        "To merge, swap the head and T axes back, make the tensor contiguous and view it as (B, T, C); then "
        "c_proj and the dropout. Keep n_head (and n_embd) from the config in `__init__`: forward needs them, and "
        "the head size is C // n_head.",
    ),
    # 03_gpt_block
    "gpt_block.layer_norm": (
        "Each position is normalised on its own: the mean and the variance are taken over the last axis only, "
        "keeping that axis so that they broadcast back.",
        "Subtract the mean and divide by the square root of (variance + 1e-5), with the biased variance (the mean"
        " of the squared deviations: divide by C, not C - 1); then multiply by `weight` and add `bias`.",
        "`weight` starts at ones and `bias` at zeros, both `nn.Parameter`s; with bias False, store None as `bias`"
        " and skip the addition. `torch.var` divides by C - 1 unless it is told not to.",
    ),
    "gpt_block.gelu": (
        "GPT-2 used the tanh approximation, not the exact x·Φ(x): follow the lesson's formula term by term, "
        "elementwise.",
        "Inside the tanh: the square root of 2/π times (x + 0.044715·x³). The result is one half times x times (1"
        " + that tanh). `torch.tanh` works elementwise and saturates at ±1, so large inputs stay finite.",
    ),
    "gpt_block.mlp": (
        "Three modules with GPT-2's names, c_fc, c_proj and dropout, applied to every position on its own: widen,"
        " non-linearity, project back.",
        "c_fc maps n_embd to 4·n_embd and c_proj maps 4·n_embd back to n_embd, both with the config's bias "
        "setting; forward is c_fc, your tanh `gelu`, c_proj, then dropout with the config's rate.",
    ),
    "gpt_block.block": (
        "Pre-LN: each sublayer reads a normalised copy of the stream and adds its result back. The stream itself "
        "is never normalised inside the block.",
        "Four modules: ln_1, attn (the `CausalSelfAttention` of the setup cell), ln_2 and mlp, the LayerNorms of "
        "size n_embd with the config's bias setting. forward: x plus attn of ln_1 of x; then x plus mlp of ln_2 "
        "of that new x.",
        "Each sublayer has a LayerNorm of its own, not one shared; and the second residual connection starts from"
        " the stream after the first addition, not from the block's input.",
    ),
    "gpt_block.gpt": (
        "Five pieces under `transformer` (wte, wpe, drop, h, ln_f) and `lm_head` beside it, with exactly those "
        "names: an `nn.ModuleDict` gives the dotted names that the weights load by.",
        "forward: the token embeddings of idx plus the position embeddings of positions 0..T-1 (`torch.arange`), "
        "dropout, every block in turn, ln_f, lm_head: logits (B, T, vocab_size). Raise a `ValueError` first when "
        "T is more than block_size.",
        "Tie lm_head (a Linear without bias) to wte by making both hold one Parameter, once both exist. With "
        "targets, the loss is the cross-entropy of the logits flattened to (B·T, V) against the targets flattened"
        " to (B·T,), ignoring -1; without, None.",
    ),
    "gpt_block.init": (
        "Three rules: Linear and Embedding weights from a normal distribution with std 0.02, Linear biases at "
        "zero, LayerNorms untouched; then a smaller std for the projections that write into the residual stream.",
        "In `_init_weights`, test the module's type (`isinstance`) and use `nn.init.normal_` and "
        "`nn.init.zeros_`; in `__init__`, `self.apply` with it visits every submodule. Do it at the end of "
        "`__init__`, once every module exists.",
        "After that, walk `named_parameters` and give every weight whose name ends in c_proj.weight (attention's "
        "and the MLP's) std 0.02/√(2·n_layer). The tied lm_head/wte matrix is one Parameter: it gets the "
        "embedding rule, once.",
    ),
    "gpt_block.count_params": (
        "Count piece by piece, on paper: what does one Block hold, and what is outside the blocks? The tied "
        "lm_head adds nothing: it is wte's matrix.",
        "A Linear from a to b has a·b weights and b biases; a LayerNorm of C has C weights and C biases; an "
        "Embedding of n rows has n·C. Sum the Block's two LayerNorms, c_attn, attention's c_proj, c_fc and the "
        "MLP's c_proj, times n_layer; add wte, wpe and ln_f.",
        "With bias False every bias disappears, the LayerNorms' too: write each term as its weights plus its "
        "biases times 1 or 0. Return an int; for the gpt2 preset it is 124,439,808.",
    ),
    "gpt_block.load_hf_state_dict": (
        "The names are already yours. Only four kinds of weights are stored the other way round (Conv1D keeps "
        "(in, out), `nn.Linear` (out, in)), and some keys are not parameters at all.",
        "Build a new dict: skip the keys ending in .attn.bias and .attn.masked_bias (old mask buffers), transpose"
        " the weights of attn.c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj, keep the rest as they are; then load "
        "it with the model's `load_state_dict`, strictly.",
        "attn.c_proj.weight is square, so it fits untransposed and only its values are wrong: choose what to "
        "transpose by name, not by shape. Match .attn.bias with its leading dot: attn.bias alone also matches the"
        " end of c_attn.bias, a real parameter.",
    ),
    # 04_training
    "training.get_batch": (
        "One window of block_size + 1 tokens gives both: x is its first block_size tokens, and y the same window "
        "one position later.",
        "Draw all batch_size starts with one call to `torch.randint` and the given generator, with len(data) - "
        "block_size as its (exclusive) upper bound, so that the last window still has its last target. Draw "
        "nothing else from the generator.",
        "Stack the batch_size slices of data into (batch_size, block_size) tensors, one for x and one for y "
        "(`torch.stack`), then move both to `device`.",
    ),
    "training.cross_entropy": (
        "The loss at one position is log Σ exp(logits) minus the logit of the target. The first term overflows "
        "for large logits: compute it stably.",
        "Flatten the logits to (N, V) and the targets to (N,), and keep the positions whose target is not "
        "ignore_index (a boolean mask). `torch.logsumexp` along the vocabulary gives the first term, and `gather`"
        " (or indexing by row and target) picks each row's target logit.",
        "The result is the mean over the kept positions only, a 0-d tensor: an ignored position must be neither "
        "in the sum nor in the count.",
    ),
    "training.adamw": (
        "Read every hyperparameter from the parameter group at each step (the schedule changes lr), skip "
        "parameters without a gradient, and keep m, v and the step count in `self.state` for each parameter; "
        "update in place (the step runs under no_grad already).",
        "For each parameter at its step t (counted from 1): first decay it by the factor 1 - lr·weight_decay, "
        "apart from the gradient; then m ← β1·m + (1 - β1)·g and v ← β2·v + (1 - β2)·g²; then bias-correct both, "
        "dividing by 1 - β^t.",
        "The update is p ← p - lr · m̂ / (√v̂ + eps), with eps after the square root. The state starts empty: the"
        " first time a parameter is seen, create m and v as zeros shaped like it and its step count at 0.",
    ),
    "training.configure_optimizer": (
        "Decay is for the matrices (Linear weights and embeddings), not for biases and LayerNorm gains: a "
        "parameter's number of dimensions tells them apart.",
        "Two parameter groups, each a dict with a list of params and its own weight_decay: the parameters with 2 "
        "or more dimensions get weight_decay, the others 0.0. Give both groups to your `AdamW`, with lr and "
        "betas.",
        "Each trainable parameter exactly once: `model.parameters` yields the tied wte/lm_head matrix once, while"
        " collecting module by module would count it twice. Leave out parameters that do not require gradients.",
    ),
    "training.get_lr": (
        "Three phases, by the step number: warmup before warmup_iters, the cosine until lr_decay_iters, then "
        "min_lr. Step 0 must already get a rate above 0.",
        "Warmup: max_lr times (it + 1)/(warmup_iters + 1). Cosine: r is how far the step is through the decay "
        "phase, 0 at warmup_iters and 1 at lr_decay_iters, and the rate goes from max_lr down to min_lr as (1 + "
        "cos(π·r))/2 goes from 1 to 0.",
        "Return a float (`math.cos`, not a tensor). Check the boundaries: at warmup_iters the cosine starts at "
        "max_lr, and from lr_decay_iters on the rate is min_lr.",
    ),
    "training.clip_grad_norm": (
        "The norm is global: one number for all the gradients together, and every gradient is scaled by the same "
        "factor, only when that number is above max_norm.",
        "`parameters` may be a generator, as `model.parameters` returns, which can be read only once: collect the"
        " gradients that are not None into a list first. The total norm is the square root of the sum of all "
        "their squared entries.",
        "When the total is above max_norm, multiply every gradient in place by max_norm/(total + 1e-6). Return "
        "the total from before clipping, as a 0-d tensor.",
    ),
    "training.train_step": (
        "k micro-batches must give the gradient of one big batch: gradients add up in .grad over the backward "
        "calls, so scale what each backward sees.",
        "For each (x, y): the loss is the second value the model returns; call backward on that loss divided by "
        "the number of micro-batches, and add its value (`loss.item`) divided by that number to the mean you "
        "return.",
        "After the micro-batches: when grad_clip > 0, clip the global norm to grad_clip with your "
        "`clip_grad_norm`; then the optimizer's step, then its `zero_grad` with set_to_none. Autocast to bfloat16"
        " only on cuda: on the CPU, run as is.",
    ),
    "training.estimate_loss": (
        "A measurement, not training: dropout off, no graph kept, and the model handed back in training mode.",
        "`model.eval`, then under `torch.no_grad` call `get_batch_fn` eval_iters times, taking each loss (the "
        "second value the model returns) as a float; `model.train` before returning their mean.",
    ),
    "training.save_checkpoint": (
        "Everything the next step depends on: the model's weights, the optimizer's moments and step counts, the "
        "iteration, and the state of the random-number generator.",
        "`torch.save` one dict to path, with the keys \"model\" and \"optimizer\" (their state dicts), \"iteration\", "
        "and \"rng\" (`torch.get_rng_state`).",
    ),
    "training.load_checkpoint": (
        "The reverse of `save_checkpoint`, every part of it: a resumed run must take exactly the steps, and draw "
        "exactly the random numbers, of a run that never stopped.",
        "`torch.load` the path (with weights_only), load the saved state dicts into the model and into the "
        "optimizer, restore the generator with `torch.set_rng_state`, and return the saved iteration.",
    ),
    "training.loop": (
        "Each step sets the learning rate before it trains: the schedule is a function of the step number, "
        "counted from 0.",
        "For each step it from 0 to max_iters - 1: set every param_group's \"lr\" to lr_at(it), draw "
        "grad_accum_steps micro-batches from `get_batch_fn`, and give them all to one `train_step` with "
        "grad_clip; keep its loss.",
        "Return the list of the steps' losses. With progress True, wrap the steps in a tqdm bar (disabled "
        "otherwise). One step is one `train_step`, however many micro-batches it has.",
    ),
    # 05_generation
    "generation.top_k_logits": (
        "Each row is its own distribution: find each row's threshold, its k-th largest logit, and drop only what "
        "is strictly below it.",
        "`torch.topk` along the last dimension gives each row's k largest values, largest first: the last of "
        "them, kept as a (B, 1) column, is the threshold and broadcasts against its row. Set the logits below it "
        "to -inf with `masked_fill`, which returns a new tensor.",
        "Edge cases: k at or above the vocabulary size keeps every token (clamp k first, since `torch.topk` "
        "refuses k > V); logits tied with the k-th stay; the caller's logits are never written to.",
    ),
    "generation.top_p_logits": (
        "Keep the smallest set of most likely tokens whose probability reaches p: decide on the probabilities "
        "sorted from the most likely down, then apply the decision in vocabulary order.",
        "Sort the logits in descending order (keeping the order's indices), softmax the sorted logits, and take "
        "their running total (`cumsum`). The mass before a token is the running total minus its own probability: "
        "drop the token when that is ≥ p.",
        "Put the sorted drop decision back in vocabulary order with `scatter` and the sort's indices, then fill "
        "the dropped logits with -inf in a new tensor. The most likely token always stays, and p ≥ 1 keeps every "
        "token.",
    ),
    "generation.sample_next": (
        "The order matters: temperature on the logits first, then top-k, then top-p, then the softmax and one "
        "draw per row. Temperature 0 is a case of its own, before all of them.",
        "Temperature 0: each row's argmax, keeping the dimension, shape (B, 1), and nothing else. Otherwise "
        "divide the logits by the temperature, then apply your `top_k_logits` when top_k is not None and your "
        "`top_p_logits` when top_p is not None.",
        "Draw with `torch.multinomial` from the softmax's probabilities, one sample per row, passing the "
        "generator on: it already returns (B, 1) int64, and a seeded generator then gives the same tokens again.",
    ),
    "generation.generate": (
        "Each step: crop, predict, sample from the last position, append. Repeat max_new_tokens times, without "
        "gradients.",
        "Crop the context to its last `model.config.block_size` tokens (a slice on the time axis). The model "
        "returns (logits, loss): keep only the last position's logits, (B, V), for `sample_next`, with every "
        "sampling setting and the generator.",
        "Append the (B, 1) draw to idx along dim 1 (`torch.cat`) and feed the longer idx to the next step; "
        "decorate the function with `torch.no_grad`. With max_new_tokens 0, the prompt comes back as it is.",
    ),
    "generation.kv_cache": (
        "The cache keeps keys and values in time order along dim 2, (B, n_head, T, head_size), and hands back "
        "everything so far after each append.",
        "Start with k and v at None. `append`: the first time, store what it is given; after that, concatenate "
        "the new ones after the stored ones along dim 2 (`torch.cat`). Return the pair of all the keys and all "
        "the values.",
        "`len` counts positions, not appends: the size of the stored keys along dim 2, or 0 while nothing is "
        "stored (one append may add a whole prompt).",
    ),
    "generation.forward_cached": (
        "The new tokens continue the sequence: their positions start at the number of positions already cached, "
        "read before anything is appended. Everything but attention works per position and runs as usual.",
        "Embed: wte of idx plus wpe of the positions past … past + T - 1 (`torch.arange`), then drop. In each "
        "block, with its own cache: q, k and v from the attention's c_attn on ln_1 of x, split into heads as in "
        "lesson 02; appending k and v to the cache gives back all past + T keys and values.",
        "The new queries see all the keys through a (T, past + T) bool mask: the causal mask shifted right by "
        "past (`torch.tril` with a diagonal of past); is_causal would align it top-left. Merge the heads, c_proj,"
        " add to x; then x plus mlp of ln_2 of x; after the blocks, ln_f and lm_head.",
    ),
    "generation.generate_cached": (
        "The same tokens as `generate`, with less work: the prompt goes through the model once, then each step "
        "feeds only the newest token, and the caches hold the rest.",
        "Prefill: one `KVCache` per block, and `forward_cached` on the prompt cropped to block_size. Then each "
        "step runs `forward_cached` on the last token alone. Every step samples from the last position's logits "
        "with `sample_next` and appends, as `generate` does.",
        "When the caches already hold block_size positions, the window slides and every position shifts: start "
        "new caches and run the last block_size tokens through `forward_cached`, the very context `generate` "
        "feeds. Decorate the function with `torch.no_grad`.",
    ),
    # 06_your_gpt
    "your_gpt.tokenizer": (
        "Each method is a call to one of your lesson-01 functions. The class's own work is the vocabulary: the "
        "bytes of every id, special tokens included.",
        "`__init__`: the bytes of ids 0..255, then each merge's two halves joined, in the order learned, then "
        "each special token's UTF-8 at its id. `train`, a classmethod: `train_bpe_chunked` with vocab_size minus "
        "the number of special tokens; the special tokens take the ids after the last merge, in order.",
        "`encode` is `encode_with_special` with the tokenizer's merges and special tokens; `decode` is lesson "
        "01's `decode` with the vocabulary: all the bytes joined first, decoded once.",
    ),
    "your_gpt.gpt": (
        "Without caches nothing changes: lesson 03's forward gives the logits, and lesson 04's `cross_entropy` "
        "the loss. The new work is the path with caches: lesson 05's `forward_cached`, moved into the model.",
        "With caches, idx holds only the new tokens: past is the cached length, read before appending, and the "
        "new positions are past … past + T - 1. In each block, append the new keys and values to that block's "
        "cache, and let the new queries attend to all of them.",
        "The mask of T new queries over past + T keys is the causal mask shifted right by past. The targets are "
        "already shifted (`get_batch` did it): compare the logits at t with the target at t, ignoring -1. Return "
        "(logits, loss), the loss None without targets.",
    ),
    "your_gpt.train": (
        "A run's batches are a pure function of the step: each micro-batch of each step draws from a generator of"
        " its own, seeded from (config.seed, \"train\", step, micro-batch).",
        "For each step s from start to stop - 1 (stop defaults to config.max_iters): set every group's lr to the "
        "schedule's rate for s (`get_lr`, or config.learning_rate when decay_lr is False); draw grad_accum_steps "
        "batches with `get_batch`, each with its own generator from `batch_seed`; one `train_step` for all of "
        "them.",
        "Steps are numbered from start, not from 0: a run resumed at step 12 takes step 12's learning rate and "
        "batches. `get_batch` needs the model's block_size and the device of its parameters. Return the list of "
        "the steps' losses.",
    ),
    "your_gpt.generate_text": (
        "Three steps: the text to ids, the ids to more ids with your cached sampler, and all the ids back to "
        "text.",
        "Encode the prompt into a (1, T) tensor of int64 on the model's device, run `generate_cached` with "
        "max_new_tokens and every sampling setting, and decode the whole first row, prompt included, in one call:"
        " a character may span two tokens.",
    ),
    # 07_scaling
    "scaling.flops_per_token": (
        "Count the parameters by formula (lesson 03's `count_params`), not by building the model: the checks ask "
        "about GPT-2 xl, 6 GB of weights. Which parameters are looked up rather than multiplied?",
        "N is every parameter but the position embeddings (wte stays: it is also lm_head). Each costs 6 FLOPs per "
        "token, 2 forward and 4 backward. Attention adds 12 FLOPs per layer, per channel, per position of the "
        "context: 12·n_layer·n_embd·T.",
        "T is seq_len when it is given, else the config's block_size. Return a number (an int is exact).",
    ),
    "scaling.mfu": (
        "MFU is achieved FLOP/s over the most the hardware could do: what is the achieved rate, and how many "
        "devices does the peak belong to?",
        "The run does flops_per_token times tokens_per_sec FLOP/s in all; its processes have world_size devices, "
        "each with peak_flops. Return the ratio as a fraction, not a percentage.",
    ),
    "scaling.autocast_dtype": (
        "Three answers: bf16, fp16 and float32. Which one needs a GradScaler, and which devices does this course "
        "run in half precision at all?",
        "On CUDA: bf16 when the GPU supports it (Ampere and later), else fp16. Every other device type (the CPU, "
        "MPS) gets float32, whatever bf16_supported says.",
    ),
    "scaling.accumulate_gradients": (
        "backward() adds into .grad, it never replaces it: that is what makes accumulation work. What must each "
        "micro-batch's loss be scaled by, so that the sum of their gradients is the mean's gradient?",
        "For each (x, y): the loss from the model, divided by the number of micro-batches, then backward() right "
        "away, one micro-batch at a time. Keep a running total of the detached losses; no zero_grad and no "
        "optimizer step here.",
        "Return the mean loss as a 0-d tensor: no `.item()` (a GPU would have to finish first) and no graph (add "
        "`loss.detach()`, not the loss).",
    ),
    "scaling.average_gradients": (
        "Every process has its own gradients, from its own rows. `dist.all_reduce` turns a tensor, in place, into "
        "the sum of that tensor over all the processes: how do you get the mean from the sum?",
        "Loop over model.parameters(); for each one that has a gradient, all_reduce p.grad itself (not a copy, "
        "not an expression), then divide it in place by the number of processes, the default group's world size.",
        "Every process must make the same calls in the same order, or one of them waits forever: skip a parameter "
        "without a gradient on every process alike.",
    ),
}
