"""The masked autoencoder that S2MAE and SatMAE share: tokens in, masked tokens predicted.

The forward pass reads as a recipe (after facebookresearch/mae):

    x (B, C, H, W) reflectance
      -> scale each band (s2lab.scaling: fixed dataset statistics)   xs
      -> tokens (B, L, P) -> embed (B, L, D) + position              (tokenizer and embedding: the subclass's choice)
      -> keep K tokens (masking strategy)                            forward_encoder -> latent (B, K, D)
      -> mask tokens back in, light decoder                          forward_decoder -> pred (B, L, P)
      -> mean squared error on the removed tokens                    forward_loss

Subclasses choose the tokenizer (3D cubes for S2MAE, band groups for SatMAE) and whether each group has its own
projection. The input scaling is ``config.scaling`` (``s2lab.scaling``): fixed per-band statistics of the pretraining
data by default, as SpectralGPT and SatMAE do, per-window min-max (the lab's earlier choice), or none. The
reconstruction target is the scaled image (``unit``; the S2MAE slides' "Normalization [0, 1]") or each token
standardised by its own mean and standard deviation (``patch``, MAE's norm_pix_loss). The slides' "without norm"
row (input and target unscaled) is ``scaling="none"``. Reconstructions come back in reflectance.

The loss is the MSE in the target space (``loss="scaled"``, as the papers train), or that error carried back to
reflectance (``loss="reflectance"``): each band of each window weighted by the square of its scaling range. Under the
per-window scaling the first spends as much effort on a flat water window, stretched to [0, 1], as on a city; the
second optimises the reflectance MSE that the lab scores.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from s2lab.blocks import Block, init_weights
from s2lab.scaling import scale, unscale
from s2lab.masking import Mask, draw_mask
from s2lab.models.config import MAEConfig
from s2lab.pos_embed import SpatialSpectralEmbedding
from s2lab.tokenize import CubeTokenizer, GroupTokenizer, TokenEmbed

class MAEOutput(NamedTuple):
    """loss (), pred (B, L, P) and target (B, L, P) in target space, mask (B, L) with 1 = removed; and what undoing
    the scaling needs: the scaled tokens tokens01 (B, L, P) and the scaling's lo, hi (B, C, 1, 1)."""

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    tokens01: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor


class Reconstruction(NamedTuple):
    """Images (B, C, H, W) in reflectance: the model's prediction everywhere, the visible pixels kept with the
    prediction pasted into the removed tokens, and the per-pixel mask (1 = removed)."""

    prediction: torch.Tensor
    pasted: torch.Tensor
    mask: torch.Tensor


def standardize_tokens(tokens: torch.Tensor, valid: torch.Tensor, eps: float = 1e-6):
    """Each token to zero mean, unit variance over its valid values. tokens (B, L, P), valid (L, P).

    Returns:
        (standardised tokens, mean (B, L, 1), std (B, L, 1)).
    """
    weight = valid.to(tokens.dtype)  # (L, P)
    count = weight.sum(-1, keepdim=True)  # (L, 1)
    mean = (tokens * weight).sum(-1, keepdim=True) / count  # (B, L, 1)
    var = ((tokens - mean) ** 2 * weight).sum(-1, keepdim=True) / count
    std = (var + eps).sqrt()
    return (tokens - mean) / std * weight, mean, std


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None,
               value_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the removed tokens' valid values.

    Args:
        pred, target: (B, L, P). mask: (B, L), 1 = removed. valid: (L, P) bool, False on padding; None when every
            value is real (no padding), which skips the weighting.
        value_weight: (B, L, P) weight of each value's squared error, or None for 1 (see ``reflectance_weight``).
    """
    error = F.mse_loss(pred, target, reduction="none")  # (B, L, P): (pred - target)**2 in one fused pass
    if value_weight is not None:
        error = error * value_weight
    if valid is None:
        per_token = error.mean(-1)  # (B, L)
    else:
        weight = valid.to(pred.dtype)  # (L, P)
        per_token = (error * weight).sum(-1) / weight.sum(-1)  # (B, L)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def reflectance_weight(lo: torch.Tensor, hi: torch.Tensor, shape: torch.Size, balanced: bool = False) -> torch.Tensor:
    """(B, C, H, W) weight image that turns a squared error in the scaled space into one in reflectance: each band of
    each image weighted by its squared range ``(hi - lo)**2`` (lo, hi (B, C, 1, 1) of ``s2lab.scaling``), divided by
    the batch's mean so that the loss keeps its usual size; ``balanced``: divided by each band's own batch mean
    instead, so that a window's contrast counts but the bright near-infrared bands do not outweigh the visible ones.
    Constant, not differentiated."""
    weight = ((hi - lo) ** 2).detach().float()  # (B, C, 1, 1)
    mean = weight.mean(dim=0, keepdim=True) if balanced else weight.mean()
    return (weight / mean.clamp_min(1e-12)).expand(shape)


class MaskedAutoencoder(nn.Module):
    """Encoder on the visible tokens only, light decoder predicting the removed ones.

    Subclasses set ``self.tokenizer`` and ``self.per_group`` before calling ``_build``.
    """

    kind = "mae"
    config: MAEConfig

    def _build(self, config: MAEConfig, tokenizer: CubeTokenizer | GroupTokenizer, per_group: bool) -> None:
        config.validate()
        self.config, self.tokenizer = config, tokenizer
        D, Dd, G = config.embed_dim, config.decoder_embed_dim, tokenizer.G
        grid = (config.img_size // config.patch_size,) * 2
        self.embed = TokenEmbed(tokens_dim=tokenizer.P, dim=D, groups=G if per_group else None)
        self.pos = SpatialSpectralEmbedding(kind=config.pos_embed, dim=D, grid=grid, groups=G)
        self.blocks = nn.ModuleList(
            Block(dim=D, heads=config.num_heads, mlp_ratio=config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(D)
        self.decoder_embed = nn.Linear(D, Dd)
        self.mask_token = nn.Parameter(torch.zeros(Dd))
        self.decoder_pos = SpatialSpectralEmbedding(kind=config.pos_embed, dim=Dd, grid=grid, groups=G)
        self.decoder_blocks = nn.ModuleList(
            Block(dim=Dd, heads=config.decoder_num_heads, mlp_ratio=config.mlp_ratio)
            for _ in range(config.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(Dd)
        self.decoder_pred = TokenEmbed(tokens_dim=Dd, dim=tokenizer.P, groups=G if per_group else None)
        init_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)

    # -- shapes and scaling ------------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> tuple[int, int]:
        """Validate (B, C, H, W) against the model and return the token grid (h, w)."""
        c, p = self.config, self.config.patch_size
        if x.ndim != 4 or x.shape[1] != c.in_chans:
            raise ValueError(
                f"{type(self).__name__} takes (B, {c.in_chans}, H, W) images, got shape {tuple(x.shape)}"
            )
        if x.shape[2] % p or x.shape[3] % p:
            raise ValueError(f"image of {x.shape[2]} x {x.shape[3]} pixels is not a multiple of the patch size {p}")
        return x.shape[2] // p, x.shape[3] // p

    def scale(self, x: torch.Tensor, *, removed: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) reflectance -> the scaled input xs, and lo, hi (B, C, 1, 1) for ``s2lab.scaling.unscale``.

        ``removed`` (B, C, H, W) bool marks the values the model will not see: a ``"window"`` scaling takes its
        range from the others only, so that nothing of a removed value reaches the model or its reconstruction.
        """
        c = self.config
        return scale(x, c.scaling, mean=c.band_mean, std=c.band_std, removed=removed)

    def group_wavelengths(self) -> torch.Tensor | None:
        """(G,) mean wavelength in nm of the bands each group holds, when the config knows the wavelengths."""
        if self.config.wavelengths is None:
            return None
        w = torch.tensor(self.config.wavelengths, dtype=torch.float64)
        return torch.stack([w[list(b)].mean() for b in self.tokenizer.bands_of_group])

    def valid(self, hw: tuple[int, int], device: torch.device) -> torch.Tensor:
        """(L, P) bool: which token values are real bands (not padding)."""
        return self.tokenizer.valid.to(device).repeat_interleave(hw[0] * hw[1], dim=0)

    def target_tokens(self, tokens01: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """The reconstruction target (B, L, P) for the configured ``target``, from the scaled tokens (B, L, P)."""
        if self.config.target == "unit":
            return tokens01
        return standardize_tokens(tokens01, self.valid(hw, tokens01.device))[0]

    # -- the recipe --------------------------------------------------------------------------------------------
    def draw(self, B: int, hw: tuple[int, int], mask_ratio: float, strategy: str, generator, device) -> Mask:
        """A mask over the B x L tokens of an (h, w) token grid, drawn from ``generator``, on ``device``."""
        mask = draw_mask(strategy, B, self.tokenizer.G, hw[0] * hw[1], mask_ratio, generator=generator)
        return Mask(*(t.to(device) for t in mask))

    def mask_image(self, mask: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """The token mask (B, L), 1 = removed, as a per-value mask of the image: (B, C, H, W)."""
        removed = mask[..., None].expand(-1, -1, self.tokenizer.P)  # (B, L, P)
        return self.tokenizer.unpatchify(removed.contiguous(), H, W)

    def forward_encoder(
        self, tokens01: torch.Tensor, hw: tuple[int, int], mask_ratio: float, strategy: str, generator,
        *, mask: Mask | None = None,
    ) -> tuple[torch.Tensor, Mask]:
        """tokens01 (B, L, P) -> latent (B, K, D) of the kept tokens, and the mask (``mask``, or one drawn).

        With one shared projection (S2MAE) only the K kept tokens are embedded: the same numbers as embedding all L
        and keeping K, for a quarter of the work at a mask ratio of 0.75."""
        B, L, P = tokens01.shape
        if mask is None:
            mask = self.draw(B, hw, mask_ratio, strategy, generator, tokens01.device)
        pos = self.pos(hw, self.group_wavelengths())  # (L, D)
        if self.embed.groups is None:  # one projection for every token: embed the kept tokens only
            kept = torch.gather(tokens01, 1, mask.ids_keep[..., None].expand(-1, -1, P))  # (B, K, P)
            x = self.embed(kept) + pos[mask.ids_keep]  # (B, K, D)
        else:  # a projection per group, applied group by group to all tokens, then the kept ones taken
            x = self.embed(tokens01) + pos  # (B, L, D)
            x = torch.gather(x, 1, mask.ids_keep[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """latent (B, K, D) -> pred (B, L, P) for every token."""
        x = self.decoder_embed(latent)  # (B, K, Dd)
        B, K, Dd = x.shape
        L = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(B, L - K, Dd)], dim=1)  # (B, L, Dd) shuffled order
        x = torch.gather(x, 1, ids_restore[..., None].expand(-1, -1, Dd))  # (B, L, Dd) token order
        x = x + self.decoder_pos(hw, self.group_wavelengths())
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))  # (B, L, P)

    def forward_loss(self, x: torch.Tensor, tokens01: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor,
                     lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The masked MSE of pred (B, L, P) against the target made from tokens01 (B, L, P), over the removed tokens
        (mask (B, L), 1 = removed) and real bands; returns (loss, target).

        ``loss="scaled"`` scores in the target space (the papers); otherwise the error is carried back to
        reflectance through the scaling's lo, hi (B, C, 1, 1) of x (B, C, H, W).
        """
        hw = (x.shape[2] // self.config.patch_size, x.shape[3] // self.config.patch_size)
        target = self.target_tokens(tokens01, hw)
        value_weight = None
        if self.config.loss != "scaled":  # the error the lab scores: in reflectance, not in the scaled space
            weight = reflectance_weight(lo, hi, x.shape, balanced=self.config.loss == "balanced")
            value_weight = self.tokenizer.patchify(weight)  # (B, L, P)
        valid = None if bool(self.tokenizer.valid.all()) else self.valid(hw, x.device)  # None: no padding
        return masked_mse(pred.float(), target, mask, valid, value_weight), target

    def _check_mask(self, mask: Mask, x: torch.Tensor, hw: tuple[int, int]) -> Mask:
        if mask.mask.shape != (x.shape[0], self.tokenizer.G * hw[0] * hw[1]):
            raise ValueError(f"the mask covers {tuple(mask.mask.shape)} tokens; this batch has "
                             f"{(x.shape[0], self.tokenizer.G * hw[0] * hw[1])} (B, L)")
        return Mask(*(t.to(x.device) for t in mask))

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask_ratio: float = 0.75,
        strategy: str = "random",
        generator: torch.Generator | None = None,
        mask: Mask | None = None,
    ) -> MAEOutput:
        """Mask, encode, decode, score: the recipe of the module docstring.

        The mask is drawn first, so that a scaling by each window's own range sees the visible values only.

        Args:
            x: (B, C, H, W) reflectance.
            mask_ratio: share of tokens removed, in [0, 1).
            strategy: a key of ``s2lab.masking.STRATEGIES``.
            generator: a CPU torch.Generator for the mask; a fresh unseeded one when None.
            mask: the removed tokens chosen by hand (``s2lab.masking.mask_from_removed``) instead of drawn.
        """
        hw = self.check_input(x)
        generator = generator if generator is not None else torch.Generator()
        if mask is None:
            mask = self.draw(x.shape[0], hw, mask_ratio, strategy, generator, x.device)
        else:
            mask = self._check_mask(mask, x, hw)
        removed = self.mask_image(mask.mask, *x.shape[-2:]).bool() if self.config.scaling == "window" else None
        x01, lo, hi = self.scale(x, removed=removed)  # only a window's range depends on what is removed
        tokens01 = self.tokenizer.patchify(x01)  # (B, L, P)
        latent, mask = self.forward_encoder(tokens01, hw, mask_ratio, strategy, generator, mask=mask)
        pred = self.forward_decoder(latent, mask.ids_restore, hw)
        loss, target = self.forward_loss(x, tokens01, pred, mask.mask, lo, hi)
        return MAEOutput(loss, pred, target, mask.mask, tokens01, lo, hi)

    # -- using a trained model ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens through the encoder, none removed: (B, C, H, W) -> (B, L, D)."""
        hw = self.check_input(x)
        tokens01 = self.tokenizer.patchify(self.scale(x)[0])  # (B, L, P)
        B, L, _ = tokens01.shape
        order = torch.arange(L, device=x.device).expand(B, L)
        every = Mask(order, order, torch.zeros(B, L, device=x.device))  # every token kept, in token order
        return self.forward_encoder(tokens01, hw, 0.0, "random", None, mask=every)[0]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features averaged over spectral groups, as a map: (B, C, H, W) -> (B, D, H/p, W/p)."""
        h, w = self.check_input(x)
        feats = self.encode(x)  # (B, G * h * w, D)
        feats = feats.view(x.shape[0], self.tokenizer.G, h, w, -1).mean(1)  # (B, h, w, D)
        return feats.permute(0, 3, 1, 2)

    @torch.no_grad()
    def reconstruct(
        self,
        x: torch.Tensor,
        *,
        mask_ratio: float = 0.75,
        strategy: str = "random",
        generator: torch.Generator | None = None,
        mask: Mask | None = None,
    ) -> Reconstruction:
        """Mask ``x`` (B, C, H, W), predict the removed tokens, and return images in reflectance.

        ``mask`` (for example ``s2lab.masking.mask_from_removed``) chooses the removed tokens instead of a drawn one.

        The input scaling is undone (``s2lab.scaling.unscale``); the ``patch`` target is undone
        with each token's true mean and standard deviation (as some third-party MAE visualisers do; MAE's own demo
        draws with a model trained on plain pixels), so its pictures borrow a little information from the removed
        tokens.
        """
        hw = self.check_input(x)
        out = self(x, mask_ratio=mask_ratio, strategy=strategy, generator=generator, mask=mask)
        tokens01, lo, hi, pred = out.tokens01, out.lo, out.hi, out.pred.float()
        H, W = x.shape[-2:]
        mask_image = self.mask_image(out.mask, H, W)  # (B, C, H, W)
        if self.config.target == "patch":
            _, mean, std = standardize_tokens(tokens01, self.valid(hw, x.device))
            pred = pred * std + mean
        prediction = unscale(self.tokenizer.unpatchify(pred, H, W), lo, hi)
        pasted = torch.where(mask_image.bool(), prediction, x)
        return Reconstruction(prediction, pasted, mask_image)

    def config_dict(self) -> dict:
        """The config as plain JSON data (tuples as lists), as a checkpoint's JSON stores it."""
        return json.loads(json.dumps(asdict(self.config)))
