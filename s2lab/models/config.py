"""The size and choices of a masked autoencoder (``MAEConfig``), validated before a model is built.

The choices are explained where they act: the scaling in ``s2lab.scaling``, the target and the loss in
``s2lab.models.mae``, the position code in ``s2lab.pos_embed``. A checkpoint stores the config as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2lab.scaling import SCALINGS, default_band_statistics

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
