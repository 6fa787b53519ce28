"""The explorer app under load: 10 browser sessions moving its sliders at once for a minute, through the real server.

``panel serve apps/explorer.py`` runs in a subprocess; one headless chromium (Debian's, driven by Playwright) opens
the sessions, each a page in its own browser context, so each its own bokeh session and ``Explorer``. Once all are
open, every session moves the mask-ratio slider with the keyboard, three steps for each step of the change
threshold (switching tabs between them), waits until its page shows the change, pauses, and goes on. Before that,
one session alone does the same for a shorter while, the latency without contention.

Recorded: p50 / p95 latency from a key press on a slider to the page showing the new picture and scores (on the
page's own clock: from the keydown event to the animation frame that first shows both); failed updates (not shown within 60 s); browser console errors
and uncaught page errors; tracebacks and ERROR records in the server's log; whether the server still runs; the
machine and its load average before, during and after. Chromium renders the pages on the same cores as the server,
so the figures include the browser's own work, as a class on one machine would not.

    python bench/app_load.py [--sessions 10] [--seconds 60] [--solo-seconds 20] [--out bench/results/app_load.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from s2lab.bench.app_latency import percentiles
from s2lab.device import describe_device

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _app_server import CHROMIUM, WAIT_MS, AppServer, Session, drive_sessions

RESULT = Path(__file__).parent / "results" / "app_load.json"
LOAD_EVERY_S = 5.0  # how often the load average is sampled during the run


def _summary(sessions: list[Session]) -> dict:
    """Latency percentiles (all changes, and per slider) and what each session got."""
    def stats(slider=None):
        ms = [m for s in sessions for m in s.latencies(slider)]
        return percentiles(ms) if ms else None

    return {
        "latency": {"all": stats(), "ratio": stats("ratio"), "threshold": stats("threshold")},
        "sessions": [{"index": s.index, "open_s": None if s.open_s is None else round(s.open_s, 2),
                      "shown": len(s.latencies()), "failed": sum(u.ms is None for u in s.updates),
                      "ratio_shown": len(s.latencies("ratio")), "threshold_shown": len(s.latencies("threshold"))}
                     for s in sessions],
        "problems": [f"session {s.index}: {p}" for s in sessions for p in s.problems],
        "failed": [f"session {s.index}: {f}" for s in sessions for f in s.failed()],
    }


def _sample_load(stop: threading.Event, samples: list[float]) -> None:
    while not stop.wait(LOAD_EVERY_S):
        samples.append(os.getloadavg()[0])


def _chromium_version() -> str:
    try:
        return subprocess.run([str(CHROMIUM), "--version"], check=False, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def run(*, sessions: int = 10, seconds: float = 60.0, solo_seconds: float = 20.0, think_s: float = 0.25,
        server_args: tuple[str, ...] = ()) -> dict:
    """Serve the app, time one session alone, then ``sessions`` at once (see the module docstring).

    Args:
        sessions: browser sessions moving sliders at once.
        seconds: how long they move them.
        solo_seconds: how long one session alone moves them first (0 skips it).
        think_s: pause of a session after each change it saw.
        server_args: more ``panel serve`` options (e.g. ``("--num-threads", "2")``).

    Returns:
        JSON-ready dict: ``solo`` and ``load`` (latency p50_ms, p95_ms, mean_ms, max_ms, n for all changes and per
        slider; per-session counts; problems), ``errors`` (server log records, browser problems, failed updates),
        ``server_alive``, the machine, the load average and ``loaded`` (above half the CPU count).
    """
    if sessions < 1 or seconds <= 0:
        raise ValueError(f"sessions must be at least 1 and seconds positive, got {sessions} and {seconds}")
    load_before = os.getloadavg()
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(stop, samples), daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="s2lab-app-load-") as folder, \
            AppServer(Path(folder) / "panel.log", args=server_args) as app:
        url = app.wait()
        started = time.perf_counter()
        solo = asyncio.run(drive_sessions(url, sessions=1, seconds=solo_seconds, think_s=think_s)) \
            if solo_seconds > 0 else []
        load = asyncio.run(drive_sessions(url, sessions=sessions, seconds=seconds, think_s=think_s))
        wall_s = time.perf_counter() - started
        server_errors, alive = app.errors(), app.alive()
    stop.set()
    sampler.join()
    load_after = os.getloadavg()
    cpus = os.cpu_count() or 1
    load_summary = _summary(load)
    solo_summary = _summary(solo) if solo else None
    parts = [load_summary] + ([solo_summary] if solo_summary else [])
    browser = [p for part in parts for p in part["problems"]]
    failed = sum(len(part["failed"]) for part in parts)
    loaded = max(load_before[0], load_after[0], *samples) > cpus / 2
    return {
        "benchmark": "app_load",
        "what": "key press on a slider to the page showing the new picture and scores, N browser sessions at once",
        "driver": "real browser pages: one headless chromium (Playwright), one browser context per session",
        "chromium": _chromium_version(),
        "settings": {"sessions": sessions, "seconds": seconds, "solo_seconds": solo_seconds, "think_s": think_s,
                     "pattern": "3 mask-ratio steps (0.05 apart, walked 0.05 <-> 0.95), 1 threshold step (0.01)",
                     "update_timeout_s": WAIT_MS / 1000,
                     "timed": "page clock, keydown to the first animation frame showing picture and scores", "server_args": list(server_args),
                     "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
        "solo": solo_summary,
        "load": load_summary,
        "errors": {"server_log": server_errors, "browser": browser, "failed_updates": failed,
                   "total": len(server_errors) + len(browser) + failed},
        "server_alive": alive,
        "wall_s": round(wall_s, 1),
        "machine": {**describe_device(torch.device("cpu")), "cpu_count": cpus, "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after],
                         "during_1min": [round(v, 2) for v in samples]},
        "loaded": loaded,
        "note": ("measured while other processes loaded the machine: slower than on idle cores" if loaded
                 else "measured on an otherwise idle machine"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="browser sessions at once (default 10)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they move sliders (default 60)")
    parser.add_argument("--solo-seconds", type=float, default=20.0, help="one session alone first (default 20)")
    parser.add_argument("--think", type=float, default=0.25, help="pause after each change seen, s (default 0.25)")
    parser.add_argument("--num-threads", type=int, default=None, help="panel serve --num-threads (default: none)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"JSON file to write (default {RESULT})")
    args = parser.parse_args(argv)
    server_args = ("--num-threads", str(args.num_threads)) if args.num_threads else ()
    result = run(sessions=args.sessions, seconds=args.seconds, solo_seconds=args.solo_seconds, think_s=args.think,
                 server_args=server_args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"solo": (result["solo"] or {}).get("latency"), "load": result["load"]["latency"],
                      "errors": result["errors"]["total"], "failed_updates": result["errors"]["failed_updates"],
                      "loaded": result["loaded"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
