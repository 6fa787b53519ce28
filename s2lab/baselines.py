"""Naive reconstructions of images: every fill a model is scored against, with no learning at all.

A masked autoencoder earns its keep only where it beats these. Each fill sees the visible values only, fills the
removed ones and returns the visible ones unchanged; images are (B, C, H, W) and masks (B, C, H, W), 1 = removed
(the glossary of ``docs/internals.md``).

- ``fill_all``: the fills of the lab's yardstick, as images (``FILL_NAMES``): the flat token fills of
  ``s2lab.token_baselines`` on a model's token grid, and ``gaussian_fill`` at each of ``GAUSSIAN_SIGMAS``.
- ``gaussian_fill``: each band's visible pixels, Gaussian-weighted (a normalised convolution), wherever the token
  borders fall.
- ``cross_band_fill``: a spatial fill's level plus the texture of the best-correlated band still visible at the same
  pixel, the one fill that borrows across bands.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from s2lab.token_baselines import BASELINES, run_baselines


def gaussian_fill(image: torch.Tensor, mask_img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each removed value becomes the Gaussian-weighted mean of the visible pixels of its own band (the
    ``gaussian`` baseline): a normalised convolution, ``blur(x * visible) / blur(visible)``.

    It works on pixels, not tokens, so it fills every removed pixel from the nearest visible pixels of the band,
    wherever the token borders fall. Where the kernel reaches no visible pixel of the band (weight below 1e-6 of
    its peak), the value is the band's mean over its visible pixels (0 when none is visible).

    Args:
        image: (B, C, H, W) images (reflectance, or any per-band affine scaling of it: the fill commutes with it).
        mask_img: (B, C, H, W), 1 = removed.
        sigma: the Gaussian's standard deviation in pixels, > 0.

    Returns:
        (B, C, H, W): visible values unchanged, removed ones filled.
    """
    if image.ndim != 4 or mask_img.shape != image.shape:
        raise ValueError(f"expected image and mask of one shape (B, C, H, W), got {tuple(image.shape)} and "
                         f"{tuple(mask_img.shape)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    B, C, H, W = image.shape
    x = image.float()
    visible = 1.0 - mask_img.float()  # (B, C, H, W)
    radius = min(int(math.ceil(3 * sigma)), max(H, W) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)  # (k,), peak 1

    def blur(z: torch.Tensor) -> torch.Tensor:  # separable, zero outside the image: (B, C, H, W) -> same
        z = z.reshape(B * C, 1, H, W)
        z = F.conv2d(z, kernel.view(1, 1, 1, -1), padding=(0, radius))
        z = F.conv2d(z, kernel.view(1, 1, -1, 1), padding=(radius, 0))
        return z.view(B, C, H, W)

    weight = blur(visible)
    filled = blur(x * visible) / weight.clamp_min(1e-12)
    band_mean = (x * visible).sum((-2, -1), keepdim=True) / visible.sum((-2, -1), keepdim=True).clamp_min(1)
    filled = torch.where(weight > 1e-6, filled, band_mean)
    return torch.where(mask_img.bool(), filled, x).to(image.dtype)


GAUSSIAN_SIGMAS = (2.0, 4.0)  # px: the Gaussian fills reported beside the token fills (the best one counts)
FILL_NAMES = (*BASELINES, *(f"gaussian_{sigma:g}px" for sigma in GAUSSIAN_SIGMAS))  # every fill of ``fill_all``


def fill_all(image: torch.Tensor, mask_img: torch.Tensor, tokenizer) -> dict[str, torch.Tensor]:
    """Every naive fill of the lab's yardstick on the same images and mask, as images.

    The token fills of ``BASELINES`` (flat, on ``tokenizer``'s token grid) and ``gaussian_fill`` at each of
    ``GAUSSIAN_SIGMAS`` (named ``gaussian_2px``, ...). Every fill is an average of visible values of the same band,
    so it commutes with any per-band affine scaling: filling reflectance or a scaled image gives the same result.

    Args:
        image: (B, C, H, W), H and W multiples of the tokenizer's patch size.
        mask_img: (B, C, H, W), 1 = removed, whole tokens of ``tokenizer`` (``Reconstruction.mask``).
        tokenizer: the model's ``CubeTokenizer`` or ``GroupTokenizer``.

    Returns:
        ``{name: (B, C, H, W) filled image}``.
    """
    H, W = image.shape[-2:]
    p = tokenizer.p
    token_mask = tokenizer.patchify(mask_img).amax(dim=-1)  # (B, L), 1 = removed
    tokens = run_baselines(tokenizer.patchify(image), token_mask, tokenizer.G, (H // p, W // p), tokenizer.valid,
                           patch_size=p)
    fills = {name: tokenizer.unpatchify(t, H, W) for name, t in tokens.items()}
    for name, sigma in zip(FILL_NAMES[len(BASELINES):], GAUSSIAN_SIGMAS):
        fills[name] = gaussian_fill(image, mask_img, sigma)
    return fills


CROSS_BAND_MIN_PIXELS = 16  # co-visible pixels a band pair needs in a window before its slope is trusted


def cross_band_fill(image: torch.Tensor, mask_img: torch.Tensor, level: torch.Tensor, patch_size: int) -> torch.Tensor:
    """The naive fill that borrows across bands (the fidelity review's): a spatial fill's level, plus the texture of
    the best-correlated band still visible at the same pixel.

    For every band c and window, each other band d gets its correlation with c and the slope of c on d, both over
    the pixels where the two are visible (at least ``CROSS_BAND_MIN_PIXELS``). A removed value of c at a pixel where
    some band is visible becomes ``level + slope * (x_d - mean of x_d over its p x p cell)``, d the visible band
    with the strongest correlation there; elsewhere it stays ``level``. No learning, and only visible values used.

    Args:
        image: (B, C, H, W) reflectance. mask_img: (B, C, H, W), 1 = removed.
        level: (B, C, H, W), a spatial fill of the same image and mask (e.g. ``neighbourhood`` from ``fill_all``).
        patch_size: p, the cell over which a visible band's texture is taken (the token side).

    Returns:
        (B, C, H, W): visible values unchanged, removed ones filled.
    """
    if not image.shape == mask_img.shape == level.shape or image.ndim != 4:
        raise ValueError(f"expected image, mask and level of one shape (B, C, H, W), got {tuple(image.shape)}, "
                         f"{tuple(mask_img.shape)} and {tuple(level.shape)}")
    x = image.float()
    v = 1.0 - mask_img.float()  # (B, C, H, W) 1 = visible
    vx = v * x
    n = torch.einsum("bchw,bdhw->bcd", v, v)  # (B, C, D) co-visible pixels
    sx = torch.einsum("bchw,bdhw->bcd", vx, v)  # sum of x_c where both are visible
    sy = sx.transpose(1, 2)  # sum of x_d there
    sxx = torch.einsum("bchw,bdhw->bcd", vx * x, v)
    syy = sxx.transpose(1, 2)
    sxy = torch.einsum("bchw,bdhw->bcd", vx, vx)
    m = n.clamp_min(1)
    cov = sxy / m - sx * sy / m**2
    var_c, var_d = (sxx / m - (sx / m) ** 2).clamp_min(0), (syy / m - (sy / m) ** 2).clamp_min(0)
    corr = cov / (var_c * var_d).sqrt().clamp_min(1e-12)  # (B, C, D)
    slope = cov / var_d.clamp_min(1e-12)
    eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    trusted = (n >= CROSS_BAND_MIN_PIXELS) & ~eye  # (B, C, D)
    strength = torch.where(trusted, corr.abs(), torch.full_like(corr, -1.0))
    cells = F.avg_pool2d(vx, patch_size) / F.avg_pool2d(v, patch_size).clamp_min(1e-12)  # (B, D, h, w) cell means
    texture = x - F.interpolate(cells, scale_factor=patch_size, mode="nearest")  # (B, D, H, W)
    # for each (c, pixel): the visible band d with the strongest trusted correlation
    score = strength[..., None, None] + 2.0 * v[:, None]  # (B, C, D, H, W): visible bands first, then correlation
    best = score.argmax(dim=2, keepdim=True)  # (B, C, 1, H, W)
    usable = torch.gather(score, 2, best)[:, :, 0] >= 2.0  # (B, C, H, W) a visible, trusted band exists
    gain = torch.gather(slope[..., None, None].expand(score.shape), 2, best)[:, :, 0]  # (B, C, H, W)
    borrowed = torch.gather(texture[:, None].expand(score.shape), 2, best)[:, :, 0]
    filled = torch.where(usable, level.float() + gain * borrowed, level.float())
    return torch.where(mask_img.bool(), filled, x).to(image.dtype)
