"""``s2lab detect-change``: a binary change map from two dates, by a change model or change vector analysis.

Shapes follow the glossary: C bands, H, W pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr

from s2lab.change import change_map_cva, detect_change
from s2lab.evaluate import score_change
from s2lab.cli._args import (
    BANDS_HELP,
    _assumed_note,
    _check_input,
    _check_output,
    _common,
    _dn_offset,
    _load,
    _model_bands,
    _open_input,
    _shipped,
)
from s2lab.data.export import write_geotiff
from s2lab.data.oscd import read_label
from s2lab.data.raster import match_grid, same_grid
from s2lab.sensors import S2_10BANDS


def _read_labels(path: str, grid: xr.DataArray) -> tuple[xr.DataArray, str]:
    """A change label GeoTIFF (1/2, 0/1 or 0/255) as (H, W) 0/1 on ``grid``; only its size is checked."""
    label_path = Path(path).expanduser()
    if not label_path.is_file():
        raise FileNotFoundError(f"labels {label_path} does not exist; expected a change label GeoTIFF")
    return read_label(label_path, grid)


def run_detect_change(args: argparse.Namespace) -> dict:
    """A change map of BEFORE -> AFTER, written with BEFORE's georeference; scored against --labels if given."""
    inputs = (args.before, args.after, *([args.labels] if args.labels else []))
    for given in inputs:
        _check_input(given)
    out = _check_output(args.output, *inputs)
    prob_out = _check_output(args.probability, *inputs) if args.probability else None
    if prob_out is not None and prob_out.resolve() == out.resolve():
        raise ValueError(f"--probability {prob_out} is the change map's path; choose another path")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold must be in [0, 1], got {args.threshold}")
    name = args.model or _shipped(("change",)) or "cva"
    note = None if args.model or name != "cva" else "no change model ships with this install: change vector analysis"
    model, info = (None, {}) if name == "cva" else _load(name, ("change",), "detect-change")
    meta = info.get("meta") or {}  # the radiometric normalisation and threshold the model was trained with
    bands = S2_10BANDS if model is None else _model_bands(model, info)
    before = _open_input(args.before, bands, args.bands, args.dn_offset)
    after = _open_input(args.after, bands, args.bands, args.dn_offset)
    if not same_grid(before, after):  # put on before's grid: the same CRS and extent within a pixel, or refused
        after = match_grid(after, before, what=f"after {args.after}")
    label, encoding = _read_labels(args.labels, before) if args.labels else (None, None)
    if model is None:
        result = change_map_cva(before, after)
        method, threshold = "cva: change vector analysis, Otsu threshold", result.threshold
    else:
        result = detect_change(model, meta, before, after, blend=not args.no_cva, device=args.device,
                               progress=not args.quiet)  # as its training cities chose: alone or blended with CVA
        method, threshold = result.method, result.threshold
    if args.threshold is not None:
        threshold = args.threshold
    change = result.change(threshold)  # (H, W) uint8, 1 = change
    write_geotiff(change, out, like=before, dtype="uint8")
    if prob_out is not None:
        write_geotiff(result.probability, prob_out, like=before)
    report = {
        "method": method,
        "model": name,
        "before": args.before,
        "after": args.after,
        "bands": list(bands),
        "shape": [int(before.sizes["y"]), int(before.sizes["x"])],
        "threshold": threshold,
        "normalize": meta.get("normalize"),
        "changed_fraction": float(change.mean()),
        "seconds": round(result.seconds, 4),
        "device": result.device,
        "output": str(out),
        "probability": str(prob_out) if prob_out else None,
    }
    if note:
        report["note"] = note
    report.update(_assumed_note(before, after))
    if label is not None:
        report.update(score_change(result.probability, label, threshold))
        report["labels"] = {"path": args.labels, "encoding": encoding}
    return report


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``detect-change`` subcommand and its options."""
    p = sub.add_parser("detect-change", help="a binary change map from two dates")
    p.add_argument("before", help="the earlier image: GeoTIFF, band folder (OSCD imgs_1) or 'embedded'")
    p.add_argument("after", help="the later image, the same kinds (OSCD imgs_2)")
    p.add_argument("-o", "--output", required=True, help="the change map GeoTIFF to write (uint8, 1 = change)")
    p.add_argument("--model", help="'cva', a shipped change model or a checkpoint path (default: shipped, else cva)")
    p.add_argument("--labels", help="a change label GeoTIFF (1/2 or 0/1) to score the map against")
    p.add_argument("--threshold", type=float, help="change probability threshold (default: the model's, else 0.5)")
    p.add_argument("--no-cva", action="store_true",
                   help="the model alone, even where its training cities chose it blended with CVA")
    p.add_argument("--probability", help="also write the change probability (float32) to this GeoTIFF")
    p.add_argument("--bands", help=BANDS_HELP + "; the same for both dates")
    _dn_offset(p)
    _common(p)
    p.set_defaults(run=run_detect_change)
