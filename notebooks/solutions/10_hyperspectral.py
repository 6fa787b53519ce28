"""Solutions to the exercises of notebook 10, Hyperspectral. Run: python notebooks/solutions/10_hyperspectral.py

Uses the real Jasper Ridge cube where ``s2lab.settings.data_dir("hyperspectral")`` finds it, else the synthetic
mixed cube (the printout says which).
"""

import numpy as np
import pandas as pd
import scipy.optimize
import torch

from s2lab import exercises
from s2lab.baselines import fill_all
from s2lab.data.embedded import split_rows
from s2lab.data.hyperspectral import open_hyperspectral
from s2lab.data.tiles import tile, to_tensor
from s2lab.masking import random_masking
from s2lab.metrics import masked_token_mse
from s2lab.sensors import S2_10BANDS, wavelengths
from s2lab.data.pretraining import pretraining_images
from s2lab.tokenize import CubeTokenizer

hs = open_hyperspectral()
print(hs.description, "| synthetic:", hs.synthetic)
nm = hs.cube["wavelength"].values  # (C,)
names = [str(n) for n in hs.endmembers["endmember"].values]


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


# 2. Fewer bands: unmix with every 10th band, and with the bands nearest Sentinel-2's centres.
def project_simplex(V: np.ndarray) -> np.ndarray:
    U = -np.sort(-V, axis=0)
    cumsum = np.cumsum(U, axis=0) - 1.0
    count = (U - cumsum / np.arange(1, V.shape[0] + 1)[:, None] > 0).sum(axis=0)
    return np.maximum(V - cumsum[count - 1, np.arange(V.shape[1])] / count, 0.0)


def fcls(Y: np.ndarray, M: np.ndarray, iterations: int = 300) -> np.ndarray:
    G, B = M @ M.T, M @ Y
    step = 1.0 / np.linalg.eigvalsh(G).max()
    A = project_simplex(np.linalg.lstsq(M.T, Y, rcond=None)[0])
    Z, t = A.copy(), 1.0
    for _ in range(iterations):
        A_next = project_simplex(Z - step * (G @ Z - B))
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Z, A, t = A_next + (t - 1) / t_next * (A_next - A), A_next, t_next
    return A


Y = hs.cube.values.reshape(len(nm), -1).astype(np.float64)  # (C, HW)
M = hs.endmembers.values.astype(np.float64)  # (K, C)
A_ref = hs.abundances.values.reshape(len(names), -1).astype(np.float64)
subsets = {
    f"all {len(nm)} bands": np.arange(len(nm)),
    "every 10th band": np.arange(0, len(nm), 10),
    "10 nearest Sentinel-2": np.array([np.abs(nm - w).argmin() for w in wavelengths(S2_10BANDS)]),
}
rmse = {}
for name, idx in subsets.items():
    A = fcls(Y[idx], M[:, idx])
    rmse[name] = {**dict(zip(names, np.sqrt(((A - A_ref) ** 2).mean(axis=1)))), "all": np.sqrt(((A - A_ref) ** 2).mean())}
rmse = pd.DataFrame(rmse).T
print(rmse.round(4))
# With four endmembers, even 10 well-placed bands pin the fractions down nearly as well as all of them: unmixing needs
# at least K bands that separate the spectra, and extra bands mostly average the noise. Which endmembers suffer
# depends on where the remaining bands are (the Sentinel-2 set has no band between 950 and 1550 nm).
assert np.isfinite(rmse.values).all() and (rmse["all"] < 0.5).all()


# 3. Endmembers without a reference: ATGP, matched to the reference spectra by spectral angle.
def atgp(Y: np.ndarray, K: int) -> list[int]:
    """Indices of K pixels of Y (C, n): the largest norm, then each time the largest residual orthogonal to those chosen."""
    chosen = [int(np.argmax((Y**2).sum(axis=0)))]
    for _ in range(K - 1):
        U = Y[:, chosen]  # (C, k)
        residual = Y - U @ np.linalg.lstsq(U, Y, rcond=None)[0]  # (C, n)
        chosen.append(int(np.argmax((residual**2).sum(axis=0))))
    return chosen


found = Y[:, atgp(Y, len(names))].T  # (K, C)

def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


angles = np.degrees(np.arccos(np.clip(unit(M) @ unit(found).T, -1, 1)))  # (K reference, K found)
ref_index, found_index = scipy.optimize.linear_sum_assignment(angles)
M_found = found[found_index]  # (K, C) in the reference's order
A_found = fcls(Y, M_found)
print("spectral angle of each found endmember to its reference (deg):",
      dict(zip(names, angles[ref_index, found_index].round(1))))
print(f"abundance RMSE with ATGP endmembers {np.sqrt(((A_found - A_ref) ** 2).mean()):.4f}, "
      f"with the reference endmembers {np.sqrt(((fcls(Y, M) - A_ref) ** 2).mean()):.4f}")
# ATGP picks the most extreme pixels, which are pure only if pure pixels exist and are not outliers; where a picked
# pixel is a bright outlier or a mixture, its angle to the reference is large and the abundances drift.
assert np.allclose(A_found.sum(axis=0), 1) and (A_found >= 0).all()

# 4. Unmixing this student's window with every step-th band only (section 4's FCLS on fewer, coarser-spaced bands).
mine = exercises.data("10.4")
rows, cols = slice(mine["row"], mine["row"] + mine["size"]), slice(mine["col"], mine["col"] + mine["size"])
window = hs.cube.values[:, rows, cols].reshape(len(nm), -1).astype(np.float64)  # (C, n) all bands
fewer = fcls(window[::mine["step"]], M[:, ::mine["step"]])  # (K, n)
every = fcls(window, M)
own = dict(zip(names, fewer.mean(axis=1)))
print(f"4. window at ({mine['row']}, {mine['col']}), one band in {mine['step']} ({len(nm[::mine['step']])} bands): "
      + ", ".join(f"{n} {v:.3f}" for n, v in own.items())
      + f"; largest change from all {len(nm)} bands {np.abs(fewer.mean(axis=1) - every.mean(axis=1)).max():.3f}")
# With four endmembers a few dozen bands, or even ten, pin the mean fractions of a window down to a few hundredths:
# the endmember spectra differ over broad stretches of the spectrum, and extra bands mostly average the noise.
assert exercises.check("10.4", own)
