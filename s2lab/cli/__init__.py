"""The ``s2lab`` command: ``info``, ``reconstruct``, ``detect-change``, ``pretrain``, ``finetune``, ``bench``.

Every subcommand has ``--help`` and ``--json`` (figures as one JSON object on stdout); progress bars go to stderr.
A bad input (a missing file, a raster without the model's bands, a mask ratio outside [0, 1), an unknown model, a
checkpoint that does not fit) ends with one line ``s2lab: error: ...`` on stderr and exit code 1, and leaves no
output file (rasters and checkpoints are written atomically); argparse's own usage errors keep exit code 2.
Only the library's own error types are caught: anything else is a bug and shows its traceback.

One module per subcommand, each with its ``add_parser(sub)`` and its ``run_*(args) -> dict`` (the report);
``_args`` holds what they share. This module builds the parser, runs the subcommand and prints its report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from s2lab import __version__
from s2lab.bench import json_safe
from s2lab.checkpoints import CheckpointError
from s2lab.cli import bench, detect_change, finetune, info, pretrain, reconstruct
from s2lab.cli._args import _is_rank_zero, _one_line
from s2lab.data.download import DownloadError
from s2lab.train import TrainingError

# The library's own errors: a bad input, a missing dataset, a broken checkpoint, a failed run or download.
# OSError covers files that cannot be read or written (permissions, a full disk).
EXPECTED_ERRORS = (ValueError, OSError, CheckpointError, TrainingError, DownloadError)
SUBCOMMANDS = (info, reconstruct, detect_change, pretrain, finetune, bench)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``s2lab`` command."""
    parser = argparse.ArgumentParser(prog="s2lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"s2lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return parser


def _human(value: object, indent: int = 0) -> list[str]:
    """A report as indented ``key: value`` lines."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines += [f"{pad}{key}:", *_human(item, indent + 1)]
            elif isinstance(item, list) and item and isinstance(item[0], dict):
                lines.append(f"{pad}{key}:")
                for entry in item:
                    lines += _human(entry, indent + 1) + [""]
            else:
                lines.append(f"{pad}{key}: {', '.join(map(str, item)) if isinstance(item, list) else item}")
        return lines
    return [f"{pad}{value}"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``s2lab`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        report = args.run(args)
    except EXPECTED_ERRORS as err:
        print(f"s2lab: error: {_one_line(err)}", file=sys.stderr)
        return 1
    if _is_rank_zero():
        text = json.dumps(json_safe(report), indent=2) if args.json else "\n".join(_human(report))
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `s2lab info | head`: the reader left; Python's recipe to exit quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
