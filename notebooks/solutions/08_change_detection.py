"""Solutions to the exercises of notebook 08, Change detection. Run: python notebooks/solutions/08_change_detection.py

Uses OSCD where ``s2lab.settings.data_dir("oscd")`` finds it (set S2LAB_DATA_DIR or S2LAB_OSCD_DIR), otherwise
SYNTHETIC pairs planted into the real embedded scene's held-out half.
"""

import numpy as np
import pandas as pd
import torch

from s2lab import exercises
from s2lab.change import change_map_cva, detect_change
from s2lab.cva import change_vector_analysis, otsu_threshold
from s2lab.evaluate import score_change
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.oscd import load_oscd_city
from s2lab.data.synthetic import PlantConfig, plant_changes, scene_radiometry
from s2lab.models import load_model
from s2lab.settings import data_dir

SIZE = 256
scene = open_embedded_scene()
held_out = scene.isel(y=split_rows(scene.sizes["y"], "eval"))
reference = scene_radiometry(scene)


def synthetic_pair(row: int, col: int, seed: int):
    """A SYNTHETIC pair: a crop of the held-out half with real library spectra planted into it."""
    crop = held_out.isel(y=slice(row, row + SIZE), x=slice(col, col + SIZE))
    return plant_changes(crop, n=10, rng=np.random.default_rng(seed), reference=reference)


if data_dir("oscd") is not None:
    city = load_oscd_city("nantes")
    rows, cols = slice(64, 64 + SIZE), slice(128, 128 + SIZE)
    before, after, label = city.before.isel(y=rows, x=cols), city.after.isel(y=rows, x=cols), city.label.isel(y=rows, x=cols)
    what = "OSCD nantes crop"
else:
    planted = synthetic_pair(100, 300, 8)
    before, after, label = planted.before, planted.after, planted.label
    what = "SYNTHETIC crop"

# 1. CVA without standardising: a date-wide difference of brightness (sun, atmosphere, calibration, season) adds to
#    every pixel's change vector, so the magnitude histogram is no longer "most pixels near 0" and Otsu's cut moves.
#    Standardising each date's bands removes such global gains and offsets; only local change is left.
scores = {}
for normalize in (True, False):
    magnitude = change_vector_analysis(torch.as_tensor(before.values), torch.as_tensor(after.values), normalize=normalize)
    scaled = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
    scores[f"normalize={normalize}"] = score_change(scaled, label, otsu_threshold(scaled))
print(f"1. CVA + Otsu on the {what}:\n", pd.DataFrame(scores).T.round(3))
library = change_map_cva(before, after)
assert abs(score_change(library.probability, label, library.threshold)["f1"] - scores["normalize=True"]["f1"]) < 1e-9
mine = exercises.data("08.1")  # this student's crop of the held-out half and planting seed
own = plant_changes(held_out.isel(y=slice(mine["row"], mine["row"] + mine["size"]),
                                  x=slice(mine["col"], mine["col"] + mine["size"])),
                    n=mine["n"], rng=np.random.default_rng(mine["plant_seed"]), reference=reference)
own_f1 = []
for normalize in (True, False):
    magnitude = change_vector_analysis(torch.as_tensor(own.before.values), torch.as_tensor(own.after.values),
                                       normalize=normalize)
    scaled = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
    own_f1.append(score_change(scaled, own.label, otsu_threshold(scaled))["f1"])
print(f"   your SYNTHETIC pair at ({mine['row']}, {mine['col']}): F1 standardised {own_f1[0]:.3f}, raw {own_f1[1]:.3f}")
assert exercises.check("08.1", tuple(own_f1))

# 2. The other held-out city: the shipped default map (the model alone, or blended with CVA, as the training cities
#    chose), at its threshold from the training cities; the model alone at its own threshold beside it.
model, info = load_model("change-oscd-small")
meta = info["meta"]
if data_dir("oscd") is not None:
    other = load_oscd_city("abudhabi")
    before2, after2, label2, what2 = other.before, other.after, other.label, "OSCD abudhabi (whole city)"
else:
    planted2 = synthetic_pair(500, 900, 3)
    before2, after2, label2, what2 = planted2.before, planted2.after, planted2.label, "SYNTHETIC crop 2"
default = detect_change(model, meta, before2, after2)  # meta: its normalisation, method and threshold
maps = {f"default ({default.method}) at t = {default.threshold:.3f}": default}
if default.method != "model":
    alone = detect_change(model, meta, before2, after2, blend=False)
    maps[f"model alone at t = {alone.threshold:.3f}"] = alone
maps["CVA + Otsu"] = change_map_cva(before2, after2)
table = pd.DataFrame({name: score_change(m.probability, label2, m.threshold) for name, m in maps.items()}).T
print(f"\n2. {what2}:\n", table.round(3))
assert table["f1"].between(0, 1).all()

# 3. CVA per kind of planted change (always SYNTHETIC): the share of each region's pixels CVA finds (recall).
#    At full strength every kind is found almost whole: the planted spectra differ from the covers they replace by
#    0.05-0.3 in several bands, far above the after-date noise (0.002), so every region's change vector is long.
#    Faint (each planted pixel keeps 85-95 % of the original), recall spreads within every kind, and the kind does
#    not decide it: CVA knows no kinds, only the length of each pixel's change vector. A region is found where its
#    magnitude clears the crop's Otsu cut (region mean / cut above 1), missed where it does not, whatever its kind.
#    Real pairs are harder still (exercise 2): there most differences are changes nobody labelled.
per_region = []
for strength, config in {"full": PlantConfig(), "faint": PlantConfig(blend=(0.85, 0.95))}.items():
    planted3 = plant_changes(held_out.isel(y=slice(100, 100 + SIZE), x=slice(300, 300 + SIZE)), n=12,
                             rng=np.random.default_rng(11), reference=reference, config=config)
    cva3 = change_map_cva(planted3.before, planted3.after)
    found, magnitude = cva3.change().values.astype(bool), cva3.probability.values  # (H, W) each
    regions = planted3.regions.values
    for k, kind in enumerate(planted3.kinds, start=1):
        inside = regions == k
        per_region.append({"strength": strength, "kind": kind, "pixels": int(inside.sum()),
                           "recall": float(found[inside].mean()),
                           "mean magnitude / cut": float(magnitude[inside].mean() / cva3.threshold)})
per_region = pd.DataFrame(per_region)
print("\n3. SYNTHETIC: CVA recall per kind\n", per_region.pivot_table(index="kind", columns="strength", values="recall",
                                                                        aggfunc="mean").round(3))
print("   faint, region by region:\n", per_region[per_region["strength"] == "faint"].sort_values("mean magnitude / cut")
      .round(3).to_string(index=False))
assert per_region["recall"].between(0, 1).all()
assert (per_region[per_region["strength"] == "full"]["recall"] > 0.9).all()
