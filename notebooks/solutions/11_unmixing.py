"""Solutions to the exercises of notebook 11, Linear unmixing. Run: python notebooks/solutions/11_unmixing.py

Uses the real Jasper Ridge cube where ``s2lab.settings.data_dir("hyperspectral")`` finds it, else the synthetic
mixed cube (the printout says which).
"""

import numpy as np
import pandas as pd
import scipy.optimize

from s2lab import exercises
from s2lab.data.hyperspectral import open_hyperspectral
from s2lab.sensors import S2_10BANDS, wavelengths

hs = open_hyperspectral()
print(hs.description, "| synthetic:", hs.synthetic)
nm = hs.cube["wavelength"].values  # (C,)
names = [str(n) for n in hs.endmembers["endmember"].values]


# 1. Fewer bands: unmix with every 10th band, and with the bands nearest Sentinel-2's centres.
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
# at least K - 1 bands that separate the spectra (K - 1 equations and the sum-to-one row), and extra bands mostly
# average the noise. Which endmembers suffer depends on where the remaining bands are (the Sentinel-2 set has no band
# between 950 and 1550 nm).
assert np.isfinite(rmse.values).all() and (rmse["all"] < 0.5).all()


# 2. Endmembers without a reference: ATGP, matched to the reference spectra by spectral angle.
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

# 3. Unmixing this student's window with every step-th band only (section 2's FCLS on fewer, coarser-spaced bands).
mine = exercises.data("11.3")
rows, cols = slice(mine["row"], mine["row"] + mine["size"]), slice(mine["col"], mine["col"] + mine["size"])
window = hs.cube.values[:, rows, cols].reshape(len(nm), -1).astype(np.float64)  # (C, n) all bands
fewer = fcls(window[::mine["step"]], M[:, ::mine["step"]])  # (K, n)
every = fcls(window, M)
own = dict(zip(names, fewer.mean(axis=1)))
print(f"3. window at ({mine['row']}, {mine['col']}), one band in {mine['step']} ({len(nm[::mine['step']])} bands): "
      + ", ".join(f"{n} {v:.3f}" for n, v in own.items())
      + f"; largest change from all {len(nm)} bands {np.abs(fewer.mean(axis=1) - every.mean(axis=1)).max():.3f}")
# With four endmembers a few dozen bands, or even ten, pin the mean fractions of a window down to a few hundredths:
# the endmember spectra differ over broad stretches of the spectrum, and extra bands mostly average the noise.
assert exercises.check("11.3", own)
