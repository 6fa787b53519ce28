"""What the explorer's views draw: one frozen dataclass per view, held by ``Explorer``'s output parameters.

Pictures are (H, W, 3) uint8; every other array is named with its shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class SceneView:
    """The whole source as a picture, subsampled to fit ``SCENE_SIDE``, the crop outlined."""

    picture: np.ndarray  # (h, w, 3) uint8
    shape: tuple[int, int]  # (H, W) of the source image: picture pixel (i, j) is image pixel (i * step, j * step)
    step: int  # subsampling step


@dataclass(frozen=True, eq=False)
class SpectrumView:
    """One pixel's spectrum beside the library materials nearest to it by spectral angle."""

    pixel: tuple[int, int]  # (row, col) in the source image
    wavelength_nm: np.ndarray  # (C,) band centres
    values: np.ndarray  # (C,) the pixel's reflectance
    nearest: list[dict]  # [{"material", "what", "angle_deg", "values" (C,)}, ...], nearest first, all materials


@dataclass(frozen=True, eq=False)
class TokenView:
    """The crop cut into cube tokens."""

    pictures: dict[str, np.ndarray]  # "grid": (S * k, S * k, 3) uint8 composite with the token grid, the drawn
    # cell outlined; "cube": (h, w, 3) uint8, the p x p x C column of that cell as its G cubes of s bands
    counts: dict  # p, s, C, H, W, G, N, L, P, tokens_shape, satmae_G, satmae_L


@dataclass(frozen=True, eq=False)
class ReconstructionView:
    """The crop masked and reconstructed by S2MAE and SatMAE."""

    pictures: dict[str, np.ndarray]  # original, masked s2mae / satmae, s2mae, satmae, error s2mae / satmae
    scores: dict[str, dict[str, float]]  # "s2mae" / "satmae" -> {mse, psnr, sam_deg} over the removed tokens
    removed: dict[str, float]  # model -> share of the crop's values removed
    mask_ratio: float  # the ratio shown
    strategy: str  # the strategy shown
    seed: int  # the seed of the mask
    error_max: float  # reflectance RMSE at the top of the error colour map
    seconds: float  # wall-clock time of both models and all pictures


@dataclass(frozen=True, eq=False)
class ChangeView:
    """A change pair cut at a threshold, and how the cut compares with the truth."""

    name: str  # the pair's name
    synthetic: bool  # planted changes, not real ones
    description: str  # where the pair comes from
    pictures: dict[str, np.ndarray]  # before, after, probability, overlay: (h, w, 3) uint8, the pair subsampled by step
    threshold: float  # the cut shown
    scores: dict[str, float]  # precision, recall, f1, iou, accuracy of probability >= threshold
    changed_share: float  # share of pixels the truth marks as change
    step: int = 1  # the pictures are subsampled: picture pixel (i, j) is pair pixel (i * step, j * step)
