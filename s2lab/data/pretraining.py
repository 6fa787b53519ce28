"""The real images pretraining draws its tiles from: the embedded scene (or one half of it), the OSCD cities,
BigEarthNet's patches, user rasters; each a (C, H, W) float32 reflectance tensor without nodata.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from s2lab.data.bigearthnet import bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.oscd import load_oscd_city, oscd_cities
from s2lab.data.raster import RASTER_SUFFIXES, band_files, open_raster
from s2lab.data.tiles import to_tensor
from s2lab.sensors import S2_10BANDS


NAMED_SOURCES = ("embedded", "embedded:train", "embedded:eval", "oscd", "bigearthnet")  # the sets s2lab reads itself


def raster_paths(path: Path) -> list[Path]:
    """A raster file, a folder of band files (one image), or a folder of multi-band rasters (one image each)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; expected 'embedded', 'oscd', a GeoTIFF or a folder of them")
    if path.is_file() or band_files(path):
        return [path]
    found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"{path} holds no band files (*_B02.tif ...) and no GeoTIFFs")
    return found


def refuse_nodata(x: torch.Tensor, what: str) -> torch.Tensor:
    """x (C, H, W), refused when it holds nodata: training tiles must be whole (the tasks check theirs too)."""
    nan = int(torch.isnan(x).sum())
    if nan:
        raise ValueError(f"{what} holds {nan} nodata (NaN) pixels; crop or fill them before pretraining on it")
    return x


def pretraining_images(
    sources: Sequence[str | os.PathLike] = ("embedded",), bands: Sequence[str] = S2_10BANDS, *,
    dn_offset: float | None = None,
) -> list[torch.Tensor]:
    """The real images pretraining draws its tiles from.

    Args:
        sources: any of ``"embedded"`` (the embedded Sentinel-2 scene; ``"embedded:train"`` / ``"embedded:eval"`` its
            top / bottom half, see ``s2lab.data.embedded.split_rows``), ``"oscd"`` (both dates of every OSCD city
            found by ``settings.data_dir("oscd")``, labelled or not), ``"bigearthnet"`` (the Sentinel-2 side of every
            BigEarthNet patch ``s2lab.data.bigearthnet.bigearthnet_patches()`` finds: the 6 real patches of
            ``bigearthnet-common`` by default, 120 x 120 px, L2A), a GeoTIFF, a folder of one-GeoTIFF-per-band
            files, or a folder of multi-band GeoTIFFs.
        bands: the C bands to read, in this order.
        dn_offset: the DN offset of the raster paths among ``sources`` (``s2lab.data.raster.open_raster``; None:
            each file's own, else 0). The named sets are read as they ship.

    Returns:
        A list of (C, H, W) float32 reflectance tensors, sizes differing from image to image.

    Raises:
        FileNotFoundError: a path that does not exist, or "oscd" without OSCD data.
        RasterError: a file that is not a raster or lacks a band. ValueError: an image with nodata.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not sources:
        raise ValueError("no pretraining data given; expected 'embedded', 'oscd' or raster paths")
    images: list[torch.Tensor] = []
    for source in sources:
        if source in NAMED_SOURCES[:3]:
            scene = to_tensor(open_embedded_scene(bands))
            if ":" in source:
                scene = scene[:, split_rows(scene.shape[1], source.split(":")[1])]
            images.append(refuse_nodata(scene, f"the embedded scene ({source})"))
        elif source == "oscd":
            for city in oscd_cities():
                pair = load_oscd_city(city, bands=bands)
                images += [refuse_nodata(to_tensor(pair.before), f"OSCD {city} before"),
                           refuse_nodata(to_tensor(pair.after), f"OSCD {city} after")]
        elif source == "bigearthnet":
            images += [refuse_nodata(to_tensor(load_bigearthnet_patch(name, bands=bands).s2), f"BigEarthNet {name}")
                       for name in bigearthnet_patches()]
        else:
            images += [refuse_nodata(to_tensor(open_raster(p, bands=bands, dn_offset=dn_offset)), str(p))
                       for p in raster_paths(Path(source))]
    return images
