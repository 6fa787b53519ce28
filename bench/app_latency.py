"""The explorer's default-view latency (``s2lab.bench.app_latency``) run alone, written to its own JSON file.

``s2lab bench --only app`` measures the same and writes ``bench/results/app.json``; this script adds a choice of
torch threads and writes ``bench/results/app_latency.json``.

    python bench/app_latency.py [--changes 100] [--threads N] [--out bench/results/app_latency.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s2lab.bench.app_latency import default_view_latency

RESULT = Path(__file__).parent / "results" / "app_latency.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100, help="slider changes timed per way (default 100)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default torch's)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"JSON file to write (default {RESULT})")
    args = parser.parse_args(argv)
    result = default_view_latency(changes=args.changes, threads=args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("computed", "shared", "loaded")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
