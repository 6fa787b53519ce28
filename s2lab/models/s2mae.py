"""S2MAE (Li et al., CVPR 2024): a masked autoencoder on 3D spatial-spectral tokens.

A token is a cube of p x p pixels by s adjacent bands (``s2lab.tokenize.CubeTokenizer``), embedded by one shared
projection (the 3D patch embedding) plus a spatial-spectral position. With ``pos_embed="wavelength"`` the spectral
position is computed from the bands' wavelengths, so the same weights take any band count: ``for_bands``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace

from s2lab.models.config import MAEConfig
from s2lab.models.mae import MaskedAutoencoder
from s2lab.tokenize import CubeTokenizer


@dataclass
class S2MAEConfig(MAEConfig):
    """``MAEConfig`` plus the spectral size of a cube token."""

    bands_per_token: int = 2  # s, adjacent bands in one token; C is zero-padded to a multiple of s


class S2MAE(MaskedAutoencoder):
    """S2MAE. ``S2MAE(S2MAEConfig(...))`` or ``S2MAE(**fields)``; see ``MaskedAutoencoder`` for the recipe."""

    kind = "s2mae"

    def __init__(self, config: S2MAEConfig | None = None, **fields):
        super().__init__()
        config = config or S2MAEConfig(**fields)
        tokenizer = CubeTokenizer(
            patch_size=config.patch_size, bands_per_token=config.bands_per_token, in_chans=config.in_chans
        )
        self._build(config, tokenizer, per_group=False)

    def for_bands(
        self,
        wavelengths: Sequence[float],
        *,
        band_mean: Sequence[float] | None = None,
        band_std: Sequence[float] | None = None,
    ) -> S2MAE:
        """The same weights for images of another band set (needs ``pos_embed="wavelength"``).

        Args:
            wavelengths: (C',) band centres in nm of the new images, in band order.
            band_mean, band_std: (C',) statistics of the new bands (``s2lab.scaling.band_statistics``); needed
                when the model scales its input by dataset statistics, ignored otherwise.
        """
        if self.config.pos_embed != "wavelength":
            raise ValueError(
                f"a model with {self.config.pos_embed!r} positions is tied to its {self.config.in_chans} bands; "
                "only pos_embed='wavelength' takes other band sets"
            )
        stats = {}
        if self.config.scaling == "dataset":
            if band_mean is None or band_std is None or not len(band_mean) == len(band_std) == len(wavelengths):
                raise ValueError(f"this model scales by dataset statistics: give band_mean and band_std of the "
                                 f"{len(wavelengths)} new bands (s2lab.scaling.band_statistics of their images)")
            stats = {"band_mean": tuple(map(float, band_mean)), "band_std": tuple(map(float, band_std))}
        view = copy.copy(self)  # shares every parameter; only the config and the tokenizer differ
        view.config = replace(self.config, in_chans=len(wavelengths), wavelengths=tuple(float(w) for w in wavelengths),
                              **stats)
        view.tokenizer = CubeTokenizer(
            patch_size=self.config.patch_size, bands_per_token=self.config.bands_per_token, in_chans=len(wavelengths)
        )
        return view
