"""FUS-MAE (Chan-To-Hing and Veeravalli, IGARSS 2024): Sentinel-1 SAR and Sentinel-2 optical fused inside an MAE.

Both modalities are tokenized on the same spatial grid (S2 in 3D cubes, S1's VV and VH as one 2-band group) and
fused by cross-attention, with no hand-made augmentation:

- **early** fusion, in the patch projection: each modality's visible token embeddings attend to the other's before
  the (shared) encoder;
- **feature-level** fusion, in the decoder: each modality's decoder attends to the other modality's encoded tokens.

Masks across the two modalities are **consistent** (the same spatial positions removed in S1 and in every S2 group)
or **independent** (each modality draws its own). The loss is the masked-token MSE of S2 plus that of S1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from s2lab.blocks import Block, CrossAttention, init_weights
from s2lab.masking import Mask, draw_mask, mask_from_order, num_kept, random_ranks
from s2lab.models.mae import Reconstruction, masked_mse
from s2lab.models.s2mae import S2MAEConfig
from s2lab.pos_embed import SpatialSpectralEmbedding
from s2lab.scaling import SCALE_EPS, scale_unit
from s2lab.tokenize import CubeTokenizer, TokenEmbed

FUSIONS = ("early", "feature", "both")
MODALITY_MASKING = ("consistent", "independent")


@dataclass
class FUSMAEConfig(S2MAEConfig):
    """``S2MAEConfig`` for the optical side, plus the SAR side and how the two meet."""

    s1_chans: int = 2  # Sentinel-1 channels (VV, VH), one token group
    scaling: str = "window"  # each modality's bands by their own window min-max: FUS-MAE's only scaling (SAR in dB)
    fusion: str = "both"  # early | feature | both
    modality_masking: str = "consistent"  # consistent | independent across S1 and S2


class FUSMAEOutput(NamedTuple):
    """loss (), and per modality pred (B, L, P), target (B, L, P) and mask (B, L)."""

    loss: torch.Tensor
    s2_pred: torch.Tensor
    s2_target: torch.Tensor
    s2_mask: torch.Tensor
    s1_pred: torch.Tensor
    s1_target: torch.Tensor
    s1_mask: torch.Tensor


def modality_masks(
    batch: int, s2_groups: int, spatial: int, ratio: float, *, consistent: bool, generator: torch.Generator
) -> tuple[Mask, Mask]:
    """Masks for S2 (G groups x N) and S1 (1 x N): the same spatial positions, or drawn independently."""
    if not consistent:
        return (
            draw_mask("random", batch, s2_groups, spatial, ratio, generator=generator),
            draw_mask("random", batch, 1, spatial, ratio, generator=generator),
        )
    kept_positions = num_kept(spatial, ratio)
    position = random_ranks((batch, 1, spatial), generator)  # (B, 1, N): the same order for both modalities
    s2_order = position.expand(-1, s2_groups, -1).flatten(1)  # (B, G * N), whole tubes only
    s2_order = s2_order + torch.arange(s2_groups).repeat_interleave(spatial) / (2 * s2_groups)  # distinct values
    return mask_from_order(s2_order, kept_positions * s2_groups), mask_from_order(position[:, 0], kept_positions)


class FUSMAE(nn.Module):
    """FUS-MAE on (S2 (B, C, H, W), S1 (B, 2, H, W)) pairs on the same 10 m grid."""

    kind = "fusmae"

    def __init__(self, config: FUSMAEConfig | None = None, **fields):
        super().__init__()
        config = config or FUSMAEConfig(**fields)
        config.validate()
        if config.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {config.fusion!r}; expected one of {', '.join(FUSIONS)}")
        if config.modality_masking not in MODALITY_MASKING:
            raise ValueError(f"unknown modality masking {config.modality_masking!r}; expected one of consistent, independent")
        self.config = config
        p, D, Dd = config.patch_size, config.embed_dim, config.decoder_embed_dim
        grid = (config.img_size // p,) * 2
        self.s2_tokenizer = CubeTokenizer(patch_size=p, bands_per_token=config.bands_per_token, in_chans=config.in_chans)
        self.s1_tokenizer = CubeTokenizer(patch_size=p, bands_per_token=config.s1_chans, in_chans=config.s1_chans)
        G2 = self.s2_tokenizer.G
        if config.scaling != "window":
            raise ValueError(f"FUS-MAE scales each window of each modality by its own band min-max (scaling='window'), "
                             f"got scaling={config.scaling!r}")
        if config.pos_embed == "wavelength":
            raise ValueError("FUS-MAE takes pos_embed 'learnable' or 'sincos'; its Sentinel-1 group has no wavelength")
        pos_kind = config.pos_embed
        self.s2_embed = TokenEmbed(tokens_dim=self.s2_tokenizer.P, dim=D)
        self.s1_embed = TokenEmbed(tokens_dim=self.s1_tokenizer.P, dim=D)
        self.s2_pos = SpatialSpectralEmbedding(kind=pos_kind, dim=D, grid=grid, groups=G2)
        self.s1_pos = SpatialSpectralEmbedding(kind=pos_kind, dim=D, grid=grid, groups=1)
        self.modality = nn.Parameter(torch.zeros(2, D))  # 0 = S2, 1 = S1
        early = config.fusion in ("early", "both")
        self.s2_from_s1 = CrossAttention(dim=D, heads=config.num_heads) if early else None
        self.s1_from_s2 = CrossAttention(dim=D, heads=config.num_heads) if early else None
        self.blocks = nn.ModuleList(
            Block(dim=D, heads=config.num_heads, mlp_ratio=config.mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(D)
        feature = config.fusion in ("feature", "both")
        self.decoder_embed = nn.Linear(D, Dd)
        self.mask_token = nn.Parameter(torch.zeros(2, Dd))
        self.s2_decoder_pos = SpatialSpectralEmbedding(kind=pos_kind, dim=Dd, grid=grid, groups=G2)
        self.s1_decoder_pos = SpatialSpectralEmbedding(kind=pos_kind, dim=Dd, grid=grid, groups=1)

        def decoder() -> nn.ModuleList:
            return nn.ModuleList(
                Block(dim=Dd, heads=config.decoder_num_heads, mlp_ratio=config.mlp_ratio, cross=feature)
                for _ in range(config.decoder_depth)
            )

        self.s2_decoder, self.s1_decoder = decoder(), decoder()
        self.s2_decoder_norm, self.s1_decoder_norm = nn.LayerNorm(Dd), nn.LayerNorm(Dd)
        self.s2_pred = nn.Linear(Dd, self.s2_tokenizer.P)
        self.s1_pred = nn.Linear(Dd, self.s1_tokenizer.P)
        init_weights(self)
        nn.init.normal_(self.modality, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    def _check(self, s2: torch.Tensor, s1: torch.Tensor) -> tuple[int, int]:
        c, p = self.config, self.config.patch_size
        if s2.ndim != 4 or s2.shape[1] != c.in_chans or s1.ndim != 4 or s1.shape[1] != c.s1_chans:
            raise ValueError(
                f"FUS-MAE takes S2 (B, {c.in_chans}, H, W) and S1 (B, {c.s1_chans}, H, W), "
                f"got {tuple(s2.shape)} and {tuple(s1.shape)}"
            )
        if s2.shape[0] != s1.shape[0] or s2.shape[2:] != s1.shape[2:]:
            raise ValueError(f"S2 {tuple(s2.shape)} and S1 {tuple(s1.shape)} must share batch and grid")
        if s2.shape[2] % p or s2.shape[3] % p:
            raise ValueError(f"image of {s2.shape[2]} x {s2.shape[3]} pixels is not a multiple of the patch size {p}")
        return s2.shape[2] // p, s2.shape[3] // p

    def removed_image(self, mask: torch.Tensor, modality: int, like: torch.Tensor) -> torch.Tensor:
        """A modality's token mask (B, L), 1 = removed, as a bool mask of its image ``like`` (B, C, H, W)."""
        tokenizer = self.s2_tokenizer if modality == 2 else self.s1_tokenizer
        removed = mask[..., None].expand(-1, -1, tokenizer.P).contiguous()  # (B, L, P)
        return tokenizer.unpatchify(removed, *like.shape[-2:]).bool()

    @staticmethod
    def _keep(x: torch.Tensor, mask: Mask) -> torch.Tensor:
        return torch.gather(x, 1, mask.ids_keep[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)

    def _decode(self, latent, own_context, mask: Mask, hw, modality: int, blocks, pos, norm, pred) -> torch.Tensor:
        x = self.decoder_embed(latent)  # (B, K, Dd)
        B, K, Dd = x.shape
        L = mask.ids_restore.shape[1]
        x = torch.cat([x, self.mask_token[modality].to(x.dtype).expand(B, L - K, Dd)], dim=1)  # (B, L, Dd)
        x = torch.gather(x, 1, mask.ids_restore[..., None].expand(-1, -1, Dd)) + pos(hw)
        context = self.decoder_embed(own_context)  # (B, K_other, Dd): the other modality's encoded tokens
        for block in blocks:
            x = block(x, context if block.cross is not None else None)
        return pred(norm(x))  # (B, L, P)

    def forward(
        self,
        s2: torch.Tensor,
        s1: torch.Tensor,
        *,
        mask_ratio: float = 0.75,
        generator: torch.Generator | None = None,
    ) -> FUSMAEOutput:
        """Mask both modalities, fuse, reconstruct both.

        Args:
            s2: (B, C, H, W) optical reflectance. s1: (B, 2, H, W) SAR backscatter (dB as shipped).
            mask_ratio: share of tokens removed in each modality, in [0, 1).
            generator: CPU torch.Generator for the masks.
        """
        hw = self._check(s2, s1)
        generator = generator if generator is not None else torch.Generator()
        B, N = s2.shape[0], hw[0] * hw[1]
        m2, m1 = modality_masks(
            B, self.s2_tokenizer.G, N, mask_ratio,
            consistent=self.config.modality_masking == "consistent", generator=generator,
        )
        m2, m1 = (Mask(*(t.to(s2.device) for t in m)) for m in (m2, m1))
        # each window's band range from its visible values only, so that nothing of a removed value leaks in
        s2_scaled = scale_unit(s2, removed=self.removed_image(m2.mask, 2, s2))[0]
        s1_scaled = scale_unit(s1, removed=self.removed_image(m1.mask, 1, s1))[0]
        s2_tokens = self.s2_tokenizer.patchify(s2_scaled)  # (B, L2, P2)
        s1_tokens = self.s1_tokenizer.patchify(s1_scaled)  # (B, N, P1)
        x2 = self._keep(self.s2_embed(s2_tokens) + self.s2_pos(hw) + self.modality[0], m2)  # (B, K2, D)
        x1 = self._keep(self.s1_embed(s1_tokens) + self.s1_pos(hw) + self.modality[1], m1)  # (B, K1, D)
        if self.s2_from_s1 is not None:
            x2, x1 = self.s2_from_s1(x2, x1), self.s1_from_s2(x1, x2)
        for block in self.blocks:
            x2, x1 = block(x2), block(x1)
        x2, x1 = self.norm(x2), self.norm(x1)
        p2 = self._decode(x2, x1, m2, hw, 0, self.s2_decoder, self.s2_decoder_pos, self.s2_decoder_norm, self.s2_pred)
        p1 = self._decode(x1, x2, m1, hw, 1, self.s1_decoder, self.s1_decoder_pos, self.s1_decoder_norm, self.s1_pred)
        v2 = self.s2_tokenizer.valid.to(s2.device).repeat_interleave(N, dim=0)  # (L2, P2)
        v1 = self.s1_tokenizer.valid.to(s2.device).repeat_interleave(N, dim=0)  # (N, P1)
        loss = masked_mse(p2.float(), s2_tokens, m2.mask, v2) + masked_mse(p1.float(), s1_tokens, m1.mask, v1)
        return FUSMAEOutput(loss, p2, s2_tokens, m2.mask, p1, s1_tokens, m1.mask)

    @torch.no_grad()
    def reconstruct(
        self, s2: torch.Tensor, s1: torch.Tensor, *, mask_ratio: float = 0.75, generator: torch.Generator | None = None
    ) -> Reconstruction:
        """Mask both modalities, predict, and return the Sentinel-2 side in reflectance (``Reconstruction``: the
        prediction, the visible values with the prediction pasted into the removed tokens, the mask, each
        (B, C, H, W)). The window scaling is undone with each band's range over its visible values, the one the model
        saw. The masks depend on ``generator`` and the shapes only, never on the values: the same seed removes the
        same tokens whatever S1 holds."""
        out = self(s2, s1, mask_ratio=mask_ratio, generator=generator)
        H, W = s2.shape[-2:]
        removed = self.removed_image(out.s2_mask, 2, s2)  # (B, C, H, W)
        _, lo, hi = scale_unit(s2, removed=removed)
        prediction = self.s2_tokenizer.unpatchify(out.s2_pred.float(), H, W) * (hi - lo).clamp_min(SCALE_EPS) + lo
        return Reconstruction(prediction, torch.where(removed, prediction, s2), removed.to(s2.dtype))


RADAR_CASES = ("own", "another patch's", "constant")


def radar_use(model: FUSMAE, s2: torch.Tensor, s1: torch.Tensor, *, mask_ratio: float = 0.75,
              seeds: Sequence[int] = range(10)) -> dict:
    """Does the model use the radar? Its S2 reconstruction with each window's own S1, with another window's S1 (the
    batch rolled by half its length: with windows of two patches in order, the other patch's), and with S1 constant
    (each window's band means), under the same masks.

    Args:
        model: a trained ``FUSMAE``.
        s2: (B, C, H, W) reflectance windows; s1: (B, 2, H, W) their S1, B >= 2.
        mask_ratio: share of tokens removed in each modality.
        seeds: one mask draw per seed, ``torch.Generator().manual_seed(seed)``, shared by the three cases.

    Returns:
        ``{"mse": {case: [per-seed S2 masked MSE in reflectance]}, "mean": {case: mean}, "minus_own":
        {case: {"mean", "sd"}}}``: the paired difference from the own-radar case over the seeds.
    """
    if s2.shape[0] < 2:
        raise ValueError(f"the radar test swaps S1 between windows; it needs at least 2, got {s2.shape[0]}")
    cases = {"own": s1, "another patch's": s1.roll(s2.shape[0] // 2, dims=0),
             "constant": s1.mean(dim=(-2, -1), keepdim=True).expand_as(s1)}
    mse: dict[str, list[float]] = {case: [] for case in RADAR_CASES}
    model = model.eval()
    for seed in seeds:
        for case, radar in cases.items():
            rec = model.reconstruct(s2, radar, mask_ratio=mask_ratio, generator=torch.Generator().manual_seed(seed))
            mse[case].append(float(((rec.prediction - s2)[rec.mask.bool()] ** 2).mean()))
    diffs = {case: torch.tensor(mse[case]) - torch.tensor(mse["own"]) for case in RADAR_CASES[1:]}
    return {"mse": mse, "mean": {case: sum(v) / len(v) for case, v in mse.items()},
            "minus_own": {case: {"mean": float(d.mean()), "sd": float(d.std()) if len(d) > 1 else 0.0}
                          for case, d in diffs.items()},
            "mask_ratio": mask_ratio, "seeds": list(seeds), "windows": s2.shape[0]}
