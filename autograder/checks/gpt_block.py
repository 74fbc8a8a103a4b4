"""Checks for lesson 03, the GPT block and the full model: LayerNorm, GPT-2's tanh GELU, the MLP, the pre-LN Block,
the GPT itself, its initialisation, its parameter count, and loading weights published in Hugging Face's layout.

Every check has a visible half and a hidden half with other shapes and configs. The references are
``gpt_reference.model``'s objects of the lesson's names. Each mistake is the reference with one plausible error in it;
the tests make sure that on each probe no two mistakes, and no mistake and the reference, give the same outputs.

Modules are probed with the reference's weights loaded into them (GPT-2's names, strict: a missing or unexpected
parameter is named; a learner's own buffers, such as a stored causal mask, may stay out). LayerNorm weights are
perturbed away from (1, 0) so that a LayerNorm used in the wrong place shows. Probes draw from private generators and
build modules inside ``fork_rng``, so a check never moves the learner's global random state.

Tolerances (float32, stated in the lesson): LayerNorm atol 1e-5, rtol 1e-4; GELU atol 1e-6, rtol 1e-5 (the exact erf
GELU is ~1e-3 away on [-4, 4]); MLP and Block atol 1e-5, rtol 1e-4; the full model atol 1e-4, rtol 1e-3; the
initialisation's standard deviations within 8% (rtol 0.08, atol 2e-4) of the reference's, whose sample noise is
about 1%; parameter counts exactly.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from gpt_reference.config import GPTConfig
from gpt_reference.model import GPT as ReferenceGPT
from gpt_reference.model import HF_CONV1D_WEIGHTS
from gpt_reference.model import MLP as ReferenceMLP
from gpt_reference.model import Block as ReferenceBlock
from gpt_reference.model import LayerNorm as ReferenceLayerNorm
from gpt_reference.model import count_params, gelu, load_hf_state_dict

from ..core import Mistake, Outputs, ProbeError, as_tensor
from ..probes import build_module, load_reference_weights, register_pair, seeded_randn

LESSON = "03_gpt_block"
OPS_TOLERANCE = dict(atol=1e-5, rtol=1e-4)
GELU_TOLERANCE = dict(atol=1e-6, rtol=1e-5)
MODEL_TOLERANCE = dict(atol=1e-4, rtol=1e-3)
INIT_TOLERANCE = dict(atol=2e-4, rtol=0.08)
EXACT = dict(atol=0.0, rtol=0.0)


_pair = partial(register_pair, "gpt_block", LESSON, tolerance=OPS_TOLERANCE)


# ---- building learner modules with the reference's weights ---------------------------------------------------------


def _perturbed(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """The state dict with every LayerNorm's weight and bias moved away from 1 and 0 (seeded)."""
    out, generator = {}, torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if "ln" in key.split(".")[-2]:
            noise = torch.randn(value.shape, generator=generator) * 0.5
            value = (1.0 + noise) if key.endswith("weight") else noise
        out[key] = value.clone()
    return out


def _reference_state(cls, config: GPTConfig, seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _perturbed(cls(config).state_dict(), seed + 1)




def _loaded(cls, what: str, config: GPTConfig, weights: dict[str, torch.Tensor], names: str) -> nn.Module:
    module = build_module(cls, what, config)
    load_reference_weights(module, weights, names)
    return module.eval()


def _same_shape(module: nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    y = as_tensor(module(x.clone()), what)
    if y.shape != x.shape:
        raise ProbeError(f"{what} returned shape {tuple(y.shape)} for an input of shape {tuple(x.shape)}; expected "
                         "the input's shape")
    return y


# ---- LayerNorm ------------------------------------------------------------------------------------------------------

UNBIASED = "unbiased variance"
EPS_OUTSIDE = "eps outside the square root"
WRONG_AXIS = "normalised over the wrong axis"
NO_AFFINE = "missing affine weight and bias"


class _FlawedLayerNorm(ReferenceLayerNorm):
    flaw = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = 1 if self.flaw == WRONG_AXIS else -1
        mean = x.mean(dim=dim, keepdim=True)
        var = x.var(dim=dim, keepdim=True, unbiased=self.flaw == UNBIASED)
        if self.flaw == EPS_OUTSIDE:
            y = (x - mean) / (var.sqrt() + 1e-5)
        else:
            y = (x - mean) / torch.sqrt(var + 1e-5)
        if self.flaw == NO_AFFINE:
            return y
        return y * self.weight + (self.bias if self.bias is not None else 0.0)


LAYER_NORM_HINTS = {
    UNBIASED: "LayerNorm uses the biased variance, the mean of (x - mean)² (divide by n, not n - 1); "
              "torch.var divides by n - 1 unless told otherwise",
    EPS_OUTSIDE: "eps goes inside the square root, sqrt(var + eps): it matters when the variance is small",
    WRONG_AXIS: "each position is normalised on its own, over its C features: the last axis",
    NO_AFFINE: "after normalising, scale by the learned weight and shift by the learned bias (when there is one)",
}


def _flawed(base, name: str, hints: dict[str, str]) -> Mistake:
    return Mistake(name, hints[name], type(f"Flawed{base.__name__}", (base,), {"flaw": name}))


LAYER_NORM_MISTAKES = tuple(_flawed(_FlawedLayerNorm, n, LAYER_NORM_HINTS)
                            for n in (UNBIASED, EPS_OUTSIDE, WRONG_AXIS, NO_AFFINE))


def _layer_norm_parts(cls, ndim: int, bias: bool, seed: int, shape: tuple[int, ...]) -> Outputs:
    module = build_module(cls, f"LayerNorm({ndim}, bias={bias})", ndim, bias)
    weights = {"weight": 1.0 + seeded_randn(ndim, seed=seed, scale=0.5)}
    if bias:
        weights["bias"] = seeded_randn(ndim, seed=seed + 1, scale=0.5)
    load_reference_weights(module, weights, "weight" + (" and bias" if bias else " (no bias when bias=False)"))
    x = seeded_randn(*shape, seed=seed + 2) * 3.0 + 1.0
    with torch.no_grad():
        out = {"full": _same_shape(module, x, "LayerNorm.forward"),
               "small_variance": _same_shape(module, x * 1e-3, "LayerNorm.forward")}
        load_reference_weights(module, {"weight": torch.ones(ndim), **({"bias": torch.zeros(ndim)} if bias else {})}, "weight, bias")
        out["unit_affine"] = _same_shape(module, x, "LayerNorm.forward")
    return out


def _probe_layer_norm(cls) -> Outputs:
    return _layer_norm_parts(cls, 8, True, seed=300, shape=(2, 5, 8))


def _probe_layer_norm_hidden(cls) -> Outputs:
    out = {f"{k}_wide": v for k, v in _layer_norm_parts(cls, 48, True, seed=310, shape=(3, 4, 48)).items()}
    out.update({f"{k}_no_bias": v for k, v in _layer_norm_parts(cls, 16, False, seed=320, shape=(1, 7, 16)).items()})
    return out


_pair("layer_norm", "LayerNorm", ReferenceLayerNorm, (_probe_layer_norm, _probe_layer_norm_hidden), (2, 1),
      "LayerNorm(ndim, bias): biased variance over the last axis, eps=1e-5 inside the sqrt, then weight and bias",
      LAYER_NORM_MISTAKES,
      {"small_variance": "inputs with a tiny variance: check where eps goes",
       "unit_affine": "with weight 1 and bias 0 only the normalisation is left: check the mean, the variance and "
                      "the axis"},
      inputs={"full": "LayerNorm(8, bias=True) on x of shape (2, 5, 8) from randn × 3 + 1",
              "small_variance": "the same, on x × 1e-3", "unit_affine": "the same x, weight 1 and bias 0"},
      cases={"wide": "48 features", "no_bias": "bias=False, 16 features"},
      forbidden=("nn.LayerNorm", "F.layer_norm"))


# ---- GELU -----------------------------------------------------------------------------------------------------------


def _gelu_without_cubic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * x))


GELU_MISTAKES = (
    Mistake("exact (erf) GELU", "that is the exact GELU, x·Φ(x); GPT-2 used the tanh approximation, which differs by "
            "up to ~1e-3: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))", F.gelu),
    Mistake("ReLU instead of GELU", "GELU is smooth and slightly negative for negative inputs, unlike ReLU", F.relu),
    Mistake("missing the 0.044715·x³ term", "inside the tanh: √(2/π)·(x + 0.044715·x³)", _gelu_without_cubic),
)


def _gelu(fn, x: torch.Tensor) -> torch.Tensor:
    y = as_tensor(fn(x.clone()), "gelu(x)")
    if y.shape != x.shape:
        raise ProbeError(f"gelu(x) returned shape {tuple(y.shape)} for x of shape {tuple(x.shape)}; expected x's shape")
    return y


def _probe_gelu(fn) -> Outputs:
    return {"range_-4_4": _gelu(fn, torch.linspace(-4, 4, 81)), "zero": _gelu(fn, torch.zeros(3))}


def _probe_gelu_hidden(fn) -> Outputs:
    return {"batch": _gelu(fn, seeded_randn(2, 3, 16, seed=330, scale=2.0)),
            "large": _gelu(fn, torch.tensor([-30.0, -10.0, -6.0, 6.0, 10.0, 30.0]))}


_pair("gelu", "gelu", gelu, (_probe_gelu, _probe_gelu_hidden), (1, 1),
      "GPT-2's tanh approximation of GELU, elementwise", GELU_MISTAKES,
      {"large": "for large |x| GELU is x (positive) or 0 (negative): no inf or NaN"}, tolerance=GELU_TOLERANCE,
      inputs={"range_-4_4": "gelu(torch.linspace(-4, 4, 81))", "zero": "gelu(torch.zeros(3))"},
      cases={"batch": "a 3-D batch from randn × 2", "large": "large |x| (up to 30)"},
      forbidden=("F.gelu", "nn.GELU"))


# ---- MLP ------------------------------------------------------------------------------------------------------------

MLP_NAMES = "c_fc (n_embd → 4·n_embd) and c_proj (4·n_embd → n_embd), with bias=config.bias"


class _FlawedMLP(ReferenceMLP):
    flaw = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activation = {"exact (erf) GELU": F.gelu, "ReLU instead of GELU": F.relu}[self.flaw]
        return self.dropout(self.c_proj(activation(self.c_fc(x))))


MLP_MISTAKES = tuple(Mistake(m.name, m.hint, type("FlawedMLP", (_FlawedMLP,), {"flaw": m.name}))
                     for m in GELU_MISTAKES[:2])


def _mlp_weights(config: GPTConfig, seed: int) -> dict[str, torch.Tensor]:
    """Weights that put c_fc's outputs around ±2, where the two GELUs differ most."""
    C = config.n_embd
    weights = {"c_fc.weight": seeded_randn(4 * C, C, seed=seed, scale=2.0 / math.sqrt(C)),
               "c_proj.weight": seeded_randn(C, 4 * C, seed=seed + 1, scale=1.0 / math.sqrt(C))}
    if config.bias:
        weights["c_fc.bias"] = seeded_randn(4 * C, seed=seed + 2, scale=0.5)
        weights["c_proj.bias"] = seeded_randn(C, seed=seed + 3, scale=0.5)
    return weights


def _mlp_output(cls, config: GPTConfig, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    module = _loaded(cls, "MLP(config)", config, _mlp_weights(config, seed), MLP_NAMES)
    with torch.no_grad():
        return _same_shape(module, seeded_randn(*shape, seed=seed + 4), "MLP.forward")


def _probe_mlp(cls) -> Outputs:
    config = GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8, dropout=0.0, bias=True)
    return {"full": _mlp_output(cls, config, 400, (2, 5, 8))}


def _probe_mlp_hidden(cls) -> Outputs:
    wide = GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0, bias=True)
    no_bias = GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0, bias=False)
    return {"wide": _mlp_output(cls, wide, 410, (1, 3, 32)), "bias_false_config": _mlp_output(cls, no_bias, 420, (2, 4, 16))}


_pair("mlp", "MLP", ReferenceMLP, (_probe_mlp, _probe_mlp_hidden), (1, 1),
      "GPT-2's MLP: c_fc 4× wide, tanh GELU, c_proj, dropout", MLP_MISTAKES,
      {"bias_false_config": "with config.bias False: build both Linear layers with bias=config.bias"},
      inputs={"full": "MLP(n_embd=8) with the reference's weights, x of shape (2, 5, 8) from randn"},
      cases={"wide": "n_embd = 32", "bias_false_config": "config.bias = False"})


# ---- Block ----------------------------------------------------------------------------------------------------------

POST_LN = "post-LN block"
NO_RESIDUAL = "missing residual connections"
SHARED_LN = "one LayerNorm shared by both sublayers"

BLOCK_HINTS = {
    POST_LN: "GPT-2 normalises the input of each sublayer and adds its output to the untouched stream: "
             "x + attn(ln_1(x)), not ln_1(x + attn(x))",
    NO_RESIDUAL: "each sublayer's output is added to its input (x = x + …), so the stream carries everything forward",
    SHARED_LN: "attention reads the stream through ln_1 and the MLP through ln_2: each has its own weights",
}


class _FlawedBlock(ReferenceBlock):
    flaw = ""

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        if self.flaw == POST_LN:
            x = self.ln_1(x + self.attn(x))
            return self.ln_2(x + self.mlp(x))
        if self.flaw == NO_RESIDUAL:
            return self.mlp(self.ln_2(self.attn(self.ln_1(x))))
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_1(x))  # SHARED_LN


BLOCK_MISTAKES = tuple(_flawed(_FlawedBlock, n, BLOCK_HINTS) for n in (POST_LN, NO_RESIDUAL, SHARED_LN))
BLOCK_NAMES = "ln_1, attn (CausalSelfAttention), ln_2, mlp (MLP)"


def _block_output(cls, config: GPTConfig, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    module = _loaded(cls, "Block(config)", config, _reference_state(ReferenceBlock, config, seed), BLOCK_NAMES)
    with torch.no_grad():
        return _same_shape(module, seeded_randn(*shape, seed=seed + 5) + 0.5, "Block.forward")


def _probe_block(cls) -> Outputs:
    config = GPTConfig(block_size=8, vocab_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)
    full = _block_output(cls, config, 500, (2, 6, 16))
    return {"one_token": _block_output(cls, config, 500, (2, 1, 16)), "full": full}


def _probe_block_hidden(cls) -> Outputs:
    config = GPTConfig(block_size=8, vocab_size=16, n_layer=3, n_head=4, n_embd=32, dropout=0.0, bias=True)
    no_bias = GPTConfig(block_size=8, vocab_size=16, n_layer=2, n_head=3, n_embd=24, dropout=0.0, bias=False)
    return {"full_length": _block_output(cls, config, 510, (1, 8, 32)),
            "bias_false_config": _block_output(cls, no_bias, 520, (2, 5, 24))}


_pair("block", "Block", ReferenceBlock, (_probe_block, _probe_block_hidden), (2, 2),
      "pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))", BLOCK_MISTAKES,
      {"one_token": "with one token attention only passes the value through: check the LayerNorms and residuals",
       "bias_false_config": "with config.bias False: LayerNorm(n_embd, bias=config.bias)"},
      inputs={"one_token": "Block(n_embd=16, 2 heads) with the reference's weights, x of shape (2, 1, 16)",
              "full": "the same Block, x of shape (2, 6, 16)"},
      cases={"full_length": "T = block_size, four heads", "bias_false_config": "config.bias = False, three heads"})


# ---- GPT ------------------------------------------------------------------------------------------------------------

NO_WPE = "missing position embedding"
NO_LN_F = "missing ln_f"
UNTIED = "untied lm_head"

GPT_HINTS = {
    NO_WPE: "attention alone does not know the order of tokens: add the position embeddings wpe(0..T-1) to the token "
            "embeddings",
    NO_LN_F: "after the last block the stream goes through transformer.ln_f before lm_head",
    UNTIED: "GPT-2 ties lm_head.weight to transformer.wte.weight: make them the same Parameter "
            "(self.transformer.wte.weight = self.lm_head.weight)",
}


class _FlawedGPT(ReferenceGPT):
    flaw = ""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        if self.flaw == UNTIED:
            self.lm_head.weight = nn.Parameter(self.lm_head.weight.detach().clone())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
        x = self.transformer.wte(idx)
        if self.flaw != NO_WPE:
            x = x + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        if self.flaw != NO_LN_F:
            x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss


GPT_MISTAKES = tuple(_flawed(_FlawedGPT, n, GPT_HINTS) for n in (NO_WPE, NO_LN_F, UNTIED))
GPT_NAMES = "transformer.wte, transformer.wpe, transformer.h (Blocks), transformer.ln_f, lm_head"


def _gpt_forward(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor | None = None):
    out = model(idx.clone()) if targets is None else model(idx.clone(), targets.clone())
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ProbeError(f"GPT.forward returned {type(out).__name__}; expected a tuple (logits, loss)")
    logits = as_tensor(out[0], "GPT.forward (its logits)")
    B, T = idx.shape
    if logits.shape != (B, T, model_vocab(model)):
        raise ProbeError(f"GPT.forward returned logits of shape {tuple(logits.shape)} for idx of shape {(B, T)}; "
                         "expected (B, T, vocab_size)")
    if targets is None:
        if out[1] is not None:
            raise ProbeError("GPT.forward(idx) without targets must return (logits, None)")
        return logits, None
    return logits, as_tensor(out[1], "GPT.forward (its loss)")


def model_vocab(model: nn.Module) -> int:
    return model.transformer.wte.weight.size(0)


def _gpt_parts(cls, config: GPTConfig, seed: int, B: int, T: int) -> Outputs:
    model = _loaded(cls, "GPT(config)", config, _reference_state(ReferenceGPT, config, seed), GPT_NAMES)
    generator = torch.Generator().manual_seed(seed + 7)
    idx = torch.randint(config.vocab_size, (B, T), generator=generator)
    targets = torch.randint(config.vocab_size, (B, T), generator=generator)
    with torch.no_grad():
        logits, loss = _gpt_forward(model, idx, targets)
        no_targets, _ = _gpt_forward(model, idx)
        try:
            model(torch.zeros(1, config.block_size + 1, dtype=torch.long))
            too_long = False
        except ValueError:
            too_long = True
        except Exception:  # an IndexError from the embedding is not the clear error asked for
            too_long = False
    tied = model.lm_head.weight is model.transformer.wte.weight
    return {"logits": logits, "loss": loss.reshape(()), "logits_without_targets": no_targets,
            "too_long_raises_value_error": torch.tensor(too_long), "lm_head_tied_to_wte": torch.tensor(tied)}


def _probe_gpt(cls) -> Outputs:
    config = GPTConfig(block_size=8, vocab_size=32, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)
    return _gpt_parts(cls, config, 600, B=2, T=6)


def _probe_gpt_hidden(cls) -> Outputs:
    config = GPTConfig(block_size=6, vocab_size=40, n_layer=3, n_head=3, n_embd=24, dropout=0.0, bias=False)
    return _gpt_parts(cls, config, 610, B=1, T=6)


_pair("gpt", "GPT", ReferenceGPT, (_probe_gpt, _probe_gpt_hidden), (3, 2),
      "GPT(config): embeddings, blocks, ln_f, tied lm_head; forward(idx, targets=None) → (logits, loss)",
      GPT_MISTAKES,
      {"loss": "the loss is the mean cross-entropy of the logits against the targets, over all B·T positions",
       "too_long_raises_value_error": "an input longer than block_size must raise ValueError with a clear message",
       "lm_head_tied_to_wte": "lm_head.weight and transformer.wte.weight must be the same Parameter"},
      tolerance=MODEL_TOLERANCE,
      inputs={"logits": "GPT(2 layers, n_embd 16, vocab 32) with the reference's weights, idx of shape (2, 6)",
              "loss": "the same call, with targets", "logits_without_targets": "the same idx, no targets",
              "too_long": "idx of block_size + 1 tokens", "lm_head_tied_to_wte": "the model's parameters"},
      cases={"logits": "T = block_size, bias=False, three heads", "loss": "T = block_size, bias=False",
             "logits_without_targets": "no targets, bias=False", "too_long": "idx longer than block_size",
             "lm_head_tied_to_wte": "bias=False: weight tying"})


# ---- initialisation -------------------------------------------------------------------------------------------------


def _init_with(residual_std) -> type:
    """A reference GPT whose residual projections are re-drawn with std ``residual_std(n_layer)``."""

    class Variant(ReferenceGPT):
        def __init__(self, config: GPTConfig) -> None:
            super().__init__(config)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, std=residual_std(config.n_layer))

    return Variant


class _DefaultEmbeddings(ReferenceGPT):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        nn.init.normal_(self.transformer.wte.weight)  # nn.Embedding's own N(0, 1)
        nn.init.normal_(self.transformer.wpe.weight)


class _PyTorchDefaults(ReferenceGPT):
    """GPT-2's initialisation never applied: every Linear and Embedding keeps the one PyTorch gives it."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.reset_parameters()


INIT_MISTAKES = (
    Mistake("GPT-2's initialisation not applied (PyTorch's defaults)", "at the end of `__init__`, call "
            "`self.apply(self._init_weights)` and then redraw the residual projections: without it nn.Linear and "
            "nn.Embedding keep PyTorch's own initialisation", _PyTorchDefaults),
    Mistake("no residual-projection scaling", "the c_proj weights (attention's and the MLP's) write into the residual "
            "stream, 2·n_layer of them add up: draw them with std 0.02/√(2·n_layer)", _init_with(lambda n: 0.02)),
    Mistake("residual projections scaled by 1/sqrt(n_layer)", "each block has two residual projections, so the "
            "stream sums 2·n_layer of them: 0.02/√(2·n_layer)", _init_with(lambda n: 0.02 / math.sqrt(n))),
    Mistake("embeddings left at PyTorch's default N(0, 1)", "nn.Embedding starts at N(0, 1); GPT-2 draws wte and wpe "
            "from N(0, 0.02) like the Linear weights", _DefaultEmbeddings),
)


def _init_stats(cls, config: GPTConfig, seed: int) -> Outputs:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    if not isinstance(model, nn.Module):
        raise ProbeError(f"GPT(config) gave a {type(model).__name__}; expected an nn.Module")
    params = dict(model.named_parameters())
    groups = {"wte": "transformer.wte.weight", "wpe": "transformer.wpe.weight", "attn.c_attn": "attn.c_attn.weight",
              "attn.c_proj": "attn.c_proj.weight", "mlp.c_fc": "mlp.c_fc.weight", "mlp.c_proj": "mlp.c_proj.weight"}
    out = {}
    for group, suffix in groups.items():
        tensors = [p.detach().flatten() for name, p in params.items() if name.endswith(suffix)]
        if not tensors:
            raise ProbeError(f"GPT(config) has no parameter named …{suffix}; use GPT-2's names ({GPT_NAMES})")
        out[f"std_{group}"] = torch.cat(tensors).std()
    biases = [p.detach().flatten() for name, p in params.items() if name.endswith(".bias") and ".ln" not in name]
    out["max_abs_linear_bias"] = torch.cat(biases).abs().max() if biases else torch.tensor(0.0)
    return out


def _probe_init(cls) -> Outputs:
    return _init_stats(cls, GPTConfig(block_size=64, vocab_size=256, n_layer=3, n_head=3, n_embd=48, bias=True), 700)


def _probe_init_hidden(cls) -> Outputs:
    return _init_stats(cls, GPTConfig(block_size=64, vocab_size=256, n_layer=6, n_head=2, n_embd=32, bias=False), 710)


_pair("init", "GPT", ReferenceGPT, (_probe_init, _probe_init_hidden), (2, 1),
      "GPT-2 initialisation: N(0, 0.02), zero biases, c_proj weights N(0, 0.02/√(2·n_layer))", INIT_MISTAKES,
      {"std_wte": "the token embeddings: N(0, 0.02)", "std_wpe": "the position embeddings: N(0, 0.02)",
       "std_attn.c_attn": "Linear weights: N(0, 0.02)", "std_mlp.c_fc": "Linear weights: N(0, 0.02)",
       "std_attn.c_proj": "residual projections: 0.02/√(2·n_layer)",
       "std_mlp.c_proj": "residual projections: 0.02/√(2·n_layer)",
       "max_abs_linear_bias": "biases start at zero"}, tolerance=INIT_TOLERANCE,
      inputs={"std": "standard deviations of a GPT(n_layer=3, n_embd=48) built with torch.manual_seed(700)",
              "max_abs_linear_bias": "the largest |bias| of its Linear layers"},
      cases={"std": "a deeper GPT (n_layer 6), bias=False", "max_abs_linear_bias": "its Linear biases"})


# ---- count_params ---------------------------------------------------------------------------------------------------


def _count(fn, config: GPTConfig) -> torch.Tensor:
    value = fn(config)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProbeError(f"count_params returned {type(value).__name__}; expected an int")
    return torch.tensor(value, dtype=torch.int64)


COUNT_MISTAKES = (
    Mistake("lm_head counted separately (no weight tying)", "lm_head shares its weight with wte: count it once",
            lambda c: count_params(c) + c.vocab_size * c.n_embd),
    Mistake("position embeddings left out", "wpe has block_size × n_embd parameters",
            lambda c: count_params(c) - c.block_size * c.n_embd),
    Mistake("ln_f left out", "the final LayerNorm has parameters too",
            lambda c: count_params(c) - c.n_embd * (2 if c.bias else 1)),
    Mistake("biases counted with bias=False", "with config.bias False, no Linear or LayerNorm has a bias",
            lambda c: count_params(dataclasses.replace(c, bias=True))),
)


def _probe_count(fn) -> Outputs:
    return {"gpt2": _count(fn, GPTConfig.from_preset("gpt2")),
            "gpt-nano": _count(fn, GPTConfig.from_preset("gpt-nano", vocab_size=65, block_size=128)),
            "bias_false": _count(fn, GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=2, n_embd=16, bias=False))}


def _probe_count_hidden(fn) -> Outputs:
    return {"gpt2-medium": _count(fn, GPTConfig.from_preset("gpt2-medium")),
            "gpt2-xl_no_bias": _count(fn, GPTConfig.from_preset("gpt2-xl", bias=False)),
            "one_layer": _count(fn, GPTConfig(block_size=5, vocab_size=7, n_layer=1, n_head=1, n_embd=4))}


_pair("count_params", "count_params", count_params, (_probe_count, _probe_count_hidden), (1, 1),
      "the number of parameters of GPT(config), by formula (tied weights counted once)", COUNT_MISTAKES,
      {"bias_false": "with config.bias False there are no biases anywhere"}, tolerance=EXACT,
      inputs={"gpt2": "count_params(GPTConfig.from_preset('gpt2'))",
              "gpt-nano": "count_params(GPTConfig.from_preset('gpt-nano', vocab_size=65, block_size=128))",
              "bias_false": "count_params(GPTConfig(block_size=32, vocab_size=50, n_layer=2, n_head=2, n_embd=16, "
                            "bias=False))"},
      cases={"gpt2-medium": "GPT-2 medium", "gpt2-xl_no_bias": "GPT-2 XL with bias=False",
             "one_layer": "a one-layer model"},
      forbidden=("nn.Module",))  # "without building a model"


# ---- loading Hugging Face's layout ----------------------------------------------------------------------------------


def _load_reshaped(model: nn.Module, hf_state: dict[str, torch.Tensor], transposed: tuple[str, ...]) -> None:
    """A loader that transposes only ``transposed`` and reshapes everything else into place."""
    params = model.state_dict()
    with torch.no_grad():
        for name, tensor in hf_state.items():
            if name in params:
                tensor = tensor.t() if name.endswith(transposed) else tensor
                params[name].copy_(tensor.reshape(params[name].shape))


LOADER_MISTAKES = (
    Mistake("Conv1D weights not transposed", "Hugging Face stores c_attn, c_proj and c_fc weights as Conv1D, "
            "(in_features, out_features): transpose them for nn.Linear, whose weight is (out, in). Reshaping "
            "makes the shapes fit but scrambles the values",
            lambda model, hf: _load_reshaped(model, hf, ())),
    Mistake("square attn.c_proj weight not transposed", "attn.c_proj.weight is (n_embd, n_embd), so its shape fits "
            "either way, but it is a Conv1D weight like the others and must be transposed too",
            lambda model, hf: _load_reshaped(model, hf, ("attn.c_attn.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"))),
)


def _loader_parts(fn, config: GPTConfig, seed: int, old_buffers: bool) -> Outputs:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        source = ReferenceGPT(config)
        source.load_state_dict(_perturbed(source.state_dict(), seed + 1))
        hf_state = {k: v.clone() for k, v in source.to_hf_state_dict().items()}
        if old_buffers:  # older transformers versions keep the causal mask as a buffer in the state dict
            T = config.block_size
            for i in range(config.n_layer):
                hf_state[f"transformer.h.{i}.attn.bias"] = torch.ones(T, T).tril().view(1, 1, T, T)
                hf_state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        torch.manual_seed(seed + 2)
        model = ReferenceGPT(config).eval()
    fn(model, hf_state)
    state = model.state_dict()
    idx = torch.randint(config.vocab_size, (2, config.block_size), generator=torch.Generator().manual_seed(seed + 3))
    with torch.no_grad():
        logits, _ = model(idx)
    return {"conv1d_weights": torch.cat([v.flatten() for k, v in state.items() if k.endswith(HF_CONV1D_WEIGHTS)]),
            "other_weights": torch.cat([v.flatten() for k, v in state.items() if not k.endswith(HF_CONV1D_WEIGHTS)]),
            "logits": logits}


def _probe_loader(fn) -> Outputs:
    config = GPTConfig(block_size=8, vocab_size=32, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)
    return _loader_parts(fn, config, 800, old_buffers=False)


def _probe_loader_hidden(fn) -> Outputs:
    config = GPTConfig(block_size=6, vocab_size=20, n_layer=3, n_head=3, n_embd=24, dropout=0.0, bias=True)
    return _loader_parts(fn, config, 810, old_buffers=True)


_pair("load_hf_state_dict", "load_hf_state_dict", load_hf_state_dict, (_probe_loader, _probe_loader_hidden),
      (2, 1), "load a GPT-2 state dict in Hugging Face's layout (Conv1D weights transposed) into a GPT",
      LOADER_MISTAKES,
      {"conv1d_weights": "the four Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj) must be "
                         "transposed",
       "other_weights": "embeddings, LayerNorms and biases load as they are"}, tolerance=OPS_TOLERANCE,
      inputs={"conv1d_weights": "the loaded Conv1D weights, from a 2-layer model's state dict in HF's layout",
              "other_weights": "the other loaded weights", "logits": "the loaded model's logits"},
      cases={"conv1d_weights": "three layers, a state dict with the old attn.bias buffers",
             "other_weights": "three layers, the old attn.bias buffers",
             "logits": "three layers, the old attn.bias buffers"})
