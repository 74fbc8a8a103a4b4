"""The GPT-2 model, in one file you can read top to bottom.

A GPT turns a sequence of token ids into, at every position, a score (logit) for each possible next token:

    ids (B, T) → token embedding + position embedding → n_layer × Block → LayerNorm → lm_head → logits (B, T, V)

Each Block is "pre-LN": the residual stream x is read through a LayerNorm by attention and then by an MLP, and each
writes its result back by addition. Attention is causal: position t only looks at positions ≤ t, so one forward
pass trains all T next-token predictions at once without any of them seeing its answer.

The module and parameter names follow GPT-2 (``c_attn``, ``c_proj``, ``c_fc``, ``ln_1`` …) so that OpenAI's
weights, as published on Hugging Face, load with nothing more than a transpose (see ``load_hf_state_dict``).

The free functions are the ones lessons 02 and 03 have you write (``causal_mask``, ``scaled_dot_product_attention``,
``gelu``, ``count_params``, ``load_hf_state_dict``), and the modules are built from them; lesson 07's
``flops_per_token`` counts what training one costs.

References: OpenAI's GPT-2 code (tensorflow), Hugging Face's ``modeling_gpt2.py``, Karpathy's nanoGPT.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn import functional as F

from .config import GPTConfig
from .hardware import peak_flops
from .metrics import mfu


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's ``nn.LayerNorm`` only lets you drop both weight and bias)."""

    def __init__(self, ndim: int, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # eps = 1e-5 as in GPT-2; the variance is the biased one (divide by n, not n - 1)
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class KVCache:
    """The keys and values one attention layer has computed for the positions seen so far (lesson 05).

    Generating token t+1 only needs the new token's query against the keys and values of positions 0..t, and
    those never change (causality), so we keep them instead of recomputing the whole prefix every step. A model's
    cache is one ``KVCache`` per Block, a plain list: ``[KVCache() for _ in model.transformer.h]``.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # (B, n_head, T_past, head_size)
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        """The number of positions stored."""
        return 0 if self.k is None else self.k.size(2)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new positions' keys and values after the old ones (dim 2); return those of all positions."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=2)
            self.v = torch.cat([self.v, v], dim=2)
        return self.k, self.v


def average_past(x: torch.Tensor) -> torch.Tensor:
    """For x (B, T, C), position t of the output is the mean of x[:, 0], …, x[:, t]: the "bag of words" of the past.

    This is where attention starts (lesson 02's first step): each position takes a weighted mean of the positions up
    to itself, computed as one matmul with a (T, T) lower-triangular weight matrix whose row t holds 1/(t+1) in
    columns 0..t. Attention keeps that shape and learns the weights instead: a softmax over masked scores, which gives
    back exactly these equal weights when every score is the same. The GPT itself does not call it.
    """
    T = x.size(1)
    weights = torch.ones(T, T, dtype=x.dtype, device=x.device).tril()
    weights = weights / weights.sum(dim=1, keepdim=True)  # row t: 1/(t+1) in columns 0..t
    return weights @ x  # (T, T) @ (B, T, C) → (B, T, C)


def _compiled_for_cpu(x: torch.Tensor) -> bool:
    """True while torch.compile traces the model for a CPU: the few places where the compiled CPU code is written
    differently (the same function, faster or deterministic there) ask this."""
    return x.device.type == "cpu" and torch.compiler.is_compiling()


def causal_mask(T: int) -> torch.Tensor:
    """(T, T) bool mask, True where query position t may attend to key position s, i.e. where s ≤ t.

    True means "may attend", as for ``F.scaled_dot_product_attention`` (``nn.MultiheadAttention``'s bool masks mean
    the opposite). The diagonal is allowed: position 0 has nothing else to attend to.
    """
    return torch.ones(T, T, dtype=torch.bool).tril()


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *, dropout_p: float = 0.0
) -> torch.Tensor:
    """softmax(q kᵀ / √d, blocked scores set to -inf) v: each query takes a weighted mean of the values, weighted by
    how well it matches each key.

    q: (B, H, T_q, D); k, v: (B, H, T_k, D); mask: broadcastable to (B, H, T_q, T_k), either bool (True = may
    attend) or float, added to the scores (0 where allowed, -inf where blocked), as for PyTorch's fused
    ``F.scaled_dot_product_attention``, which computes the same thing in one kernel. Returns (B, H, T_q, D).
    The scores are divided by √d because q·k sums d products: with unit-variance entries its variance is d, and
    unscaled scores would make the softmax nearly one-hot as heads grow wider (dividing q instead is the same up to
    rounding, and touches T·d numbers rather than T²). Blocked scores become -inf before the softmax, so that their
    weights are exactly 0 and the allowed ones still sum to 1. ``dropout_p`` drops attention weights (in training),
    like the fused kernel's argument.
    """
    scores = (q / math.sqrt(k.size(-1))) @ k.transpose(-2, -1)  # (B, H, T_q, T_k)
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)  # over the keys, for each query
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with the heads computed together in one batched matmul.

    ``impl`` selects how the attention itself is computed: ``"sdpa"`` calls PyTorch's fused
    ``F.scaled_dot_product_attention`` (flash attention on GPUs that support it; compiled for the CPU, the manual
    one); ``"manual"`` calls the ``scaled_dot_product_attention`` and ``causal_mask`` above, lesson 02's attention,
    for teaching and for checking the fused kernel.
    """

    def __init__(self, config: GPTConfig, impl: str = "sdpa") -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0
        # key, query and value projections for all heads in one Linear ("c_attn" in GPT-2)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # the output projection, which mixes the heads back into the residual stream
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout  # on the attention weights, inside either impl
        # The causal mask as a table to add to the scores (0 on and below the diagonal, -inf above), for the
        # attention compiled for a CPU: the compiler fuses one add of a table it loads into the softmax, where a bool
        # mask built in the graph costs integer compares on every score. Not saved with the weights.
        self.register_buffer(
            "causal_bias", torch.full((config.block_size, config.block_size), float("-inf")).triu(1), persistent=False
        )
        if impl not in ("sdpa", "manual"):
            raise ValueError(f"attention impl must be 'sdpa' or 'manual', not {impl!r}")
        self.impl = impl

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        B, T, C = x.size()  # batch, sequence length, embedding width
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) → (B, n_head, T, head_size): each head attends independently
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        past = 0
        if cache is not None:
            past = len(cache)
            k, v = cache.append(k, v)
        # Under torch.compile on the CPU the spelled-out attention is the faster one: the compiler fuses its scaling,
        # mask and softmax (and their backward) into a few loops, where the fused kernel is a call it cannot look
        # into, and at short contexts no faster.
        compiled = _compiled_for_cpu(x)
        fused = self.impl == "sdpa" and not compiled
        # Query i sits at absolute position past + i and may attend to keys 0 .. past + i: the last T rows of the
        # causal mask over all past + T positions. With no past the fused kernel builds that mask itself
        # (is_causal); a single new query may attend to everything, so needs no mask.
        is_causal = fused and past == 0 and T > 1
        if is_causal or T == 1:
            mask = None
        elif compiled:
            mask = self.causal_bias[past : past + T, : past + T]
        else:
            mask = causal_mask(past + T)[past:].to(x.device)
        dropout_p = self.dropout if self.training else 0.0

        if fused:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal)
        else:
            y = scaled_dot_product_attention(q, k, v, mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU, the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), elementwise.

    GELU weighs x by Φ(x), the probability that a standard normal draw is below it: a smooth ReLU that lets small
    negative inputs through a little. GPT-2 used this tanh approximation of x·Φ(x) (Hugging Face calls it
    "gelu_new"); the exact erf form differs by up to ~1e-3 and would not reproduce GPT-2's logits.
    """
    # the formula above, in one fused kernel:
    #     0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if _compiled_for_cpu(x):
        # The same function, as the compiler fuses it best on a CPU: 0.5·(1 + tanh(u)) = σ(2u) exactly, and a CPU's
        # vectorised exp (inside the sigmoid) is about 3× faster than its tanh. Only rounding differs (~1e-7).
        return x * torch.sigmoid(2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x))
    return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4×, GELU, project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(gelu(self.c_fc(x))))


class Block(nn.Module):
    """A transformer block, pre-LN: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    Normalising the input of each sublayer (not its output, as the original Transformer did) leaves the residual
    stream an untouched sum, so gradients reach early layers directly and deep stacks train without warm-up tricks.
    """

    def __init__(self, config: GPTConfig, attention_impl: str = "sdpa") -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, impl=attention_impl)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        x = x + self.mlp(self.ln_2(x))
        return x


def count_params(config: GPTConfig) -> int:
    """The number of parameters of ``GPT(config)``, by formula, the tied wte/lm_head matrix counted once
    (``GPT.num_params()`` counts the same by summing the model's tensors).

    A Linear layer from n_in to n_out has n_in·n_out weights, plus n_out biases when ``config.bias``; a LayerNorm has
    C weights (and C biases). A block holds 12·C² weights: c_attn (C → 3C), attention's c_proj (C → C), c_fc
    (C → 4C) and the MLP's c_proj (4C → C). GPT-2 small (C = 768, 12 layers): 85.1M in the blocks, 38.6M in the
    token embeddings, 0.8M in the position embeddings, 124,439,808 in all.
    """
    C, b = config.n_embd, int(config.bias)

    def linear(n_in: int, n_out: int) -> int:
        return n_in * n_out + b * n_out

    layer_norm = C + b * C
    attention = linear(C, 3 * C) + linear(C, C)  # c_attn, c_proj
    mlp = linear(C, 4 * C) + linear(4 * C, C)  # c_fc, c_proj
    block = 2 * layer_norm + attention + mlp  # ln_1, ln_2, attn, mlp
    embeddings = config.vocab_size * C + config.block_size * C  # wte (also lm_head), wpe
    return embeddings + config.n_layer * block + layer_norm  # … and ln_f


def flops_per_token(config: GPTConfig, seq_len: int | None = None) -> int:
    """Training FLOPs (forward and backward) per token of ``GPT(config)`` on sequences of ``seq_len`` tokens
    (default ``block_size``), counted as in the PaLM paper's appendix B (lesson 07).

    A weight does one multiply and one add (2 FLOPs) per token in the forward pass and twice that in the backward
    pass (the gradients of its input and of itself): 6 per parameter. The parameters are those of ``count_params``
    less the position embeddings, which are looked up, not multiplied (the token embeddings stay: they are also
    the output layer). Attention adds work no parameter counts: the scores q·k and the weighted sum of the values,
    2·C multiply-adds per position of the context in each layer, 12·n_layer·n_embd·T with the backward pass.
    """
    T = config.block_size if seq_len is None else seq_len
    non_embedding = count_params(config) - config.block_size * config.n_embd
    return 6 * non_embedding + 12 * config.n_layer * config.n_embd * T


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
    """The language-model loss (lesson 04): the mean over positions of ``logsumexp(logits) - logits[target]``, the
    negative log-probability of each target, leaving out positions whose target is ``ignore_index`` (padding, or
    the adder's prompt digits). Logits (..., V), targets (...). ``F.cross_entropy`` computes exactly this, stably
    (the max is subtracted inside the log-sum-exp) and in one fused kernel."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore_index)


# Hugging Face's GPT-2 stores these four weights as Conv1D, (in_features, out_features): the transpose of Linear.
HF_CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def load_hf_state_dict(model: GPT, hf_state: dict[str, torch.Tensor]) -> None:
    """Load GPT-2 weights in Hugging Face's layout (``GPT2LMHeadModel`` or ``GPT2Model``) into ``model``, in place.

    The layouts differ in three ways: the four ``HF_CONV1D_WEIGHTS`` are stored (in, out), the transpose of
    ``nn.Linear``'s (out, in), so they are transposed; a ``GPT2Model`` has no ``transformer.`` prefix and no
    lm_head, which is the token embedding anyway (tied); and old versions of transformers also store the causal mask
    as buffers (``attn.bias``, ``attn.masked_bias``), which are skipped. A weight of the wrong shape is an error
    that names it: reshaping it into place would fit and scramble the values.
    """
    ours = model.state_dict()
    converted = {}
    for name, tensor in hf_state.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        key = name if name.startswith(("transformer.", "lm_head.")) else f"transformer.{name}"
        converted[key] = tensor.t() if key.endswith(HF_CONV1D_WEIGHTS) else tensor
    converted.setdefault("lm_head.weight", converted["transformer.wte.weight"])
    missing = sorted(set(ours) - set(converted))
    unexpected = sorted(set(converted) - set(ours))
    if missing or unexpected:
        raise ValueError(f"state dict does not match GPT-2's layout: missing {missing}, unexpected {unexpected}")
    for key, tensor in converted.items():
        if tensor.shape != ours[key].shape:
            raise ValueError(f"{key}: shape {tuple(tensor.shape)} does not fit the model's {tuple(ours[key].shape)}")
    model.load_state_dict(converted)


def _embeddings(transformer: nn.ModuleDict, idx: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Each token's embedding plus its position's: (B, T) ids and (T,) positions → (B, T, n_embd)."""
    return transformer.wte(idx) + transformer.wpe(pos)


_embeddings_eagerly = torch.compiler.disable(_embeddings)  # run by PyTorch itself, also inside a compiled model


class GPT(nn.Module):
    """GPT-2: embeddings, a stack of Blocks, a final LayerNorm and a language-model head tied to the embeddings."""

    def __init__(self, config: GPTConfig, attention_impl: str = "sdpa") -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
                wpe=nn.Embedding(config.block_size, config.n_embd),  # learned position embeddings
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config, attention_impl) for _ in range(config.n_layer)]),
                ln_f=LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: reading a token in and predicting it out use the same matrix (GPT-2 does this; it saves
        # vocab_size × n_embd parameters, 38.6M of GPT-2 small's 124M).
        self.transformer.wte.weight = self.lm_head.weight

        # GPT-2 initialisation: N(0, 0.02) for weights, zeros for biases, and the projections that write into the
        # residual stream scaled down by 1/sqrt(2·n_layer), because 2·n_layer of them add up along the stream.
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (tied weights counted once; ``count_params(config)`` by formula). ``non_embedding``
        leaves out the position embeddings; the token embeddings stay, since they are also the output layer."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def set_attention_impl(self, impl: str) -> None:
        """Switch every layer between the fused ("sdpa") and the spelled-out ("manual") attention."""
        for block in self.transformer.h:
            block.attn.impl = impl

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab_size) for every position, and the mean cross-entropy against ``targets``
        (B, T) when given; target -1 means "no prediction here" and is left out of the mean.

        With ``caches`` (one ``KVCache`` per Block), ``idx`` holds only the new tokens; they continue the positions
        in the caches, and every cache ends up holding the old and the new positions.
        """
        B, T = idx.size()
        past = len(caches[0]) if caches is not None else 0
        if past + T > self.config.block_size:
            raise ValueError(
                f"sequence of length {past + T} is longer than the model's block_size {self.config.block_size}: "
                "crop the context to the last block_size tokens"
            )
        pos = torch.arange(past, past + T, dtype=torch.long, device=idx.device)
        # Compiled for a CPU, the embeddings are looked up eagerly: the compiler's backward of a lookup adds rows into
        # the gradient with atomic adds from several threads, in an order, and so a rounding, that changes from run
        # to run. PyTorch's own backward is deterministic, so a CPU run repeats (and resumes) bit for bit.
        embed = _embeddings_eagerly if _compiled_for_cpu(idx) else _embeddings
        x = self.transformer.drop(embed(self.transformer, idx, pos))
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches is not None else None)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.float(), targets)  # the loss in fp32, also under autocast
        return logits, loss

    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Extend ``idx`` (B, T) by ``max_new_tokens`` tokens, each sampled from the last position's logits, in eval
        mode. With ``use_cache`` this is lesson 05's ``generate_cached`` (each step feeds only the newest token and
        reuses the cached keys and values), else its ``generate``. Temperature 0 is greedy; see
        ``gpt_reference.sampling`` for temperature, top-k and top-p.
        """
        from .sampling import generate, generate_cached  # here: sampling imports this module (for KVCache)

        was_training = self.training
        self.eval()
        loop = generate_cached if use_cache else generate
        idx = loop(self, idx, max_new_tokens, temperature, top_k, top_p, generator)
        self.train(was_training)
        return idx

    def crop_block_size(self, block_size: int) -> None:
        """Shrink the context length (e.g. load GPT-2's 1024 and fine-tune at 256) by dropping position rows."""
        if block_size > self.config.block_size:
            raise ValueError(f"can only shrink block_size ({self.config.block_size}), not grow it to {block_size}")
        self.config.block_size = block_size
        self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size].detach().clone())
        for block in self.transformer.h:
            block.attn.causal_bias = block.attn.causal_bias[:block_size, :block_size].clone()

    # ---- speed accounting -------------------------------------------------------------------------------------

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token of this model (``flops_per_token(self.config, seq_len)``, lesson 07)."""
        return flops_per_token(self.config, seq_len)

    def estimate_mfu(self, tokens_per_iter: int, seconds_per_iter: float, seq_len: int | None = None) -> float | None:
        """Model FLOPs utilisation: achieved FLOP/s over this device's peak; None when the peak is unknown."""
        peak = peak_flops(self.lm_head.weight.device)
        if peak is None:
            return None
        return mfu(self.flops_per_token(seq_len), tokens_per_iter / seconds_per_iter, peak)

    # ---- GPT-2 weights in Hugging Face's layout ---------------------------------------------------------------

    def to_hf_state_dict(self) -> dict[str, torch.Tensor]:
        """Our weights in the layout of Hugging Face's ``GPT2LMHeadModel`` (Conv1D weights transposed)."""
        out = {}
        for name, tensor in self.state_dict().items():
            out[name] = tensor.t().contiguous() if name.endswith(HF_CONV1D_WEIGHTS) else tensor
        return out

    @classmethod
    def from_hf_state_dict(cls, hf_state: dict[str, torch.Tensor], config: GPTConfig) -> GPT:
        """Build a GPT from a state dict in Hugging Face's GPT-2 layout (see ``load_hf_state_dict``)."""
        model = cls(config)
        load_hf_state_dict(model, hf_state)
        return model

    @classmethod
    def from_pretrained(cls, name_or_path: str | nn.Module, dropout: float = 0.0) -> GPT:
        """Load GPT-2 weights through Hugging Face ``transformers``.

        ``name_or_path`` is a local folder saved with ``save_pretrained`` (works offline), a hub name such as
        ``"gpt2"`` or ``"gpt2-xl"`` (downloaded once into the Hugging Face cache), or a loaded ``GPT2LMHeadModel``.
        """
        if isinstance(name_or_path, nn.Module):
            hf_model = name_or_path
        else:
            try:
                from transformers import GPT2LMHeadModel
            except ImportError as e:
                raise ImportError("loading GPT-2 weights needs transformers: pip install -e '.[hf]'") from e
            hf_model = GPT2LMHeadModel.from_pretrained(name_or_path)
        hf_config = hf_model.config
        if getattr(hf_config, "activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"this GPT uses tanh GELU; the checkpoint uses {hf_config.activation_function}")
        config = GPTConfig(
            block_size=hf_config.n_positions,
            vocab_size=hf_config.vocab_size,
            n_layer=hf_config.n_layer,
            n_head=hf_config.n_head,
            n_embd=hf_config.n_embd,
            dropout=dropout,
            bias=True,
        )
        return cls.from_hf_state_dict(hf_model.state_dict(), config)
