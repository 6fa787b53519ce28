"""Every bad input the lab documents (docs/reliability.md), through the command line.

Each case is a real process running ``python -m s2lab ARGS`` in a folder of its own (``run_commands`` of
``_command_driver.py``). It must exit with code 1, print exactly one line ``s2lab: error: ...`` on stderr that names
what was wrong and what was expected, print no traceback and nothing on stdout, leave nothing in its folder (no
partial output) and change no input file. The inputs that can be read must be read, and the command must say how.

All inputs are the ``lab`` fixture's (``tests/_bad_files.py``): crops of the embedded real scene written with
``write_geotiff``, then damaged. The same inputs through the Python API are tested beside the code that refuses them:
tests/data/test_raster.py, tests/data/test_export.py, tests/test_reconstruct.py, tests/test_change.py and
tests/test_checkpoints.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from _bad_files import EUROSAT_ORDER
from ._command_driver import run_commands


def _digests(*folders: Path) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for d in folders for f in sorted(d.rglob("*"))
            if f.is_file()}


# -- command line: the cases ---------------------------------------------------------------------------------------
def _error_cases(lab: Path) -> list[tuple[str, list, str]]:
    """(name, argv, what the one error line must say) for every bad input a user may give."""
    i, m = lab / "inputs", lab / "models"
    tiny = m / "tiny.safetensors"

    def rec(source, *more, model=tiny):
        return ["reconstruct", source, "-o", "out.tif", "--model", model, *more]

    def change(before, after, *more):
        return ["detect-change", before, after, "-o", "map.tif", "--model", "cva", *more]

    unwritable = "/sys" if os.geteuid() == 0 else lab / "read_only"  # root ignores permission bits; not /sys
    return [
        ("missing file", rec(i / "absent.tif"), r"input .*absent\.tif does not exist; expected a GeoTIFF"),
        ("not a raster", rec(i / "notes.txt"), r"notes\.txt is not a readable raster \(expected a GeoTIFF\)"),
        ("empty file", rec(i / "empty.tif"), r"empty\.tif is not a readable raster"),
        ("truncated GeoTIFF", rec(i / "truncated.tif"), r"truncated\.tif (is not a readable raster|could not be read)"),
        ("header only", rec(i / "header.tif"), r"header\.tif (is not a readable raster|could not be read)"),
        ("one band, no name", rec(i / "oneband.tif"), (r"B02, .* not found in .*oneband\.tif: its 1 uint16 bands "
                                                       r"have no names .*expected band descriptions such as B02")),
        ("RGB 8-bit", rec(i / "rgb8.tif"), r"not found in .*rgb8\.tif: its 3 uint8 bands have no names"),
        ("RGB with names", rec(i / "rgb_named.tif"), r"bands B05, .* not found in .*rgb_named\.tif; it has B04, B03, B02"),
        ("--bands of another count", rec(i / "eurosat13.tif", "--bands", ",".join(EUROSAT_ORDER[:12])),
         r"12 band names given \(B01, .*\) but .*eurosat13\.tif holds 13 bands; expected one name per band"),
        ("--bands for embedded", rec("embedded", "--bands", "B02"), r"--bands names the bands of an input file"),
        ("all NaN", rec(i / "allnan.tif"), r"the image is NaN everywhere; nothing to run the model on"),
        ("smaller than a patch", rec(i / "small.tif"), r"the image of 5 x 5 px is smaller than one 8 x 8 patch"),
        ("mask ratio 1", rec(i / "crop.tif", "--mask-ratio", "1"), r"--mask-ratio must be in \[0, 1\), got 1\.0"),
        ("mask ratio -0.1", rec(i / "crop.tif", "--mask-ratio", "-0.1"), r"must be in \[0, 1\), got -0\.1"),
        ("mask ratio nan", rec(i / "crop.tif", "--mask-ratio", "nan"), r"must be in \[0, 1\), got nan"),
        ("mask ratio keeps nothing", rec(i / "crop.tif", "--mask-ratio", "0.999"),
         r"mask ratio 0\.999 keeps no token of \d+; use a ratio below 0\.\d+ or more tokens"),
        ("unknown strategy", rec(i / "crop.tif", "--strategy", "diagonal"),
         r"unknown masking strategy 'diagonal'; expected one of random, "),
        ("empty folder", rec(i / "empty_folder"), r"empty_folder holds no band files; expected one GeoTIFF per band"),
        ("folder of junk", rec(i / "junk_folder"), r"junk_folder/T18_B\w+\.tif is not a readable raster"),
        ("output is the input", ["reconstruct", "crop.tif", "-o", "crop.tif", "--model", tiny],
         r"output crop\.tif is the input crop\.tif; choose another output path"),
        ("output not writable", ["reconstruct", i / "crop.tif", "-o", Path(unwritable) / "out.tif", "--model", tiny],
         r"cannot write output .*out\.tif: its folder .* is not writable \(Permission denied\)"),
        ("output inside a file", ["reconstruct", i / "crop.tif", "-o", i / "notes.txt" / "out.tif", "--model", tiny],
         r"notes\.txt/out\.tif is inside .*notes\.txt, which is a file; expected a folder"),
        ("output in a missing folder", ["reconstruct", i / "crop.tif", "-o", "nowhere/out.tif", "--model", tiny],
         r"the folder nowhere of output nowhere/out\.tif does not exist; create it first"),
        ("pair of sizes", change(i / "crop.tif", i / "quarter.tif"),
         (r"after .*quarter\.tif covers .* \(32 x 32 px\), the target grid .* \(64 x 64 px\); expected the same "
          r"extent within one pixel")),
        ("pair of places", change(i / "crop.tif", i / "beside.tif"), r"after .*beside\.tif covers .*expected the same extent"),
        ("pair of CRS", change(i / "crop.tif", i / "other_crs.tif"),
         r"after .*other_crs\.tif is in CRS EPSG:32617, the target grid in EPSG:32618; expected one CRS"),
        ("pair of band sets", change(i / "crop.tif", i / "nine_bands.tif"),
         r"bands B12 not found in .*nine_bands\.tif; it has B02, B03, B04, B05, B06, B07, B08, B8A, B11"),
        ("label of the wrong size", change(i / "crop.tif", i / "crop.tif", "--labels", i / "label_10px.tif"),
         r"label .*label_10px\.tif is 10 x 10 px, the before image 64 x 64"),
        ("label not a raster", change(i / "crop.tif", i / "crop.tif", "--labels", i / "notes.txt"),
         r"notes\.txt is not a readable label GeoTIFF"),
        ("output is the label", ["detect-change", i / "crop.tif", i / "crop.tif", "-o", i / "label.tif",
                                 "--labels", i / "label.tif"], r"output .*label\.tif is the input .*label\.tif"),
        ("checkpoint of another width", rec(i / "crop.tif", model=m / "wide.safetensors"),
         (r"checkpoint does not fit S2MAE: 0 missing, 0 unexpected, \d+ of a different shape; different shapes "
          r"\(name, expected, found\): \(embed\.weight, expected \(\d+, 48\), found \(\d+, 32\)\)")),
        ("checkpoint of other bands", rec(i / "crop.tif", model=m / "twelve.safetensors"),
         r"bands B01, B09 not found in .*crop\.tif; it has B02, "),
        ("checkpoint of another kind", rec(i / "crop.tif", model=m / "change.safetensors"),
         r"change\.safetensors is a 'change' model; reconstruct needs one of: s2mae, satmae"),
        ("reconstruct model for change", ["detect-change", i / "crop.tif", i / "crop.tif", "-o", "map.tif",
                                          "--model", tiny], r"is a 's2mae' model; detect-change needs one of: change"),
        ("tampered checkpoint", rec(i / "crop.tif", model=m / "tampered.safetensors"),
         (r"tampered\.safetensors does not match the sha256 recorded in tampered\.json \(recorded [0-9a-f]{64}, "
          r"found [0-9a-f]{64}\)")),
        ("pickle checkpoint", rec(i / "crop.tif", model=m / "evil.pt"),
         r"evil\.pt is a pickle-based file .* s2lab does not load it.* must be safetensors"),
        ("pickle named .safetensors", rec(i / "crop.tif", model=m / "disguised.safetensors"),
         r"disguised\.safetensors is a pickle-based file"),
        ("pickle as --init", ["finetune", "--task", "classify", "--init", m / "evil.pt", "--out", "run",
                              "--steps", "1"], r"evil\.pt is a pickle-based file"),
        ("a folder as checkpoint", rec(i / "crop.tif", model=m), r"models is a folder; expected a checkpoint file"),
    ]


def test_every_bad_input_fails_with_one_line_and_leaves_nothing(lab, tmp_path):
    cases = _error_cases(lab)
    if os.geteuid() != 0:
        (lab / "read_only").mkdir(exist_ok=True)
        (lab / "read_only").chmod(0o500)
    folders = []
    for n, (name, argv, _) in enumerate(cases):
        folders.append(tmp_path / f"case{n:02d}")
        folders[-1].mkdir()
        if "crop.tif" in argv:  # a case naming a file by its bare name works on a copy in its own folder
            shutil.copy(lab / "inputs" / "crop.tif", folders[-1] / "crop.tif")
    before = _digests(lab / "inputs", lab / "models", *folders)
    results = run_commands([(name, argv, folder) for (name, argv, _), folder in zip(cases, folders)], tmp_path)
    problems = []
    for (name, _, expected), folder, result in zip(cases, folders, results):
        lines = result["stderr"].strip().splitlines()
        line = lines[0] if lines else ""
        left = sorted(p.name for p in folder.iterdir() if p.name != "crop.tif")
        if result["code"] != 1 or len(lines) != 1 or not line.startswith("s2lab: error: "):
            problems.append(f"{name}: exit {result['code']}, stderr {result['stderr']!r}")
        elif not re.search(expected, line):
            problems.append(f"{name}: {line!r} does not say {expected!r}")
        if "Traceback" in result["stderr"] or result["stdout"] or left:
            problems.append(f"{name}: stdout {result['stdout']!r}, files left {left}, stderr {result['stderr']!r}")
    assert not problems, "\n".join(problems)
    assert _digests(lab / "inputs", lab / "models", *folders) == before  # no input changed, none overwritten
    assert not (lab / "UNPICKLED").exists()  # no pickle was ever unpickled
    assert not Path("/sys/out.tif").exists()


def test_what_can_be_read_is_read_and_says_how(lab, tmp_path):
    """Bands named by --bands, partly-NaN and nodata images, sizes that are no multiple of the patch: exit 0."""
    i, tiny = lab / "inputs", lab / "models" / "tiny.safetensors"
    common = ["--model", tiny, "--seed", "3", "--quiet", "--json"]
    cases = [
        ("ESA order, described", ["reconstruct", i / "esa13.tif", "-o", "esa.tif", *common], tmp_path),
        ("EuroSAT order, named by --bands", ["reconstruct", i / "eurosat13.tif", "-o", "named.tif", *common,
                                             "--bands", ",".join(EUROSAT_ORDER)], tmp_path),
        ("EuroSAT order, undescribed", ["reconstruct", i / "eurosat13.tif", "-o", "assumed.tif", *common], tmp_path),
        ("partly NaN", ["reconstruct", i / "partnan.tif", "-o", "partnan.tif", *common], tmp_path),
        ("nodata", ["reconstruct", i / "nodata.tif", "-o", "nodata.tif", *common], tmp_path),
        ("50 x 37 px", ["reconstruct", i / "odd.tif", "-o", "odd.tif", *common], tmp_path),
    ]
    results = dict(zip((name for name, _, _ in cases), run_commands(cases, tmp_path)))
    for name, result in results.items():
        assert result["code"] == 0 and "Traceback" not in result["stderr"], (name, result["stderr"])
    reports = {name: json.loads(result["stdout"]) for name, result in results.items()}

    def read(name: str) -> np.ndarray:
        with rasterio.open(tmp_path / name) as src:
            return src.read()

    assert np.array_equal(read("named.tif"), read("esa.tif"), equal_nan=True)  # --bands put the bands right
    assert "warning" not in reports["EuroSAT order, named by --bands"]
    assert "ESA order" in reports["EuroSAT order, undescribed"]["warning"]  # the guess is said, and it is wrong:
    assert not np.array_equal(read("assumed.tif"), read("esa.tif"), equal_nan=True)
    assert reports["partly NaN"]["nan_fraction"] == pytest.approx(16 / 64)
    assert reports["nodata"]["nan_fraction"] == pytest.approx(8 / 64)
    assert np.isnan(read("nodata.tif")[:, :, :8]).mean() > 0.1  # nodata kept where the model left it visible
    assert reports["50 x 37 px"]["shape"] == [10, 50, 37] and read("odd.tif").shape == (10, 50, 37)
