"""The ``full_tile`` part: a whole Sentinel-2 tile reconstructed by ``s2lab reconstruct`` in bounded memory.

A Sentinel-2 tile is 10980 x 10980 pixels at 10 m: 4.8 GB as 10 float32 bands, three times that for the input, the
reconstruction and its mask in memory. ``s2lab reconstruct`` reads it and writes its output a band of rows at a
time (``s2lab.windows.image_rows``, ``s2lab.data.export.RowWriter``), so its memory should not grow with the
tile's height. This part measures that: wall time and the command's peak resident memory against
``GOALS["full_tile_gib"]``.

No full tile ships with the lab, so one is made from the embedded real scene (10 x 1947 x 1933 px): the scene
mirrored across its edges as often as needed to fill 10980 x 10980 px (``make_full_tile``), on the scene's own
grid origin and CRS, written as uint16 digital numbers (reflectance x 10000, as in an L1C product) in 512 px
tiles, as a cloud-optimised GeoTIFF lays them out, a row of tiles at a time. Its pixels are real Sentinel-2 values, its layout a mirrored mosaic of one scene.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from s2lab.bench.measure import GOALS, run_measured
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.dn import DN_SCALE
from s2lab.data.export import RowWriter
from s2lab.data.tiles import reflect_index

TILE = 10980  # pixels per side of a Sentinel-2 tile at 10 m
ROWS = 512  # rows written at a time by make_full_tile, and the side of its tiles


def make_full_tile(path: str | os.PathLike, size: int = TILE) -> Path:
    """Write a (10, size, size) uint16 GeoTIFF: the embedded scene mirrored across its edges to ``size`` px a side.

    Returns:
        The path written.
    """
    scene = open_embedded_scene()  # (10, 1947, 1933) reflectance
    dn = np.rint(np.nan_to_num(scene.values) * DN_SCALE).clip(1, 65535).astype(np.uint16)  # (C, H, W)
    rows, cols = reflect_index(dn.shape[1], size).numpy(), reflect_index(dn.shape[2], size).numpy()
    like = xr.DataArray(np.broadcast_to(np.uint16(0), (size, size)), dims=("y", "x"))  # the grid, no pixels
    like = like.rio.write_crs(scene.rio.crs).rio.write_transform(scene.rio.transform())
    names = [str(b) for b in scene["band"].values]
    with RowWriter(path, like, names, dtype="uint16", block=ROWS) as writer:  # tiled like a COG
        for start in range(0, size, ROWS):
            writer.write(start, dn[:, rows[start : start + ROWS]][:, :, cols])
    return Path(path)


def full_tile(*, size: int = TILE, device: str = "auto", timeout: float = 3600.0) -> dict:
    """``s2lab reconstruct`` on a made full-size tile in a child process: wall time and peak memory.

    Args:
        size: the tile's side in pixels (tests use a small one).
        device: the command's ``--device``.
        timeout: seconds before the command is killed.

    Returns:
        ``{"input", "shape", "make_s", "file_gib", "reconstruct", "goal"}``; ``reconstruct`` holds the command,
        returncode, wall_s, cpu_s, peak_gib, its report (windows, seconds, the model's and the best baseline's MSE)
        and whether its peak memory meets the goal.
    """
    goal = GOALS["full_tile_gib"]
    with tempfile.TemporaryDirectory(prefix="s2lab-bench-tile-") as tmp:
        tile_path, out_path = Path(tmp) / "tile.tif", Path(tmp) / "reconstruction.tif"
        made = run_measured([sys.executable, "-c", "import sys; from s2lab.bench.full_tile import make_full_tile; "
                             "make_full_tile(sys.argv[1], int(sys.argv[2]))", str(tile_path), str(size)],
                            timeout=timeout)
        if made["returncode"] != 0:
            raise RuntimeError(f"making the {size} x {size} px tile failed: {made['stderr']}")
        args = ["reconstruct", str(tile_path), "-o", str(out_path)]
        measured = run_measured([sys.executable, "-m", "s2lab", *args, "--json", "--quiet", "--device", device],
                                timeout=timeout)
        report = json.loads(measured.pop("stdout")) if measured["returncode"] == 0 else None
        entry = {"command": f"s2lab reconstruct <{size} x {size} px tile> -o <file>", **measured}
        if report is not None:
            entry["stderr"] = ""
            entry["report"] = {k: report.get(k) for k in ("model", "shape", "windows", "seconds", "device", "mse",
                                                          "best_baseline", "model_to_best")}
            entry["output_gib"] = round(out_path.stat().st_size / 2**30, 3)
        entry["meets_goal"] = bool(report is not None and measured["peak_gib"] <= goal)
        return {"input": f"the embedded scene mirrored to 10 x {size} x {size} px, uint16 DN",
                "shape": [10, size, size], "make_s": made["wall_s"], "file_gib": round(tile_path.stat().st_size / 2**30, 3),
                "reconstruct": entry, "goal": {"peak_gib": goal}}
