"""The checks of `hw2 grade gpt`, run inside a submission's own process (sandbox.py).

Each check is a function registered under its name in options.CHECKS (which holds its points,
the checks it builds on and what it tests); it passes by returning, fails by raising
:class:`Fail` with one line a student can act on, and errors on any other exception (the
student's traceback is kept). Everything is torch math on tiny models with fixed seeds, so the
verdicts are the same on every run. Checks build on the student's own pieces where they can
(the block is checked against its own norms, attention and MLP), so one bug fails one check.
"""

from __future__ import annotations

import importlib
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw2cli.gpt import model as ref
from hw2cli.grade.options import CHECKS

TINY = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=10, block_size=16)
B, T, C, NH, HS = 2, 12, 32, 2, 16
ATOL = 1e-5
#: The next-token distribution the sampling checks feed generate, by rank; token ORDER[r] has
#: rank r, so a filter that assumes sorted logits shows.
PROBS = (0.30, 0.22, 0.16, 0.12, 0.08, 0.05, 0.035, 0.02, 0.01, 0.005)
ORDER = (6, 2, 9, 0, 4, 7, 1, 8, 3, 5)
DRAWS = 4000  # samples per distribution: a frequency's standard error is below 0.008
FREQ_TOL = 0.03
RARE = 0.002  # drawn 8 times in DRAWS on average: missing it has odds below 1 in 2000
#: train-loss: steps, batch size, context, learning rate; mean losses of each WINDOW steps must
#: stay within BAND nats of hw2's (seeds alone move them by under 0.03, measured).
STEPS, BATCH, CONTEXT, LR, WINDOW, BAND = 200, 16, 32, 3e-3, 50, 0.1


class Fail(Exception):
    """A failed check: what was expected and what came out, in one line."""


@dataclass
class Submission:
    """The submission under test, as the checks see it."""

    violations: list[str]  # filled by the sandbox's audit hook
    module: ModuleType | None = None


FUNCTIONS: dict[str, Callable[[Submission], str | None]] = {}


def check(name: str) -> Callable:
    def register(fn: Callable[[Submission], str | None]) -> Callable[[Submission], str | None]:
        assert name in CHECKS, name
        FUNCTIONS[name] = fn
        return fn

    return register


def run_checks(names: list[str], violations: list[str], send: Callable[..., None]) -> None:
    """Run ``names`` in order, sending ("start", name) before and ("done", name, status, reason,
    traceback) after each; a check whose prerequisites did not pass is skipped."""
    sub, passed = Submission(violations), set()
    for name in names:
        missing = [n for n in CHECKS[name].needs if n not in passed]
        if missing:
            send("done", name, "skipped", f"not graded: needs {', '.join(missing)}", "")
            continue
        send("start", name)
        status, trace = "pass", ""
        try:
            reason = FUNCTIONS[name](sub) or ""  # a passing check may say what it measured
        except Fail as exc:
            status, reason = "fail", str(exc)
        except BaseException as exc:  # noqa: BLE001 -- the student's exception is this check's result
            message = " ".join(str(exc).split())[:300]
            status, reason = "error", f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            trace = "".join(traceback.format_exception(exc))[-4000:]
        if status == "pass":
            passed.add(name)
        send("done", name, status, reason, trace)


# ----------------------------------------------------------------------------- helpers


def _config(sub: Submission, **changes):
    """The student's own config object (GPT.get_default_config()) for a tiny model, dropout off."""
    cfg = sub.module.GPT.get_default_config()
    values = dict(TINY, model_type=None, embd_pdrop=0.0, resid_pdrop=0.0, attn_pdrop=0.0)
    for key, value in {**values, "use_flash_attn": False, "abs_emb": False, **changes}.items():
        setattr(cfg, key, value)
    return cfg


def _build(cls, *args, **kwargs) -> nn.Module:
    """A module built under a fixed seed, its weights spread out (norm scales around 1), in eval
    mode: then every wiring mistake shows in the outputs."""
    torch.manual_seed(0)
    module = cls(*args, **kwargs)
    with torch.no_grad():
        for name, p in module.named_parameters():
            is_norm = (p.dim() == 1 and "norm" in name) or name.endswith("ln_f.weight")
            p.copy_(1 + 0.3 * torch.randn_like(p) if is_norm else 0.3 * torch.randn_like(p))
    return module.eval()


def _randn(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _ids() -> torch.Tensor:
    """A fixed batch of token ids, (B, T)."""
    return torch.randint(0, TINY["vocab_size"], (B, T), generator=torch.Generator().manual_seed(0))


def _attn(sub: Submission, debug: bool = False, **changes) -> nn.Module:
    return _build(sub.module.CausalSelfAttention, _config(sub, **changes), debug=debug)


def _shape(what: str, tensor, want: tuple) -> None:
    got = tuple(getattr(tensor, "shape", ()))
    if got != want:
        raise Fail(f"{what} has shape {got}, expected {want}")


def _gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def _part(module: nn.Module, name: str, where: str) -> nn.Module:
    if not hasattr(module, name):
        raise Fail(f"{where} has no attribute {name}; keep the template's names")
    return getattr(module, name)


def _linears(mlpf: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    lin = [m for m in mlpf.modules() if isinstance(m, nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in lin]
    if shapes != [(4 * C, C), (C, 4 * C)]:
        raise Fail(f"mlpf's linear layers have weights {shapes}, expected [{(4 * C, C)}, {(C, 4 * C)}]")
    return lin[0], lin[1]


def _causality(attn: nn.Module, path: str, fix: str) -> None:
    x = _randn(1, T, C)
    with torch.no_grad():
        y = attn(x)
        for t in (3, 8):
            x2 = x.clone()
            x2[:, t:] = _randn(1, T - t, C, seed=t)
            gap = _gap(attn(x2)[:, :t], y[:, :t])
            if gap > ATOL:
                raise Fail(
                    f"{path}: changing tokens {t}.. changed the outputs at positions 0..{t - 1} "
                    f"(by up to {gap:.3g}); {fix}"
                )


# ----------------------------------------------------------------------------- the checks


@check("imports")
def _imports(sub: Submission) -> None:
    sub.module = importlib.import_module("gpt")
    names = ("RMSNorm", "CausalSelfAttention", "TransformerDecoderBlock", "GPT")
    missing = [n for n in names if not isinstance(getattr(sub.module, n, None), type)]
    if missing:
        raise Fail(f"gpt.py defines no class {', '.join(missing)}; keep the template's class names")
    cfg = sub.module.GPT.get_default_config()
    absent = [k for k in ("n_layer", "n_head", "n_embd", "vocab_size", "block_size") if not hasattr(cfg, k)]
    if absent:
        raise Fail(f"GPT.get_default_config() has no {', '.join(absent)}; keep the template's config")


@check("shapes")
def _shapes(sub: Submission) -> None:
    x = _randn(B, T, C)
    with torch.no_grad():
        for flash in (False, True):
            _shape(
                f"CausalSelfAttention (use_flash_attn={flash})",
                _attn(sub, use_flash_attn=flash)(x),
                (B, T, C),
            )
        out = _attn(sub, debug=True)(x)
        if not isinstance(out, dict) or not {"att_probs", "q", "k", "v"} <= out.keys():
            raise Fail("CausalSelfAttention(config, debug=True) must return a dict with att_probs, q, k, v")
        _shape("debug att_probs", out["att_probs"], (B, NH, T, T))
        for key in "qkv":
            _shape(f"debug {key}", out[key], (B, NH, T, HS))
        rotated = _attn(sub).apply_rotary_emb(out["q"], out["k"], T)
        _shape("apply_rotary_emb's queries", rotated[0], (B, NH, T, HS))
        _shape("apply_rotary_emb's keys", rotated[1], (B, NH, T, HS))
        _shape(
            "TransformerDecoderBlock", _build(sub.module.TransformerDecoderBlock, _config(sub))(x), (B, T, C)
        )
        idx = _ids()
        _shape("GPT's logits", _build(sub.module.GPT, _config(sub))(idx), (B, T, TINY["vocab_size"]))


@check("rmsnorm")
def _rmsnorm(sub: Submission) -> None:
    norm = _build(sub.module.RMSNorm, C)
    if sum(p.numel() for p in norm.parameters()) != C:
        raise Fail(f"RMSNorm({C}) should hold one scale per feature ({C} parameters)")
    weight = next(norm.parameters()).detach()
    x = 3 * _randn(B, T, C)
    with torch.no_grad():
        gap = _gap(norm(x), x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight)
    if gap > 1e-4:
        raise Fail(f"RMSNorm differs from x / sqrt(mean(x^2) + eps) * weight by up to {gap:.3g}")


@check("causal-mask")
def _causal_mask(sub: Submission) -> None:
    _causality(_attn(sub), "explicit path (use_flash_attn=False)", "mask the scores above the diagonal")
    with torch.no_grad():
        probs = _attn(sub, debug=True)(_randn(1, T, C))["att_probs"]
    above = probs.masked_select(torch.ones(T, T, dtype=torch.bool).triu(1)).abs().max().item()
    if above > ATOL:
        raise Fail(f"att_probs above the diagonal reach {above:.3g}, expected 0 (query t sees keys 0..t)")
    rows = _gap(probs.sum(-1), torch.ones(()))
    if rows > 1e-4:
        raise Fail(f"rows of att_probs sum to 1 +- {rows:.3g}; apply the softmax after masking, over keys")


@check("flash-causal")
def _flash_causal(sub: Submission) -> None:
    _causality(_attn(sub, use_flash_attn=True), "flash path (use_flash_attn=True)", "pass is_causal=True")


@check("flash-matches-explicit")
def _flash_matches(sub: Submission) -> None:
    explicit, flash = _attn(sub), _attn(sub, use_flash_attn=True)
    flash.load_state_dict(explicit.state_dict())
    x = _randn(B, T, C)
    with torch.no_grad():
        gap = _gap(flash(x), explicit(x))
    if gap > 1e-4:
        raise Fail(
            f"flash and explicit outputs differ by up to {gap:.3g} with the same weights; use one scale"
        )


@check("attention-reference")
def _attention_reference(sub: Submission) -> None:
    mine = _attn(sub, abs_emb=True)
    cfg = ref.GPTConfig(**TINY, dropout=0.0, pos_emb="learned")
    hw2 = ref.CausalSelfAttention(cfg).eval()
    hw2.c_attn.load_state_dict(_part(mine, "c_attn", "CausalSelfAttention").state_dict())
    hw2.c_proj.load_state_dict(_part(mine, "c_proj", "CausalSelfAttention").state_dict())
    x = _randn(B, T, C)
    with torch.no_grad():
        gap = _gap(mine(x), hw2(x))
    if gap > 1e-4:
        raise Fail(
            f"attention differs from the reference with the same c_attn/c_proj by up to {gap:.3g}: "
            "split q, k, v then heads, scale scores by 1/sqrt(head size), softmax over keys"
        )


@check("rope-norms")
def _rope_norms(sub: Submission) -> None:
    xq, xk = _randn(1, NH, T, HS), _randn(1, NH, T, HS, seed=2)
    with torch.no_grad():
        q, k = _attn(sub).apply_rotary_emb(xq, xk, T)
    gap = max(_gap(q.norm(dim=-1), xq.norm(dim=-1)), _gap(k.norm(dim=-1), xk.norm(dim=-1)))
    if gap > 1e-4:
        raise Fail(f"apply_rotary_emb changes vector norms by up to {gap:.3g}; RoPE only rotates")


@check("rope-relative")
def _rope_relative(sub: Submission) -> None:
    q = _randn(HS).expand(1, NH, T, HS).clone()  # the same query and key at every position
    k = _randn(HS, seed=2).expand(1, NH, T, HS).clone()
    with torch.no_grad():
        q, k = _attn(sub).apply_rotary_emb(q, k, T)
    scores = q @ k.transpose(-2, -1)  # (1, NH, T, T): q_m . k_n
    gap = _gap(scores[..., 1:, 1:], scores[..., :-1, :-1])
    if gap > 1e-4:
        raise Fail(
            f"q_m . k_n changes by up to {gap:.3g} when m and n both move by one: rotate queries and keys "
            "of position m by the same angles m * theta_i"
        )


@check("rope-angles")
def _rope_angles(sub: Submission) -> None:
    basis = torch.eye(HS).view(HS, 1, 1, HS).expand(HS, 1, T, HS).clone()  # e_j at every position
    with torch.no_grad():
        turned, _ = _attn(sub).apply_rotary_emb(basis, basis.clone(), T)
    # Component j of e_j turned by m * theta is cos(m * theta), whichever pairing and direction.
    seen = turned[torch.arange(HS), 0, :, torch.arange(HS)]  # (HS, T)
    thetas = 10000.0 ** (-torch.arange(0, HS, 2, dtype=torch.float64) / HS)
    want = torch.cos(torch.arange(T, dtype=torch.float64)[None, :] * thetas[:, None])  # (HS/2, T)
    gaps = (seen.double()[:, None, :] - want[None]).abs().amax(-1)  # (HS, HS/2)
    best = gaps.argmin(-1)
    if gaps.min(-1).values.max() > 1e-4 or torch.bincount(best, minlength=HS // 2).tolist() != [2] * (
        HS // 2
    ):
        j = int(gaps.min(-1).values.argmax())
        angle = math.acos(max(-1.0, min(1.0, seen[j, 1].item())))
        raise Fail(
            f"dimension {j} turns by {angle:.4g} rad from position 0 to 1 (cos {seen[j, 0].item():.3g} at 0); "
            f"expected m * 10000^(-2i/{HS}) = m * {[float(f'{x:.3g}') for x in thetas]}, each on one pair"
        )


@check("abs-emb")
def _abs_emb(sub: Submission) -> None:
    x = _randn(1, T, C)
    order = torch.cat(
        [torch.randperm(T - 1, generator=torch.Generator().manual_seed(3)), torch.tensor([T - 1])]
    )
    with torch.no_grad():
        for abs_emb in (True, False):
            attn = _attn(sub, abs_emb=abs_emb)
            gap = _gap(attn(x)[:, -1], attn(x[:, order])[:, -1])
            if abs_emb and gap > ATOL:
                raise Fail(
                    f"with abs_emb=True the last output depends on the order of the others ({gap:.3g})"
                )
            if not abs_emb and gap < 1e-3:
                raise Fail("with abs_emb=False the output ignores token order: forward never applies RoPE")


@check("block")
def _block(sub: Submission) -> None:
    block = _build(sub.module.TransformerDecoderBlock, _config(sub))
    where = "TransformerDecoderBlock"
    ln1, attn, ln2, mlpf = (
        _part(block, n, where) for n in ("layer_norm_1", "self_attention", "layer_norm_2", "mlpf")
    )
    fc, proj = _linears(mlpf)
    x = _randn(B, T, C)
    with torch.no_grad():
        z = ln2(x)
        mlp_gap = min(_gap(mlpf(z), proj(F.gelu(fc(z), approximate=a))) for a in ("tanh", "none"))
        if mlp_gap > ATOL:
            raise Fail(f"mlpf differs from Linear, GELU, Linear by up to {mlp_gap:.3g}")
        h = x + attn(ln1(x))
        variants = {
            "": h + mlpf(ln2(h)),
            "it has no residual around the attention": attn(ln1(x)) + mlpf(ln2(attn(ln1(x)))),
            "it has no residual around the MLP": mlpf(ln2(h)),
            "it is post-norm": ln2(ln1(x + attn(x)) + mlpf(ln1(x + attn(x)))),
        }
        out = block(x)
    gaps = {what: _gap(out, want) for what, want in variants.items()}
    if gaps[""] > 1e-4:
        like = next((what for what, gap in gaps.items() if what and gap < 1e-4), "")
        raise Fail(
            "block(x) is not h = x + attn(ln1(x)), then h + mlpf(ln2(h))"
            + (f": {like}" if like else f" (off by up to {gaps['']:.3g})")
        )


@check("gpt-forward")
def _gpt_forward(sub: Submission) -> None:
    mine = _build(sub.module.GPT, _config(sub, abs_emb=True))
    cfg = ref.GPTConfig(**TINY, dropout=0.0, pos_emb="learned")
    hw2 = ref.GPT(cfg).eval()
    t = _part(mine, "transformer", "GPT")
    weights = {
        "tok_emb.weight": t.w_token_emb.weight,
        "pos_emb.weight": t.w_pos_emb.weight,
        "ln_f.weight": t.ln_f.weight,
        "lm_head.weight": mine.lm_head.weight,
    }
    for i, blk in enumerate(t.h):
        fc, proj = _linears(blk.mlpf)
        parts = {"ln_1": blk.layer_norm_1, "attn.c_attn": blk.self_attention.c_attn}
        parts |= {"attn.c_proj": blk.self_attention.c_proj, "ln_2": blk.layer_norm_2}
        parts |= {"mlp.c_fc": fc, "mlp.c_proj": proj}
        for name, part in parts.items():
            weights |= {f"blocks.{i}.{name}.{k}": v for k, v in part.state_dict().items()}
    hw2.load_state_dict(weights)
    idx = _ids()
    with torch.no_grad():
        gap = _gap(mine(idx), hw2(idx))
    if gap > 1e-3:
        raise Fail(
            f"logits differ from hw2's GPT with the same weights by up to {gap:.3g}: token + position "
            "embeddings, dropout, the blocks in order, ln_f, then lm_head"
        )


@check("generate-greedy")
def _generate_greedy(sub: Submission) -> None:
    model = _build(sub.module.GPT, _config(sub))
    prompt = _ids()
    new = 10  # the context outgrows block_size 16 after 4 tokens
    out = model.generate(prompt.clone(), new, do_sample=False, top_k=None, top_p=None)
    _shape("generate's output", out, (B, T + new))
    want = prompt
    with torch.no_grad():
        for _ in range(new):
            nxt = model(want[:, -TINY["block_size"] :])[:, -1].argmax(-1, keepdim=True)
            want = torch.cat([want, nxt], dim=1)
    if not torch.equal(out, want):
        at = int((out != want).any(0).nonzero()[0])
        hint = (
            "crop the context to the last block_size tokens" if at > TINY["block_size"] else "take the argmax"
        )
        raise Fail(f"greedy token {at} differs from an argmax loop over forward (prompt {T} tokens); {hint}")


def _draws(sub: Submission, **kwargs) -> torch.Tensor:
    """Frequencies of DRAWS one-token samples from generate, with forward returning the logits of
    PROBS (token ORDER[r] has rank r) whatever the input."""
    model = _build(sub.module.GPT, _config(sub))
    probs = torch.zeros(len(PROBS))
    probs[list(ORDER)] = torch.tensor(PROBS)
    model.forward = lambda idx, *a, **k: probs.log().expand(idx.size(0), idx.size(1), len(PROBS))
    torch.manual_seed(0)
    out = model.generate(torch.zeros(DRAWS, 1, dtype=torch.long), 1, do_sample=True, **kwargs)
    return torch.bincount(out[:, -1], minlength=len(PROBS))[list(ORDER)] / DRAWS  # by rank


def _expect(what: str, freq: torch.Tensor, *choices: torch.Tensor) -> None:
    """freq (by rank) must match one of the distributions ``choices``: no token outside it, every
    token of probability RARE or more drawn, and frequencies within FREQ_TOL."""
    drawn = freq > 0
    for want in choices:
        if (drawn <= (want > 0)).all() and (drawn >= (want >= RARE)).all() and _gap(freq, want) < FREQ_TOL:
            return
    ranks = lambda p: [r + 1 for r in (p > 0).nonzero().flatten().tolist()]  # noqa: E731
    shown = " or ".join(str(ranks(w)) for w in choices)
    raise Fail(
        f"{what} drew the tokens ranked {ranks(freq)} by probability (frequencies "
        f"{[round(f, 3) for f in freq.tolist()]}), expected ranks {shown}, renormalized"
    )


def _kept(n: int, power: float = 1.0) -> torch.Tensor:
    p = torch.tensor(PROBS) ** power
    p[n:] = 0
    return p / p.sum()


@check("generate-top-k")
def _generate_top_k(sub: Submission) -> None:
    for k in (1, 3):
        _expect(f"top_k={k}", _draws(sub, top_k=k, top_p=None), _kept(k))


@check("generate-top-p")
def _generate_top_p(sub: Submission) -> None:
    # Cumulative mass by rank: 0.30, 0.52, 0.68. Both readings of "mass up to p" are accepted:
    # keep while the mass before a token is below p (3 tokens), or while it stays <= p (2).
    _expect("top_p=0.6", _draws(sub, top_k=None, top_p=0.6), _kept(3), _kept(2))


@check("generate-temperature")
def _generate_temperature(sub: Submission) -> None:
    for temp in (0.5, 2.0):
        freq = _draws(sub, temperature=temp, top_k=None, top_p=None)
        _expect(f"temperature={temp}", freq, _kept(len(PROBS), 1 / temp))


@check("sandbox")
def _sandbox(sub: Submission) -> None:
    if sub.violations:
        unique = list(dict.fromkeys(sub.violations))
        raise Fail(
            "blocked: " + "; ".join(unique[:3]) + (f" (+{len(unique) - 3} more)" if len(unique) > 3 else "")
        )


def _curve(model: nn.Module, data: torch.Tensor) -> list[float]:
    """Mean training loss of each WINDOW steps of AdamW on the same batches for every model."""
    from hw2cli.gpt.data import get_batch

    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    batches, losses = torch.Generator().manual_seed(0), []
    model.train()
    for _ in range(STEPS):
        x, y = get_batch(data, CONTEXT, BATCH, batches)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses).view(-1, WINDOW).mean(1).tolist()


@check("train-loss")
def _train_loss(sub: Submission) -> str:
    from hw2cli.common.corpus import builtin_corpus
    from hw2cli.gpt.tokens import CharTokenizer

    text = builtin_corpus()
    data = torch.tensor(CharTokenizer.from_text(text).encode(text))
    size = dict(TINY, vocab_size=int(data.max()) + 1, block_size=CONTEXT)
    torch.manual_seed(0)
    mine = _curve(sub.module.GPT(_config(sub, **size)), data)
    torch.manual_seed(0)
    hw2 = _curve(ref.GPT(ref.GPTConfig(**size, dropout=0.0)), data)
    shown = f"losses per {WINDOW} steps {[round(x, 2) for x in mine]}, hw2's {[round(x, 2) for x in hw2]}"
    if max(abs(a - b) for a, b in zip(mine, hw2, strict=True)) > BAND:
        raise Fail(f"{shown}: more than {BAND} apart; check the initialization and that every weight trains")
    return shown
