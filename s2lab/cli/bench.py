"""``s2lab bench``: the benchmarks of ``s2lab.bench``: whole scene, training vs MAE, app, scaling, GPU."""

from __future__ import annotations

import argparse

from s2lab import bench
from s2lab.cli._args import _common
from s2lab.device import pick_device


def run_bench(args: argparse.Namespace) -> dict:
    """The benchmarks of ``s2lab.bench``; writes ``results/<part>.json`` and ``RESULTS.md`` in --out."""
    if args.changes is not None and args.changes < 1:
        raise ValueError(f"--changes must be at least 1, got {args.changes}")
    parts = bench.parse_parts(args.only, notebooks=args.notebooks)
    pick_device(args.device)  # an unavailable --device is refused before anything runs
    return bench.run(parts, out_dir=args.out, quick=args.quick, device=args.device, changes=args.changes)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommand and its options."""
    p = sub.add_parser("bench", help=("benchmarks: whole scene, training vs MAE on timm 0.3.2's written-out attention, "
                                      "app, scaling, GPU"))
    p.add_argument("--only", help=f"comma-separated parts of: {', '.join(bench.PARTS)} (default all but notebooks)")
    p.add_argument("--notebooks", action="store_true", help="also execute every notebook (slow)")
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes, fewer repeats: a smoke run, not figures to quote")
    p.add_argument("--changes", type=int, help="slider changes the app part times (default 100, 20 with --quick)")
    p.add_argument("--out", help="folder for RESULTS.md and results/*.json (default the repository's bench/)")
    _common(p)
    p.set_defaults(run=run_bench)
