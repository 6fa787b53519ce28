"""What the ``s2lab`` subcommands share: input and output checks, checkpoint loading and the common options.

Every check here runs before any work, so a bad input ends the command with one error line and leaves no file.
Shapes follow the glossary: C bands, H, W pixels.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import xarray as xr

from s2lab.checkpoints import CheckpointError, shipped_models
from s2lab.data.dn import offset_warning
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.raster import file_arrays, open_raster
from s2lab.device import CHOICES
from s2lab.files import check_output
from s2lab.masking import STRATEGIES
from s2lab.models import load_model
from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS
from s2lab.train import TrainConfig

BANDS_BY_COUNT = {10: S2_10BANDS, 12: S2_12BANDS, 13: S2_13BANDS}
BANDS_HELP = ("the input file's band names in file order, comma-separated (EuroSAT's tiles: "
              "B01,B02,B03,B04,B05,B06,B07,B08,B09,B10,B11,B12,B8A); they win over the file's band descriptions; "
              "default: the descriptions, else ESA order for a 10-, 12- or 13-band file")


def _one_line(err: BaseException) -> str:
    """An exception's message on one line (multi-line messages joined with "; ")."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return "; ".join(lines) or type(err).__name__


def _is_rank_zero() -> bool:
    """Whether this process prints: always, except ranks > 0 of a torchrun launch."""
    return int(os.environ.get("RANK", "0")) == 0


def _check_ratio(ratio: float) -> float:
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio < 1.0):
        raise ValueError(f"--mask-ratio must be in [0, 1), got {ratio}")
    return float(ratio)


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    return strategy


def _check_output(path: str, *inputs: str) -> Path:
    """The output path, refused before any work when it is an input, a folder, or in a missing / read-only folder
    (``s2lab.files.check_output``)."""
    return check_output(path, [given for given in inputs if given != "embedded"])


def _check_input(spec: str) -> None:
    """Refuse a missing input before a model is loaded."""
    if spec != "embedded" and not Path(spec).expanduser().exists():
        raise FileNotFoundError(f"input {spec} does not exist; expected a GeoTIFF, a folder of band GeoTIFFs or "
                                "'embedded'")


def _open_input(spec: str, bands: Sequence[str], names: str | None = None,
                dn_offset: float | None = None) -> xr.DataArray:
    """``embedded``, a multi-band GeoTIFF or a folder of band GeoTIFFs as (C, H, W) reflectance of ``bands``.

    ``names`` (--bands) are a file's band names in file order, comma-separated; they win over its descriptions.
    ``dn_offset`` (--dn-offset) is added to the digital numbers; without it, the file's own offset is used and a
    file that looks 0.1 too bright gets a warning (``_warn_offset``).
    """
    if spec == "embedded":
        if names:
            raise ValueError("--bands names the bands of an input file; 'embedded' names its own bands")
        if dn_offset is not None:
            raise ValueError("--dn-offset is for an input file's digital numbers; 'embedded' is read as it ships")
        return open_embedded_scene(bands)
    image = open_raster(spec, bands=bands, band_names=names, dn_offset=dn_offset)
    if dn_offset is None:
        _warn_offset(spec)
    return image


def _warn_offset(path: str | os.PathLike) -> None:
    """One line on stderr when a raster input read without a DN offset looks 0.1 too bright
    (``s2lab.data.dn.offset_warning``)."""
    line = offset_warning(file_arrays(path))
    if line and _is_rank_zero():
        print(f"s2lab: warning: {line}", file=sys.stderr, flush=True)


def _assumed_note(*images: xr.DataArray) -> dict:
    """A report entry when an input's band names were assumed (no descriptions: ESA order), else nothing."""
    if any(image.attrs.get("band_names_assumed") for image in images):
        return {"warning": "the input has no band descriptions: its bands were taken to be in ESA order "
                           "(B01, B02, ..., B8A, ...); pass --bands with their real order if it differs"}
    return {}


def _model_bands(model: torch.nn.Module, info: dict) -> tuple[str, ...]:
    """The C band names a checkpoint takes: its meta's ``bands``, else the Sentinel-2 set of that size."""
    bands = (info.get("meta") or {}).get("bands")
    if bands:
        return tuple(bands)
    count = getattr(model, "encoder", model).config.in_chans
    if count not in BANDS_BY_COUNT:
        raise CheckpointError(f"the checkpoint takes {count} bands but its meta does not name them (meta['bands'])")
    return BANDS_BY_COUNT[count]


def _load(name_or_path: str, kinds: Sequence[str], purpose: str) -> tuple[torch.nn.Module, dict]:
    """A checkpoint (a shipped name or a path) whose kind is one of ``kinds``."""
    model, info = load_model(name_or_path)
    if info.get("kind") not in kinds:
        raise CheckpointError(
            f"{name_or_path} is a {info.get('kind')!r} model; {purpose} needs one of: {', '.join(kinds)}"
        )
    return model, info


def _shipped(kinds: Sequence[str]) -> str | None:
    """The name of the first shipped model of one of ``kinds``, or None."""
    return next((m["name"] for m in shipped_models() if m["kind"] in kinds), None)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        steps=args.steps,
        lr=args.lr,
        warmup_steps=args.steps // 20,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        amp=not args.float32,
        progress=not args.quiet,
    )


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


# -- options several subcommands take ------------------------------------------------------------------------------
def _dn_offset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dn-offset", type=float, metavar="DN",
                        help="added to the input's digital numbers before dividing by 10000: -1000 for Sentinel-2 "
                             "products of processing baseline 04.00 or later (from 25 January 2022); default: "
                             "the file's RADIO_ADD_OFFSET / BOA_ADD_OFFSET tag or GDAL offset, else 0")


def _common(parser: argparse.ArgumentParser, *, computes: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on stdout")
    if computes:
        parser.add_argument("--device", default="auto", help=f"where to compute: {', '.join(CHOICES)} or cuda:N")
        parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _training(parser: argparse.ArgumentParser, *, out: str, steps: int, batch_size: int, lr: float) -> None:
    parser.add_argument("--steps", type=int, default=steps, help="optimizer steps (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="B per step (default %(default)s)")
    parser.add_argument("--img-size", type=int,
                        help="tile side in pixels (default: the --init model's own, else 64)")
    parser.add_argument("--lr", type=float, default=lr, help="peak learning rate (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and every step (default 0)")
    parser.add_argument("--out", default=out, help="folder for checkpoints and model.* (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="save a resumable state every N steps")
    parser.add_argument("--float32", action="store_true",
                        help="train in float32 (default: bf16 autocast on CUDA and on CPUs with native bf16, AMX "
                             "or AVX512-BF16; float32 elsewhere)")
