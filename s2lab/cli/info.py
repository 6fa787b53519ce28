"""``s2lab info``: versions, the compute device, the data sources found and the shipped models."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
from collections.abc import Callable
from pathlib import Path

from s2lab import __version__, settings
from s2lab.checkpoints import shipped_models
from s2lab.cli._args import _common, _one_line
from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches
from s2lab.data.embedded import DESCRIPTION, embedded_scene_path
from s2lab.data.eurosat import eurosat_root
from s2lab.data.oscd import images_dir, oscd_cities
from s2lab.device import available_devices, describe_device, pick_device

DATA_ENV = {name: f"S2LAB_{name.upper()}_DIR" for name in settings.DATASETS}


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``info`` subcommand and its options."""
    p = sub.add_parser("info", help="versions, device, data sources and shipped models")
    _common(p, computes=False)
    p.set_defaults(run=run_info)
