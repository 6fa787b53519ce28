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
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from s2lab.blocks import Block, init_weights
from s2lab.scaling import SCALINGS, default_band_statistics, scale, unscale
from s2lab.masking import Mask, draw_mask
from s2lab.pos_embed import SpatialSpectralEmbedding
from s2lab.tokenize import CubeTokenizer, GroupTokenizer, TokenEmbed

TARGETS = ("unit", "patch")
LOSSES = ("scaled", "reflectance", "balanced")  # where the masked MSE is taken (see reflectance_weight)


@dataclass
class MAEConfig:
    """Size and choices of a masked autoencoder. The defaults are the lab's small S2MAE."""

    img_size: int = 64  # H = W of the training tiles in pixels; other multiples of patch_size work too
    in_chans: int = 10  # C, bands (the default 10: B02 B03 B04 B05 B06 B07 B08 B8A B11 B12)
    patch_size: int = 8  # p, a token covers p x p pixels
    embed_dim: int = 128  # D, encoder width
    depth: int = 4  # encoder blocks
    num_heads: int = 4  # encoder attention heads
    decoder_embed_dim: int = 96  # decoder width
    decoder_depth: int = 2  # decoder blocks (S2MAE found 4 best at full scale)
    decoder_num_heads: int = 4  # decoder attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / D
    pos_embed: str = "learnable"  # learnable | sincos | wavelength (see s2lab.pos_embed)
    target: str = "unit"  # unit | patch (see the module docstring)
    wavelengths: tuple[float, ...] | None = None  # (C,) band centres in nm; needed by pos_embed="wavelength"
    scaling: str = "dataset"  # dataset | window | none (s2lab.scaling)
    band_mean: tuple[float, ...] | None = None  # (C,) reflectance mean per band of the pretraining data (dataset)
    band_std: tuple[float, ...] | None = None  # (C,) reflectance standard deviation per band, the same data
    loss: str = "scaled"  # scaled: MSE in the target space (the papers) | reflectance: each band of each window
    #                       weighted by its squared scaling range, so the loss is the reflectance MSE the lab scores |
    #                       balanced: the same weights divided by each band's batch mean, so bands weigh alike

    def __post_init__(self) -> None:
        """Without statistics of its own, a dataset-scaled model of the lab's 10 bands takes the embedded scene's."""
        if self.scaling == "dataset" and self.band_mean is None and self.band_std is None:
            found = default_band_statistics(self.in_chans)
            if found is not None:
                self.band_mean, self.band_std = found

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        if self.target == "raw":
            raise ValueError("target 'raw' is now scaling='none' with target='unit': the input is then on the "
                             "target's scale (reflectance), so the model can see what it must predict")
        if self.target not in TARGETS:
            raise ValueError(f"unknown reconstruction target {self.target!r}; expected one of {', '.join(TARGETS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")
        if self.loss != "scaled" and self.target != "unit":
            raise ValueError(f"loss={self.loss!r} undoes the scaling of a 'unit' target; the 'patch' target is "
                             "standardised per token, so take loss='scaled' with it")
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; expected one of {', '.join(SCALINGS)}")
        if self.scaling == "dataset":
            for name in ("band_mean", "band_std"):
                value = getattr(self, name)
                if value is None or len(value) != self.in_chans:
                    raise ValueError(
                        f"scaling='dataset' needs {name} with one value per band ({self.in_chans}), got "
                        f"{None if value is None else len(value)}; s2lab pretrain computes them from its data "
                        "(s2lab.scaling.band_statistics), or choose scaling='window'")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.wavelengths is not None and len(self.wavelengths) != self.in_chans:
            raise ValueError(f"{len(self.wavelengths)} wavelengths given for {self.in_chans} bands")
        if self.pos_embed == "wavelength" and self.wavelengths is None:
            raise ValueError("pos_embed='wavelength' needs the bands' wavelengths (nm) in the config")


class MAEOutput(NamedTuple):
    """loss (), pred (B, L, P) and target (B, L, P) in target space, mask (B, L) with 1 = removed."""

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor


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


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor,
               value_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the removed tokens' valid values.

    Args:
        pred, target: (B, L, P). mask: (B, L), 1 = removed. valid: (L, P) bool, False on padding.
        value_weight: (B, L, P) weight of each value's squared error, or None for 1 (see ``reflectance_weight``).
    """
    weight = valid.to(pred.dtype)  # (L, P)
    error = (pred - target) ** 2 if value_weight is None else (pred - target) ** 2 * value_weight  # (B, L, P)
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
        """tokens01 (B, L, P) -> latent (B, K, D) of the kept tokens, and the mask (``mask``, or one drawn)."""
        B, L, _ = tokens01.shape
        x = self.embed(tokens01) + self.pos(hw, self.group_wavelengths())  # (B, L, D)
        if mask is None:
            mask = self.draw(B, hw, mask_ratio, strategy, generator, x.device)
        x = torch.gather(x, 1, mask.ids_keep[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)
        return self.run_encoder(x), mask

    def run_encoder(self, x: torch.Tensor) -> torch.Tensor:
        """Embedded tokens (B, K, D) through the encoder blocks and the final norm."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

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

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask_ratio: float = 0.75,
        strategy: str = "random",
        generator: torch.Generator | None = None,
    ) -> MAEOutput:
        """Mask, encode, decode, score.

        Args:
            x: (B, C, H, W) reflectance.
            mask_ratio: share of tokens removed, in [0, 1).
            strategy: a key of ``s2lab.masking.STRATEGIES``.
            generator: a CPU torch.Generator for the mask; a fresh unseeded one when None.
        """
        return self._forward(x, mask_ratio, strategy, generator)[0]

    def _forward(self, x, mask_ratio, strategy, generator, mask: Mask | None = None
                 ) -> tuple[MAEOutput, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward``, the scaled tokens (B, L, P) and the lo, hi (B, C, 1, 1) of the scaling, so that
        ``reconstruct`` can undo it; ``mask`` given, it is used instead of one drawn.

        The mask is drawn first, so that a scaling by each window's own range sees the visible values only.
        """
        hw = self.check_input(x)
        generator = generator if generator is not None else torch.Generator()
        if mask is None:
            mask = self.draw(x.shape[0], hw, mask_ratio, strategy, generator, x.device)
        elif mask.mask.shape != (x.shape[0], self.tokenizer.G * hw[0] * hw[1]):
            raise ValueError(f"the mask covers {tuple(mask.mask.shape)} tokens; this batch has "
                             f"{(x.shape[0], self.tokenizer.G * hw[0] * hw[1])} (B, L)")
        else:
            mask = Mask(*(t.to(x.device) for t in mask))
        x01, lo, hi = self.scale(x, removed=self.mask_image(mask.mask, *x.shape[-2:]).bool())
        tokens01 = self.tokenizer.patchify(x01)  # (B, L, P)
        latent, mask = self.forward_encoder(tokens01, hw, mask_ratio, strategy, generator, mask=mask)
        pred = self.forward_decoder(latent, mask.ids_restore, hw)
        target = self.target_tokens(tokens01, hw)
        value_weight = None
        if self.config.loss != "scaled":  # the error the lab scores: in reflectance, not in the scaled space
            weight = reflectance_weight(lo, hi, x.shape, balanced=self.config.loss == "balanced")
            value_weight = self.tokenizer.patchify(weight)  # (B, L, P)
        loss = masked_mse(pred.float(), target, mask.mask, self.valid(hw, x.device), value_weight)
        return MAEOutput(loss, pred, target, mask.mask), tokens01, lo, hi

    # -- using a trained model ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens through the encoder, none removed: (B, C, H, W) -> (B, L, D)."""
        hw = self.check_input(x)
        tokens01 = self.tokenizer.patchify(self.scale(x)[0])
        return self.run_encoder(self.embed(tokens01) + self.pos(hw, self.group_wavelengths()))

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
        with each token's true mean and standard deviation (as MAE's figures do), so its pictures borrow a little
        information from the removed tokens.
        """
        hw = self.check_input(x)
        out, tokens01, lo, hi = self._forward(x, mask_ratio, strategy, generator, mask)
        pred = out.pred.float()
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
