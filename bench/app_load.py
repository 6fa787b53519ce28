"""The explorer app under load: a class of sessions moving its sliders at once for a minute, through the real server.

``panel serve apps/explorer.py`` runs in a subprocess. First one real browser session alone (Debian's headless
chromium driven by Playwright) moves the mask-ratio slider with the keyboard, three steps for each step of the
change threshold (switching tabs between them), waits until its page shows the change, pauses, and goes on: the
latency one student meets. Then ``--sessions`` sessions open at once and do the same for ``--seconds``:

- ``--driver protocol`` (the default): simulated browser sessions (``tests/_bokeh_session.py``) that speak bokeh's
  websocket protocol as a browser does (page, websocket, document, slider changes, the server's updates) without
  rendering anything, as a class's browsers on the students' own machines would load the server; meanwhile one
  real chromium page opens and moves its sliders too, so the figures include what a browser meets under that load.
- ``--driver chromium``: every session a real page in one headless chromium on this machine (one browser context
  each), so the figures include thirty renderers' work on the server's own cores, as no class would.

Recorded: p50 / p95 latency from a key press (real pages: on the page's own clock, from the keydown event to the
animation frame that first shows both the new picture and scores) or from sending the change (simulated sessions:
until the last of the new picture and scores has arrived); seconds until each page shows its first tab (the scene
and a pixel's spectrum: the app builds each other tab when it is first opened) and from each tab's first click until
its scores show; failed updates (not shown within 60 s); browser console errors and uncaught page errors; tracebacks and ERROR records in
the server's log; whether the server still runs; the server's CPU seconds; the machine and its load average
before, during and after. The goals (``GOALS``): one session's p95 at most 100 ms; under load, p95 at most 1 s and
every page open within 10 s, with no error and no lost update.

    python bench/app_load.py [--sessions 30] [--seconds 60] [--solo-seconds 20] [--driver protocol|chromium]
                             [--warm 15] [--out bench/results/app_load.json]
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
from s2lab.bench.measure import machine
from s2lab.bench.report import json_safe, results_markdown
from s2lab.device import describe_device

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _app_server import CHROMIUM, WAIT_MS, AppServer, Session, drive_sessions
from _bokeh_session import ProtocolSession, drive_protocol_sessions

RESULT = Path(__file__).parent / "results" / "app_load.json"
DRIVERS = {"protocol": "simulated browser sessions over bokeh's websocket protocol (tests/_bokeh_session.py), and one "
                       "real page in headless chromium (Playwright) beside them",
           "chromium": "real browser pages: one headless chromium (Playwright), one browser context per session"}
GOALS = {"solo_p95_ms": 100.0, "load_p95_ms": 1000.0, "open_s": 10.0}
LOAD_EVERY_S = 5.0  # how often the load average is sampled during the run


def _summary(sessions: list[Session]) -> dict:
    """Latency percentiles (all changes, and per slider) and what each session got."""
    def stats(slider=None):
        ms = [m for s in sessions for m in s.latencies(slider)]
        return percentiles(ms) if ms else None

    tabs = [t for s in sessions for t in s.tab_s]
    return {
        "latency": {"all": stats(), "ratio": stats("ratio"), "threshold": stats("threshold")},
        "tab_open": percentiles([t * 1000 for t in tabs]) if tabs else None,  # each tab's first opening
        "sessions": [{"index": s.index, "open_s": None if s.open_s is None else round(s.open_s, 2),
                      "tab_s": [round(t, 2) for t in s.tab_s],
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


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process and its children that were waited for (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _server_cpu(app: AppServer) -> float | None:
    """CPU seconds of the server process (and of any worker processes it forked)."""
    pids = [app.process.pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children").read_text().split()]
    except OSError:
        pass
    seconds = [_cpu_seconds(pid) for pid in pids]
    return None if seconds[0] is None else sum(s for s in seconds if s is not None)


async def _load(url: str, driver: str, sessions: int, seconds: float, think_s: float):
    """The load part: (the sessions, the real browser session beside them or None)."""
    if driver == "chromium":
        return await drive_sessions(url, sessions=sessions, seconds=seconds, think_s=think_s), None
    simulated, browser = await asyncio.gather(
        drive_protocol_sessions(url, sessions=sessions, seconds=seconds, think_s=think_s),
        drive_sessions(url, sessions=1, seconds=seconds, think_s=think_s))
    return simulated, browser


def _goals(solo: dict | None, load: dict, browser: dict | None, errors: int) -> dict:
    def p95(part, key="all"):
        return None if part is None or part["latency"][key] is None else part["latency"][key]["p95_ms"]

    opened = [s["open_s"] for s in load["sessions"]] + ([s["open_s"] for s in browser["sessions"]] if browser else [])
    checks = {
        "solo_p95_ms": (p95(solo), GOALS["solo_p95_ms"]),
        "load_p95_ms": (p95(load), GOALS["load_p95_ms"]),
        "browser_under_load_p95_ms": (p95(browser), GOALS["load_p95_ms"]),
        "slowest_open_s": (None if None in opened else max(opened), GOALS["open_s"]),
    }
    met = {k: (v is not None and v <= goal) for k, (v, goal) in checks.items() if k != "browser_under_load_p95_ms"
           or browser is not None}
    return {"figures": {k: v for k, (v, _) in checks.items()}, "goals": {k: g for k, (_, g) in checks.items()},
            "met": met, "no_errors": errors == 0, "all_met": all(met.values()) and errors == 0}


async def _warm(url: str, seconds: float) -> None:
    client = ProtocolSession(url)
    await client.open(WAIT_MS / 1000)
    await client.open_tab("Mask and reconstruct", "recon-scores", "ratio ", WAIT_MS / 1000)
    await client.open_tab("Change", "change-scores", "<td>", WAIT_MS / 1000)
    await asyncio.sleep(seconds)  # the default view's slider positions are prefilled meanwhile
    await client.close()


def run(*, sessions: int = 30, seconds: float = 60.0, solo_seconds: float = 20.0, think_s: float = 0.25,
        driver: str = "protocol", server_args: tuple[str, ...] = (), warm_s: float = 15.0) -> dict:
    """Serve the app, time one browser session alone, then ``sessions`` at once (see the module docstring).

    Args:
        sessions: sessions moving sliders at once.
        seconds: how long they move them.
        solo_seconds: how long one browser session alone moves them first (0 skips it).
        think_s: pause of a session after each change it saw.
        driver: "protocol" (simulated sessions, one real page beside them) or "chromium" (all real pages).
        server_args: more ``panel serve`` options (e.g. ``("--num-threads", "2")``).
        warm_s: first one simulated session opens every view, then the server is left this long (the models
            load, the change map and the default view's slider positions are computed), as a teacher opens the
            app before the class; 0: measured from a cold start.

    Returns:
        JSON-ready dict: ``solo``, ``load`` and (protocol driver) ``browser_under_load``, each with latency p50_ms,
        p95_ms, mean_ms, max_ms, n for all changes and per slider, per-session counts and open times, problems;
        ``errors`` (server log records, browser problems, failed updates); ``goals``; ``server_alive``;
        ``server_cpu_s``; the machine, the load average and ``loaded`` (above half the CPU count).
    """
    if sessions < 1 or seconds <= 0:
        raise ValueError(f"sessions must be at least 1 and seconds positive, got {sessions} and {seconds}")
    if driver not in DRIVERS:
        raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    load_before = os.getloadavg()
    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(stop, samples), daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="s2lab-app-load-") as folder, \
            AppServer(Path(folder) / "panel.log", args=server_args) as app:
        url = app.wait()
        if warm_s > 0:  # a first session, as a teacher opens the app before the class: models, change map, prefill
            asyncio.run(_warm(url, warm_s))
        started = time.perf_counter()
        solo = asyncio.run(drive_sessions(url, sessions=1, seconds=solo_seconds, think_s=think_s)) \
            if solo_seconds > 0 else []
        cpu_before = _server_cpu(app)
        load, browser = asyncio.run(_load(url, driver, sessions, seconds, think_s))
        cpu_after = _server_cpu(app)
        wall_s = time.perf_counter() - started
        server_errors, alive = app.errors(), app.alive()
    stop.set()
    sampler.join()
    load_after = os.getloadavg()
    cpus = os.cpu_count() or 1
    load_summary = _summary(load)
    solo_summary = _summary(solo) if solo else None
    browser_summary = _summary(browser) if browser else None
    parts = [p for p in (load_summary, solo_summary, browser_summary) if p]
    problems = [p for part in parts for p in part["problems"]]
    failed = sum(len(part["failed"]) for part in parts)
    errors = len(server_errors) + len(problems) + failed
    loaded = load_before[0] > cpus / 2  # the run loads the machine itself: others' load shows before it starts
    return {
        "benchmark": "app_load",
        "what": ("a slider change to the page (or simulated session) having the new picture and scores, "
                 f"{sessions} sessions at once"),
        "driver": DRIVERS[driver],
        "chromium": _chromium_version(),
        "settings": {"sessions": sessions, "seconds": seconds, "solo_seconds": solo_seconds, "think_s": think_s,
                     "warm_s": warm_s,
                     "pattern": "3 mask-ratio steps (0.05 apart, walked 0.05 <-> 0.95), 1 threshold step (0.01)",
                     "update_timeout_s": WAIT_MS / 1000,
                     "timed": ("real pages: page clock, keydown to the first animation frame showing picture and "
                               "scores; simulated sessions: change sent to the last of picture and scores received"),
                     "server_args": list(server_args), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
        "solo": solo_summary,
        "load": load_summary,
        "browser_under_load": browser_summary,
        "goals": _goals(solo_summary, load_summary, browser_summary, errors),
        "errors": {"server_log": server_errors, "browser": problems, "failed_updates": failed, "total": errors},
        "server_alive": alive,
        "server_cpu_s": None if None in (cpu_before, cpu_after) else round(cpu_after - cpu_before, 1),
        "wall_s": round(wall_s, 1),
        "machine": {**describe_device(torch.device("cpu")), "cpu_count": cpus, "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after],
                         "during_1min": [round(v, 2) for v in samples]},
        "loaded": loaded,
        "note": ("other processes loaded the machine when the run started: slower than on idle cores" if loaded
                 else "the machine was otherwise idle when the run started"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=30, help="sessions at once (default 30)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they move sliders (default 60)")
    parser.add_argument("--solo-seconds", type=float, default=20.0, help="one session alone first (default 20)")
    parser.add_argument("--think", type=float, default=0.25, help="pause after each change seen, s (default 0.25)")
    parser.add_argument("--warm", type=float, default=15.0, help="server left after a first session, s (default 15)")
    parser.add_argument("--driver", choices=sorted(DRIVERS), default="protocol",
                        help="protocol: simulated sessions and one real page; chromium: all real pages")
    parser.add_argument("--num-threads", type=int, default=None, help="panel serve --num-threads (default: none)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"JSON file to write (default {RESULT})")
    args = parser.parse_args(argv)
    server_args = ("--num-threads", str(args.num_threads)) if args.num_threads else ()
    result = run(sessions=args.sessions, seconds=args.seconds, solo_seconds=args.solo_seconds, think_s=args.think,
                 driver=args.driver, server_args=server_args, warm_s=args.warm)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"part": "app_load", "quick": False, "figures": result,
              "machine": {**machine(), "loaded": result["loaded"], "load_average": result["load_average"]["before"]}}
    args.out.write_text(json.dumps(json_safe(record), indent=2) + "\n")
    if args.out == RESULT:  # the repository's results: RESULTS.md follows
        (RESULT.parents[1] / "RESULTS.md").write_text(results_markdown(RESULT.parent))
    print(json.dumps({"goals": result["goals"], "errors": result["errors"]["total"],
                      "server_cpu_s": result["server_cpu_s"], "loaded": result["loaded"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
