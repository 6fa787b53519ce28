"""How long the explorer's default view takes, server side, from a mask-ratio change to the new pictures.

The default view is the "Mask and reconstruct" tab on the embedded scene's held-out crop: strategy "random",
seed 0, the slider walked up and down between 0.05 and 0.95 in its steps of 0.05, as a drag does. One change is
timed from setting ``Explorer.mask_ratio`` until the new pictures are ready for the browser, in two ways:

- ``state_png``: the state recomputes (S2MAE and SatMAE, composites, masks, error maps) and the seven pictures are
  encoded as PNG (``s2lab.explorer.png``);
- ``panel``: the same change with the app's seven PNG panes bound to the state, until every pane's bokeh model
  holds its new base64 data (what Panel then sends over the websocket).

The goal is a p95 of at most 150 ms on two idle CPU cores (``GOALS["app_p95_ms"]``). The result records the
machine and its load average: figures taken while other processes used the cores say so (``loaded``).

It needs the lab extra (param, matplotlib; panel for the second way); ``s2lab bench`` imports it only when the
``app`` part runs, and ``bench/app_latency.py`` runs it alone.
"""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np
import torch

from s2lab.bench.measure import GOALS
from s2lab.device import describe_device
from s2lab.explorer import CROP, MODELS, Explorer, device
from s2lab.viz import png

RATIOS = np.round(np.arange(0.05, 0.951, 0.05), 2)  # the slider's positions


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


def _time_state(state: Explorer, ratios: list[float]) -> list[float]:
    times = []
    for ratio in ratios:
        start = time.perf_counter()
        state.mask_ratio = ratio
        encoded = [png(p) for p in state.reconstructed.pictures.values()]
        times.append((time.perf_counter() - start) * 1000)
        if not all(e.startswith(b"\x89PNG") for e in encoded):
            raise RuntimeError(f"a picture was not encoded as PNG at mask ratio {ratio}")
    return times


def _time_panel(state: Explorer, ratios: list[float]) -> list[float] | None:
    try:
        import panel as pn
        from bokeh.document import Document
    except ImportError:
        return None
    names = list(state.reconstructed.pictures)
    panes = [pn.pane.PNG(pn.bind(lambda view, n=n: png(view.pictures[n]), state.param.reconstructed))
             for n in names]
    models = pn.Column(*panes).get_root(Document()).children  # one bokeh model per picture
    times = []
    for ratio in ratios:
        before = models[names.index("s2mae")].text
        start = time.perf_counter()
        state.mask_ratio = ratio
        times.append((time.perf_counter() - start) * 1000)
        if models[names.index("s2mae")].text == before:
            raise RuntimeError(f"the S2MAE picture's model did not change at mask ratio {ratio}")
    return times


def default_view_latency(*, changes: int = 100, threads: int | None = None, warmup: int = 3) -> dict:
    """Time ``changes`` slider changes of the default view, both ways (see the module docstring): the ``app`` part.

    Args:
        changes: slider changes timed per way.
        threads: torch intra-op threads (default: torch's own choice, recorded in the result).
        warmup: untimed changes first (the first calls allocate and warm caches).

    Returns:
        JSON-ready dict: ``state_png`` and ``panel`` (None without panel) with p50_ms, p95_ms, mean_ms, max_ms, n;
        the goal, the machine (``s2lab.device.describe_device``), CPU count, load average before and after, and
        ``loaded`` (True when the load average exceeded half the CPU count).
    """
    if changes < 1:
        raise ValueError(f"changes must be at least 1, got {changes}")
    if threads is not None:
        torch.set_num_threads(threads)
    load_before = os.getloadavg()
    state = Explorer()
    _time_state(state, _walk(warmup))
    ratios = _walk(changes)
    state_ms = _time_state(state, ratios)
    panel_ms = _time_panel(state, ratios)
    load_after = os.getloadavg()
    cpus = os.cpu_count() or 1
    loaded = max(load_before[0], load_after[0]) > cpus / 2
    result = {
        "benchmark": "app_latency",
        "what": "server-side time from a mask-ratio change to the default view's 7 pictures encoded for the browser",
        "view": {"source": state.source.name, "crop_px": CROP, "strategy": state.strategy, "seed": state.seed,
                 "ratios": [float(r) for r in RATIOS], "models": {k: MODELS[k] for k in ("s2mae", "satmae")}},
        "state_png": percentiles(state_ms),
        "panel": percentiles(panel_ms) if panel_ms is not None else None,
        "goal_p95_ms": GOALS["app_p95_ms"],
        "meets_goal": (percentiles(panel_ms or state_ms)["p95_ms"] <= GOALS["app_p95_ms"]),
        "machine": {**describe_device(device()), "cpu_count": cpus, "platform": platform.platform(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "loaded": loaded,
        "note": ("measured while other processes loaded the machine: slower than on idle cores" if loaded
                 else "measured on an otherwise idle machine"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return result
