"""data.export: write_geotiff's refusals, on the bad files of the error tests (the lab fixture, tests/_bad_files.py)."""

import os
from pathlib import Path

import pytest

from s2lab.data.export import write_geotiff
from s2lab.data.raster import RasterError, open_raster


def test_write_geotiff_refuses_inputs_and_unwritable_places(lab, tmp_path):
    crop = open_raster(lab / "inputs" / "crop.tif")
    with pytest.raises(RasterError, match=r"output .*crop\.tif is the input .*crop\.tif; choose another output path"):
        write_geotiff(crop, lab / "inputs" / "crop.tif")
    with pytest.raises(RasterError, match=r"the folder .*nowhere of output .*out\.tif does not exist; create it first"):
        write_geotiff(crop, tmp_path / "nowhere" / "out.tif")
    with pytest.raises(RasterError, match=r"is a folder; expected a file path"):
        write_geotiff(crop, tmp_path)
    if os.geteuid() == 0:
        unwritable = Path("/sys")
    else:
        unwritable = tmp_path / "read_only"
        unwritable.mkdir()
        unwritable.chmod(0o500)
    with pytest.raises(RasterError, match=r"cannot write .*out\.tif: its folder .* is not writable"):
        write_geotiff(crop, unwritable / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == (["read_only"] if os.geteuid() else [])
