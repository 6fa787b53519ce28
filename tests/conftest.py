"""Test configuration: point s2lab at the project's shared real data when it sits beside the checkout; the fixtures
several test modules share (a crop of the real scene, change pairs made from it, the bad files of the error
tests)."""

import os
from pathlib import Path

import pytest

_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "S2LAB_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["S2LAB_DATA_DIR"] = str(_SHARED_DATA)


@pytest.fixture(scope="session")
def scene_crop():
    """150 rows x 200 columns of the real embedded scene (10 bands): neither side a multiple of a 32 px window."""
    from s2lab.data.embedded import open_embedded_scene  # after S2LAB_DATA_DIR is set above

    return open_embedded_scene().isel(y=slice(600, 750), x=slice(900, 1100))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """inputs/ (good and damaged rasters) and models/ (good, mismatched, tampered and pickled checkpoints), one per
    test module (``tests/_bad_files.py``)."""
    from _bad_files import make_lab  # after S2LAB_DATA_DIR is set above

    return make_lab(tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture(scope="module")
def pairs():
    """Three real 64 x 96 crops of the embedded scene; after = a season-like gain of before, a planted change."""
    import torch

    from s2lab.data.embedded import open_embedded_scene  # after S2LAB_DATA_DIR is set above
    from s2lab.data.tiles import to_tensor

    scene = to_tensor(open_embedded_scene().isel(y=slice(1000, 1192), x=slice(500, 596)))  # (10, 192, 96)
    made = []
    for k in range(3):
        before = scene[:, 64 * k:64 * (k + 1)]
        after = before * (1.3 + 0.1 * k) + 0.01  # global radiometric change, no real change
        label = torch.zeros(64, 96)
        label[10 + 5 * k:30 + 5 * k, 20:50] = 1
        after[:, label.bool()] = before[:, label.bool()].flip(0)  # real change: the spectra scrambled
        made.append((before, after, label))
    return made
