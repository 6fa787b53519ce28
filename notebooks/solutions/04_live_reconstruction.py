"""Solutions to the exercises of notebook 04, Live reconstruction. Run: python notebooks/solutions/04_live_reconstruction.py"""

import pandas as pd
import torch

from s2lab import exercises, metrics
from s2lab.baselines import FILL_NAMES
from s2lab.data.embedded import open_embedded_scene, split_rows
from s2lab.data.tiles import to_tensor
from s2lab.models import load_model
from s2lab.models.mae import standardize_tokens
from s2lab.reconstruct import reconstruct_tiles
from s2lab.scaling import unscale
from s2lab.sensors import S2_10BANDS
from s2lab.token_baselines import mean_of_visible, neighbourhood_mean

scene = open_embedded_scene(bands=S2_10BANDS)
eval_rows = split_rows(scene.sizes["y"], "eval")
origins = {"town": (1680, 280), "farmland": (1101, 96)}
crops = {}
for label, (top, left) in origins.items():
    assert eval_rows.start <= top and top + 128 <= eval_rows.stop
    crops[label] = to_tensor(scene.isel(y=slice(top, top + 128), x=slice(left, left + 128)))[None]  # (1, C, H, W)
mine = exercises.data("04.1")  # this student's crop, ratio and mask seed
own = to_tensor(scene.isel(y=slice(mine["y0"], mine["y0"] + mine["size"]),
                           x=slice(mine["x0"], mine["x0"] + mine["size"])))  # (C, 128, 128)
del scene
s2mae = load_model("s2mae-s2-small")[0]
satmae = load_model("satmae-s2-small")[0]

# 1. PSNR (in reflectance, peak 1.0) against the mask ratio on the farmland crop. The naive fills need visible
#    neighbours, which grow scarce as the ratio rises: at 0.5 the Gaussian fills beat the model, and the model's lead
#    over the best fill grows with the ratio, largest at the highest ratio tried, because the fills lose their
#    neighbours faster than the model loses its context. The assert checks the trend at the two ends.
sweep = {}
for ratio in (0.5, 0.75, 0.9, 0.95):
    scores = reconstruct_tiles(s2mae, crops["farmland"], mask_ratio=ratio, strategy="random", seed=0)["scores"]
    sweep[ratio] = {name: s["psnr"] for name, s in scores.items()}
sweep = pd.DataFrame(sweep).T
sweep["lead over the best fill"] = sweep["model"] - sweep[list(FILL_NAMES)].max(axis=1)
print(sweep.round(2).to_string())
print("largest lead at ratio", sweep["lead over the best fill"].idxmax())
assert sweep["lead over the best fill"].loc[0.95] > sweep["lead over the best fill"].loc[0.5]
assert (sweep["model"] > sweep["band_mean"]).all()
scores = reconstruct_tiles(s2mae, own[None], mask_ratio=mine["ratio"], strategy="random", seed=mine["seed"])["scores"]
lead = scores["model"]["psnr"] - max(scores[name]["psnr"] for name in FILL_NAMES)
print(f"your crop at ({mine['y0']}, {mine['x0']}), ratio {mine['ratio']}, seed {mine['seed']}: lead {lead:.2f} dB")
assert exercises.check("04.1", lead)

# 2. SatMAE under four strategies, seeds 0-4, town crop, ratio 0.75. It was pretrained with `balanced` (its JSON says
#    "independent", the name of that equal-share draw before the rename). Consistent (tube) masking removes every band
#    group of a position at once, so nothing of the spectrum is left to predict from there: only space helps.
by_strategy = {}
for strategy in ("consistent", "independent", "balanced", "random"):
    runs = [reconstruct_tiles(satmae, crops["town"], mask_ratio=0.75, strategy=strategy, seed=seed)["scores"]["model"]
            for seed in range(5)]
    by_strategy[strategy] = {"PSNR dB": sum(r["psnr"] for r in runs) / 5,
                             "spectral angle deg": sum(r["sam_deg"] for r in runs) / 5}
by_strategy = pd.DataFrame(by_strategy).T
print(by_strategy.round(2))
print("hardest:", by_strategy["PSNR dB"].idxmin())
assert by_strategy["PSNR dB"].idxmin() == "consistent"

# 3. The per-patch normalised target un-normalised with visible statistics: the group's mean over the whole crop
#    (mean_of_visible) against the 3 x 3 neighbours (neighbourhood_mean). Local statistics are much closer. The
#    target lives in the model's scaled space; the PSNR is the yardstick's, in reflectance.
x = crops["town"]
tk = s2mae.tokenizer
grid = (128 // tk.p, 128 // tk.p)
mask = reconstruct_tiles(s2mae, x, mask_ratio=0.75, strategy="random", seed=0)["mask"]
removed = tk.patchify(mask).amax(-1)  # (1, L)
xs, lo, hi = s2mae.scale(x, removed=mask.bool())  # (1, C, H, W) as the model sees it: a window range
#                                                    from the visible values only; lo, hi (1, C, 1, 1)
target = tk.patchify(xs)  # (1, L, P)
z, mean, std = standardize_tokens(target, tk.valid.repeat_interleave(target.shape[1] // tk.G, dim=0))
psnr = {}
for name, fill in (("whole crop (mean_of_visible)", mean_of_visible), ("3 x 3 (neighbourhood_mean)", neighbourhood_mean)):
    guess = z * fill(std, removed, tk.G, grid) + fill(mean, removed, tk.G, grid)  # (1, L, P)
    guess = unscale(tk.unpatchify(torch.where(removed[..., None].bool(), guess, target), 128, 128), lo, hi)
    psnr[name] = metrics.reconstruction_scores(guess, x, mask)["psnr"]
print({k: round(v, 2) for k, v in psnr.items()})
assert psnr["3 x 3 (neighbourhood_mean)"] > psnr["whole crop (mean_of_visible)"]
