"""Solutions to the exercises of notebook 00, Meet the data. Run: python notebooks/solutions/00_meet_the_data.py"""

import tempfile
from pathlib import Path

import numpy as np

from s2lab import exercises

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.raster import open_raster
from s2lab.sensors import S2_10BANDS, S2_13BANDS

scene = open_embedded_scene(bands=S2_13BANDS)
view = scene.isel(y=slice(None, None, 4), x=slice(None, None, 4))

# 1. Agriculture (B11, B08, B02) and SWIR (B12, B8A, B04) composites; view them with plt.imshow(composite).
#    Wet marsh is dark in B11 / B12, forest bright in B08 / B8A; compare the two pictures by eye.
for names in (["B11", "B08", "B02"], ["B12", "B8A", "B04"]):
    rgb = view.sel(band=names).values
    lo, hi = np.nanpercentile(rgb, [2, 98], axis=(1, 2), keepdims=True)
    composite = np.clip((rgb - lo) / (hi - lo), 0, 1).transpose(1, 2, 0)  # (H, W, 3), ready for plt.imshow
    assert composite.shape[-1] == 3

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
