"""Hyperspectral cubes for the variable-band-count path: the real Jasper Ridge scene, or a cube mixed from real spectra.

**Jasper Ridge** (AVIRIS, 100 x 100 px, 198 bands) is the classic unmixing benchmark as distributed by Feiyun Zhu
(``jasperRidge2_R198.mat``): ``Y`` (198 x 10000) holds uint16 radiance-derived values that ``maxValue`` scales to
[0, ~1.1], ``M`` (198 x 4) the reference endmembers and ``A`` (4 x 10000) their abundances, which sum to 1 per
pixel. The 10000 pixels run column by column (MATLAB order: pixel k is row ``k % 100``, column ``k // 100``);
read this way the image shows the reservoir as a vertical body left of centre and the highway curving down the
right side, as in the published abundance maps, and read row by row it comes out transposed. AVIRIS has 224
channels from 380 to 2500 nm; the file's ``SlectBands`` lists the 198 kept (1-based), i.e. channels 1-3,
108-112, 154-166 and 220-224 removed (noise and the water-vapour absorption around 1400 and 1900 nm), as
documented for the dataset. The file carries no wavelengths, so the ``wavelength`` coordinate is the nominal
AVIRIS grid, 224 centres evenly spaced from 380 to 2500 nm (about 9.5 nm apart), taken at the kept channels;
the true centres of a given flight differ by a few nanometres.

**The mixed cube** stands in where no Jasper Ridge is found: real library spectra (``s2lab.spectra``: USGS
sea water, USGS spruce needles, an earthlib soil and an earthlib asphalt, the analogues of Jasper Ridge's water,
tree, dirt and road) averaged onto a regular band grid, mixed linearly by smooth abundance maps that sum to 1,
plus Gaussian noise. It is synthetic and says so (``synthetic=True``, ``attrs["synthetic"]``).

Shapes use the glossary of ``docs/internals.md``: C bands, H, W pixels; K here counts endmembers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import xarray as xr

from s2lab import settings, spectra
from s2lab.data.synthetic import as_numpy_generator, smooth_fractions

JASPER_RIDGE_FILE = "jasperRidge2_R198.mat"
"""The file name ``load_jasper_ridge`` looks for under ``settings.data_dir("hyperspectral")``."""

AVIRIS_CHANNELS = 224
"""AVIRIS channels, nominally evenly spaced from 380 to 2500 nm."""

AVIRIS_RANGE_NM = (380.0, 2500.0)
"""Centre wavelength of the first and last AVIRIS channel, nanometres (nominal)."""

JASPER_RIDGE_REMOVED = (*range(1, 4), *range(108, 113), *range(154, 167), *range(220, 225))
"""The 26 AVIRIS channels (1-based) removed from Jasper Ridge: 1-3, 108-112, 154-166, 220-224."""

JASPER_RIDGE_SIZE = 100
"""Rows and columns of the Jasper Ridge subscene."""

MIXED_ENDMEMBERS = ("vegetation", "water", "soil", "asphalt")
"""Materials of ``s2lab.spectra.MATERIAL_SPECTRA`` that ``mixed_cube`` mixes: Jasper Ridge's tree, water, dirt, road."""


@dataclass(frozen=True, kw_only=True)
class HyperspectralCube:
    """A hyperspectral image with the endmembers and abundances that explain it (cube ~ endmembers^T @ abundances)."""

    cube: xr.DataArray  # (C, H, W) float32 reflectance, dims (band, y, x), coord wavelength (band) in nm
    endmembers: xr.DataArray  # (K, C) float32 endmember spectra, dims (endmember, band)
    abundances: xr.DataArray  # (K, H, W) float32 fractions, dims (endmember, y, x), summing to 1 over endmember
    synthetic: bool  # False for Jasper Ridge, True for the mixed cube
    description: str  # where the data come from, in a sentence


def aviris_wavelengths(channels: np.ndarray | list[int]) -> np.ndarray:
    """Nominal centre wavelengths (nm) of AVIRIS ``channels`` (1-based), shape (C,), float64."""
    channels = np.asarray(channels, dtype=np.int64)
    if channels.size and (channels.min() < 1 or channels.max() > AVIRIS_CHANNELS):
        raise ValueError(f"AVIRIS channels are 1-{AVIRIS_CHANNELS}; got {channels.min()}-{channels.max()}")
    grid = np.linspace(*AVIRIS_RANGE_NM, AVIRIS_CHANNELS)  # (224,)
    return grid[channels - 1]


def _jasper_ridge_path(root: str | os.PathLike | None) -> Path | None:
    """``root`` (the .mat file or its folder) or the settings' hyperspectral folder, resolved to the .mat file."""
    if root is not None and Path(root).expanduser().is_file():
        return Path(root).expanduser()
    folder = settings.data_dir("hyperspectral", root)
    if folder is None or not (folder / JASPER_RIDGE_FILE).is_file():
        return None
    return folder / JASPER_RIDGE_FILE


def _image(values: np.ndarray) -> np.ndarray:
    """(n, H * W) pixels in MATLAB's column-major order -> (n, H, W)."""
    n = values.shape[0]
    return values.reshape(n, JASPER_RIDGE_SIZE, JASPER_RIDGE_SIZE).transpose(0, 2, 1)  # (n, H, W)


def _names(cood: np.ndarray) -> list[str]:
    """Endmember names from the file's ``cood`` cell ('1-tree', ...) without their number."""
    return [str(np.asarray(c).ravel()[0]).split("-", 1)[-1] for c in cood.ravel()]


def load_jasper_ridge(root: str | os.PathLike | None = None) -> HyperspectralCube:
    """The real Jasper Ridge AVIRIS cube with its reference endmembers and abundances.

    Args:
        root: the ``jasperRidge2_R198.mat`` file or the folder holding it; default
            ``settings.data_dir("hyperspectral")``.

    Returns:
        ``HyperspectralCube`` with cube (198, 100, 100) reflectance (``Y / maxValue``), band coord the AVIRIS
        channel number (1-based), ``wavelength`` the nominal AVIRIS centre (see the module docstring), y and x
        pixel indices; endmembers (4, 198) named tree, water, dirt, road (the file's names); abundances
        (4, 100, 100); ``synthetic=False``, ``attrs["source"] == "jasper_ridge"``.

    Raises:
        FileNotFoundError: no ``jasperRidge2_R198.mat`` under ``root`` or the settings' folder.
        ValueError: the file lacks ``Y``, ``M``, ``A`` or ``maxValue``, or their shapes are not 198 x 10000,
            198 x K and K x 10000.
    """
    path = _jasper_ridge_path(root)
    if path is None:
        where = root or settings.data_dir("hyperspectral") or "S2LAB_HYPERSPECTRAL_DIR / S2LAB_DATA_DIR/hyperspectral"
        raise FileNotFoundError(f"no {JASPER_RIDGE_FILE} in {where}; put the Jasper Ridge .mat file there")
    mat = scipy.io.loadmat(path)
    missing = [k for k in ("Y", "M", "A", "maxValue") if k not in mat]
    if missing:
        raise ValueError(f"{path} lacks the variables {missing}; expected Y, M, A and maxValue (Jasper Ridge R198)")
    pixels = JASPER_RIDGE_SIZE * JASPER_RIDGE_SIZE
    y_raw, m, a = mat["Y"], mat["M"], mat["A"]
    n_bands = AVIRIS_CHANNELS - len(JASPER_RIDGE_REMOVED)
    if y_raw.shape != (n_bands, pixels) or m.shape[0] != n_bands or a.shape != (m.shape[1], pixels):
        raise ValueError(
            f"{path}: Y {y_raw.shape}, M {m.shape}, A {a.shape}; expected Y ({n_bands}, {pixels}), "
            f"M ({n_bands}, K) and A (K, {pixels})"
        )
    kept = np.setdiff1d(np.arange(1, AVIRIS_CHANNELS + 1), JASPER_RIDGE_REMOVED)  # (198,)
    if "SlectBands" in mat and not np.array_equal(mat["SlectBands"].ravel(), kept):
        raise ValueError(f"{path}: its SlectBands differ from the documented 198 Jasper Ridge channels")
    names = _names(mat["cood"]) if "cood" in mat else [f"endmember{k + 1}" for k in range(m.shape[1])]
    cube = (_image(y_raw.astype(np.float64)) / float(mat["maxValue"].item())).astype(np.float32)  # (C, H, W)
    description = (
        f"Jasper Ridge, AVIRIS, {JASPER_RIDGE_SIZE} x {JASPER_RIDGE_SIZE} px, {n_bands} of 224 channels "
        f"(nominal wavelengths), from {path.name}"
    )
    return _assemble(
        cube=cube,
        endmembers=m.T.astype(np.float32),  # (K, C)
        abundances=_image(a).astype(np.float32),  # (K, H, W)
        names=names,
        band=kept,
        wavelength=aviris_wavelengths(kept),
        synthetic=False,
        source="jasper_ridge",
        description=description,
        attrs={"path": str(path), "removed_channels": str(list(JASPER_RIDGE_REMOVED))},
    )


def _assemble(
    *,
    cube: np.ndarray,
    endmembers: np.ndarray,
    abundances: np.ndarray,
    names: list[str],
    band: np.ndarray,
    wavelength: np.ndarray,
    synthetic: bool,
    source: str,
    description: str,
    attrs: dict,
) -> HyperspectralCube:
    """Wrap (C, H, W), (K, C) and (K, H, W) arrays as DataArrays with shared coords and attrs."""
    _, H, W = cube.shape
    bands = {"band": band, "wavelength": ("band", wavelength)}
    pixels = {"y": np.arange(H), "x": np.arange(W)}
    common = {"synthetic": synthetic, "source": source, "description": description, "wavelength_units": "nm"}
    return HyperspectralCube(
        cube=xr.DataArray(
            cube, dims=("band", "y", "x"), coords=bands | pixels, name="reflectance", attrs=common | attrs
        ),
        endmembers=xr.DataArray(
            endmembers, dims=("endmember", "band"), coords={"endmember": names} | bands, name="endmember",
            attrs=common,
        ),
        abundances=xr.DataArray(
            abundances, dims=("endmember", "y", "x"), coords={"endmember": names} | pixels, name="abundance",
            attrs=common,
        ),
        synthetic=synthetic,
        description=description,
    )


def _box_average(library_spectra: xr.DataArray, centres: np.ndarray) -> np.ndarray:
    """(K, W) spectra on their own grid -> (K, C) means over [c - d/2, c + d/2] at each centre c (d: grid step).

    Each spectrum is first put on a 1 nm grid by linear interpolation over its measured (finite) samples, which
    also bridges gaps such as earthlib's water-vapour windows.
    """
    grid = library_spectra["wavelength"].values  # (W,)
    half = (centres[1] - centres[0]) / 2 if centres.size > 1 else 5.0
    fine = np.arange(np.floor(centres[0] - half), np.ceil(centres[-1] + half) + 1.0)  # (F,) 1 nm
    out = np.empty((library_spectra.shape[0], centres.size))
    for k, values in enumerate(np.asarray(library_spectra.values, dtype=np.float64)):
        ok = np.isfinite(values)
        dense = np.interp(fine, grid[ok], values[ok])  # (F,)
        inside = np.abs(fine[None, :] - centres[:, None]) <= half  # (C, F)
        out[k] = (inside * dense).sum(axis=1) / inside.sum(axis=1)
    return out


def _endmember_spectra(materials: tuple[str, ...], centres: np.ndarray) -> np.ndarray:
    """(K, C) reflectance of the named ``MATERIAL_SPECTRA`` entries averaged onto ``centres``."""
    table = {m: (lib, name) for m, lib, name, _ in spectra.MATERIAL_SPECTRA}
    unknown = [m for m in materials if m not in table]
    if unknown:
        raise ValueError(f"unknown endmember materials {unknown}; expected names from {tuple(table)}")
    rows = []
    for material in materials:
        lib_name, spectrum_name = table[material]
        lib = spectra.library(lib_name)
        picked = lib.isel(spectrum=np.flatnonzero(lib["name"].values == spectrum_name)[:1])  # (1, W)
        grid = lib["wavelength"].values
        if centres[0] < grid[0] or centres[-1] > grid[-1]:
            raise ValueError(
                f"the band grid {centres[0]:g}-{centres[-1]:g} nm leaves the {lib_name} library's range "
                f"{grid[0]:g}-{grid[-1]:g} nm ({material})"
            )
        rows.append(_box_average(picked, centres)[0])
    return np.stack(rows)  # (K, C)


def mixed_cube(
    size: int = 100,
    n_bands: int = 206,
    *,
    rng: np.random.Generator,
    wavelength_range: tuple[float, float] = (400.0, 2450.0),
    endmembers: tuple[str, ...] = MIXED_ENDMEMBERS,
    noise_std: float = 0.002,
    smoothness: float = 6.0,
    sharpness: float = 3.0,
) -> HyperspectralCube:
    """A synthetic hyperspectral cube mixed linearly from real library spectra.

    ``cube = endmembers^T @ abundances + noise``: each endmember is a real spectrum of
    ``s2lab.spectra.MATERIAL_SPECTRA`` averaged over each band's width on a regular grid; the abundances are
    a softmax of Gaussian-smoothed noise fields (smooth, mostly near-pure patches with mixed borders, like a
    Dirichlet draw that varies smoothly in space); the noise is white Gaussian, ``noise_std`` in reflectance
    (0.002 is about 40 dB under a mean reflectance of 0.2). Values are not clipped.

    Args:
        size: H = W in pixels.
        n_bands: C bands, centres evenly spaced over ``wavelength_range`` (206 gives 10 nm steps).
        rng: the source of randomness.
        wavelength_range: first and last band centre, nm, inside 400-2450 (earthlib's range).
        endmembers: K material names from ``s2lab.spectra.MATERIAL_SPECTRA``.
        noise_std: standard deviation of the added noise, reflectance.
        smoothness: Gaussian sigma of the abundance fields, pixels.
        sharpness: softmax gain; larger gives purer patches.

    Returns:
        ``HyperspectralCube`` with cube (C, H, W), endmembers (K, C), abundances (K, H, W); band coord 1..C,
        ``wavelength`` in nm; ``synthetic=True`` and ``attrs["synthetic"]``, ``attrs["source"] == "mixed"``,
        ``attrs["noise_std"]``.

    Raises:
        ValueError: a size, band count or range out of bounds, or an unknown endmember.
        TypeError: ``rng`` is not a numpy or torch generator.
    """
    gen = as_numpy_generator(rng)
    if size < 2 or n_bands < 2:
        raise ValueError(f"size and n_bands must be at least 2, got size={size}, n_bands={n_bands}")
    lo, hi = wavelength_range
    if not 400.0 <= lo < hi <= 2450.0:
        raise ValueError(f"wavelength_range must lie in 400-2450 nm with first < last, got {wavelength_range}")
    if len(endmembers) < 2 or len(set(endmembers)) != len(endmembers):
        raise ValueError(f"expected at least 2 distinct endmembers, got {endmembers}")
    if noise_std < 0 or smoothness <= 0 or sharpness <= 0:
        raise ValueError(
            f"noise_std must be >= 0, smoothness and sharpness > 0; got {noise_std}, {smoothness}, {sharpness}"
        )
    centres = np.linspace(lo, hi, n_bands)  # (C,)
    m = _endmember_spectra(tuple(endmembers), centres)  # (K, C)
    a = smooth_fractions(len(endmembers), size, gen, smoothness=smoothness, sharpness=sharpness)  # (K, H, W)
    clean = np.einsum("kc,khw->chw", m, a)  # (C, H, W)
    cube = clean + noise_std * gen.standard_normal(clean.shape)  # (C, H, W)
    description = (
        f"SYNTHETIC: {size} x {size} px, {n_bands} bands {lo:g}-{hi:g} nm, linear mixture of real library spectra "
        f"({', '.join(endmembers)}) with smooth abundances and noise std {noise_std:g}"
    )
    return _assemble(
        cube=cube.astype(np.float32),
        endmembers=m.astype(np.float32),
        abundances=a.astype(np.float32),
        names=list(endmembers),
        band=np.arange(1, n_bands + 1),
        wavelength=centres,
        synthetic=True,
        source="mixed",
        description=description,
        attrs={"noise_std": float(noise_std)},
    )


def open_hyperspectral(
    root: str | os.PathLike | None = None, *, rng: np.random.Generator | None = None
) -> HyperspectralCube:
    """Jasper Ridge when it is found, else the mixed cube; ``cube.attrs["source"]`` says which.

    Args:
        root: passed to ``load_jasper_ridge``.
        rng: the randomness of the mixed cube; None uses ``numpy.random.default_rng(0)`` so that the
            fallback is the same cube every time.

    Returns:
        ``HyperspectralCube``: ``attrs["source"]`` is "jasper_ridge" (real, 198 bands) or "mixed"
        (synthetic, ``mixed_cube()``'s defaults).
    """
    if _jasper_ridge_path(root) is not None:
        return load_jasper_ridge(root)
    return mixed_cube(rng=np.random.default_rng(0) if rng is None else rng)
