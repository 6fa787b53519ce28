"""Reconstruction metrics: how close a reconstruction comes to the truth, on the removed values only.

Torch tensors in, python floats out (a tensor where a map comes out). Shapes use the glossary of
``docs/internals.md``.

The lab's one yardstick for every model and baseline, whatever scaling a model uses inside, is taken in reflectance:
masked MSE, PSNR with peak 1.0 reflectance, and the spectral angle (SAM) between predicted and true reflectance
spectra. (The token functions also score a model's own scaled target, where a notebook teaches the target itself.)

Scores against labels (change maps, classes) are in ``s2lab.classification_metrics``; change vector analysis and
Otsu's threshold in ``s2lab.cva``. Both take their input checks, ``_tensor`` and ``_same_shape``, from here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from s2lab.models.mae import masked_mse


def _tensor(x: Any) -> torch.Tensor:
    """A tensor from a tensor, a numpy array, an xarray DataArray or a list (no copy when possible)."""
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}; expected the same shape")


def token_valid(valid: torch.Tensor | None, L: int, P: int, device: torch.device | None = None) -> torch.Tensor:
    """Which token values are real bands, for every token: (L, P) bool.

    Args:
        valid: a tokenizer's (G, P) ``valid`` (repeated over the N spatial tokens of each group, as the
            group-major layout needs), an (L, P) one, or None when every value is real.
        L, P: tokens and values per token.
        device: where the result lives (default: where ``valid`` is, else the CPU).
    """
    if valid is None:
        return torch.ones(L, P, dtype=torch.bool, device=device)
    valid = torch.as_tensor(valid, device=device).bool()
    if valid.ndim != 2 or valid.shape[1] != P or valid.shape[0] == 0 or L % valid.shape[0]:
        raise ValueError(
            f"valid of shape {tuple(valid.shape)} does not fit {L} tokens of {P} values: expected (G, {P}) "
            f"with G dividing {L}, or ({L}, {P})"
        )
    return valid.repeat_interleave(L // valid.shape[0], dim=0)  # (L, P)


def _check_tokens(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    _same_shape(pred, target, "predicted and target tokens")
    if pred.ndim != 3 or tuple(mask.shape) != tuple(pred.shape[:2]):
        raise ValueError(
            f"expected tokens (B, L, P) and a mask (B, L), got tokens {tuple(pred.shape)} and mask {tuple(mask.shape)}"
        )


def masked_token_mse(
    pred_tokens: torch.Tensor, target_tokens: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
) -> float:
    """Mean squared error over the removed tokens' real values (``s2lab.models.mae.masked_mse`` as a float).

    Each removed token's MSE over its valid values, averaged over removed tokens; 0.0 when none was removed.

    Args:
        pred_tokens, target_tokens: (B, L, P), in the model's scaled space (its training target).
        mask: (B, L), 1 = removed.
        valid: (G, P) or (L, P) bool, False on band padding; None when there is none.
    """
    _check_tokens(pred_tokens, target_tokens, mask)
    _, L, P = pred_tokens.shape
    weight = token_valid(valid, L, P, pred_tokens.device)
    return float(masked_mse(pred_tokens.float(), target_tokens.float(), mask.float(), weight))


def psnr(mse: float | torch.Tensor, peak: float = 1.0) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(peak^2 / mse): inf for mse 0.

    Args:
        mse: a mean squared error, a float or a tensor of any shape (then a tensor of that shape comes back).
        peak: the largest possible value: 1.0 reflectance on the lab's yardstick.
    """
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(peak**2 / mse)
    mse = float(mse)
    if mse < 0:
        raise ValueError(f"a mean squared error cannot be negative, got {mse}")
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def masked_psnr(
    pred_tokens: torch.Tensor,
    target_tokens: torch.Tensor,
    mask: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    peak: float = 1.0,
) -> float:
    """PSNR in dB of ``masked_token_mse`` (same arguments); inf when nothing was removed."""
    return psnr(masked_token_mse(pred_tokens, target_tokens, mask, valid), peak)


def spectral_angle(a: torch.Tensor, b: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Angle in radians between spectra, along ``dim`` (the band axis C).

    Computed as 2 atan2(|a' - b'|, |a' + b'|) on unit vectors a', b' (Kahan's form: exact 0 for parallel spectra,
    where arccos of the cosine loses half the digits). Zero vectors are safe: two zero spectra are 0 apart, a zero
    and a non-zero one pi / 2 apart (cosine similarity 0, as ``torch.nn.functional.cosine_similarity`` has it).

    Args:
        a, b: tensors of the same shape, e.g. (B, C, H, W) with dim=1.
        dim: the spectral axis.

    Returns:
        The shape of ``a`` without ``dim``, e.g. (B, H, W), in [0, pi].
    """
    _same_shape(a, b, "spectral angle")
    a = a if a.is_floating_point() else a.float()
    b = b if b.is_floating_point() else b.float()
    tiny = torch.finfo(a.dtype).tiny
    ua = a / _norm(a, dim, keepdim=True).clamp_min(tiny)
    ub = b / _norm(b, dim, keepdim=True).clamp_min(tiny)
    return 2 * torch.atan2(_norm(ua - ub, dim), _norm(ua + ub, dim))


def _norm(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Euclidean norm along ``dim``, as sqrt of the sum of squares: on the CPU many times faster than
    ``Tensor.norm`` along a strided band axis (e.g. dim 1 of (B, C, H, W))."""
    return (x * x).sum(dim=dim, keepdim=keepdim).sqrt()


def _check_images(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    _same_shape(pred, target, "predicted and target images")
    _same_shape(pred, mask, "images and their per-pixel mask")
    if pred.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(pred.shape)}")


def masked_spectral_angle(pred_img: torch.Tensor, target_img: torch.Tensor, mask_img: torch.Tensor) -> float:
    """Mean spectral angle in degrees over the pixels that lost at least one band.

    The prediction is first pasted into the target where values were removed (visible values are the truth), so
    the full prediction and the pasted image give the same score; the angle is taken over all C bands of each
    pixel whose mask has any band removed. 0.0 when no pixel lost a band.

    Args:
        pred_img, target_img: (B, C, H, W), in reflectance for the lab's yardstick.
        mask_img: (B, C, H, W), 1 = removed (``Reconstruction.mask``, or the token mask unpatchified).
    """
    _check_images(pred_img, target_img, mask_img)
    removed = mask_img.bool()
    pixels = removed.any(dim=1)  # (B, H, W)
    if not bool(pixels.any()):
        return 0.0
    target = target_img.float()
    pasted = torch.where(removed, pred_img.float(), target)
    angle = spectral_angle(pasted, target, dim=1)  # (B, H, W)
    return math.degrees(float(angle[pixels].mean()))


def reconstruction_scores(pred_img01: torch.Tensor, target_img01: torch.Tensor, mask_img: torch.Tensor) -> dict:
    """The lab's reconstruction yardstick on the removed values: MSE, PSNR (dB) and spectral angle (degrees).

    ``mse`` is the mean over the removed values of the images; it equals ``masked_token_mse`` on the tokens
    when every token holds the same number of real values (no band padding). Nothing removed gives
    mse 0.0, psnr inf, sam_deg 0.0.

    Args:
        pred_img01: (B, C, H, W) prediction or pasted image, in reflectance on the lab's yardstick.
        target_img01: (B, C, H, W) the true image, the same space.
        mask_img: (B, C, H, W), 1 = removed.

    Returns:
        ``{"mse": float, "psnr": float, "sam_deg": float}``.
    """
    _check_images(pred_img01, target_img01, mask_img)
    removed = mask_img.bool()
    squared = torch.where(removed, (pred_img01.float() - target_img01.float()) ** 2, 0.0)
    mse = float(squared.sum() / removed.sum().clamp_min(1))
    return {"mse": mse, "psnr": psnr(mse), "sam_deg": masked_spectral_angle(pred_img01, target_img01, mask_img)}
