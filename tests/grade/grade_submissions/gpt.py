"""A correct solution of the course template's assignment2/part2/gpt.py, written for hw2's grader
tests: the same classes, attributes and signatures the students fill in (the bug variants of
tests/grade/test_grade.py are small textual patches of this file)."""

import math
from argparse import Namespace

import torch
import torch.nn as nn
from torch.nn import functional as F


class BERTGELU(nn.Module):
    """GELU, tanh approximation (as in BERT and OpenAI's GPT)."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class RMSNorm(nn.Module):
    """x / rms(x), times a learned scale."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class CausalSelfAttention(nn.Module):
    """Multi-head masked self-attention with RoPE on queries and keys."""

    def __init__(self, config, debug=False):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.attn_pdrop)
        self.resid_dropout = nn.Dropout(config.resid_pdrop)
        size = config.block_size
        self.register_buffer("mask", torch.tril(torch.ones(size, size)).view(1, 1, size, size))
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.use_flash_attn = config.use_flash_attn
        dim = config.n_embd // config.n_head
        self.inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
        self.config = config
        self.debug = debug

    def apply_rotary_emb(self, xq, xk, T):
        """Turn the pairs (2i, 2i+1) of position m by the angle m * inv_freq[i]."""
        angles = torch.outer(torch.arange(T, dtype=torch.float32), self.inv_freq)
        cos, sin = angles.cos(), angles.sin()

        def turn(x):
            even, odd = x[..., 0::2], x[..., 1::2]
            return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)

        return turn(xq), turn(xk)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if not self.config.abs_emb:
            q, k = self.apply_rotary_emb(q, k, T)
        att = None
        if self.use_flash_attn:
            p = self.attn_dropout.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            att = att.masked_fill(self.mask[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = self.attn_dropout(att) @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        y = self.resid_dropout(self.c_proj(y))
        return y if not self.debug else {"att_probs": att, "q": q, "k": k, "v": v}


class TransformerDecoderBlock(nn.Module):
    """Pre-norm block: attention and MLP, each added to the residual stream."""

    def __init__(self, config):
        super().__init__()
        self.layer_norm_1 = RMSNorm(config.n_embd)
        self.self_attention = CausalSelfAttention(config)
        self.layer_norm_2 = RMSNorm(config.n_embd)
        self.mlpf = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            BERTGELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.resid_pdrop),
        )

    def forward(self, x):
        x = x + self.self_attention(self.layer_norm_1(x))
        out = x + self.mlpf(self.layer_norm_2(x))
        return out


class GPT(nn.Module):
    """GPT language model."""

    @staticmethod
    def get_default_config():
        C = Namespace()
        C.model_type = "gpt"
        C.n_layer = None
        C.n_head = None
        C.n_embd = None
        C.vocab_size = None
        C.block_size = None
        C.embd_pdrop = 0.1
        C.resid_pdrop = 0.1
        C.attn_pdrop = 0.1
        C.use_flash_attn = False
        return C

    def __init__(self, config):
        super().__init__()
        assert config.vocab_size is not None
        assert config.block_size is not None
        self.config = config
        self.block_size = config.block_size
        type_given = config.model_type is not None
        params_given = all([config.n_layer is not None, config.n_head is not None, config.n_embd is not None])
        assert type_given ^ params_given
        if type_given:
            presets = {
                "gpt-mini": dict(n_layer=6, n_head=6, n_embd=384),
                "gpt-nano": dict(n_layer=3, n_head=3, n_embd=48),
            }
            config.__dict__.update(presets[config.model_type])
        self.transformer = nn.ModuleDict(
            dict(
                w_token_emb=nn.Embedding(config.vocab_size, config.n_embd),
                w_pos_emb=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.embd_pdrop),
                h=nn.ModuleList([TransformerDecoderBlock(config) for _ in range(config.n_layer)]),
                ln_f=RMSNorm(config.n_embd),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        print(f"number of parameters: {sum(p.numel() for p in self.transformer.parameters()) / 1e6:.2f}M")

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        b, t = idx.size()
        assert t <= self.block_size, (
            f"Cannot forward sequence of length {t}, block size is only {self.block_size}"
        )
        x = self.transformer.w_token_emb(idx)
        if self.config.abs_emb:
            x = x + self.transformer.w_pos_emb(torch.arange(t, device=idx.device))
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    @torch.inference_mode()
    def generate(self, idx, max_new_tokens, temperature=1.0, do_sample=False, top_k=None, top_p=0.6):
        assert not (top_k and top_p), "You can only use one of top_k or top_p sampling"
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.block_size else idx[:, -self.block_size :]
            logits = self(idx_cond)[:, -1, :] / temperature
            if not do_sample:
                idx_next = logits.argmax(dim=-1, keepdim=True)
            else:
                if top_k is not None:
                    kth = torch.topk(logits, top_k, dim=-1).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                if top_p is not None:
                    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
                    cum = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
                    drop = cum > top_p
                    drop[:, 1:] = drop[:, :-1].clone()
                    drop[:, 0] = False
                    logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
                idx_next = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx
