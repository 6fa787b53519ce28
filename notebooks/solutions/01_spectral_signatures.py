"""Solutions to the exercises of notebook 01, Spectral signatures. Run: python notebooks/solutions/01_spectral_signatures.py"""

import numpy as np

from s2lab import exercises, spectra
from s2lab.data.embedded import open_embedded_scene
from s2lab.sensors import S2_10BANDS, S2_13BANDS

# 1. Sentinel-2A vs 2B response functions on the same sea-water spectrum. The largest difference is about 1e-4
#    reflectance, under 1 % of the band's value: the twin satellites' response functions nearly coincide. It is
#    largest in B12, whose centre (the response-weighted mean wavelength) differs most between the two, by some
#    15 nm. For a smooth spectrum like this one S2A and S2B are interchangeable; a model of the sea need not be told
#    which satellite it sees. A spectrum with a sharp feature inside B12 (some minerals) can differ a hundred times
#    more, a real difference: the checked variant below prints it for this student's spectrum.
usgs = spectra.library("usgs")
water = usgs.isel(spectrum=int(np.flatnonzero(usgs["name"].values == "Seawater_Coast_Chl_SW1_BECKa_AREF")[0]))
a = spectra.resample(water, bands=S2_13BANDS, platform="S2A")
b = spectra.resample(water, bands=S2_13BANDS, platform="S2B")
difference = (b - a).to_series()
relative = (difference.abs() / a.to_series()).rename("|S2B - S2A| / S2A")
print("S2B - S2A:\n", difference.round(5))
print("largest difference:", difference.abs().idxmax(), float(difference.abs().max()))
print(f"largest relative difference: {relative.idxmax()}, {100 * relative.max():.2f} % of the band's value")
centres = {}
for platform in ("S2A", "S2B"):
    rsr = spectra.response_functions(platform).sel(band=list(S2_13BANDS))  # (13, wavelengths)
    centres[platform] = (rsr * rsr["wavelength"]).sum("wavelength") / rsr.sum("wavelength")  # (13,) nm
shift = abs(centres["S2B"] - centres["S2A"]).to_series()
print("centre shift S2B - S2A (nm):\n", shift.round(1))
assert difference.abs().idxmax() == shift.idxmax() == "B12"
assert difference.abs().max() < 1e-3 and relative.max() < 0.01
mine = exercises.data("01.1")  # this student's spectrum
spectrum = usgs.isel(spectrum=int(np.flatnonzero(usgs["name"].values == mine["name"])[0]))
own_a = spectra.resample(spectrum, bands=S2_13BANDS, platform="S2A").to_series()
gap = (spectra.resample(spectrum, bands=S2_13BANDS, platform="S2B").to_series() - own_a).abs()
print(f"your spectrum {mine['name']}: largest |S2B - S2A| in {gap.idxmax()}, {gap.max():.2e}, "
      f"{100 * gap.max() / abs(own_a[gap.idxmax()]):.2f} % of the band")
assert exercises.check("01.1", (gap.idxmax(), float(gap.max())))

# 2. NIR saturation with leaf area.
previous = None
for lai in np.arange(0.5, 10.01, 0.5):
    b08 = float(spectra.resample(spectra.prosail_canopy(lai=float(lai)), bands=["B08"]).sel(band="B08"))
    if previous is not None and abs(b08 - previous) / previous < 0.01:
        print(f"B08 changes by less than 1 % from LAI {lai - 0.5:g} to {lai:g}")
        break
    previous = b08
mine = exercises.data("01.2")  # this student's band, LAI step and threshold
previous, saturated = None, None
for lai in np.arange(mine["step"], mine["max_lai"] + 1e-9, mine["step"]):
    value = float(spectra.resample(spectra.prosail_canopy(lai=float(lai)), bands=[mine["band"]]).sel(band=mine["band"]))
    if previous is not None and abs(value - previous) / previous < mine["percent"] / 100:
        saturated = lai - mine["step"]
        break
    previous = value
print(f"your {mine['band']}, steps of {mine['step']}, {mine['percent']} %: saturates from LAI {saturated:g}")
assert exercises.check("01.2", saturated)

# 3. Correlation over water only: water is dark beyond 750 nm, so the NIR and SWIR bands hold mostly noise
#    and haze there and decorrelate from the visible bands.
view = open_embedded_scene(bands=S2_10BANDS).isel(y=slice(None, None, 4), x=slice(None, None, 4))
ndwi = (view.sel(band="B03") - view.sel(band="B08")) / (view.sel(band="B03") + view.sel(band="B08"))
pixels = view.values.reshape(len(S2_10BANDS), -1)[:, (ndwi.values > 0.3).ravel()].astype(np.float64)
water_corr = np.corrcoef(pixels)
print("water pixels:", pixels.shape[1])
print("B02-B03", round(water_corr[0, 1], 3), "| B03-B12", round(water_corr[1, 9], 3))
