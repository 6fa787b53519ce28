"""Solutions to the exercises of notebook 00, Meet the data. Run: python notebooks/solutions/00_meet_the_data.py"""

import tempfile
from pathlib import Path

import numpy as np

from s2lab import exercises

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.raster import open_raster
from s2lab.data.synthetic import COVERS, cover_map
from s2lab.sensors import S2_10BANDS, S2_13BANDS

scene = open_embedded_scene(bands=S2_13BANDS)
view = scene.isel(y=slice(None, None, 4), x=slice(None, None, 4))

# 1. Agriculture (B11, B08, B02) and SWIR (B12, B8A, B04) composites; view them with plt.imshow(composite).
#    Which separates marsh from forest better, measured: take the marsh and forest pixels of the lab's cover map
#    (s2lab.data.synthetic.cover_map, thresholds on NDVI, NDWI, B04, B08 and B11) and, in each stretched composite,
#    the distance between the two classes' mean colours (0 = the same colour, sqrt(3) = black against white).
#    The agriculture composite wins. Both put a NIR band in green (B08 or B8A), where forest is bright and marsh
#    dark, and that channel carries most of the gap in both. The rest decides: B11 (red) is darker over the wet marsh
#    than over forest and B02 (blue) brighter, whereas B12 hardly differs between them and B04 less than B02.
#    (The cover map itself uses B08 and B11, so part of the gap is by construction; the ranking is what to read.)
cover = cover_map(view).values  # (H, W) codes of COVERS
classes = {name: cover == COVERS.index(name) for name in ("marsh", "forest")}
gaps = {}
for label, names in {"agriculture": ["B11", "B08", "B02"], "SWIR": ["B12", "B8A", "B04"]}.items():
    rgb = view.sel(band=names).values
    lo, hi = np.nanpercentile(rgb, [2, 98], axis=(1, 2), keepdims=True)
    composite = np.clip((rgb - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)  # (H, W, 3), ready for plt.imshow
    marsh, forest = (composite[where].mean(axis=0) for where in classes.values())  # (3,) mean colour each
    gaps[label] = float(np.linalg.norm(marsh - forest))
    print(f"{label} {names}: marsh {marsh.round(2)}, forest {forest.round(2)}, per channel "
          f"{ {n: round(float(d), 2) for n, d in zip(names, marsh - forest)} }, distance {gaps[label]:.3f}")
print("separates marsh from forest better:", max(gaps, key=gaps.get))
assert gaps["agriculture"] > gaps["SWIR"]

# 2. Spread per band. B10 (1374 nm) sits in a water-vapour absorption band: the ground is hidden, only
#    high cirrus would show, so it is nearly constant on a clear day.
spread = view.std(dim=("y", "x")).to_series().sort_values()
print("spread per band:\n", spread.round(4))
assert spread.index[0] == "B10"
mine = exercises.data("00.2")  # this student's 512 x 512 crop of the 13 bands
crop = scene.isel(y=slice(mine["y0"], mine["y0"] + mine["size"]), x=slice(mine["x0"], mine["x0"] + mine["size"]))
crop_spread = crop.std(dim=("y", "x")).to_series()
print(f"your crop at ({mine['y0']}, {mine['x0']}): largest spread {crop_spread.idxmax()}, "
      f"smallest {crop_spread.idxmin()}")
assert exercises.check("00.2", (crop_spread.idxmax(), crop_spread.idxmin()))

# 3. uint16 digital numbers round trip: rounding to the nearest DN costs at most 0.5e-4 of reflectance.
part = open_embedded_scene(bands=S2_10BANDS).isel(y=slice(0, 512), x=slice(0, 512))
with tempfile.TemporaryDirectory() as folder:
    path = write_geotiff(part * 10000, Path(folder) / "dn.tif", like=part, dtype="uint16")
    back = open_raster(path)  # uint16 -> divided by 10000 again
    assert back.rio.crs == part.rio.crs and back.rio.transform() == part.rio.transform()
    assert float(abs(back - part.values).max()) <= 0.5e-4 + 1e-7
    print("max |difference|:", float(abs(back - part.values).max()))
