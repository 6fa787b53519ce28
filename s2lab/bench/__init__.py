"""Benchmarks: how fast and how large s2lab's work is, measured on the machine at hand (``s2lab bench``).

Eight parts, each a function returning JSON-ready figures (``PARTS``):

- ``scene``: ``s2lab reconstruct`` and ``s2lab detect-change`` on the whole embedded scene, in a child process each.
- ``full_tile``: ``s2lab reconstruct`` on a full-size Sentinel-2 tile (10980 x 10980 px, made from the embedded
  scene): wall time and peak memory, read and written a band of rows at a time. Slow, so only when asked.
- ``train``: samples per second of S2MAE pretraining steps against MAE on timm 0.3.2's written-out attention
  (``reference_mae``: facebookresearch/mae's recipe, rewritten here) at the same size, in alternating rounds.
- ``peers``: s2lab's training steps against the real facebookresearch/mae and sustainlab-group/SatMAE code on
  current timm, at the same token counts, in alternating rounds guarded against other load. Runs in the environment
  of ``scripts/peer_env.sh``; elsewhere it is skipped, and says why.
- ``app``: the explorer's default view, slider change to encoded pictures.
- ``scaling``: whole-image reconstruction time against image size and band count.
- ``notebooks``: every notebook executed in a child process: wall time and peak memory against Binder's 2 GiB.
  Slow, so only when asked.
- ``gpu``: where CUDA is present: the pretraining step in float32 and in bf16 autocast, model FLOP utilisation,
  S2MAE against MAE on written-out attention on the GPU, and the fine-tuning step and change map against the CPU.

``run`` runs the parts asked for, writes each part's figures to ``results/<part>.json`` (with the machine, its load
and the date; a part skipped here says why on stderr and keeps the figures of its last run) and rebuilds
``RESULTS.md`` from every part's file there, so one part can be re-run alone. Timings taken while the 1-minute load
average exceeded the core count (more runnable work than cores, the bench's own earlier parts included) are marked ``loaded``: they are slower than on idle cores.

The modules: ``measure`` (the machine, a child process's cost, timed training steps, the goals), ``parts`` (scene,
train, app, scaling, notebooks), ``peers`` (the real peers), ``full_tile``, ``app_latency`` (the app part's
measurement), ``cuda`` (the gpu part), ``reference_mae`` (the model S2MAE's training is timed against) and ``report`` (strict JSON and ``RESULTS.md``).
Every name below is importable from ``s2lab.bench`` itself.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from s2lab.bench.cuda import gpu
from s2lab.bench.full_tile import TILE, full_tile
from s2lab.bench.measure import GOALS, bench_dir, machine, run_measured
from s2lab.bench.parts import app, notebooks, scaling, scene, train
from s2lab.bench.peers import peers
from s2lab.bench.report import json_safe, results_markdown

__all__ = [
    "DEFAULT_PARTS",
    "GOALS",
    "PARTS",
    "app",
    "full_tile",
    "gpu",
    "json_safe",
    "machine",
    "notebooks",
    "parse_parts",
    "peers",
    "results_markdown",
    "run",
    "run_measured",
    "scaling",
    "scene",
    "train",
]

PARTS = ("scene", "full_tile", "train", "peers", "app", "scaling", "notebooks", "gpu")
# notebooks and full_tile only when asked: they take long
DEFAULT_PARTS = ("scene", "train", "peers", "app", "scaling", "gpu")


def _parts_run(quick: bool, device: str, changes: int | None) -> dict[str, Callable[[], dict]]:
    return {
        "scene": lambda: scene(device=device),
        "full_tile": lambda: full_tile(size=2048 if quick else TILE, device=device),
        "train": lambda: train(steps=2 if quick else 3, rounds=2 if quick else 7),
        "peers": lambda: peers(steps=3 if quick else 10, rounds=2 if quick else 7, warmup=1 if quick else 3),
        "app": lambda: app(changes=changes or (20 if quick else 100)),
        "scaling": lambda: scaling(sizes=(128, 256) if quick else (128, 256, 512, 1024), repeats=1 if quick else 3),
        "notebooks": lambda: notebooks(),
        "gpu": lambda: gpu(steps=5 if quick else 10),
    }


def _has_figures(path: Path) -> bool:
    """Whether ``path`` holds a part's measured figures (not a skip)."""
    try:
        return "skipped" not in json.loads(path.read_text())["figures"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def parse_parts(text: str | None, *, notebooks: bool = False) -> tuple[str, ...]:
    """"scene,train" -> ("scene", "train"); None -> ``DEFAULT_PARTS`` (plus "notebooks" when asked)."""
    if text is None:
        return DEFAULT_PARTS + (("notebooks",) if notebooks else ())
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"unknown benchmark parts {', '.join(unknown) or repr(text)}; expected some of "
                         f"{', '.join(PARTS)}, comma-separated")
    return parts + (("notebooks",) if notebooks and "notebooks" not in parts else ())


def run(
    parts: Sequence[str] = DEFAULT_PARTS,
    *,
    out_dir: str | os.PathLike | None = None,
    quick: bool = False,
    device: str = "auto",
    changes: int | None = None,
    runners: dict[str, Callable[[], dict]] | None = None,
) -> dict:
    """Run benchmark parts and write ``results/<part>.json`` and ``RESULTS.md`` in ``out_dir``.

    Args:
        parts: names from ``PARTS``.
        out_dir: where to write (default the repository's ``bench/``; None there and no checkout: nothing written).
        quick: smaller sizes and fewer repeats (a smoke run, not figures to quote).
        device: the scene commands' ``--device``.
        changes: slider changes the app part times (default 100, 20 when quick).
        runners: part name -> function returning its figures, replacing the defaults (tests use tiny sizes).

    Returns:
        ``{"machine": ..., "parts": {name: figures}, "written": [paths]}``.
    """
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown benchmark parts {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    folder = Path(out_dir) if out_dir is not None else bench_dir()
    table = {**_parts_run(quick, device, changes), **(runners or {})}
    results = {"machine": machine(), "quick": quick, "parts": {}, "written": []}
    for part in parts:
        figures = table[part]()
        results["parts"][part] = figures
        if "skipped" in figures:
            print(f"s2lab bench: the {part} part was skipped: {figures['skipped']}", file=sys.stderr)
        path = folder / "results" / f"{part}.json" if folder is not None else None
        if path is not None and "skipped" in figures and _has_figures(path):
            continue  # a skipped part keeps the figures of its last run
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            record = {"part": part, "machine": machine(), "quick": quick, "figures": figures}
            path.write_text(json.dumps(json_safe(record), indent=2) + "\n")
            results["written"].append(str(path))
    if folder is not None:
        md = folder / "RESULTS.md"
        md.write_text(results_markdown(folder / "results"))
        results["written"].append(str(md))
    return results
