"""Relative radiometric normalisation of a change pair: the later date's bands mapped onto the earlier date's.

Season, sun, atmosphere and calibration differ between two dates and look like change everywhere; real change,
local by nature, moves an image's statistics little. So each band of AFTER can first be mapped onto BEFORE over
the whole image, without labels (a change model is trained with the same setting, ``s2lab.tasks.change_task``):

- ``match_radiometry(before, after, method)``: exact, over every pixel of images in memory.
- ``fit_radiometry(before_sample, after_sample, method)``: the same map fitted on evenly strided samples of images
  too large for memory (``Rows.sample`` of ``s2lab.windows.image_rows``), applied a band of rows at a time. For ``"moments"`` it is
  the exact map when the samples are every pixel; for ``"quantiles"`` it maps each value through the samples'
  ``QUANTILE_KNOTS`` evenly spaced order statistics (mid-rank for ties, linear between them), where the exact map
  matches every pixel's rank (ties by position).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from s2lab.scaling import SCALE_EPS

NORMALIZATIONS = {  # change_map's per-image radiometric normalisations (none uses labels) -> what each does
    "moments": "each band of after mapped linearly to before's mean and standard deviation over the image",
    "quantiles": "each band of after mapped monotonically onto before's values (histogram matching over the image)",
}
QUANTILE_KNOTS = 65537  # order statistics per band that fit_radiometry's "quantiles" map goes through


def check_normalize(normalize: str | None) -> None:
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown radiometric normalisation {normalize!r}; expected None or one of "
                         f"{', '.join(NORMALIZATIONS)}")


def match_radiometry(
    before: torch.Tensor, after: torch.Tensor, method: str = "moments", eps: float = SCALE_EPS
) -> torch.Tensor:
    """``after`` with each band mapped onto ``before``'s radiometry over the whole image (no labels).

    A relative radiometric normalisation: a global change of each band (season, sun, atmosphere, calibration) is
    removed; real change, local by nature, moves the image statistics little. ``"moments"``: a gain and offset per
    band, so that the mean and standard deviation equal ``before``'s. ``"quantiles"``: histogram matching, each
    value replaced by ``before``'s value of the same rank (ties by position), so the two histograms are equal.

    Args:
        before, after: (C, H, W) or (B, C, H, W) reflectance without NaN, the same shape; statistics over (H, W).
        method: a key of ``NORMALIZATIONS``.

    Returns:
        after normalised, the shape of ``after``.
    """
    if before.shape != after.shape or before.ndim not in (3, 4):
        raise ValueError(f"before {tuple(before.shape)} and after {tuple(after.shape)} must be two (C, H, W) or "
                         "(B, C, H, W) images of the same shape")
    check_normalize(method)
    if method == "quantiles":  # band by band: the int64 ranks of a whole scene would be 8 bytes per value at once
        out = torch.empty_like(after)
        for c in range(after.shape[-3]):
            a, b = after[..., c, :, :].flatten(-2), before[..., c, :, :].flatten(-2)  # (..., H * W)
            order = a.argsort(dim=-1, stable=True)  # positions of after's values, smallest first
            matched = torch.empty_like(a).scatter_(-1, order, b.sort(dim=-1).values)  # rank k gets before's k-th
            out[..., c, :, :] = matched.view(after.shape[:-3] + after.shape[-2:])
        return out
    mean_b, std_b = before.mean(dim=(-2, -1), keepdim=True), before.std(dim=(-2, -1), keepdim=True, unbiased=False)
    mean_a, std_a = after.mean(dim=(-2, -1), keepdim=True), after.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (after - mean_a) / std_a.clamp_min(eps) * std_b + mean_b


@dataclass
class RadiometryMap:
    """A per-band map of after's values onto before's, fitted on samples; ``apply`` maps (C, ...) values.

    ``"moments"``: ``gain`` and ``offset`` (C,). ``"quantiles"``: ``knots`` of after and of before, (C, K) each,
    evenly spaced quantiles of the samples; a value of after takes its rank among after's knots (the middle of a run
    of equal knots, linear between knots) and then before's value at that rank.
    """

    method: str
    gain: torch.Tensor | None = None
    offset: torch.Tensor | None = None
    after_knots: torch.Tensor | None = None
    before_knots: torch.Tensor | None = None

    def apply(self, after: torch.Tensor) -> torch.Tensor:
        """(C, ...) values of the later date mapped band by band."""
        if self.method == "moments":
            shape = (-1,) + (1,) * (after.ndim - 1)
            return after * self.gain.view(shape) + self.offset.view(shape)
        out = torch.empty_like(after)
        for c in range(after.shape[0]):
            out[c] = _value_at(_rank(after[c].contiguous(), self.after_knots[c]), self.before_knots[c])
        return out


def _rank(x: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """Position of each x among increasing ``knots`` (K,), as a fraction in [0, 1]: the middle of a run of knots
    equal to x, linear between the two knots around it, 0 or 1 beyond the ends."""
    K = len(knots)
    below = torch.searchsorted(knots, x, right=False)  # knots < x
    upto = torch.searchsorted(knots, x, right=True)  # knots <= x
    i = below.clamp(1, K - 1)
    k0, k1 = knots[i - 1], knots[i]
    t = torch.where(k1 > k0, (x - k0) / (k1 - k0).clamp_min(SCALE_EPS), torch.zeros_like(x)).clamp(0, 1)
    position = torch.where(upto > below, (below + upto - 1) / 2, (i - 1) + t)
    return position / max(K - 1, 1)


def _value_at(fraction: torch.Tensor, knots: torch.Tensor) -> torch.Tensor:
    """The value of increasing ``knots`` (K,) at ``fraction`` of the way, linear between knots."""
    position = fraction * (len(knots) - 1)
    i = position.floor().long().clamp(0, max(len(knots) - 2, 0))
    upper = knots[(i + 1).clamp(max=len(knots) - 1)]
    return knots[i] + (position - i) * (upper - knots[i])


def fit_radiometry(before: torch.Tensor, after: torch.Tensor, method: str) -> RadiometryMap:
    """The map of after onto before fitted on (C, n) samples of each date without NaN, e.g. every k-th pixel."""
    check_normalize(method)
    if before.shape[0] != after.shape[0]:
        raise ValueError(f"before has {before.shape[0]} bands in its sample and after {after.shape[0]}")
    if method == "moments":
        mean_b, std_b = before.mean(dim=1), before.std(dim=1, unbiased=False)
        mean_a, std_a = after.mean(dim=1), after.std(dim=1, unbiased=False)
        gain = std_b / std_a.clamp_min(SCALE_EPS)
        return RadiometryMap(method, gain=gain, offset=mean_b - mean_a * gain)

    def knots(x: torch.Tensor) -> torch.Tensor:  # (C, n) -> (C, K) evenly spaced order statistics
        ordered = x.sort(dim=1).values
        return ordered[:, torch.linspace(0, x.shape[1] - 1, min(x.shape[1], QUANTILE_KNOTS)).round().long()]

    return RadiometryMap(method, after_knots=knots(after), before_knots=knots(before))
