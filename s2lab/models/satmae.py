"""SatMAE's group-channel masked autoencoder (Cong et al., NeurIPS 2022), the baseline S2MAE argues with.

Bands are split into fixed groups (for the 10 Sentinel-2 bands: (B02, B03, B04, B08), (B05, B06, B07, B8A),
(B11, B12)); each group is cut into 2D patches with a projection of its own, and a group embedding says which group
a token belongs to. Masking is ``consistent`` (a location removed in every group) or ``independent``.

Deviations from SatMAE's code, for a controlled comparison with the lab's S2MAE: the positional and group
embeddings follow ``config.pos_embed`` (the shipped model's are learnable, initialised from sine-cosine; SatMAE fixes
both as sine-cosine), and the input is scaled as ``config.scaling`` says (the same as the S2MAE it is compared with).
"""

from __future__ import annotations

from dataclasses import dataclass

from s2lab.models.config import MAEConfig
from s2lab.models.mae import MaskedAutoencoder
from s2lab.sensors import satmae_group_indices
from s2lab.tokenize import GroupTokenizer


@dataclass
class SatMAEConfig(MAEConfig):
    """``MAEConfig`` plus the band groups."""

    band_groups: tuple[tuple[int, ...], ...] = satmae_group_indices()  # band indices per group, every band once


class SatMAE(MaskedAutoencoder):
    """SatMAE group-channel MAE. ``SatMAE(SatMAEConfig(...))`` or ``SatMAE(**fields)``."""

    kind = "satmae"

    def __init__(self, config: SatMAEConfig | None = None, **fields):
        super().__init__()
        config = config or SatMAEConfig(**fields)
        config.band_groups = tuple(tuple(g) for g in config.band_groups)  # JSON gives lists
        tokenizer = GroupTokenizer(patch_size=config.patch_size, groups=config.band_groups, in_chans=config.in_chans)
        self._build(config, tokenizer, per_group=True)
