"""A GPT-2-style decoder for character-level language modelling (homework Q2.2-Q2.9), read
like nanoGPT's ``model.py``: token embedding -> dropout -> ``n_layer`` pre-norm blocks ->
RMSNorm -> a bias-free head; the other linear layers carry biases, as in minGPT (the course
code). Positions: RoPE on queries and keys, a learned absolute embedding, or only the causal
mask. ``generate`` keeps a key/value cache per layer. OpenAI's GPT-2 is the same decoder with
``GPT2_STYLE`` (learned positions, LayerNorm, tied head): ``hw2cli.gpt.pretrained`` loads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw2cli.common.errors import Hw2Error
from hw2cli.common.options import OptionError, check_value
from hw2cli.gpt.options import DROPOUT, POS_EMBS, PRESETS

NORMS = ("rmsnorm", "layernorm")
LEGACY_DROPOUTS = ("embd_pdrop", "resid_pdrop", "attn_pdrop")  # config.json before one dropout
GPT2_STYLE = dict(pos_emb="learned", norm="layernorm", tie_head=True)  # the config of OpenAI's GPT-2


@dataclass
class GPTConfig:
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int
    block_size: int
    dropout: float = 0.1  # of the embeddings, the attention weights and each residual branch
    use_flash_attn: bool = False  # F.scaled_dot_product_attention instead of the explicit softmax
    pos_emb: str = "rope"  # "rope", "learned" (absolute, added to the token embedding) or "none"
    attn_scale: bool = True  # False drops the 1/sqrt(head size) factor of the attention scores
    norm: str = "rmsnorm"  # or "layernorm" (GPT-2's, with bias)
    tie_head: bool = False  # True: the head's weight is the token embedding (GPT-2)
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        if self.pos_emb not in POS_EMBS:
            raise Hw2Error(f"unknown pos_emb {self.pos_emb!r}; use one of {', '.join(POS_EMBS)}")
        if self.norm not in NORMS:
            raise Hw2Error(f"unknown norm {self.norm!r}; use one of {', '.join(NORMS)}")
        for name in ("n_layer", "n_head", "n_embd", "vocab_size", "block_size"):
            if getattr(self, name) < 1:
                raise Hw2Error(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise Hw2Error(
                f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}; pick sizes that divide"
            )
        if self.pos_emb == "rope" and (self.n_embd // self.n_head) % 2:
            raise Hw2Error(
                f"RoPE rotates pairs of dimensions, but head size {self.n_embd // self.n_head} is odd; "
                "use an even head size or learned positions"
            )
        check_value("dropout", DROPOUT, self.dropout)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> GPTConfig:
        """The course preset ``name`` (layers/heads/width) with ``overrides`` for the rest
        (``vocab_size`` and ``block_size`` are required)."""
        if name not in PRESETS:
            raise Hw2Error(f"unknown model type {name!r}; use one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        """A config saved with ``asdict``; older runs' ``abs_emb: true/false`` reads as
        ``pos_emb="learned"/"rope"``, their three equal ``*_pdrop`` as ``dropout``."""
        d = dict(d)
        pdrops = {d.pop(k) for k in LEGACY_DROPOUTS if k in d}
        if len(pdrops) > 1:
            raise Hw2Error(f"{', '.join(LEGACY_DROPOUTS)} differ; hw2 has one dropout, give them one value")
        if pdrops:
            d.setdefault("dropout", pdrops.pop())
        if "abs_emb" in d:
            abs_emb = d.pop("abs_emb")
            d.setdefault("pos_emb", "learned" if abs_emb else "rope")
        return cls(**d)


# ----------------------------------------------------------------------------- RoPE


def rope_tables(head_dim: int, n_pos: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (n_pos, head_dim/2): position m turns pair i by m * base^(-2i/head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) of x by its position's angle (``cos``/``sin``:
    the ``rope_tables`` rows of x's positions, broadcast against x's pairs), in fp32. Eager, as
    complex products (one kernel each way instead of four products and a stack); compiled
    (Inductor has no complex kernels), written out and fused."""
    if torch.compiler.is_compiling():
        x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
        rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return rotated.flatten(-2).type_as(x)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2).type_as(x)


# ----------------------------------------------------------------------------- KV cache


class KVCache:
    """One layer's keys and values of the positions a generation has seen, in buffers of
    block_size positions allocated on first use; ``length`` positions are filled, which is
    also the position of the next token fed through this layer."""

    def __init__(self, block_size: int):
        self.block_size = block_size
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hd) after the filled positions; return all keys and values so far."""
        if self.k is None:
            B, nh, _, hd = k.shape
            self.k = k.new_zeros(B, nh, self.block_size, hd)
            self.v = v.new_zeros(B, nh, self.block_size, hd)
        end = self.length + k.size(2)
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


# ----------------------------------------------------------------------------- the model


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused QKV projection."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.use_flash_attn = config.use_flash_attn
        self.attn_pdrop = config.dropout
        self.scale = 1.0 / math.sqrt(config.n_embd // config.n_head) if config.attn_scale else 1.0
        self.recorder: list[torch.Tensor] | None = None  # set by GPT.record_attention
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        mask = torch.ones(config.block_size, config.block_size, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """x (B, T, C) at positions past..past+T-1 (past = cache.length, else 0) -> (B, T, C).

        While ``recorder`` is a list, the explicit softmax runs and its weights before
        dropout, (B, nh, T, past+T), are appended to it.
        """
        B, T, C = x.shape
        qkv = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head)
        qk, v = qkv[:, :, :2], qkv[:, :, 2].transpose(1, 2)
        past = cache.length if cache is not None else 0
        if rope is not None:  # queries and keys turned in one call
            cos, sin = rope[0][past : past + T, None, None], rope[1][past : past + T, None, None]
            qk = apply_rope(qk, cos, sin)
        q, k = qk.transpose(1, 3).unbind(2)  # (B, nh, T, hd) each
        if cache is not None:
            k, v = cache.update(k, v)
        # Row i of the causal mask is query position past+i; it sees keys 0..past+i.
        mask = self.mask[past : past + T, : past + T]

        if self.use_flash_attn and self.recorder is None:
            dropout_p = self.attn_pdrop if self.training else 0.0
            if past == 0:
                y = F.scaled_dot_product_attention(
                    q, k, v, dropout_p=dropout_p, is_causal=True, scale=self.scale
                )
            else:  # queries after cached keys: offset mask rows; a single new query sees every key
                y = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=None if T == 1 else mask, dropout_p=dropout_p, scale=self.scale
                )
        else:  # scale * q k^T, plus 0 where the mask lets through and -inf elsewhere, in one call
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
            att = torch.baddbmm(bias, q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2), alpha=self.scale)
            probs = F.softmax(att.view(B, self.n_head, T, -1), dim=-1)
            if self.recorder is not None:
                self.recorder.append(probs)
            y = self.attn_dropout(probs) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


_GELU_C1 = 2 * math.sqrt(2 / math.pi)  # 2u = x (C1 + C3 x^2)
_GELU_C3 = _GELU_C1 * 0.044715


class _SigmoidGELU(torch.autograd.Function):
    """GELU's tanh approximation as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), since
    0.5 (1 + tanh(u)) = sigmoid(2u): on a CPU torch's vectorised tanh costs about three times
    its sigmoid, and ``F.gelu(approximate="tanh")`` took 12% of a gpt-micro training step; this
    form takes about half of its time, forward and backward. Equal to it within 1e-6."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        s = (x * x).mul_(_GELU_C3).add_(_GELU_C1).mul_(x).sigmoid_()  # sigmoid(2u)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, s = ctx.saved_tensors
        d = (x * x).mul_(3 * _GELU_C3).add_(_GELU_C1).mul_(x)  # x * d(2u)/dx
        return d.sub_(d * s).add_(1).mul_(s).mul_(grad)  # s (1 + x (1 - s) d(2u)/dx) * grad


class TanhGELU(nn.Module):
    """GELU with the tanh approximation (minGPT's and GPT-2's). In fp32 on a CPU, eager, the
    sigmoid form above; elsewhere ``F.gelu``, one fused kernel on a GPU and under torch.compile."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not torch.compiler.is_compiling():
            return _SigmoidGELU.apply(x)
        return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """Linear(C -> 4C), tanh-approximated GELU, Linear(4C -> C), dropout."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = TanhGELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


def make_norm(config: GPTConfig) -> nn.Module:
    """RMSNorm (eps 1e-6), or GPT-2's LayerNorm with bias (eps 1e-5)."""
    if config.norm == "layernorm":
        return nn.LayerNorm(config.n_embd, eps=1e-5)
    return nn.RMSNorm(config.n_embd, eps=1e-6)


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope=None, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """The decoder: ``forward(idx)`` maps token ids (B, T) to next-token logits (B, T, vocab)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.block_size, config.n_embd) if config.pos_emb == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_head:
            self.lm_head.weight = self.tok_emb.weight
        if config.pos_emb == "rope":
            cos, sin = rope_tables(config.n_embd // config.n_head, config.block_size, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 * n_layer).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def step_bytes(self, batch_size: int, block_size: int, scores: bool = True, half: bool = False) -> int:
        """At least the memory one training step of ``batch_size`` windows of ``block_size``
        tokens takes: the weights, their gradients and AdamW's two moments (fp32), and 1.5x
        (the least measured ratio) what the backward pass keeps: per layer about 16 floats per
        token and channel, two B x heads x T x T score tensors (``scores`` False: a GPU's flash
        attention keeps none; on a CPU it falls back to them under dropout), and the logits
        with their softmax and gradient; ``half``: those in 16 bits (autocast). Measured peaks
        of fp32 CPU steps are 1.1-1.3x this."""
        c = self.config
        tokens = batch_size * block_size
        kept = c.n_layer * (16 * tokens * c.n_embd + scores * 2 * batch_size * c.n_head * block_size**2)
        kept += 3 * tokens * c.vocab_size
        return 4 * 4 * self.num_params() + int(1.5 * kept * (2 if half else 4))

    def num_params(self) -> int:
        """Number of parameters, all of them (embeddings and head included; a tied head once)."""
        return sum(p.numel() for p in self.parameters())

    def new_caches(self) -> list[KVCache]:
        """Empty key/value caches, one per layer, for ``forward(idx, caches)``."""
        return [KVCache(self.config.block_size) for _ in self.blocks]

    @contextmanager
    def record_attention(self) -> Iterator[list[torch.Tensor]]:
        """``with model.record_attention() as maps: model(idx)`` fills ``maps`` with one
        (B, n_head, T, T) tensor of attention weights per layer and forward call; the explicit
        softmax runs inside the block even when ``use_flash_attn`` is set."""
        maps: list[torch.Tensor] = []
        for block in self.blocks:
            block.attn.recorder = maps
        try:
            yield maps
        finally:
            for block in self.blocks:
                block.attn.recorder = None

    def forward(
        self, idx: torch.Tensor, caches: list[KVCache] | None = None, targets: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token ids (B, T) -> logits (B, T, vocab); with ``targets`` (B, T), the mean
        cross-entropy of the logits against them instead, in fp32 (as nanoGPT's model does:
        compiled, the loss is part of the model's graph).

        With ``caches`` (``new_caches()``), idx holds the positions after the ``length``
        cached ones, and each layer extends its own cache.
        """
        B, T = idx.shape
        past = caches[0].length if caches is not None else 0
        if past + T > self.config.block_size:
            raise Hw2Error(
                f"sequence of {past + T} tokens is longer than block_size {self.config.block_size}; "
                "crop the context"
            )
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + T, device=idx.device))
        rope = (self.rope_cos, self.rope_sin) if self.config.pos_emb == "rope" else None
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, rope, caches[layer] if caches is not None else None)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())

    def configure_optimizers(
        self,
        weight_decay: float,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.95),
        device_type: str = "cpu",
    ) -> torch.optim.AdamW:
        """AdamW with weight decay on the weights of linear layers only (not on biases,
        norm scales or embeddings); the fused kernel (one pass over all tensors instead of
        about ten ops per tensor) on the CPU and CUDA, PyTorch's for-each loop elsewhere."""
        decay = [m.weight for m in self.modules() if isinstance(m, nn.Linear)]
        decay_ids = {id(p) for p in decay}
        no_decay = [p for p in self.parameters() if id(p) not in decay_ids]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        fused = True if device_type in ("cpu", "cuda") else None
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        do_sample: bool = True,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Extend idx (B, T) by ``max_new_tokens`` tokens, one at a time: greedy, or a draw
        after temperature, top-k and top-p, in eval mode. The context is cropped to the last
        block_size tokens, as in the course code. With ``use_cache`` a step feeds only the
        newest token; once the cropped window shifts it is recomputed in full, so the tokens
        equal the uncached computation's."""
        if max_new_tokens < 0:
            raise Hw2Error(f"max_new_tokens must be at least 0, got {max_new_tokens}")
        if idx.dim() != 2 or idx.size(1) < 1:
            raise Hw2Error("the prompt must hold at least one token (idx of shape (B, T), T >= 1)")
        if do_sample:
            check_sampling(temperature, top_k, top_p)

        block_size = self.config.block_size
        was_training = self.training
        self.eval()
        caches = None
        try:
            for _ in range(max_new_tokens):
                if caches is not None and caches[0].length < block_size:
                    logits = self(idx[:, -1:], caches)
                else:  # first step, or the window has shifted: fresh caches from the cropped context
                    caches = self.new_caches() if use_cache else None
                    logits = self(idx[:, -block_size:], caches)
                next_token = _pick_next(logits[:, -1, :], temperature, do_sample, top_k, top_p, generator)
                idx = torch.cat((idx, next_token), dim=1)
        finally:
            self.train(was_training)
        return idx


# ----------------------------------------------------------------------------- decoding


def check_sampling(temperature: float | None, top_k: int | None, top_p: float | None) -> None:
    """The one check of sampling settings (``generate`` and ``hw2 gpt generate`` both call it);
    ``None`` means the setting is not used."""
    if temperature is not None and not temperature > 0:
        raise OptionError(
            f"{{temperature}} must be positive, got {temperature}; use greedy decoding for temperature 0"
        )
    if top_k is not None and top_k < 1:
        raise OptionError(f"{{top_k}} must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise OptionError(f"{{top_p}} must lie in (0, 1], got {top_p}")


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (ties with the k-th kept too); the rest -> -inf."""
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep, per row, the smallest set of most likely tokens whose probability
    sums to at least p (always at least one token); the rest -> -inf."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    sorted_probs = F.softmax(sorted_logits.float(), dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    drop_sorted = mass_before >= p  # the set already reached p without this token
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _pick_next(logits, temperature, do_sample, top_k, top_p, generator) -> torch.Tensor:
    """Next token ids (B, 1) from the last position's logits (B, vocab)."""
    if not do_sample:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
