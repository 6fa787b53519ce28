"""The ``s2lab`` command: ``info``, ``reconstruct``, ``detect-change``, ``pretrain``, ``finetune``, ``bench``.

Every subcommand has ``--help`` and ``--json`` (figures as one JSON object on stdout); progress bars go to stderr.
A bad input (a missing file, a raster without the model's bands, a mask ratio outside [0, 1), an unknown model, a
checkpoint that does not fit) ends with one line ``s2lab: error: ...`` on stderr and exit code 1, and leaves no
output file (rasters and checkpoints are written atomically); argparse's own usage errors keep exit code 2.
Only the library's own error types are caught: anything else is a bug and shows its traceback.

Shapes follow the glossary: C bands, H, W pixels, B batch.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from s2lab import __version__, bench, settings
from s2lab.change import NORMALIZATIONS, change_map, change_map_cva, detect_change, score_change
from s2lab.checkpoints import (
    MAE_KINDS,
    CheckpointError,
    load_model,
    load_state,
    save_model,
    shipped_models,
)
from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.download import DownloadError
from s2lab.data.embedded import DESCRIPTION, embedded_scene_path, open_embedded_scene
from s2lab.data.eurosat import eurosat_available, eurosat_root, load_eurosat
from s2lab.data.oscd import images_dir, load_oscd_city, oscd_cities, read_label
from s2lab.data.raster import match_grid, open_raster, same_grid, write_geotiff
from s2lab.data.synthetic import (
    synthetic_change_dataset,
    synthetic_multilabel,
    synthetic_scene_classification,
)
from s2lab.data.tiles import to_tensor
from s2lab.device import CHOICES, available_devices, describe_device, pick_device
from s2lab.evaluate import evaluate_blend
from s2lab.masking import STRATEGIES
from s2lab.metrics import accuracy, mean_average_precision
from s2lab.models import BUILDERS, ChangeDetector, SceneClassifier, build, head_config
from s2lab.models.mae import LOSSES, TARGETS, MAEConfig
from s2lab.reconstruct import reconstruct_image
from s2lab.scaling import SCALINGS, band_statistics
from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS
from s2lab.tasks import (
    change_task,
    classification_task,
    multilabel_task,
    pretrain_task,
    pretraining_images,
)
from s2lab.train import TrainConfig, TrainingError, check_out_dir, fit

# The library's own errors: a bad input, a missing dataset, a broken checkpoint, a failed run or download.
# OSError covers files that cannot be read or written (permissions, a full disk).
EXPECTED_ERRORS = (ValueError, OSError, CheckpointError, TrainingError, DownloadError)
BANDS_BY_COUNT = {10: S2_10BANDS, 12: S2_12BANDS, 13: S2_13BANDS}
DATA_ENV = {name: f"S2LAB_{name.upper()}_DIR" for name in settings.DATASETS}
SLIDER_RANGE = "0.5:0.95"  # the app's mask-ratio slider: pretraining covers all of it by default
BANDS_HELP = ("the input file's band names in file order, comma-separated (EuroSAT's tiles: "
              "B01,B02,B03,B04,B05,B06,B07,B08,B09,B10,B11,B12,B8A); they win over the file's band descriptions; "
              "default: the descriptions, else ESA order for a 10-, 12- or 13-band file")


# -- small helpers -------------------------------------------------------------------------------------------------
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


def _parse_ratio(text: str) -> float | tuple[float, float]:
    """ "0.75" -> 0.75; "0.5:0.95" -> (0.5, 0.95), each in [0, 1) and lo <= hi."""
    parts = str(text).split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--mask-ratio takes a number R or a range LO:HI in [0, 1), got {text!r}") from None
    if len(values) == 1:
        return _check_ratio(values[0])
    if len(values) != 2 or not 0.0 <= values[0] <= values[1] < 1.0:
        raise ValueError(f"--mask-ratio range must be LO:HI with 0 <= LO <= HI < 1, got {text!r}")
    return values[0], values[1]


def _check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown masking strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    return strategy


def _check_output(path: str, *inputs: str) -> Path:
    """The output path, refused before any work when it is an input, a folder, or in a missing / read-only folder.

    Writability is proven by creating (and removing) a temporary file in the folder, which also holds for root,
    whom permission bits do not stop.
    """
    out = Path(path).expanduser()
    for given in inputs:
        if given != "embedded" and Path(given).expanduser().resolve() == out.resolve():
            raise ValueError(f"output {out} is the input {given}; choose another output path")
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; expected a file path such as out.tif")
    if out.parent.exists() and not out.parent.is_dir():
        raise NotADirectoryError(f"output {out} is inside {out.parent}, which is a file; expected a folder")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder {out.parent} of output {out} does not exist; create it first")
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as err:
        raise PermissionError(
            f"cannot write output {out}: its folder {out.parent} is not writable ({err.strerror})"
        ) from None
    return out


def _check_input(spec: str) -> None:
    """Refuse a missing input before a model is loaded."""
    if spec != "embedded" and not Path(spec).expanduser().exists():
        raise FileNotFoundError(f"input {spec} does not exist; expected a GeoTIFF, a folder of band GeoTIFFs or "
                                "'embedded'")


def _open_input(spec: str, bands: Sequence[str], names: str | None = None) -> xr.DataArray:
    """``embedded``, a multi-band GeoTIFF or a folder of band GeoTIFFs as (C, H, W) reflectance of ``bands``.

    ``names`` (--bands) are a file's band names in file order, comma-separated; they win over its descriptions.
    """
    if spec == "embedded":
        if names:
            raise ValueError("--bands names the bands of an input file; 'embedded' names its own bands")
        return open_embedded_scene(bands)
    return open_raster(spec, bands=bands, band_names=names)


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
    model, info = load_model(name_or_path, builders=BUILDERS)
    if info.get("kind") not in kinds:
        raise CheckpointError(
            f"{name_or_path} is a {info.get('kind')!r} model; {purpose} needs one of: {', '.join(kinds)}"
        )
    return model, info


def _shipped(kinds: Sequence[str]) -> str | None:
    """The name of the first shipped model of one of ``kinds``, or None."""
    return next((m["name"] for m in shipped_models() if m["kind"] in kinds), None)


def _seeded(seed: int, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``make()`` with torch's global generator seeded for it and then restored (reproducible initial weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def _split(cities: Sequence[str], held_out: Sequence[str] | None, kept: Sequence[str] | None) -> tuple[list, list]:
    """(training, evaluation) cities: those named, else the last quarter of ``cities`` (at least one) held out."""
    cities = list(cities)
    unknown = [c for c in [*(held_out or []), *(kept or [])] if c not in cities]
    if unknown:
        raise ValueError(f"unknown OSCD cities {', '.join(unknown)}; present: {', '.join(cities)}")
    if held_out is None:
        held_out = [c for c in cities[-max(1, len(cities) // 4):] if c not in (kept or [])]
    train = list(kept) if kept is not None else [c for c in cities if c not in held_out]
    both = sorted(set(train) & set(held_out))
    if both:
        raise ValueError(f"cities {', '.join(both)} are both trained and evaluated on; keep the two lists apart")
    if not train or not held_out:
        raise ValueError(f"need at least one training and one evaluation city, got {train} and {list(held_out)}")
    return train, list(held_out)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        steps=args.steps,
        lr=args.lr,
        warmup_steps=args.steps // 20,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        progress=not args.quiet,
    )


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


# -- info ----------------------------------------------------------------------------------------------------------
def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _folder(name: str, found: Callable[[Path], dict]) -> dict:
    """A dataset folder's entry: where it is and what it holds, or how to point s2lab at it."""
    path = settings.data_dir(name)
    if path is None:
        return {"found": False, "hint": f"set {DATA_ENV[name]} (or S2LAB_DATA_DIR holding {name}/)"}
    try:
        return {"found": True, "path": str(path), **found(path)}
    except (FileNotFoundError, ValueError) as err:  # a folder that is there but not in the dataset's layout
        return {"found": False, "path": str(path), "problem": _one_line(err)}


def _eurosat_entry(path: Path) -> dict:
    root = eurosat_root(path)
    if root is None:
        raise FileNotFoundError(f"{path} holds no EuroSAT MS class folders (AnnualCrop/, Forest/, ...)")
    return {"classes_folder": str(root)}


def run_info(args: argparse.Namespace) -> dict:
    """Versions, the compute device, the data sources found and the shipped models."""
    versions = {"s2lab": __version__, "python": platform.python_version()}
    for package in ("torch", "numpy", "xarray", "rioxarray", "rasterio", "panel", "hvplot"):
        if package in ("panel", "hvplot") and importlib.util.find_spec(package) is None:
            continue
        versions[package] = _version(package)
    scene = embedded_scene_path()
    data = {
        "embedded": {"found": scene.is_dir(), "path": str(scene), "description": DESCRIPTION},
        "oscd": _folder("oscd", lambda p: {"cities": oscd_cities(images_dir(p)),
                                           "labelled": oscd_cities(images_dir(p), labelled=True)}),
        "eurosat": _folder("eurosat", _eurosat_entry),
        "bigearthnet": _folder("bigearthnet", lambda p: {"patches": len(bigearthnet_patches(p))}),
        "hyperspectral": _folder("hyperspectral", lambda p: {"files": sorted(f.name for f in p.iterdir())}),
        "bigearthnet_embedded": {"patches": bigearthnet_patches(EMBEDDED), "package": "bigearthnet-common"},
    }
    models = [
        {"name": m["name"], "kind": m["kind"],
         "trained_on": {k: v for k, v in (m["meta"] or {}).items() if k != "train_config"}}
        for m in shipped_models()
    ]
    device = pick_device()
    return {"versions": versions, "device": {**describe_device(device), "available": available_devices()}, "data": data,
            "models": models}


# -- reconstruct ---------------------------------------------------------------------------------------------------
def run_reconstruct(args: argparse.Namespace) -> dict:
    """Mask a scene, reconstruct it, write the pasted reconstruction with the input's georeference."""
    _check_input(args.input)
    out = _check_output(args.output, args.input)
    ratio, strategy = _check_ratio(args.mask_ratio), _check_strategy(args.strategy)
    name = args.model or _shipped(MAE_KINDS)
    if name is None:
        raise CheckpointError(
            "no S2MAE / SatMAE model ships with this install; pass --model PATH, e.g. the model.safetensors that "
            "`s2lab pretrain --out DIR` writes in DIR"
        )
    model, info = _load(name, MAE_KINDS, "reconstruct")
    bands = _model_bands(model, info)
    image = _open_input(args.input, bands, args.bands)
    result = reconstruct_image(model, image, mask_ratio=ratio, strategy=strategy, seed=args.seed,
                               batch_size=args.batch_size, device=args.device, progress=not args.quiet)
    write_geotiff(result.pasted, out, like=image)
    scores = dict(result.scores)
    mine = scores.pop("model")
    best = min(scores, key=lambda b: scores[b]["mse"]) if scores else None
    return {
        **mine,
        "space": "reflectance (MSE over the removed values, PSNR with peak 1.0, angle between reflectance spectra)",
        "baselines": scores,
        **({"best_baseline": best, "model_to_best": mine["mse"] / scores[best]["mse"]} if best else {}),
        "model": name,
        "kind": info["kind"],
        "input": args.input,
        "bands": list(bands),
        "shape": [int(n) for n in image.shape],
        **{k: v for k, v in result.summary().items() if k != "scores"},
        "output": str(out),
        **_assumed_note(image),
    }


# -- detect-change -------------------------------------------------------------------------------------------------
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
    before, after = _open_input(args.before, bands, args.bands), _open_input(args.after, bands, args.bands)
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


# -- pretrain ------------------------------------------------------------------------------------------------------
SIZE_FLAGS = ("embed_dim", "depth", "heads", "decoder_depth", "decoder_dim", "patch_size", "target", "scaling",
              "bands_per_token")


def _mae_config(args: argparse.Namespace, bands: Sequence[str]) -> dict:
    """The MAE constructor arguments: the defaults with the command line's size overrides."""
    config = {"img_size": args.img_size or MAEConfig.img_size, "in_chans": len(bands)}
    overrides = {"embed_dim": args.embed_dim, "depth": args.depth, "num_heads": args.heads,
                 "decoder_depth": args.decoder_depth, "decoder_embed_dim": args.decoder_dim}
    config.update({k: v for k, v in overrides.items() if v is not None})
    if args.patch_size is not None:
        config["patch_size"] = args.patch_size
    if args.target is not None:
        config["target"] = args.target
    if args.scaling is not None:
        config["scaling"] = args.scaling
    if args.loss is not None:
        config["loss"] = args.loss
    if args.bands_per_token is not None:
        if args.kind != "s2mae":
            raise ValueError(f"--bands-per-token sets S2MAE's 3D tokens; {args.kind} groups its bands itself")
        config["bands_per_token"] = args.bands_per_token
    return config


def run_pretrain(args: argparse.Namespace) -> dict:
    """Masked-autoencoder pretraining on real images; writes ``model.safetensors`` / ``model.json`` in --out."""
    ratio, strategy = _parse_ratio(args.mask_ratio), _check_strategy(args.strategy)
    train_config = _train_config(args)
    check_out_dir(args.out, resume=args.resume)  # before the data is read
    if args.init:
        given = [f"--{k.replace('_', '-')}" for k in SIZE_FLAGS if getattr(args, k) is not None]
        if given:
            raise ValueError(f"--init continues a model as it is; drop {', '.join(given)}")
        model, info = _load(args.init, (args.kind,), "pretrain --init")
        if args.loss is not None:  # the loss is a training choice, not part of the model's shape
            model.config.loss = args.loss
            model.config.validate()
        bands = _model_bands(model, info)
        images = pretraining_images(args.data, bands)
    else:
        bands = S2_10BANDS
        images = pretraining_images(args.data, bands)
        config = _mae_config(args, bands)
        if config.get("scaling", "dataset") == "dataset":  # statistics of exactly the data it trains on
            config["band_mean"], config["band_std"] = band_statistics(images)
        model = _seeded(args.seed, lambda: build(args.kind, config))
    args.img_size = args.img_size or model.config.img_size  # a continued model keeps the tiles it learned on
    batch_fn, loss_fn = pretrain_task(model, images, batch_size=args.batch_size, img_size=args.img_size,
                                      mask_ratio=ratio, strategy=strategy, augment=not args.no_augment)
    meta = {"task": "pretrain", "data": [str(d) for d in args.data], "bands": list(bands), "synthetic": False,
            "images": len(images), "pixels": int(sum(x.shape[-2] * x.shape[-1] for x in images)),
            "steps": args.steps, "seed": args.seed, "batch_size": args.batch_size, "img_size": args.img_size,
            "mask_ratio": list(ratio) if isinstance(ratio, tuple) else ratio, "strategy": strategy,
            "augment": "none" if args.no_augment else "flips and 90-degree turns", "init": args.init}
    result = fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=train_config, out_dir=args.out,
                 resume=args.resume, model_config=model.config_dict(), kind=args.kind, meta=meta)
    return {
        "model": str(Path(args.out) / "model.safetensors"),
        "kind": args.kind,
        "config": model.config_dict(),
        **{k: v for k, v in meta.items() if k != "bands"},
        "final_loss": _rounded(result.losses[-1]),
        "first_loss": _rounded(result.losses[0]),
        "start_step": result.start_step,
        "seconds": round(result.seconds, 3),
        "samples_per_second": _rounded(result.samples_per_second, 2),
        "device": str(pick_device(args.device)),
    }


# -- finetune ------------------------------------------------------------------------------------------------------
def _encoder(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[str, ...], str | None]:
    """The encoder to fine-tune (--init, or a fresh small S2MAE), its bands, and where it came from."""
    if args.init:
        model, info = _load(args.init, MAE_KINDS, "finetune --init")
        if args.fresh_weights:  # the from-scratch arm of a comparison: the same network, its weights drawn anew
            model = _seeded(args.seed, lambda: build(info["kind"], model.config_dict()))
            return model, _model_bands(model, info), f"{args.init} (architecture and scaling only, fresh weights)"
        return model, _model_bands(model, info), args.init
    if args.fresh_weights:
        raise ValueError("--fresh-weights takes the architecture of --init; give --init")
    model = _seeded(args.seed, lambda: build("s2mae", {"img_size": args.img_size or MAEConfig.img_size,
                                                       "in_chans": len(S2_10BANDS)}))
    return model, S2_10BANDS, None


DATA_CHOICES = {"change": ("auto", "oscd", "synthetic"), "classify": ("auto", "eurosat", "synthetic"),
                "multilabel": ("auto", "synthetic")}


class Finetune(NamedTuple):
    """What a fine-tuning task sets up: the model, its training recipe, its data and how to score it."""

    model: torch.nn.Module  # the encoder with the task's head
    batch_fn: Callable  # s2lab.tasks recipe: (step, generator) -> batch
    loss_fn: Callable  # s2lab.tasks recipe: (model, batch, generator) -> loss
    about: dict  # what it trains on (JSON data, saved in the checkpoint's meta)
    evaluate: Callable[[torch.nn.Module], dict]  # the trained model -> its scores on held-out data


def _real(args: argparse.Namespace, dataset: str, present: bool) -> bool:
    """Whether the task trains on the real ``dataset``: asked for, or --data auto and present."""
    return args.data == dataset or (args.data == "auto" and present)


def _change_data(args: argparse.Namespace, bands: Sequence[str]) -> tuple[list, list, dict]:
    """(training pairs, evaluation pairs, what they are): OSCD cities when present, else synthetic tiles.

    A pair is (before (C, H, W), after (C, H, W), label (H, W) 0/1).
    """
    if _real(args, "oscd", settings.data_dir("oscd") is not None):
        unlabelled = [c for c in [*(args.eval_cities or []), *(args.train_cities or [])]
                      if c in oscd_cities(labelled=False)]
        if unlabelled:
            raise ValueError(f"OSCD cities {', '.join(unlabelled)} have no change label (OSCD's test cities); "
                             f"labelled: {', '.join(oscd_cities(labelled=True))}")
        train, held = _split(oscd_cities(labelled=True), args.eval_cities, args.train_cities)

        def load(cities: Sequence[str]) -> list:
            return [(p.before, p.after, p.label) for p in (load_oscd_city(c, bands=bands) for c in cities)]

        return load(train), load(held), {"data": "oscd", "synthetic": False, "train_cities": train,
                                         "eval_cities": held}
    generator = torch.Generator().manual_seed(args.seed)
    scene, size = open_embedded_scene(bands), max(128, args.img_size)
    sets = [synthetic_change_dataset(count, size, rng=generator, scene=scene, split=split)
            for count, split in ((args.synthetic_count, "train"), (max(1, args.synthetic_count // 4), "eval"))]
    pairs = [list(zip(t.before, t.after, t.mask)) for t in sets]
    return pairs[0], pairs[1], {"data": sets[0].description + "; scored on eval-split tiles", "synthetic": True}


def _finetune_change(args: argparse.Namespace, encoder: torch.nn.Module, bands: Sequence[str]) -> Finetune:
    """Change detection: OSCD (threshold chosen on the training cities, scored on the others) or synthetic pairs."""
    train_pairs, eval_pairs, about = _change_data(args, bands)
    normalize = None if args.normalize == "none" else args.normalize
    about["normalize"] = normalize
    share = float(np.mean(np.concatenate([np.asarray(label).ravel() for _, _, label in train_pairs])))
    pos_weight = min((1 - share) / share, 10.0) if share > 0 else None  # change is rare: up-weigh it, at most 10x
    model = _seeded(args.seed, lambda: ChangeDetector(encoder=encoder, linear_probe=args.linear_probe))
    batch_fn, loss_fn = change_task(model, train_pairs, batch_size=args.batch_size, img_size=args.img_size,
                                    pos_weight=pos_weight, normalize=normalize)

    def evaluate(model: torch.nn.Module) -> dict:
        # The model alone (weight 0) and its default for detect-change: alone, or blended with CVA where that
        # scores better on the training cities (weights and thresholds chosen there; the eval cities only scored).
        blend = evaluate_blend(model, train_pairs, eval_pairs, eval_names=about.get("eval_cities"),
                               normalize=normalize, device=args.device)
        scores = blend["alone"]
        return {"threshold": scores["threshold"], "pos_weight": pos_weight,
                "scored_on": "eval cities" if not about["synthetic"] else "eval-split synthetic tiles",
                **scores["pooled"], "per_city": scores["per_pair"] if not about["synthetic"] else None,
                "method": "model + cva" if blend["weight"] > 0 else "model",
                "blend": {"cva_weight": blend["weight"], "threshold": blend["threshold"],
                          "train_f1": blend["train_f1"], **blend["pooled"]}}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


def _finetune_classify(args: argparse.Namespace, encoder: torch.nn.Module, bands: Sequence[str]) -> Finetune:
    """Scene classification: EuroSAT (a seeded fifth held out) or the synthetic EuroSAT-like set (eval split)."""
    generator = torch.Generator().manual_seed(args.seed)
    if _real(args, "eurosat", eurosat_available()):
        x, y, classes = load_eurosat(bands=bands, limit_per_class=args.limit_per_class, generator=generator)
        order = torch.randperm(len(x), generator=generator)
        held, kept = order[: max(1, len(x) // 5)], order[max(1, len(x) // 5):]  # a seeded fifth held out
        train, test = (x[kept], y[kept]), (x[held], y[held])
        about = {"data": "eurosat", "synthetic": False}
    else:
        sets = [synthetic_scene_classification(count, size=args.img_size, rng=generator, bands=bands, split=split)
                for count, split in ((args.synthetic_count, "train"), (max(1, args.synthetic_count // 4), "eval"))]
        train, test, classes = (sets[0].x, sets[0].y), (sets[1].x, sets[1].y), sets[0].classes
        about = {"data": sets[0].description + "; scored on eval-split images", "synthetic": True}
    model = _seeded(args.seed, lambda: SceneClassifier(encoder=encoder, num_classes=len(classes),
                                                       linear_probe=args.linear_probe))
    batch_fn, loss_fn = classification_task(model, *train, batch_size=args.batch_size)

    def evaluate(model: torch.nn.Module) -> dict:
        return {"accuracy": accuracy(_predict(model, test[0], args.device), test[1]), "eval_images": len(test[0]),
                "classes": list(classes)}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


def _predict(model: torch.nn.Module, x: torch.Tensor, device: str, batch: int = 64) -> torch.Tensor:
    """Logits (N, K) of images x (N, C, H, W), in batches, without gradients, on ``device``."""
    target = pick_device(device)
    model.to(target).eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch].to(target)).float().cpu() for i in range(0, len(x), batch)])


def _finetune_multilabel(args: argparse.Namespace, encoder: torch.nn.Module, bands: Sequence[str]) -> Finetune:
    """Multi-label classification: synthetic BigEarthNet-19-like training, scored on the 6 real patches."""
    generator = torch.Generator().manual_seed(args.seed)
    images = synthetic_multilabel(args.synthetic_count, size=args.img_size, rng=generator, bands=bands)
    x, y, classes = images
    about = {"data": images.description + "; scored on the 6 real BigEarthNet patches of bigearthnet-common",
             "synthetic": True}
    model = _seeded(args.seed, lambda: SceneClassifier(encoder=encoder, num_classes=len(classes), multilabel=True,
                                                       linear_probe=args.linear_probe))
    batch_fn, loss_fn = multilabel_task(model, x, y, batch_size=args.batch_size)

    def evaluate(model: torch.nn.Module) -> dict:
        patches = [load_bigearthnet_patch(n, root=EMBEDDED, bands=bands) for n in bigearthnet_patches(EMBEDDED)]
        real_x = torch.stack([to_tensor(p.s2) for p in patches])  # (6, C, 120, 120)
        real_y = torch.stack([torch.as_tensor(p.multi_hot) for p in patches])  # (6, 19)
        scores = _predict(model, real_x, args.device)  # (6, 19) logits
        return {"scored_on": f"{len(patches)} real BigEarthNet patches (bigearthnet-common)",
                "map_macro": mean_average_precision(scores, real_y, skip_empty=True),
                "map_micro": mean_average_precision(scores, real_y, average="micro"),
                "classes": list(classes)}

    return Finetune(model, batch_fn, loss_fn, about, evaluate)


FINETUNE_TASKS = {"change": _finetune_change, "classify": _finetune_classify, "multilabel": _finetune_multilabel}


def run_finetune(args: argparse.Namespace) -> dict:
    """Fine-tune a pretrained encoder with a head; writes ``model.*`` in --out with the evaluation in its meta."""
    if args.data not in DATA_CHOICES[args.task]:
        raise ValueError(f"--data {args.data!r} does not fit --task {args.task}; "
                         f"expected one of {', '.join(DATA_CHOICES[args.task])}")
    train_config = _train_config(args)
    check_out_dir(args.out, resume=args.resume)  # before the encoder and the data are read
    encoder, bands, init = _encoder(args)
    args.img_size = args.img_size or encoder.config.img_size  # the encoder's own tiles unless told otherwise
    model, batch_fn, loss_fn, about, evaluate = FINETUNE_TASKS[args.task](args, encoder, bands)
    meta = {"task": args.task, "init": init, "bands": list(bands), **about, "steps": args.steps, "seed": args.seed,
            "batch_size": args.batch_size, "linear_probe": args.linear_probe}
    result = fit(model, loss_fn=loss_fn, batch_fn=batch_fn, config=train_config, out_dir=args.out,
                 resume=args.resume, model_config=head_config(model), kind=model.kind, meta=meta)
    report = {"model": str(Path(args.out) / "model.safetensors"), **meta, "final_loss": _rounded(result.losses[-1]),
              "seconds": round(result.seconds, 3), "device": str(pick_device(args.device))}
    if not _is_rank_zero():
        return report
    evaluation = evaluate(model)
    _, saved = load_state(Path(args.out) / "model")
    save_model(Path(args.out) / "model", model, kind=model.kind, config=head_config(model),
               meta={**saved["meta"], **evaluation})
    return {**report, **evaluation}


# -- bench ---------------------------------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace) -> dict:
    """The benchmarks of ``s2lab.bench``; writes ``results/<part>.json`` and ``RESULTS.md`` in --out."""
    if args.changes is not None and args.changes < 1:
        raise ValueError(f"--changes must be at least 1, got {args.changes}")
    parts = bench.parse_parts(args.only, notebooks=args.notebooks)
    pick_device(args.device)  # an unavailable --device is refused before anything runs
    return bench.run(parts, out_dir=args.out, quick=args.quick, device=args.device, changes=args.changes)


# -- the parser ----------------------------------------------------------------------------------------------------
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``s2lab`` command."""
    parser = argparse.ArgumentParser(prog="s2lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"s2lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    strategies = ", ".join(STRATEGIES)

    p = sub.add_parser("info", help="versions, device, data sources and shipped models")
    _common(p, computes=False)
    p.set_defaults(run=run_info)

    p = sub.add_parser("reconstruct", help="mask a scene and reconstruct it with a masked autoencoder")
    p.add_argument("input", help="a multi-band GeoTIFF, a folder of one-GeoTIFF-per-band files, or 'embedded'")
    p.add_argument("-o", "--output", required=True, help="the GeoTIFF to write (float32 reflectance)")
    p.add_argument("--model", help="a shipped model name or a checkpoint path (default: the shipped S2MAE)")
    p.add_argument("--mask-ratio", type=float, default=0.75, help="share of tokens removed, in [0, 1)")
    p.add_argument("--strategy", default="random", help=f"masking strategy: {strategies} (default random)")
    p.add_argument("--seed", type=int, default=0, help="seeds the mask (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="tiles per forward pass (default 16)")
    p.add_argument("--bands", help=BANDS_HELP)
    _common(p)
    p.set_defaults(run=run_reconstruct)

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
    _common(p)
    p.set_defaults(run=run_detect_change)

    p = sub.add_parser("pretrain", help="masked-autoencoder pretraining on real imagery")
    p.add_argument("--kind", choices=MAE_KINDS, default="s2mae", help="the model (default s2mae)")
    p.add_argument("--data", nargs="+", default=["embedded"],
                   help="'embedded' ('embedded:train' its top half), 'oscd', 'bigearthnet', GeoTIFFs or folders "
                        "(default embedded)")
    _training(p, out="runs/pretrain", steps=1000, batch_size=16, lr=1.5e-4)
    p.add_argument("--mask-ratio", default=SLIDER_RANGE, help="R, or LO:HI drawn per batch (default %(default)s)")
    p.add_argument("--strategy", default="random", help=f"masking strategy: {strategies} (default random)")
    p.add_argument("--patch-size", type=int, help="p, pixels per token side (default 8)")
    p.add_argument("--bands-per-token", type=int,
                   help="s, adjacent bands in one S2MAE token (default 2; s2mae only)")
    p.add_argument("--embed-dim", type=int, help="D, encoder width (default 128)")
    p.add_argument("--depth", type=int, help="encoder blocks (default 4)")
    p.add_argument("--heads", type=int, help="encoder attention heads (default 4)")
    p.add_argument("--decoder-depth", type=int, help="decoder blocks (default 2)")
    p.add_argument("--decoder-dim", type=int, help="decoder width (default 96)")
    p.add_argument("--target", choices=TARGETS,
                   help="what the decoder predicts: unit (the scaled image, default) or patch (each token "
                        "standardised, MAE's norm_pix_loss)")
    p.add_argument("--scaling", choices=SCALINGS,
                   help="input and target scaling: dataset (fixed per-band statistics of --data, default), window "
                        "(each window's band min-max) or none (reflectance)")
    p.add_argument("--loss", choices=LOSSES,
                   help="where the masked MSE is taken: scaled (the target space, as the papers; default), "
                        "reflectance (each band weighted by its squared scaling range: the error the lab scores) or "
                        "balanced (those weights divided by each band's batch mean); may change with --init")
    p.add_argument("--init", help="continue this checkpoint (a shipped name or a path) on --data: progressive "
                                  "pretraining; its size and scaling are kept")
    p.add_argument("--no-augment", action="store_true", help="no random flips and 90-degree turns of the tiles")
    _common(p)
    p.set_defaults(run=run_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a pretrained encoder: classify, multilabel or change")
    p.add_argument("--task", required=True, choices=tuple(FINETUNE_TASKS), help="the task")
    p.add_argument("--init", help="the pretrained S2MAE / SatMAE: a shipped name or a path (default: fresh)")
    p.add_argument("--data", default="auto",
                   help="auto (real when present), oscd (change), eurosat (classify) or synthetic")
    _training(p, out="runs/finetune", steps=500, batch_size=8, lr=5e-4)
    p.add_argument("--linear-probe", action="store_true", help="freeze the encoder; train the head only")
    p.add_argument("--fresh-weights", action="store_true",
                   help="the --init model's architecture and scaling with fresh weights (from scratch, for comparison)")
    p.add_argument("--normalize", choices=("none", *NORMALIZATIONS), default="none",
                   help="change: per-image radiometric normalisation of the after date, no labels (default none)")
    p.add_argument("--train-cities", nargs="+", help="OSCD cities to train on (default: all not evaluated)")
    p.add_argument("--eval-cities", nargs="+", help="OSCD cities to evaluate on (default: the last quarter)")
    p.add_argument("--limit-per-class", type=int, default=200, help="EuroSAT images read per class (default 200)")
    p.add_argument("--synthetic-count", type=int, default=64,
                   help="without real data: synthetic change tiles, images per class (classify) or images "
                   "(multilabel) to train on, a quarter as many held out (default 64)")
    _common(p)
    p.set_defaults(run=run_finetune)

    p = sub.add_parser("bench", help="benchmarks: whole scene, training vs the reference MAE, app, scaling, GPU")
    p.add_argument("--only", help=f"comma-separated parts of: {', '.join(bench.PARTS)} (default all but notebooks)")
    p.add_argument("--notebooks", action="store_true", help="also execute every notebook (slow)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats: a smoke run, not figures to quote")
    p.add_argument("--changes", type=int, help="slider changes the app part times (default 100, 20 with --quick)")
    p.add_argument("--out", help="folder for RESULTS.md and results/*.json (default the repository's bench/)")
    _common(p)
    p.set_defaults(run=run_bench)
    return parser


# -- output and main -----------------------------------------------------------------------------------------------
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
        text = json.dumps(bench.json_safe(report), indent=2) if args.json else "\n".join(_human(report))
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `s2lab info | head`: the reader left; Python's recipe to exit quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
