"""Transformer blocks in plain torch: attention, MLP, the pre-norm block, and cross-attention for fusion.

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` (a fused kernel on CPU and GPU);
``fused=False`` runs the written-out formula softmax(q k^T / sqrt(d)) v instead, for teaching and for the test
that both agree. On the CPU in bf16 (training under ``s2lab.device.training_autocast``) the fused kernel is slower
than its float32 path, so there attention is the same formula with the scale applied to q (B, h, L, d) rather than
to the scores (B, h, L, L): two bf16 matrix products on AMX tiles, the softmax between them.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F


def attention_formula(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v written out. q: (B, h, Lq, d), k, v: (B, h, Lk, d) -> (B, h, Lq, d)."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, h, Lq, Lk)
    return scores.softmax(dim=-1) @ v


def attention_bf16_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax((q / sqrt(d)) k^T) v in q's dtype (bf16 under autocast; torch's CPU softmax accumulates bf16 in
    float32). Shapes as ``attention_formula``."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (B, h, Lq, Lk)
    return scores.softmax(dim=-1) @ v


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fused: bool) -> torch.Tensor:
    if not fused:
        return attention_formula(q, k, v)
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        return attention_bf16_cpu(q, k, v)
    return F.scaled_dot_product_attention(q, k, v)


class Attention(nn.Module):
    """Multi-head attention of queries ``x`` over keys/values ``context`` (self-attention when None).

    Args:
        dim: D, model width.
        heads: number of heads; D must be divisible by it.
        fused: use scaled_dot_product_attention (True) or the written-out formula (False).
    """

    def __init__(self, *, dim: int, heads: int, fused: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.fused = heads, fused
        self.dim = dim
        self.qkv = nn.Linear(dim, 3 * dim)  # one matmul for self-attention; split for cross-attention
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, Lq, D), context: (B, Lk, D) or None -> (B, Lq, D)."""
        if context is None:
            q, k, v = rearrange(self.qkv(x), "b l (three h d) -> three b h l d", three=3, h=self.heads)
        else:
            w, b = self.qkv.weight, self.qkv.bias
            q = rearrange(F.linear(x, w[: self.dim], b[: self.dim]), "b l (h d) -> b h l d", h=self.heads)
            k, v = rearrange(
                F.linear(context, w[self.dim :], b[self.dim :]), "b l (two h d) -> two b h l d", two=2, h=self.heads
            )  # (B, h, Lk, D/h) each
        out = _attention(q, k, v, self.fused)  # (B, h, Lq, D/h)
        return self.proj(rearrange(out, "b h l d -> b l (h d)"))  # (B, Lq, D)


class MLP(nn.Module):
    """Two linear layers with GELU: D -> hidden -> D."""

    def __init__(self, *, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, D)."""
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)). Optional cross-attention between.

    Args:
        dim: D. heads: attention heads. mlp_ratio: MLP hidden width as a multiple of D.
        cross: add a cross-attention step to a ``context`` sequence (feature-level fusion).
        fused: see ``Attention``.
    """

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False, fused: bool = True):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim=dim, heads=heads, fused=fused)
        self.cross = CrossAttention(dim=dim, heads=heads, fused=fused) if cross else None
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim=dim, hidden=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, L, D), context: (B, Lc, D) when the block has cross-attention -> (B, L, D)."""
        x = x + self.attn(self.norm1(x))
        if self.cross is not None:
            if context is None:
                raise ValueError("this block fuses by cross-attention and needs a context sequence")
            x = self.cross(x, context)
        return x + self.mlp(self.norm2(x))


class CrossAttention(nn.Module):
    """Residual cross-attention: x + attn(norm(x), norm(context)). x: (B, L, D), context: (B, Lc, D) -> (B, L, D)."""

    def __init__(self, *, dim: int, heads: int, fused: bool = True):
        super().__init__()
        self.norm_x, self.norm_context = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads, fused=fused)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm_x(x), self.norm_context(context))


def init_weights(module: nn.Module) -> None:
    """MAE's initialisation: xavier-uniform Linear weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
