"""The reference model: shapes, causality, parameter count, attention paths, KV cache, sampling, GPT-2 parity, and
the lessons' functions it is built from."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from gpt_reference import model as model_module
from gpt_reference.config import GPTConfig
from gpt_reference.model import GPT, KVCache
from gpt_reference.model import average_past, causal_mask, count_params, gelu, load_hf_state_dict
from gpt_reference.model import scaled_dot_product_attention
from gpt_reference.sampling import generate, generate_cached, sample_next, top_k_logits, top_p_logits

SMALL = GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)


def small_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    config = GPTConfig(**{**SMALL.__dict__, **overrides})
    return GPT(config).eval()


def test_forward_shapes_and_loss():
    model = small_model()
    idx = torch.randint(0, 37, (3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, 37) and loss is None
    logits, loss = model(idx, targets=idx)
    assert loss.shape == () and torch.isfinite(loss)
    # an untrained model is close to uniform: loss ≈ ln(vocab_size)
    assert abs(loss.item() - torch.log(torch.tensor(37.0)).item()) < 0.5


def test_ignore_index_leaves_positions_out_of_the_loss():
    model = small_model()
    idx = torch.randint(0, 37, (2, 8))
    targets = torch.randint(0, 37, (2, 8))
    masked = targets.clone()
    masked[:, :4] = -1
    logits, loss = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 37), targets[:, 4:].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_too_long_input_is_a_clear_error():
    model = small_model()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("impl", ["sdpa", "manual"])
def test_causality_future_tokens_never_change_past_logits(impl):
    model = small_model()
    model.set_attention_impl(impl)
    idx = torch.randint(0, 37, (2, 12))
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 37
    before, _ = model(idx)
    after, _ = model(changed)
    assert torch.equal(before[:, :7], after[:, :7])
    assert not torch.allclose(before[:, 7:], after[:, 7:])


def test_gpt2_has_124439808_parameters():
    model = GPT(GPTConfig.from_preset("gpt2"))
    assert model.num_params() == 124_439_808
    assert model.num_params(non_embedding=True) == 124_439_808 - 1024 * 768


def test_lm_head_is_tied_to_token_embeddings():
    model = small_model()
    assert model.lm_head.weight is model.transformer.wte.weight


def test_gpt2_initialisation_statistics():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=1000, block_size=64)
    model = GPT(config)
    proj_std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    fc_std = model.transformer.h[0].mlp.c_fc.weight.std().item()
    assert abs(fc_std - 0.02) < 0.001
    assert abs(proj_std - 0.02 / (2 * 8) ** 0.5) < 0.0005
    assert torch.count_nonzero(model.transformer.h[0].attn.c_attn.bias) == 0


def test_sdpa_and_manual_attention_agree():
    model = small_model()
    idx = torch.randint(0, 37, (2, 16))
    model.set_attention_impl("sdpa")
    fused, _ = model(idx)
    model.set_attention_impl("manual")
    manual, _ = model(idx)
    torch.testing.assert_close(fused, manual, atol=1e-5, rtol=1e-5)


def test_compiled_for_the_cpu_the_attention_is_the_spelled_out_one_and_gelu_a_sigmoid():
    model = small_model()
    idx = torch.randint(0, 37, (2, 16))
    ops: list[str] = []

    def record(graph_module, example_inputs):  # a torch.compile backend that runs the traced graph as it is
        ops.extend(str(node.target) for node in graph_module.graph.nodes)
        return graph_module.forward

    compiled, _ = torch.compile(model, backend=record)(idx)
    assert any("softmax" in op for op in ops) and not any("scaled_dot_product_attention" in op for op in ops)
    assert not any("masked_fill" in op for op in ops)  # the causal mask is the precomputed table, added
    assert any("sigmoid" in op for op in ops) and not any("gelu" in op for op in ops)
    torch.testing.assert_close(compiled, model(idx)[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("impl", ["sdpa", "manual"])
def test_kv_cache_forward_matches_full_forward(impl):
    model = small_model()
    model.set_attention_impl(impl)
    idx = torch.randint(0, 37, (2, 12))
    full, _ = model(idx)
    caches = [KVCache() for _ in model.transformer.h]
    first, _ = model(idx[:, :5], caches=caches)  # a prefill ...
    middle, _ = model(idx[:, 5:9], caches=caches)  # ... a chunk of several new tokens (needs an offset mask) ...
    steps = [model(idx[:, t : t + 1], caches=caches)[0] for t in range(9, 12)]  # ... then one token at a time
    torch.testing.assert_close(torch.cat([first, middle, *steps], dim=1), full, atol=1e-5, rtol=1e-5)
    assert [len(cache) for cache in caches] == [12, 12]


def test_cached_generation_equals_uncached_past_the_block_size():
    model = small_model(seed=3)
    prompt = torch.randint(0, 37, (2, 5))
    # 30 new tokens with block_size 16: the window slides and the cache has to be rebuilt
    cached = model.generate(prompt, 30, temperature=0.0, use_cache=True)
    uncached = model.generate(prompt, 30, temperature=0.0, use_cache=False)
    assert cached.shape == (2, 35)
    assert torch.equal(cached, uncached)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    sampled_cached = model.generate(prompt, 20, temperature=1.0, top_k=10, generator=g1, use_cache=True)
    sampled_uncached = model.generate(prompt, 20, temperature=1.0, top_k=10, generator=g2, use_cache=False)
    assert torch.equal(sampled_cached, sampled_uncached)


def test_gpt_generate_is_lessons_loops():
    model = small_model(seed=4)
    prompt = torch.randint(0, 37, (2, 5))
    settings = dict(temperature=0.9, top_k=8, top_p=0.9)
    runs = [model.generate(prompt, 20, generator=torch.Generator().manual_seed(1), use_cache=use_cache, **settings)
            for use_cache in (True, False)]
    runs += [loop(model, prompt, 20, generator=torch.Generator().manual_seed(1), **settings)
             for loop in (generate_cached, generate)]
    for run in runs[1:]:
        assert torch.equal(run, runs[0])


def test_generate_restores_training_mode():
    model = small_model().train()
    model.generate(torch.zeros(1, 1, dtype=torch.long), 2)
    assert model.training


def test_crop_block_size():
    model = small_model()
    idx = torch.randint(0, 37, (1, 8))
    before, _ = model(idx)
    model.crop_block_size(8)
    after, _ = model(idx)
    assert model.transformer.wpe.weight.shape == (8, 16)
    assert all(block.attn.causal_bias.shape == (8, 8) for block in model.transformer.h)
    torch.testing.assert_close(before, after)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_flops_per_token_matches_the_palm_formula():
    model = small_model()
    n = model.num_params() - 16 * 16  # all but the position embeddings
    assert model.flops_per_token() == 6 * n + 12 * 2 * 16 * 16
    assert model.estimate_mfu(tokens_per_iter=1000, seconds_per_iter=1.0) is None  # no known peak on a CPU


# ---- the lessons' functions the model is built from ----------------------------------------------------------


def test_causal_mask_is_a_bool_lower_triangle():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool and mask.shape == (4, 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, False, False], [True, True, True, False],
                             [True, True, True, True]]
    assert causal_mask(1).tolist() == [[True]]


def test_average_past_is_attention_with_equal_scores():
    x = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(average_past(x)[:, 3], x[:, :4].mean(dim=1))
    same_scores = torch.zeros(2, 1, 6, 5)  # q·k = 0 for every pair: the softmax spreads weight evenly
    equal_weights = scaled_dot_product_attention(same_scores, same_scores, x.unsqueeze(1), causal_mask(6))
    torch.testing.assert_close(equal_weights.squeeze(1), average_past(x))


def test_scaled_dot_product_attention_matches_the_fused_kernel():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v),
                               F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, causal_mask(6)),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))
    padding = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    padding[1, ..., -2:] = False  # a mask that broadcasts over heads and queries
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, padding),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=padding))
    additive = torch.zeros(6, 6).masked_fill(~causal_mask(6), float("-inf"))  # a float mask is added to the scores
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, additive),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_the_causal_table_is_not_saved_with_the_weights():
    model = small_model()
    assert not any("causal_bias" in name for name in model.state_dict())
    table = model.transformer.h[0].attn.causal_bias
    assert table.shape == (16, 16) and torch.equal(table == 0, causal_mask(16))


def test_attention_dropout_keeps_the_expected_output():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 4, 8, generator=g).expand(4000, 1, 4, 8) for _ in range(3))
    torch.manual_seed(0)
    dropped = scaled_dot_product_attention(q, k, v, causal_mask(4), dropout_p=0.5)
    assert not torch.allclose(dropped[0], dropped[1])  # each sequence draws its own dropout mask
    # inverted dropout: weights are zeroed with probability p and the others scaled by 1/(1-p), so the mean holds
    torch.testing.assert_close(dropped.mean(dim=0), scaled_dot_product_attention(q, k, v, causal_mask(4))[0],
                               atol=0.1, rtol=0)


def test_gelu_is_the_tanh_approximation():
    x = torch.linspace(-6, 6, 241)
    formula = 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    torch.testing.assert_close(gelu(x), formula, atol=1e-6, rtol=1e-5)
    assert (gelu(x) - F.gelu(x)).abs().max() > 1e-4  # not the exact (erf) GELU


@pytest.mark.parametrize(("name", "impl"), [("causal_mask", "manual"), ("scaled_dot_product_attention", "manual"),
                                            ("gelu", "sdpa"), ("gelu", "manual")])
def test_the_model_calls_the_lessons_functions(monkeypatch, name, impl):
    calls = []
    original = getattr(model_module, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(model_module, name, spy)
    model = small_model()
    model.set_attention_impl(impl)
    model(torch.randint(0, 37, (1, 5)))
    assert len(calls) == model.config.n_layer  # once per block


@pytest.mark.parametrize("config", [
    SMALL, GPTConfig(block_size=16, vocab_size=30, n_layer=2, n_head=2, n_embd=8, bias=False),
    GPTConfig.from_preset("gpt-nano", vocab_size=65, block_size=128), GPTConfig.from_preset("gpt-mini", bias=False),
    GPTConfig(block_size=5, vocab_size=7, n_layer=1, n_head=1, n_embd=4),
])
def test_count_params_agrees_with_the_model(config):
    assert count_params(config) == GPT(config).num_params()


def test_count_params_of_gpt2_small():
    assert count_params(GPTConfig.from_preset("gpt2")) == 124_439_808


# ---- sampling ---------------------------------------------------------------------------------------------------


def test_temperature_zero_picks_the_argmax():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    assert sample_next(logits, temperature=0).tolist() == [[1], [0]]
    with pytest.raises(ValueError):
        sample_next(logits, temperature=-1.0)


def test_top_k_keeps_exactly_k_tokens():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = torch.isfinite(top_k_logits(logits, 2))
    assert kept.tolist() == [[False, True, False, True, False]]
    assert torch.isfinite(top_k_logits(logits, 9)).all()  # k above the vocabulary size keeps every token


def test_top_p_keeps_the_token_that_crosses_the_threshold():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    kept = torch.isfinite(top_p_logits(probs.log(), 0.9))
    assert kept.tolist() == [[False, True, True, True]]
    kept = torch.isfinite(top_p_logits(probs.log(), 0.5))
    assert kept.tolist() == [[False, True, False, False]]


def test_sampling_frequencies_follow_the_filtered_softmax():
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]]))
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([sample_next(logits.expand(500, 4), top_k=3, generator=g) for _ in range(20)]).flatten()
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    assert freq[3] == 0  # never outside the top-k
    torch.testing.assert_close(freq[:3], torch.tensor([4 / 9, 3 / 9, 2 / 9]), atol=0.02, rtol=0)


# ---- GPT-2 weights in Hugging Face's layout ---------------------------------------------------------------------


def test_hf_layout_round_trip_transposes_conv1d_weights():
    model = small_model()
    hf_state = model.to_hf_state_dict()
    assert hf_state["transformer.h.0.attn.c_attn.weight"].shape == (16, 48)  # Conv1D: (in, out)
    rebuilt = GPT.from_hf_state_dict(hf_state, model.config).eval()
    idx = torch.randint(0, 37, (2, 9))
    torch.testing.assert_close(rebuilt(idx)[0], model(idx)[0])
    untransposed = dict(hf_state, **{"transformer.h.0.mlp.c_fc.weight": model.transformer.h[0].mlp.c_fc.weight})
    with pytest.raises(ValueError, match="c_fc"):
        GPT.from_hf_state_dict(untransposed, model.config)


def test_load_hf_state_dict_loads_in_place_what_from_hf_state_dict_builds():
    source = small_model(seed=1)
    hf_state = source.to_hf_state_dict()
    model = small_model(seed=2)
    load_hf_state_dict(model, hf_state)
    built = GPT.from_hf_state_dict(hf_state, source.config)
    for name, tensor in built.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    assert model.lm_head.weight is model.transformer.wte.weight  # loading keeps the tie


def test_load_hf_state_dict_reads_the_bare_transformer_layout_and_old_mask_buffers():
    source = small_model(seed=1)
    # GPT2Model: no "transformer." prefix and no lm_head; old transformers versions add the causal mask as buffers
    bare = {k.removeprefix("transformer."): v for k, v in source.to_hf_state_dict().items() if k != "lm_head.weight"}
    bare["h.0.attn.bias"] = torch.ones(1, 1, 16, 16).tril()
    bare["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    model = small_model(seed=2)
    load_hf_state_dict(model, bare)
    idx = torch.randint(0, 37, (2, 9))
    torch.testing.assert_close(model(idx)[0], source(idx)[0])


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="transformers not installed (pip install -e '.[hf]')")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=97, n_positions=32, n_embd=48, n_layer=3, n_head=4, initializer_range=0.3, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0
    )
    # weights 15× larger than GPT-2's init, so that activations reach where tanh GELU and exact GELU differ
    model = transformers.GPT2LMHeadModel(config).eval()
    # a saved folder, as from_pretrained reads one (a hub download lands in the same format)
    folder = tmp_path_factory.mktemp("hf_gpt2")
    model.save_pretrained(folder)
    return model, folder


def test_from_pretrained_matches_hugging_face_logits_and_generations(hf_gpt2):
    hf_model, folder = hf_gpt2
    ours = GPT.from_pretrained(str(folder)).eval()
    assert ours.config.n_layer == 3 and ours.config.block_size == 32
    idx = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf_model(idx).logits
    got, _ = ours(idx)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        hf_tokens = hf_model.generate(
            idx[:, :6], max_new_tokens=12, do_sample=False, pad_token_id=0, attention_mask=torch.ones(2, 6)
        )
    assert torch.equal(ours.generate(idx[:, :6], 12, temperature=0.0), hf_tokens)


def test_from_pretrained_accepts_a_loaded_model(hf_gpt2):
    hf_model, _ = hf_gpt2
    ours = GPT.from_pretrained(hf_model).eval()
    idx = torch.randint(0, 97, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx)[0], hf_model(idx).logits, atol=1e-4, rtol=1e-4)
