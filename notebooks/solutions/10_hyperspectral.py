"""Solutions to the exercises of notebook 10, Hyperspectral: one model for any band count.
Run: python notebooks/solutions/10_hyperspectral.py

Uses the real Jasper Ridge cube where ``s2lab.settings.data_dir("hyperspectral")`` finds it, else the synthetic
mixed cube (the printout says which). Exercise 2 trains the notebook's tiny model for 150 steps on the embedded
scene's top half (S2LAB_SOLUTIONS_QUICK=1, which tests/test_solutions.py sets: 60 steps).
"""

import math
import os

import numpy as np
import pandas as pd
import torch

from s2lab import exercises, spectra
from s2lab.baselines import fill_all
from s2lab.data.embedded import split_rows
from s2lab.data.hyperspectral import open_hyperspectral
from s2lab.data.tiles import tile, to_tensor
from s2lab.masking import random_masking
from s2lab.metrics import masked_token_mse
from s2lab.models import S2MAE
from s2lab.reconstruct import reconstruct_tiles
from s2lab.sensors import S2_10BANDS, wavelengths
from s2lab.data.pretraining import pretraining_images
from s2lab.tasks import pretrain_task
from s2lab.tokenize import CubeTokenizer
from s2lab.train import TrainConfig, fit

hs = open_hyperspectral()
print(hs.description, "| synthetic:", hs.synthetic)
nm = hs.cube["wavelength"].values  # (C,)


# 1. A spectral baseline: fill a removed token from the visible tokens at the same position in groups g - 1, g + 1.
def spectral_neighbour(tokens: torch.Tensor, mask: torch.Tensor, G: int, fallback: torch.Tensor) -> torch.Tensor:
    """tokens (B, L, P), mask (B, L) 1 = removed, fallback (B, L, P) -> (B, L, P), visible tokens unchanged."""
    B, L, P = tokens.shape
    t = tokens.view(B, G, L // G, P)
    seen = (1 - mask).view(B, G, L // G, 1).to(tokens.dtype)
    total, count = torch.zeros_like(t), torch.zeros_like(seen)
    total[:, 1:] += (t * seen)[:, :-1]  # the group below
    count[:, 1:] += seen[:, :-1]
    total[:, :-1] += (t * seen)[:, 1:]  # the group above
    count[:, :-1] += seen[:, 1:]
    fill = torch.where(count > 0, total / count.clamp_min(1), fallback.view(B, G, L // G, P))
    return torch.where(mask.view(B, G, L // G, 1).bool(), fill, t).view(B, L, P)


def baseline_scores(x: torch.Tensor, ratio: float = 0.75, p: int = 8, s: int = 2) -> dict:
    """Masked-token MSE in reflectance of every naive fill, spatial and spectral, on tiles x (B, C, H, W)."""
    tk = CubeTokenizer(patch_size=p, bands_per_token=s, in_chans=x.shape[1])
    hw = (x.shape[2] // p, x.shape[3] // p)
    tokens = tk.patchify(x)  # (B, L, P) reflectance
    mask = random_masking(len(x), tk.G, hw[0] * hw[1], ratio, generator=torch.Generator().manual_seed(0)).mask
    mask_img = tk.unpatchify(mask[..., None].expand(-1, -1, tk.P).contiguous(), x.shape[2], x.shape[3])
    guesses = {k: tk.patchify(v) for k, v in fill_all(x, mask_img, tk).items()}  # the lab's spatial fills
    guesses["spectral neighbour"] = spectral_neighbour(tokens, mask, tk.G, guesses["nearest"])
    return {k: masked_token_mse(v, tokens, mask, tk.valid) for k, v in guesses.items()}


cube = to_tensor(hs.cube)  # (C, H, W)
hs_eval, _ = tile(cube[:, split_rows(cube.shape[1], "eval")], 32)  # (8, C, 32, 32), as in the notebook
s2_eval = pretraining_images(["embedded:eval"])[0]
s2_tiles, _ = tile(s2_eval[:, :256, :256], 32)  # (64, 10, 32, 32) real Sentinel-2, bottom half
table = pd.DataFrame({"cube": baseline_scores(hs_eval), "Sentinel-2": baseline_scores(s2_tiles)})
print(table.to_string(float_format="{:.2e}".format))
# On the cube, neighbouring groups are ~20 nm apart and almost the same image: the spectral neighbour wins by far.
# On Sentinel-2, neighbouring groups are far apart in wavelength (e.g. B8A vs B11/B12): copying their reflectance
# does worse than any spatial fill.
# Hyperspectral bands are redundant; a reconstruction score on a cube must be read against a spectral baseline.
assert table.loc["spectral neighbour", "cube"] < table["cube"].drop("spectral neighbour").min()
ratio_cube = table.loc["spectral neighbour", "cube"] / table["cube"].drop("spectral neighbour").min()
ratio_s2 = table.loc["spectral neighbour", "Sentinel-2"] / table["Sentinel-2"].drop("spectral neighbour").min()
assert ratio_cube < ratio_s2


# 2. The scene or the bands: the S2-trained model on Sentinel-2 tiles, on the cube seen through Sentinel-2's bands,
# and on the cube's own bands. The model, its training and the held-out tiles are the notebook's.
STEPS = 60 if os.environ.get("S2LAB_SOLUTIONS_QUICK") == "1" else 150
S2_NM = wavelengths(S2_10BANDS)  # (10,)
TINY = {"img_size": 32, "patch_size": 8, "bands_per_token": 2, "embed_dim": 64, "depth": 2, "num_heads": 4,
        "decoder_embed_dim": 48, "decoder_depth": 1, "decoder_num_heads": 4, "pos_embed": "wavelength",
        "scaling": "window"}
with torch.random.fork_rng():
    torch.manual_seed(0)
    model = S2MAE(in_chans=10, wavelengths=tuple(S2_NM), **TINY)
draw_eval, _ = pretrain_task(model, [s2_eval], batch_size=16, img_size=32)
s2_held_out = draw_eval(0, torch.Generator().manual_seed(1))  # (16, 10, 32, 32), the notebook's held-out tiles
batch_fn, loss_fn = pretrain_task(model, pretraining_images(["embedded:train"]), batch_size=16, img_size=32,
                                  mask_ratio=(0.6, 0.9))
fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=TrainConfig(steps=STEPS, lr=1e-3, warmup_steps=STEPS // 10))

C, H, W = cube.shape
as_s2 = spectra.resample(cube.reshape(C, -1).T.numpy(), S2_10BANDS, wavelength=nm)  # (H W, 10) band-averaged
cube_s2 = torch.from_numpy(as_s2.values.T.reshape(len(S2_10BANDS), H, W).copy()).float()  # (10, H, W)
cube_s2_eval, _ = tile(cube_s2[:, split_rows(H, "eval")], 32)  # (8, 10, 32, 32): the windows of hs_eval


def against_fills(m: S2MAE, x: torch.Tensor) -> dict:
    """Masked MSE in reflectance of m and of the best naive fill at 75 % masking (seed 0), as the notebook scores."""
    result = reconstruct_tiles(m, x, mask_ratio=0.75, seed=0)["scores"]
    fill = min(v["mse"] for k, v in result.items() if k != "model")
    return {"model MSE": result["model"]["mse"], "best fill MSE": fill, "model / fill": result["model"]["mse"] / fill}


separated = pd.DataFrame({"Sentinel-2 tiles (10 bands)": against_fills(model, s2_held_out),
                          "cube through Sentinel-2's bands (10)": against_fills(model, cube_s2_eval),
                          f"cube, its own bands ({C})": against_fills(model.for_bands(nm), hs_eval)}).T
print(f"after {STEPS} steps on Sentinel-2:\n{separated.to_string(float_format='{:.3g}'.format)}")
# In the full run (150 steps) the ratio is 1.67 on Sentinel-2 tiles, 1.53 on the cube through Sentinel-2's bands and
# 1.37 on the cube's 198 bands: neither the other scene nor the other bands puts the model further behind the fills.
# The ratio compares the model with fills on the same image, so it also moves with how hard each image is for the
# fills: the best fill's MSE on the cube through Sentinel-2's bands is about 30 times its MSE on Sentinel-2 tiles.
# That the weights run on the cube and keep their distance to the fills is not yet transfer: section 3 of the notebook
# adapts them on the cube's top half.
assert np.isfinite(separated.values).all()


# 3. Your own sensor: groups, tokens and the codes of the nearest groups wholly on either side of the removed window.
mine = exercises.data("10.3")
low, high = mine["removed_nm"]
sensor_nm = mine["first_nm"] + mine["step_nm"] * np.arange(mine["channels"])
sensor_nm = sensor_nm[(sensor_nm < low) | (sensor_nm > high)]  # (C,) kept bands
s = mine["s"]
G = math.ceil(len(sensor_nm) / s)
L = G * (mine["tile"] // mine["p"]) ** 2
sensor_model = S2MAE(in_chans=10, wavelengths=tuple(S2_NM), **{**TINY, "bands_per_token": s}).for_bands(sensor_nm)
means = sensor_model.group_wavelengths()  # (G,) nm
codes = sensor_model.pos.spectral_table(means)  # (G, D_spec), D_spec = 64 / 4 = 16
below = max(g for g in range(G) if sensor_nm[g * s:(g + 1) * s].max() < low)  # the last group wholly below the window
above = min(g for g in range(G) if sensor_nm[g * s:(g + 1) * s].min() > high)  # the first group wholly above it
similarity = float(torch.nn.functional.cosine_similarity(codes[below], codes[above], dim=0))
print(f"3. {len(sensor_nm)} kept bands, s = {s}: G = {G}, L = {L} for a {mine['tile']} px tile; code similarity of "
      f"groups {below} and {above} across the window {similarity:.3f}")
for g in range(below + 1, above):  # the group straddling the window, if there is one
    print(f"   group {g} straddles the window {low}-{high} nm: its mean wavelength is {float(means[g]):.1f} nm")
assert sensor_model.tokenizer.G == G
assert exercises.check("10.3", (G, L, similarity))
