"""The GPT model (hw2cli/gpt/model.py): attention, positions, parameters, decoding, KV cache."""

from __future__ import annotations

import itertools
import math

import pytest

torch = pytest.importorskip("torch")

from hw2cli.common.errors import Hw2Error  # noqa: E402
from hw2cli.gpt.model import (  # noqa: E402
    GPT,
    PRESETS,
    GPTConfig,
    KVCache,
    TanhGELU,
    apply_rope,
    rope_tables,
    top_k_filter,
    top_p_filter,
)

VARIANTS = [(flash, pos) for flash in (False, True) for pos in ("rope", "learned", "none")]
VARIANT_IDS = [f"{'flash' if f else 'explicit'}-{p}" for f, p in VARIANTS]


def small_model(seed=0, **overrides) -> GPT:
    cfg = dict(n_layer=2, n_head=2, n_embd=16, vocab_size=13, block_size=16)
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**cfg, **overrides})).eval()


# ----------------------------------------------------------------------------- config


def test_presets_give_the_course_sizes():
    expected = {
        "gpt-nano": (3, 3, 48),
        "gpt-micro": (4, 4, 128),
        "gpt-mini": (6, 6, 384),
        "gopher-44m": (8, 16, 512),
        "gpt2": (12, 12, 768),
        "gpt2-medium": (24, 16, 1024),
        "gpt2-large": (36, 20, 1280),
        "gpt2-xl": (48, 25, 1600),
    }
    assert set(PRESETS) == set(expected)
    for name, sizes in expected.items():
        cfg = GPTConfig.from_preset(name, vocab_size=65, block_size=128)
        assert (cfg.n_layer, cfg.n_head, cfg.n_embd) == sizes
        assert (cfg.vocab_size, cfg.block_size, cfg.dropout, cfg.pos_emb) == (65, 128, 0.1, "rope")
    cfg = GPTConfig.from_preset("gpt-nano", vocab_size=10, block_size=8, dropout=0.0, use_flash_attn=True)
    assert (cfg.dropout, cfg.use_flash_attn) == (0.0, True)


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(Hw2Error, match="gpt-mini.*gpt2-xl"):
        GPTConfig.from_preset("gpt-huge", vocab_size=10, block_size=8)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(n_embd=30, n_head=4), "divisible"),
        (dict(n_embd=18, n_head=6), "odd"),  # head size 3: RoPE needs pairs
        (dict(block_size=0), "block_size"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_config_is_refused(overrides, message):
    cfg = dict(n_layer=1, n_head=2, n_embd=16, vocab_size=5, block_size=8)
    with pytest.raises(Hw2Error, match=message):
        GPTConfig(**{**cfg, **overrides})


def test_odd_head_size_is_fine_with_absolute_positions():
    GPT(GPTConfig(n_layer=1, n_head=6, n_embd=18, vocab_size=5, block_size=8, pos_emb="learned"))


# ----------------------------------------------------------------------------- attention


@pytest.mark.parametrize("flash, pos_emb", VARIANTS, ids=VARIANT_IDS)
def test_logits_before_t_do_not_see_tokens_from_t_on(flash, pos_emb):
    model = small_model(use_flash_attn=flash, pos_emb=pos_emb)
    gen = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 13, (2, 12), generator=gen)
    changed = idx.clone()
    t = 7
    changed[:, t:] = (idx[:, t:] + 1 + torch.randint(0, 11, (2, 12 - t), generator=gen)) % 13
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert a.shape == (2, 12, 13)
    torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=1e-6)
    assert (a[:, t:] - b[:, t:]).abs().amax() > 1e-3  # the change is visible from t on


@pytest.mark.parametrize("pos_emb", ["rope", "learned"])
@pytest.mark.parametrize("attn_scale", [True, False], ids=["scaled", "unscaled"])
def test_flash_and_explicit_attention_agree_in_eval_mode(pos_emb, attn_scale):
    explicit = small_model(pos_emb=pos_emb, attn_scale=attn_scale)
    flash = small_model(pos_emb=pos_emb, attn_scale=attn_scale, use_flash_attn=True)
    flash.load_state_dict(explicit.state_dict())
    idx = torch.randint(0, 13, (3, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(flash(idx), explicit(idx), rtol=1e-5, atol=1e-6)
        # recording attention runs the explicit softmax even in a flash model
        with flash.record_attention() as probs:
            logits = flash(idx)
    torch.testing.assert_close(logits, explicit(idx), rtol=1e-5, atol=1e-6)
    assert len(probs) == 2


def test_attention_probabilities_are_causal_rows_summing_to_one():
    model = small_model(n_head=4, n_embd=32)
    idx = torch.randint(0, 13, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        with model.record_attention() as probs:
            model(idx)
    assert len(probs) == 2
    for p in probs:
        assert p.shape == (2, 4, 10, 10)
        assert torch.all(p.triu(diagonal=1) == 0)
        torch.testing.assert_close(p.sum(-1), torch.ones(2, 4, 10))
        assert torch.all(p[..., torch.ones(10, 10, dtype=torch.bool).tril()] > 0)


def test_first_layer_attention_matches_a_hand_computation():
    """Layer 0 with absolute positions, recomputed from the weights step by step."""
    model = small_model(pos_emb="learned")
    idx = torch.randint(0, 13, (1, 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        with model.record_attention() as probs:
            model(idx)
        x = model.tok_emb.weight[idx[0]] + model.pos_emb.weight[:9]
        h = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * model.blocks[0].ln_1.weight
        qkv = h @ model.blocks[0].attn.c_attn.weight.T + model.blocks[0].attn.c_attn.bias
        for head in range(2):
            q = qkv[:, head * 8 : (head + 1) * 8]
            k = qkv[:, 16 + head * 8 : 16 + (head + 1) * 8]
            scores = q @ k.T / math.sqrt(8)
            expected = torch.zeros(9, 9)
            for i in range(9):
                e = torch.exp(scores[i, : i + 1] - scores[i, : i + 1].max())
                expected[i, : i + 1] = e / e.sum()
            torch.testing.assert_close(probs[0][0, head], expected, rtol=1e-5, atol=1e-6)


def test_too_long_input_is_refused():
    with pytest.raises(Hw2Error, match="block_size 16"):
        small_model()(torch.zeros(1, 17, dtype=torch.long))


# ----------------------------------------------------------------------------- GELU


def test_tanh_gelu_and_its_gradient_equal_the_tanh_formula():
    # the CPU's sigmoid form against 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in float64
    x = torch.linspace(-8, 8, 4001).reshape(1, 4001)
    g = torch.randn(1, 4001, generator=torch.Generator().manual_seed(3))
    x64 = x.double().requires_grad_()
    y64 = 0.5 * x64 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)))
    (y64 * g.double()).sum().backward()
    x32 = x.clone().requires_grad_()
    y32 = TanhGELU()(x32)
    (y32 * g).sum().backward()
    torch.testing.assert_close(y32, y64.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(x32.grad, x64.grad.float(), rtol=1e-5, atol=1e-6)


def test_tanh_gelu_elsewhere_is_torchs(monkeypatch):
    # under torch.compile (and on a GPU, in other dtypes) it is F.gelu's tanh approximation
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(4))
    eager = TanhGELU()(x)
    torch.testing.assert_close(
        TanhGELU()(x.double()), torch.nn.functional.gelu(x.double(), approximate="tanh")
    )
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.testing.assert_close(TanhGELU()(x), eager, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- RoPE


def test_rope_keeps_norms_and_matches_complex_rotation():
    cos, sin = rope_tables(head_dim=8, n_pos=20)
    x = torch.randn(2, 3, 20, 8, generator=torch.Generator().manual_seed(5))
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    # pair i at position m is multiplied by exp(1j * m * 10000^(-2i/8))
    theta = 10000.0 ** (-torch.arange(4, dtype=torch.float64) * 2 / 8)
    z = torch.view_as_complex(x.double().reshape(2, 3, 20, 4, 2).contiguous())
    rot = torch.polar(
        torch.ones(20, 4, dtype=torch.float64), torch.arange(20, dtype=torch.float64)[:, None] * theta
    )
    expected = torch.view_as_real(z * rot).reshape(2, 3, 20, 8).float()
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_rope_under_compile_writes_the_same_rotation_out(monkeypatch):
    # torch.compile takes the real-valued branch (Inductor has no complex kernels)
    cos, sin = rope_tables(head_dim=8, n_pos=10)
    x = torch.randn(3, 2, 10, 8, generator=torch.Generator().manual_seed(8))
    eager = apply_rope(x, cos, sin)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    torch.testing.assert_close(apply_rope(x, cos, sin), eager)


def test_rope_backward_turns_the_gradient_back():
    # a rotation is orthogonal: the gradient of <w, R x> with respect to x is R^-1 w
    cos, sin = rope_tables(head_dim=8, n_pos=12)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 12, 3, 8, generator=gen, requires_grad=True)  # (B, T, heads, hd) layout
    w = torch.randn(2, 12, 3, 8, generator=gen)
    (apply_rope(x, cos[:, None], sin[:, None]) * w).sum().backward()
    torch.testing.assert_close(x.grad, apply_rope(w, cos[:, None], -sin[:, None]))


def test_rope_dot_product_depends_only_on_the_relative_offset():
    cos, sin = rope_tables(head_dim=16, n_pos=64)
    gen = torch.Generator().manual_seed(6)
    q, k = torch.randn(16, generator=gen), torch.randn(16, generator=gen)

    def score(m, n):
        qm = apply_rope(q.view(1, 1, 1, 16), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k.view(1, 1, 1, 16), cos[n : n + 1], sin[n : n + 1])
        return float((qm * kn).sum())

    for m, n in [(5, 2), (9, 9), (3, 11)]:
        base = score(m, n)
        for shift in (1, 17, 40):
            assert score(m + shift, n + shift) == pytest.approx(base, rel=1e-4, abs=1e-5)
    assert score(5, 2) != pytest.approx(score(5, 3), abs=1e-3)  # and it does depend on the offset


# ----------------------------------------------------------------------------- parameters and optimizer


@pytest.mark.parametrize("abs_emb", [False, True], ids=["rope", "abs"])
def test_gpt_mini_parameter_count(abs_emb):
    V, T, L, C = 65, 128, 6, 384
    model = GPT(
        GPTConfig.from_preset(
            "gpt-mini", vocab_size=V, block_size=T, pos_emb="learned" if abs_emb else "rope"
        )
    )
    per_block = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    expected = V * C + (T * C if abs_emb else 0) + L * per_block + C + C * V
    assert model.num_params() == expected
    assert expected == (10_741_632 if abs_emb else 10_692_480)


def test_initialisation_follows_gpt2():
    torch.manual_seed(0)
    model = GPT(
        GPTConfig.from_preset("gpt-micro", vocab_size=50, block_size=32, pos_emb="learned")
    ).requires_grad_(False)
    assert all(torch.all(b == 0) for n, b in model.named_parameters() if n.endswith(".bias"))
    assert float(model.blocks[0].attn.c_attn.weight.std()) == pytest.approx(0.02, rel=0.05)
    assert float(model.tok_emb.weight.std()) == pytest.approx(0.02, rel=0.1)
    scaled = 0.02 / math.sqrt(2 * 4)
    assert float(model.blocks[1].mlp.c_proj.weight.std()) == pytest.approx(scaled, rel=0.05)
    assert float(model.blocks[1].attn.c_proj.weight.std()) == pytest.approx(scaled, rel=0.05)
    assert torch.all(model.ln_f.weight == 1)


def test_same_seed_same_weights():
    a, b = small_model(seed=3), small_model(seed=3)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_optimizer_decays_only_linear_weights():
    model = small_model(pos_emb="learned")
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4)
    assert isinstance(opt, torch.optim.AdamW)
    decay, no_decay = opt.param_groups
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.1, 0.0)
    assert decay["lr"] == no_decay["lr"] == 3e-4 and decay["betas"] == (0.9, 0.95)
    names = {id(p): n for n, p in model.named_parameters()}
    decay_names = sorted(names[id(p)] for p in decay["params"])
    expected = sorted(
        [
            f"blocks.{i}.{m}.weight"
            for i in range(2)
            for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
        ]
        + ["lm_head.weight"]
    )
    assert decay_names == expected
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert no_decay_names == set(names.values()) - set(expected)
    assert {"tok_emb.weight", "pos_emb.weight", "ln_f.weight", "blocks.0.attn.c_attn.bias"} <= no_decay_names


# ----------------------------------------------------------------------------- decoding filters


def test_top_k_keeps_the_k_largest_per_row():
    logits = torch.tensor([[1.0, 3.0, 2.0, 5.0, 4.0], [0.0, -1.0, 2.0, 1.0, -3.0]])
    out = top_k_filter(logits, 2)
    inf = float("-inf")
    assert out.tolist() == [[inf, inf, inf, 5.0, 4.0], [inf, inf, 2.0, 1.0, inf]]
    assert top_k_filter(logits, 1).isfinite().sum(-1).tolist() == [1, 1]
    assert torch.equal(top_k_filter(logits, 99), logits)


@pytest.mark.parametrize(
    "p, kept",
    [
        (0.01, {2}),  # the top token alone already exceeds p: always at least one
        (0.45, {2}),  # 0.5 reaches 0.45
        (0.75, {2, 0}),  # 0.5 + 0.3 >= 0.75: the token that crosses p is kept
        (0.9, {2, 0, 3}),  # 0.5 + 0.3 + 0.15 >= 0.9
        (0.97, {2, 0, 3, 1}),
        (1.0, {2, 0, 3, 1}),
    ],
)
def test_top_p_keeps_the_smallest_set_reaching_p(p, kept):
    probs = torch.tensor([[0.3, 0.05, 0.5, 0.15]])
    out = top_p_filter(probs.log(), p)
    assert set(torch.nonzero(out[0].isfinite()).flatten().tolist()) == kept
    torch.testing.assert_close(out[0, sorted(kept)], probs.log()[0, sorted(kept)])


def test_top_p_works_row_by_row():
    logits = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.4, 0.4]]).log()
    out = top_p_filter(logits, 0.6)
    assert out.isfinite().tolist() == [[True, False, False], [False, True, True]]


# ----------------------------------------------------------------------------- generation


@pytest.mark.parametrize("flash, pos_emb", VARIANTS, ids=VARIANT_IDS)
def test_cached_greedy_equals_uncached_greedy_beyond_block_size(flash, pos_emb):
    model = small_model(use_flash_attn=flash, pos_emb=pos_emb)
    prompt = torch.randint(0, 13, (2, 5), generator=torch.Generator().manual_seed(7))
    cached = model.generate(prompt, 40, do_sample=False)  # 45 > block_size 16
    uncached = model.generate(prompt, 40, do_sample=False, use_cache=False)
    assert cached.shape == (2, 45)
    assert torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, uncached)
    # a prompt longer than block_size is cropped, as in the course code
    long_prompt = torch.randint(0, 13, (1, 30), generator=torch.Generator().manual_seed(8))
    assert torch.equal(
        model.generate(long_prompt, 10, do_sample=False),
        model.generate(long_prompt, 10, do_sample=False, use_cache=False),
    )


@pytest.mark.parametrize("flash, pos_emb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize(
    "cuts", [(6, 7, 8, 9, 10, 11, 12, 13, 14, 15), (5, 8, 13)], ids=["one-by-one", "chunks"]
)
def test_cached_logits_equal_full_forward_logits(flash, pos_emb, cuts):
    model = small_model(use_flash_attn=flash, pos_emb=pos_emb)
    idx = torch.randint(0, 13, (2, 16), generator=torch.Generator().manual_seed(9))
    caches = model.new_caches()
    bounds = [0, *cuts, 16]
    with torch.no_grad():
        steps = [model(idx[:, a:b], caches) for a, b in itertools.pairwise(bounds)]
        full = model(idx)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-6)
    assert len(caches) == 2 and all(isinstance(c, KVCache) and c.length == 16 for c in caches)


def test_sampling_is_reproducible_and_cache_independent():
    model = small_model()
    prompt = torch.zeros(3, 1, dtype=torch.long)

    def sample(**kw):
        return model.generate(
            prompt, 30, temperature=0.8, top_k=5, top_p=0.9, generator=torch.Generator().manual_seed(10), **kw
        )

    a = sample()
    assert torch.equal(a, sample())
    assert torch.equal(a, sample(use_cache=False))
    assert not torch.equal(a[0], a[1])  # rows draw independently
    greedy = model.generate(prompt, 30, do_sample=False)
    assert torch.equal(
        model.generate(prompt, 30, top_k=1, generator=torch.Generator().manual_seed(0)), greedy
    )


def test_generate_restores_training_mode_and_validates_settings():
    model = small_model().train()
    prompt = torch.zeros(1, 2, dtype=torch.long)
    assert model.generate(prompt, 0).shape == (1, 2)
    model.generate(prompt, 3, do_sample=False)
    assert model.training
    for kwargs, message in [
        (dict(temperature=0.0), "temperature"),
        (dict(top_k=0), "top_k"),
        (dict(top_p=1.5), "top_p"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
    ]:
        with pytest.raises(Hw2Error, match=message):
            model.generate(prompt, **{"max_new_tokens": 3, **kwargs})
    with pytest.raises(Hw2Error, match="at least one token"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)


def test_a_model_overfits_a_repetitive_text_and_greedy_generation_reproduces_it():
    text = "the cat sat on the mat. " * 8
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    torch.manual_seed(0)
    cfg = GPTConfig(
        n_layer=1,
        n_head=2,
        n_embd=32,
        vocab_size=len(chars),
        block_size=32,
        dropout=0.0,
    )
    model = GPT(cfg)
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2)
    windows = torch.stack([data[s : s + cfg.block_size + 1] for s in range(24)])  # every phase of the text
    for _ in range(100):
        logits = model(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    out = model.generate(data[None, :10], 60, do_sample=False)  # runs past block_size
    assert "".join(chars[i] for i in out[0]) == text[:70]


@pytest.mark.parametrize("flash", [False, True], ids=["explicit", "flash"])
def test_bf16_autocast_runs_forward_backward_and_cached_generation(flash):
    model = small_model(use_flash_attn=flash)
    idx = torch.randint(0, 13, (2, 16), generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        reference = model(idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.no_grad():
            logits = model(idx)
            out = model.generate(idx[:, :4], 20, do_sample=False)  # the cache takes the bf16 keys
        model(idx).float().sum().backward()
    assert logits.dtype == torch.bfloat16 and out.shape == (2, 24)
    torch.testing.assert_close(logits.float(), reference, rtol=0.02, atol=0.005)  # logits ~0.1
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_loss_with_targets_is_the_cross_entropy_of_the_logits_with_its_gradients(precision):
    """``model(x, targets=y)`` (the trainer's call, one graph under torch.compile) equals the
    fp32 cross-entropy of ``model(x)``'s logits, gradients included, with and without bf16."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(5)
    x, y = torch.randint(0, 13, (3, 16), generator=gen), torch.randint(0, 13, (3, 16), generator=gen)
    losses, grads = [], []
    for inside in (True, False):
        model = small_model().train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            if inside:
                loss = model(x, targets=y)
            else:
                logits = model(x)
        if not inside:
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        losses.append(loss)
        grads.append([p.grad for p in model.parameters()])
    assert losses[0].dtype == torch.float32 and losses[0].shape == ()
    assert torch.equal(losses[0], losses[1])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


# ----------------------------------------------------------------------------- the model API contract


def test_old_configs_with_abs_emb_load_as_learned_or_rope_positions():
    base = dict(n_layer=1, n_head=2, n_embd=16, vocab_size=5, block_size=8)
    assert GPTConfig.from_dict({**base, "abs_emb": True}).pos_emb == "learned"
    assert GPTConfig.from_dict({**base, "abs_emb": False}).pos_emb == "rope"
    assert GPTConfig.from_dict({**base, "pos_emb": "none"}).pos_emb == "none"
    with pytest.raises(Hw2Error, match="rope, learned, none"):
        GPTConfig(**base, pos_emb="alibi")


def test_unscaled_attention_is_the_softmax_of_raw_scores():
    """attn_scale=False: the same weights give softmax(q k^T) instead of softmax(q k^T / sqrt(d))."""
    scaled, unscaled = small_model(pos_emb="none"), small_model(pos_emb="none", attn_scale=False)
    unscaled.load_state_dict(scaled.state_dict())
    idx = torch.randint(0, 13, (1, 6), generator=torch.Generator().manual_seed(11))
    with torch.no_grad(), scaled.record_attention() as a, unscaled.record_attention() as b:
        scaled(idx), unscaled(idx)
    # same scores up to the factor sqrt(8): log-probabilities differ by sqrt(8) after re-centring
    la, lb = a[0][0, 0].log(), b[0][0, 0].log()
    row = 5  # the last row sees every key
    ca, cb = la[row] - la[row].mean(), lb[row] - lb[row].mean()
    torch.testing.assert_close(cb, ca * math.sqrt(8), rtol=1e-4, atol=1e-5)


def test_record_attention_collects_only_inside_the_block():
    model = small_model(use_flash_attn=True)
    idx = torch.randint(0, 13, (1, 5), generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        with model.record_attention() as maps:
            model(idx)
        model(idx)
    assert [m.shape for m in maps] == [(1, 2, 5, 5)] * 2
    assert all(block.attn.recorder is None for block in model.blocks)
