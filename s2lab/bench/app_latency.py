"""How long the explorer's default view takes, server side, from a mask-ratio change to the new pictures.

The default view is the "Mask and reconstruct" tab on the embedded scene's held-out crop: strategy "random",
seed 0, the slider walked up and down between 0.05 and 0.95 in its steps of 0.05, as a drag does. One change is
timed in two ways:

- ``computed``: a slider position seen for the first time (a seed no view was computed for, nothing prefilled):
  S2MAE and SatMAE run on the crop, the seven pictures are drawn and encoded as PNG. What the first visit costs.
- ``shared``: the app's panes (``s2lab.explorer.panes.Drawn``, seven PNG panes and the scores table, bound to one
  ``Explorer``) once the default view's slider positions are prefilled, as they are seconds after the server
  starts (``s2lab.explorer.reconstruction.warm_default``); timed from setting ``Explorer.mask_ratio`` until every
  pane's bokeh model holds its new data (what Panel then sends over the websocket in one message).

The goal, a p95 of at most ``GOALS["app_p95_ms"]`` on two idle CPU cores, is for the ``shared`` way: what a class
meets on one server. The result records the machine and its load average: figures taken while other processes
used the cores say so (``loaded``).

It needs the lab extra (param, matplotlib, panel); ``s2lab bench`` imports it only when the ``app`` part runs,
and ``bench/app_latency.py`` runs it alone.
"""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np
import panel as pn
import torch

from s2lab.bench.measure import GOALS
from s2lab.device import describe_device
from s2lab.explorer import CROP, MODELS, Explorer, device, embedded_source
from s2lab.explorer.panes import Drawn
from s2lab.explorer.reconstruction import DEFAULT, reconstruction_view, warm_default
from s2lab.explorer.shared import encoded

RATIOS = np.round(np.arange(0.05, 0.951, 0.05), 2)  # the slider's positions walked
UNSEEN_SEED = 1_000_000  # the ``computed`` way's seeds start here: no view of them is stored


def _walk(changes: int) -> list[float]:
    """Slider positions visited by dragging up and down, never the same twice in a row."""
    path = list(RATIOS) + list(RATIOS[-2:0:-1])
    return [float(path[i % len(path)]) for i in range(changes)]


def percentiles(ms: list[float]) -> dict:
    """p50, p95, mean and max of ``ms`` milliseconds, rounded to 0.01 ms, and their count ``n``."""
    values = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "mean_ms": round(float(values.mean()), 2),
        "max_ms": round(float(values.max()), 2),
        "n": len(ms),
    }


def _time_computed(ratios: list[float], first_seed: int) -> list[float]:
    source, bands = embedded_source(), DEFAULT["bands"]
    times = []
    for i, ratio in enumerate(ratios):
        start = time.perf_counter()
        view = reconstruction_view(source, bands, DEFAULT["strategy"], first_seed + i, ratio, prefetch=False)
        encoded_pictures = [encoded(p) for p in view.pictures.values()]
        times.append((time.perf_counter() - start) * 1000)
        if not all(e.startswith(b"\x89PNG") for e in encoded_pictures):
            raise RuntimeError(f"a picture was not encoded as PNG at mask ratio {ratio}")
    return times


def _time_shared(state: Explorer, ratios: list[float]) -> list[float]:
    from bokeh.document import Document

    drawn = Drawn(state, "reconstructed")
    panes = {name: drawn.picture(name) for name in state.reconstructed.pictures}
    scores = drawn.markdown(lambda view: f"ratio {view.mask_ratio:.2f}")
    root = pn.Column(*panes.values(), scores).get_root(Document())
    s2mae = root.children[list(panes).index("s2mae")]  # the S2MAE picture's bokeh model
    times = []
    for ratio in ratios:
        before = s2mae.text
        start = time.perf_counter()
        state.mask_ratio = ratio
        times.append((time.perf_counter() - start) * 1000)
        if s2mae.text == before:
            raise RuntimeError(f"the S2MAE picture's model did not change at mask ratio {ratio}")
    return times


def default_view_latency(*, changes: int = 100, threads: int | None = None, warmup: int = 3) -> dict:
    """Time ``changes`` slider changes of the default view, both ways (see the module docstring): the ``app`` part.

    Args:
        changes: slider changes timed per way.
        threads: torch intra-op threads (default: torch's own choice, recorded in the result).
        warmup: untimed changes first (the first calls allocate and warm caches).

    Returns:
        JSON-ready dict: ``computed`` and ``shared`` with p50_ms, p95_ms, mean_ms, max_ms, n; the goal (for
        ``shared``), the machine (``s2lab.device.describe_device``), CPU count, load average before and after, and
        ``loaded`` (True when the load average exceeded half the CPU count).
    """
    if changes < 1:
        raise ValueError(f"changes must be at least 1, got {changes}")
    if threads is not None:
        torch.set_num_threads(threads)
    load_before = os.getloadavg()
    state = Explorer()
    job = warm_default()
    if job is not None:
        job.result()
    _time_computed(_walk(warmup), first_seed=UNSEEN_SEED - warmup)
    ratios = _walk(changes)
    computed_ms = _time_computed(ratios, first_seed=UNSEEN_SEED)
    shared_ms = _time_shared(state, ratios)
    load_after = os.getloadavg()
    cpus = os.cpu_count() or 1
    loaded = max(load_before[0], load_after[0]) > cpus / 2
    shared = percentiles(shared_ms)
    return {
        "benchmark": "app_latency",
        "what": ("server-side time from a mask-ratio change to the default view's 7 pictures ready for the browser: "
                 "computed (a slider position's first visit) and shared (the app's panes, positions prefilled)"),
        "view": {"source": state.source.name, "crop_px": CROP, "strategy": state.strategy, "seed": state.seed,
                 "ratios": [float(r) for r in RATIOS], "models": {k: MODELS[k] for k in ("s2mae", "satmae")}},
        "computed": percentiles(computed_ms),
        "shared": shared,
        "goal_p95_ms": GOALS["app_p95_ms"],
        "meets_goal": shared["p95_ms"] <= GOALS["app_p95_ms"],
        "machine": {**describe_device(device()), "cpu_count": cpus, "platform": platform.platform(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "loaded": loaded,
        "note": ("measured while other processes loaded the machine: slower than on idle cores" if loaded
                 else "measured on an otherwise idle machine"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
