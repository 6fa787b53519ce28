"""Exercises of notebooks 00 (meet the data) and 01 (spectral signatures).

Each exercise is ``make(seed) -> dict`` (the student's data) and ``judge(answer, data) -> hint or None``, registered
under its key ``"NN.k"`` (see ``s2lab.exercises``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from s2lab.exercises.core import close, register, rng_for, same_band


# 00 Meet the data --------------------------------------------------------------------------------------------------

def _make_00_2(seed: int) -> dict:
    """A 512 x 512 crop of the 13-band embedded scene: its top-left corner (y0, x0)."""
    rng = rng_for("00.2", seed)
    return {"y0": 32 * rng.randrange(0, 45), "x0": 32 * rng.randrange(0, 45), "size": 512}


def _judge_00_2(answer: Any, d: dict) -> str | None:
    from s2lab.data.embedded import open_embedded_scene
    from s2lab.sensors import S2_13BANDS

    largest, smallest = answer
    crop = open_embedded_scene(bands=S2_13BANDS).isel(y=slice(d["y0"], d["y0"] + d["size"]),
                                                       x=slice(d["x0"], d["x0"] + d["size"]))
    spread = crop.std(dim=("y", "x")).to_series()  # (13,) by band name
    return (same_band(largest, str(spread.idxmax()), "the band of largest spread in your crop")
            or same_band(smallest, str(spread.idxmin()), "the band of smallest spread in your crop"))


register("00.2", "the bands of largest and smallest spread in your crop", _make_00_2, _judge_00_2)


# 01 Spectral signatures --------------------------------------------------------------------------------------------

def _make_01_1(seed: int) -> dict:
    """One spectrum of the USGS library, by its name."""
    from s2lab import spectra

    names = sorted(set(str(n) for n in spectra.library("usgs")["name"].values))
    return {"library": "usgs", "name": rng_for("01.1", seed).choice(names)}


def _judge_01_1(answer: Any, d: dict) -> str | None:
    from s2lab import spectra
    from s2lab.sensors import S2_13BANDS

    band, difference = answer
    library = spectra.library(d["library"])
    spectrum = library.isel(spectrum=int(np.flatnonzero(library["name"].values == d["name"])[0]))
    gap = (spectra.resample(spectrum, bands=S2_13BANDS, platform="S2B")
           - spectra.resample(spectrum, bands=S2_13BANDS, platform="S2A")).to_series().abs()  # (13,)
    return (same_band(band, str(gap.idxmax()), "the band where S2A and S2B differ most")
            or close(abs(float(difference)), float(gap.max()), 0.02 * float(gap.max()) + 1e-9,
                      "the size of the largest difference (reflectance)"))


register("01.1", "Sentinel-2A against 2B on your spectrum", _make_01_1, _judge_01_1)


def _make_01_2(seed: int) -> dict:
    """A NIR band, an LAI step and a relative change (%) below which the band counts as saturated."""
    rng = rng_for("01.2", seed)
    return {"band": rng.choice(("B07", "B08", "B8A")), "step": rng.choice((0.25, 0.5)),
            "percent": rng.choice((0.5, 1.0, 2.0)), "max_lai": 10.0}


def _judge_01_2(answer: Any, d: dict) -> str | None:
    from s2lab import spectra

    previous, saturated = None, None
    for lai in np.arange(d["step"], d["max_lai"] + 1e-9, d["step"]):  # LAI = step, 2 step, ... max_lai
        value = float(spectra.resample(spectra.prosail_canopy(lai=float(lai)), bands=[d["band"]]).sel(band=d["band"]))
        if previous is not None and abs(value - previous) / previous < d["percent"] / 100:
            saturated = float(lai - d["step"])  # from this LAI on, one more step changes the band by less
            break
        previous = value
    if saturated is None:
        return f"the band does not saturate below LAI {d['max_lai']} at this threshold"
    return close(answer, saturated, d["step"] / 2, "the LAI where the band saturates")


register("01.2", "where the NIR saturates with leaf area", _make_01_2, _judge_01_2)
