"""Positional embeddings for a token grid of G spectral groups by h x w spatial positions.

A token's embedding is the concatenation of a **spatial** part (D - D_spec values, where it is in the image) and
a **spectral** part (D_spec = D / 4 values, which bands it holds), following S2MAE's spatial-spectral embedding and
SatMAE's group encoding. Three kinds:

- ``sincos``: fixed sine-cosine tables, spatial 2D (MAE) and spectral 1D over the group index.
- ``learnable``: both parts are parameters, initialised from the sine-cosine tables (S2MAE's choice; in its
  ablation all three variants lie within 0.05 mAP: vanilla sin-cos 85.57, spatial-spectral sin-cos 85.62,
  spatial-spectral learnable 85.59). S2MAE's anchor code (SpectralGPT) *sums* separate spatial and spectral tables;
  concatenation is SatMAE's layout, kept here for both models so that they differ only in their tokens.
- ``wavelength``: spatial sine-cosine, spectral part computed from each group's mean wavelength in nm, so one model
  takes any band count and any sensor (the idea of LESS ViT's positional-channel embedding).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

KINDS = ("learnable", "sincos", "wavelength")
WAVELENGTH_SCALE_NM = 100.0  # the wavelength embedding encodes wavelength / 100 nm: its fastest sinusoid has a
# period of 2 * pi * 100 nm = 628 nm, so bands close in wavelength get close embeddings (in raw nm it would alias)


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Sine-cosine embedding of real-valued positions. positions: (M,) -> (M, dim), dim even."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # (dim/2,)
    angles = positions.double()[:, None] * omega[None]  # (M, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, h: int, w: int) -> torch.Tensor:
    """2D sine-cosine table of an h x w grid: (h * w, dim), half the width for rows, half for columns."""
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding needs a width divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, rows.flatten()), sincos_1d(dim // 2, cols.flatten())], dim=1)


def interpolate_grid(table: torch.Tensor, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> torch.Tensor:
    """Resize a spatial table (h * w, d) to a new grid by bicubic interpolation (progressive pretraining)."""
    if tuple(old_hw) == tuple(new_hw):
        return table
    grid = rearrange(table, "(h w) d -> 1 d h w", h=old_hw[0], w=old_hw[1])
    grid = nn.functional.interpolate(grid, size=tuple(new_hw), mode="bicubic", align_corners=False)
    return rearrange(grid, "1 d h w -> (h w) d")


class SpatialSpectralEmbedding(nn.Module):
    """Positional embedding of a G x (h x w) token grid.

    Args:
        kind: one of ``KINDS``.
        dim: D, divisible by 8.
        grid: (h, w) spatial tokens of the training image size.
        groups: G spectral groups (ignored by ``wavelength``, which takes wavelengths at call time).
    """

    def __init__(self, *, kind: str, dim: int, grid: tuple[int, int], groups: int):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown positional embedding {kind!r}; expected one of {', '.join(KINDS)}")
        if dim % 8:
            raise ValueError(f"positional embedding width must be divisible by 8, got {dim}")
        self.kind, self.grid, self.groups = kind, tuple(grid), groups
        self.spec_dim = dim // 4
        self.spat_dim = dim - self.spec_dim
        spatial = sincos_2d(self.spat_dim, *self.grid)  # (N, D - D_spec)
        spectral = sincos_1d(self.spec_dim, torch.arange(groups))  # (G, D_spec)
        if kind == "learnable":
            self.spatial = nn.Parameter(spatial)
            self.spectral = nn.Parameter(spectral)
        else:
            self.register_buffer("spatial", spatial, persistent=False)
            self.register_buffer("spectral", spectral, persistent=False)

    def spatial_table(self, hw: tuple[int, int]) -> torch.Tensor:
        """(h * w, D - D_spec) for a grid of any size (interpolated when it differs from training)."""
        if self.kind != "learnable":
            return sincos_2d(self.spat_dim, *hw).to(self.spatial.device) if tuple(hw) != self.grid else self.spatial
        return interpolate_grid(self.spatial, self.grid, hw)

    def spectral_table(self, wavelengths_nm: torch.Tensor | None) -> torch.Tensor:
        """(G, D_spec): by group index, or by each group's mean wavelength for the ``wavelength`` kind."""
        if self.kind != "wavelength":
            return self.spectral
        if wavelengths_nm is None:
            raise ValueError("the wavelength embedding needs the mean wavelength (nm) of every spectral group")
        return sincos_1d(self.spec_dim, wavelengths_nm / WAVELENGTH_SCALE_NM).to(self.spectral.device)

    def forward(self, hw: tuple[int, int], wavelengths_nm: torch.Tensor | None = None) -> torch.Tensor:
        """The (L, D) table, L = G * h * w group-major.

        Args:
            hw: (h, w) spatial tokens.
            wavelengths_nm: (G,) mean wavelength of each group; needed only by ``wavelength``.
        """
        spatial = self.spatial_table(hw)  # (N, D - D_spec)
        spectral = self.spectral_table(wavelengths_nm)  # (G, D_spec)
        G, N = spectral.shape[0], spatial.shape[0]
        return torch.cat(
            [spatial[None].expand(G, -1, -1), spectral[:, None].expand(-1, N, -1)], dim=-1
        ).flatten(0, 1)  # (G * N, D)
