"""MAE on timm 0.3.2's written-out attention: facebookresearch/mae ``models_mae.py`` rewritten here, for timing only.

This is the "plain implementation" the training-throughput benchmark (``s2lab bench``'s ``train`` and ``gpu``
parts) compares S2MAE against: the project's own rewrite of the recipe, not the facebookresearch code itself. It
follows ``models_mae.MaskedAutoencoderViT`` line by line, with the timm 0.3.2 ``Block`` it imports inlined:

- ``Attention``: one ``qkv`` Linear, reshape and permute to (3, B, h, L, d), then the explicit formula
  ``attn = (q @ k.transpose(-2, -1)) * scale`` -> ``softmax`` -> ``attn @ v`` (no fused kernel), ``proj`` Linear;
- ``Mlp`` (fc1, GELU, fc2) and the pre-norm ``Block`` with ``LayerNorm(eps=1e-6)``;
- a class token, fixed sin-cos position tables (``requires_grad=False``), ``random_masking`` by ``argsort`` of
  uniform noise, an encoder on the visible tokens (and the class token), a decoder that appends ``mask_token`` s,
  unshuffles them with ``ids_restore`` and predicts every token, and ``forward_loss`` (mean squared error per
  token, averaged over the removed ones).

The one change is the patch embedding: MAE cuts 2D patches with a ``Conv2d``; to compare at the same token count
as S2MAE's 3D cubes, ``PatchEmbed3D`` cuts cubes of ``p x p`` pixels by ``s`` bands with a ``Conv3d`` whose kernel
equals its stride, the 3D form of MAE's ``PatchEmbed``. ``patchify`` gives the same (B, L, s * p * p) layout as
``s2lab.tokenize.patchify`` (group-major tokens, values band, row, column), so both models solve the same task.

Shapes: B batch, C bands, H = W pixels, p patch, s bands per token, G = C / s groups, L = G * (H / p)^2 tokens,
D width. Dropout and drop-path are 0 in MAE's pretraining and are left out.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def sincos_table(dim: int, length: int, cls_token: bool = True) -> np.ndarray:
    """(length [+ 1], dim) fixed sin-cos table over token positions 0 .. length - 1 (a zero row for the class token)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))  # (D/2,)
    out = np.arange(length, dtype=np.float64)[:, None] * omega[None]  # (L, D/2)
    table = np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (L, D)
    if cls_token:
        table = np.concatenate([np.zeros([1, dim]), table], axis=0)
    return table


class PatchEmbed3D(nn.Module):
    """Cube tokens: (B, C, H, W) -> (B, L, D), a Conv3d with kernel = stride = (s, p, p) (MAE's PatchEmbed in 3D)."""

    def __init__(self, img_size: int, patch_size: int, bands_per_token: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.groups = in_chans // bands_per_token
        self.num_patches = self.groups * (img_size // patch_size) ** 2
        kernel = (bands_per_token, patch_size, patch_size)
        self.proj = nn.Conv3d(1, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x.unsqueeze(1))  # (B, D, G, h, w)
        return x.flatten(2).transpose(1, 2)  # (B, L, D)


class Attention(nn.Module):
    """timm 0.3.2 ``Attention``: qkv Linear, explicit softmax(q k^T * scale) v, proj Linear."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, h, N, d) each
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, h, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    """timm 0.3.2 ``Mlp``: fc1, GELU, fc2."""

    def __init__(self, in_features: int, hidden_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """timm 0.3.2 ``Block``: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoderViT(nn.Module):
    """MAE with a ViT backbone (``models_mae.MaskedAutoencoderViT``), on cube tokens."""

    def __init__(
        self,
        *,
        img_size: int = 64,
        patch_size: int = 8,
        bands_per_token: int = 2,
        in_chans: int = 10,
        embed_dim: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        decoder_embed_dim: int = 96,
        decoder_depth: int = 2,
        decoder_num_heads: int = 4,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        if in_chans % bands_per_token:
            raise ValueError(f"{in_chans} bands do not split into cubes of {bands_per_token} bands")
        self.patch_size, self.bands_per_token = patch_size, bands_per_token
        self.patch_embed = PatchEmbed3D(img_size, patch_size, bands_per_token, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True) for _ in range(decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, bands_per_token * patch_size**2, bias=True)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        L = self.patch_embed.num_patches
        self.pos_embed.data.copy_(torch.from_numpy(sincos_table(self.pos_embed.shape[-1], L)).float().unsqueeze(0))
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(sincos_table(self.decoder_pos_embed.shape[-1], L)).float().unsqueeze(0)
        )
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, L, s * p * p), group-major tokens, values band, row, column."""
        p, s = self.patch_size, self.bands_per_token
        N, C, H, W = imgs.shape
        g, h, w = C // s, H // p, W // p
        x = imgs.reshape(N, g, s, h, p, w, p)
        x = torch.einsum("ngshpwq->nghwspq", x)
        return x.reshape(N, g * h * w, s * p * p)

    def random_masking(self, x: torch.Tensor, mask_ratio: float):
        """Per-sample random masking by argsort of uniform noise. x: (B, L, D)."""
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        noise = torch.rand(N, L, device=x.device)  # noise in [0, 1]
        ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L], device=x.device)  # 0 is keep, 1 is remove
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward_encoder(self, x: torch.Tensor, mask_ratio: float):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x, mask, ids_restore

    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # no cls token
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1, :], x_], dim=1)  # append cls token
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]  # remove cls token

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        target = self.patchify(imgs)
        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)  # [N, L], mean loss per patch
        return (loss * mask).sum() / mask.sum()  # mean loss on removed patches

    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask
