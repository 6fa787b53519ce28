"""Where s2lab finds data: an explicit argument, then an environment variable, then a default.

No path to any developer's machine is written here. A user points s2lab at datasets they have with
``S2LAB_DATA_DIR`` (a root that may hold ``oscd/``, ``eurosat/``, ``bigearthnet/``, ``hyperspectral/``)
or with one variable per dataset (``S2LAB_OSCD_DIR`` ...). Without them, the embedded real scene is used.
"""

from __future__ import annotations

import os
from pathlib import Path

DATASETS = ("oscd", "eurosat", "bigearthnet", "hyperspectral")


def cache_dir() -> Path:
    """The folder for downloads and derived files: ``S2LAB_CACHE_DIR`` or ``~/.cache/s2lab``."""
    return Path(os.environ.get("S2LAB_CACHE_DIR", Path.home() / ".cache" / "s2lab")).expanduser()


def data_dir(name: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The folder of dataset ``name``, or None when the user has not got it.

    Args:
        name: one of ``DATASETS``.
        explicit: a folder given by the caller; wins over everything else and must exist.

    Returns:
        The first existing folder of: ``explicit``, ``$S2LAB_<NAME>_DIR``, ``$S2LAB_DATA_DIR/<name>``,
        ``cache_dir()/<name>``; None when none exists.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{name} folder {path} does not exist")
        return path
    candidates = []
    if specific := os.environ.get(f"S2LAB_{name.upper()}_DIR"):
        candidates.append(Path(specific).expanduser())
    if root := os.environ.get("S2LAB_DATA_DIR"):
        candidates.append(Path(root).expanduser() / name)
    candidates.append(cache_dir() / name)
    return next((c for c in candidates if c.is_dir()), None)
