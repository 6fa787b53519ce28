"""Every bad input the lab documents (docs/reliability.md), through the command line and through the Python API.

Command line: each case is a real process running ``python -m s2lab ARGS`` in a folder of its own. It must exit
with code 1, print exactly one line ``s2lab: error: ...`` on stderr that names what was wrong and what was
expected, print no traceback and nothing on stdout, leave nothing in its folder (no partial output) and change no
input file. Starting Python and importing torch costs seconds per process, so the cases run as forked children of
one process that imported s2lab once (``python tests/test_bad_inputs.py CASES.json RESULTS.json``, the
``__main__`` block at the end): every child is its own process with its own exit code, stdout and stderr.

Python API: the same inputs raise ``RasterError`` / ``ValueError`` / ``CheckpointError`` with the message checked.

All inputs are crops of the embedded real scene written with ``write_geotiff``, then damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import pickle
import re
import runpy
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from s2lab.change import change_map_cva
from s2lab.checkpoints import CheckpointError, save_model
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.oscd import read_label
from s2lab.data.raster import RasterError, open_raster
from s2lab.evaluate import score_change
from s2lab.models import ChangeDetector, build, head_config, load_model
from s2lab.reconstruct import reconstruct_image
from s2lab.sensors import S2_10BANDS, S2_12BANDS, S2_13BANDS
from _tiny import TINY

EUROSAT_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
ROWS, COLS = slice(900, 964), slice(800, 864)  # a 64 x 64 px crop of the real scene: farmland and a road
CASE_TIMEOUT = 120  # seconds one command may take before it counts as hung


# -- the inputs ----------------------------------------------------------------------------------------------------
class _Marker:
    """A pickle payload that creates a file when unpickled: proof of whether anything unpickled it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


def _tiny(kind: str = "s2mae", in_chans: int = 10, **overrides) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build(kind, {**TINY, "in_chans": in_chans, **overrides})


def _write_plain(path: Path, data: np.ndarray, like, **profile) -> Path:
    """(C, H, W) ``data`` as a GeoTIFF on ``like``'s grid without band descriptions (no names, no wavelengths)."""
    with rasterio.open(path, "w", driver="GTiff", count=data.shape[0], height=data.shape[1], width=data.shape[2],
                       dtype=data.dtype.name, crs=like.rio.crs, transform=like.rio.transform(), **profile) as dst:
        dst.write(data)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """inputs/ (good and damaged rasters) and models/ (good, mismatched, tampered and pickled checkpoints)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    inputs, models = root / "inputs", root / "models"
    inputs.mkdir()
    models.mkdir()
    scene = open_embedded_scene(S2_13BANDS).isel(y=ROWS, x=COLS)  # (13, 64, 64) reflectance
    crop = scene.sel(band=list(S2_10BANDS))
    write_geotiff(crop, inputs / "crop.tif")
    dn = np.round(scene.values * 10000).astype("uint16")  # (13, 64, 64) digital numbers, ESA order
    write_geotiff(dn, inputs / "esa13.tif", like=scene, dtype="uint16")  # described B01 ... B12
    order = [list(S2_13BANDS).index(b) for b in EUROSAT_ORDER]
    _write_plain(inputs / "eurosat13.tif", dn[order], scene)  # B8A last, no descriptions
    _write_plain(inputs / "oneband.tif", dn[[3]], scene)
    rgb = np.clip(scene.sel(band=["B04", "B03", "B02"]).values * 3 * 255, 0, 255).astype("uint8")
    _write_plain(inputs / "rgb8.tif", rgb, scene)
    write_geotiff(crop.sel(band=["B04", "B03", "B02"]), inputs / "rgb_named.tif")
    write_geotiff(crop.copy(data=np.full(crop.shape, np.nan, "float32")), inputs / "allnan.tif")
    part = crop.values.copy()
    part[:, :16] = np.nan  # the top quarter of the rows
    write_geotiff(crop.copy(data=part), inputs / "partnan.tif")
    nodata = dn[[list(S2_13BANDS).index(b) for b in S2_10BANDS]].copy()
    nodata[:, :, :8] = 0  # the first 8 columns are nodata = 0
    _write_plain(inputs / "nodata.tif", nodata, scene, nodata=0)
    write_geotiff(crop.isel(y=slice(0, 5), x=slice(0, 5)), inputs / "small.tif")
    write_geotiff(crop.isel(y=slice(0, 50), x=slice(0, 37)), inputs / "odd.tif")
    raw = (inputs / "crop.tif").read_bytes()
    (inputs / "truncated.tif").write_bytes(raw[: len(raw) // 2])
    (inputs / "header.tif").write_bytes(raw[:200])
    (inputs / "empty.tif").write_bytes(b"")
    (inputs / "notes.txt").write_text("not a raster\n")
    (inputs / "empty_folder").mkdir()
    junk = inputs / "junk_folder"  # every band the model takes, none of them a raster
    junk.mkdir()
    for n, name in enumerate(S2_10BANDS):  # a kilobyte from inside a GeoTIFF, text, nothing, a TIFF's first 8 bytes
        (junk / f"T18_{name}.tif").write_bytes([raw[1000:2000], b"hello", b"", raw[:8]][n % 4])
    wide = open_embedded_scene().isel(y=ROWS, x=slice(864, 928))
    write_geotiff(wide, inputs / "beside.tif")  # the same size, 640 m east
    write_geotiff(crop.isel(y=slice(0, 32), x=slice(0, 32)), inputs / "quarter.tif")
    write_geotiff(crop.rio.write_crs("EPSG:32617"), inputs / "other_crs.tif")
    write_geotiff(crop.sel(band=list(S2_10BANDS)[:-1]), inputs / "nine_bands.tif")
    write_geotiff(np.ones((1, 10, 10), "uint8"), inputs / "label_10px.tif", dtype="uint8")
    write_geotiff(np.ones((1, 64, 64), "uint8"), inputs / "label.tif", dtype="uint8")

    save_model(models / "tiny", _tiny(), kind="s2mae", config={**TINY, "in_chans": 10},
               meta={"bands": list(S2_10BANDS)})
    save_model(models / "twelve", _tiny(in_chans=12, scaling="window"), kind="s2mae",
               config={**TINY, "in_chans": 12, "scaling": "window"},
               meta={"bands": list(S2_12BANDS)})
    detector = ChangeDetector(encoder=_tiny())
    save_model(models / "change", detector, kind="change", config=head_config(detector),
               meta={"bands": list(S2_10BANDS)})
    for stem in ("wide", "tampered"):
        shutil.copy(models / "tiny.safetensors", models / f"{stem}.safetensors")
    info = json.loads((models / "tiny.json").read_text())
    (models / "wide.json").write_text(json.dumps({**info, "config": {**info["config"], "embed_dim": 48}}))
    shutil.copy(models / "tiny.json", models / "tampered.json")
    data = bytearray((models / "tampered.safetensors").read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor
    (models / "tampered.safetensors").write_bytes(bytes(data))
    payload = pickle.dumps(_Marker(root / "UNPICKLED"), protocol=4)
    (models / "evil.pt").write_bytes(payload)
    (models / "disguised.safetensors").write_bytes(payload)
    shutil.copy(models / "tiny.json", models / "disguised.json")
    return root


def _digests(*folders: Path) -> dict[str, str]:
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for d in folders for f in sorted(d.rglob("*"))
            if f.is_file()}


# -- command line: the driver --------------------------------------------------------------------------------------
def _child(argv: list[str], cwd: str, stdout: str, stderr: str) -> None:
    """In a forked child: ``python -m s2lab ARGV`` in ``cwd``, stdout and stderr into files; never returns."""
    code = 1
    try:
        os.chdir(cwd)
        for fd, path in ((1, stdout), (2, stderr)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.argv = ["s2lab", *argv]
        try:
            runpy.run_module("s2lab", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # noqa: BLE001  (what the interpreter does: print the traceback, exit 1)
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _serve(cases_file: str, results_file: str) -> None:
    """Run every case of CASES.json ([{"argv", "cwd"}]) in a forked child; write [{"code", "stdout", "stderr"}]."""
    results = []
    for i, case in enumerate(json.loads(Path(cases_file).read_text())):
        out, err = f"{results_file}.{i}.out", f"{results_file}.{i}.err"
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(case["argv"], case["cwd"], out, err)
        deadline = time.monotonic() + CASE_TIMEOUT
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        if done[0] == 0:  # hung: kill it and say so
            os.kill(pid, 9)
            done = os.waitpid(pid, 0)
            code = "hung"
        else:
            code = os.waitstatus_to_exitcode(done[1])
        results.append({"code": code, "stdout": Path(out).read_text(), "stderr": Path(err).read_text()})
        Path(out).unlink()
        Path(err).unlink()
    Path(results_file).write_text(json.dumps(results))


def run_commands(cases: list[tuple[str, list, Path]], work: Path) -> list[dict]:
    """Run ``(name, argv, cwd)`` cases through the driver; returns each one's code, stdout and stderr."""
    spec = work / f"cases-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps([{"argv": [str(a) for a in argv], "cwd": str(cwd)} for _, argv, cwd in cases]))
    results = work / f"{spec.stem}-results.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}  # one thread: fast on a busy machine
    driver = subprocess.run([sys.executable, __file__, str(spec), str(results)], env=env, capture_output=True,
                            text=True, timeout=CASE_TIMEOUT * len(cases), check=False)
    assert driver.returncode == 0, driver.stderr
    return json.loads(results.read_text())


# -- command line: the cases ---------------------------------------------------------------------------------------
def _error_cases(lab: Path) -> list[tuple[str, list, str]]:
    """(name, argv, what the one error line must say) for every bad input of the issue."""
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


# -- Python API ----------------------------------------------------------------------------------------------------
def test_open_raster_names_what_is_wrong(lab):
    i = lab / "inputs"
    cases = [
        (i / "absent.tif", {}, r"absent\.tif does not exist; expected a GeoTIFF or a folder of band GeoTIFFs"),
        (i / "notes.txt", {}, r"notes\.txt is not a readable raster \(expected a GeoTIFF\)"),
        (i / "empty.tif", {}, r"empty\.tif is not a readable raster"),
        (i / "truncated.tif", {}, r"truncated\.tif (is not a readable raster|could not be read)"),
        (i / "empty_folder", {}, r"holds no band files; expected one GeoTIFF per band named like \*_B02\.tif"),
        (i / "junk_folder", {}, r"junk_folder/T18_B\w+\.tif is not a readable raster"),
        (i / "rgb8.tif", {"bands": S2_10BANDS}, r"its 3 uint8 bands have no names .*band_names"),
        (i / "eurosat13.tif", {"band_names": EUROSAT_ORDER[:12]}, r"12 band names given .* holds 13 bands"),
        (i / "rgb8.tif", {"band_names": "B04,B03,B03"}, r"repeated band names \['B04', 'B03', 'B03'\]"),
        (i / "junk_folder", {"band_names": ["B02"]}, r"a folder's bands are named by its file names"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(RasterError, match=message):
            open_raster(path, **kwargs).load()  # a file's pixels are read when used: damage there fails here


def test_band_names_win_over_the_esa_assumption(lab):
    i = lab / "inputs"
    truth = open_raster(i / "esa13.tif")
    assumed = open_raster(i / "eurosat13.tif")
    named = open_raster(i / "eurosat13.tif", band_names=",".join(EUROSAT_ORDER))
    assert assumed.attrs["band_names_assumed"] is True and "band_names_assumed" not in named.attrs
    assert list(named["band"].values) == list(EUROSAT_ORDER)
    assert np.array_equal(named.sel(band=list(S2_13BANDS)).values, truth.values)
    assert not np.array_equal(assumed.sel(band="B8A").values, truth.sel(band="B8A").values)  # B09's data
    three = open_raster(i / "rgb8.tif", band_names=["B04", "b3", "B2"])  # an 8-bit file is kept as it is
    assert list(three["band"].values) == ["B04", "B03", "B02"] and three.values.max() > 1


def test_write_geotiff_refuses_inputs_and_unwritable_places(lab, tmp_path):
    crop = open_raster(lab / "inputs" / "crop.tif")
    with pytest.raises(RasterError, match=r"refusing to write .*crop\.tif: it is an input of this raster"):
        write_geotiff(crop, lab / "inputs" / "crop.tif")
    with pytest.raises(RasterError, match=r"folder .*nowhere does not exist; create it first"):
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


@pytest.fixture(scope="module")
def mae():
    return _tiny().eval()


def test_reconstruct_image_refuses_before_any_window(lab, mae):
    crop = open_raster(lab / "inputs" / "crop.tif")
    part = crop.copy(data=crop.values.copy())
    part.loc["B05"] = np.nan
    cases = [
        (open_raster(lab / "inputs" / "oneband.tif"), {}, r"has 1 bands \(band1\) but the model takes 10"),
        (open_raster(lab / "inputs" / "rgb_named.tif"), {}, r"has 3 bands \(B04, B03, B02\) but the model takes 10"),
        (open_raster(lab / "inputs" / "allnan.tif"), {}, r"the image is NaN everywhere"),
        (part, {}, r"has bands that are NaN everywhere \(B05\)"),
        (open_raster(lab / "inputs" / "small.tif"), {}, r"5 x 5 px is smaller than one 8 x 8 patch"),
        (crop, {"mask_ratio": 1.0}, r"mask ratio must be in \[0, 1\), got 1\.0"),
        (crop, {"mask_ratio": -0.1}, r"mask ratio must be in \[0, 1\), got -0\.1"),
        (crop, {"mask_ratio": float("nan")}, r"mask ratio must be in \[0, 1\), got nan"),
        (crop, {"mask_ratio": 0.999}, r"mask ratio 0\.999 keeps no token of \d+"),
        (crop, {"strategy": "diagonal"}, r"unknown masking strategy 'diagonal'"),
    ]
    windows = []
    original = mae.reconstruct
    mae.reconstruct = lambda *args, **kwargs: windows.append(1) or original(*args, **kwargs)
    try:
        for image, kwargs, message in cases:
            with pytest.raises(ValueError, match=message):
                reconstruct_image(mae, image, **kwargs)
    finally:
        del mae.reconstruct
    assert windows == []  # every refusal came before the first window


def test_change_pairs_and_labels_must_match(lab):
    crop = open_raster(lab / "inputs" / "crop.tif")
    nine = open_raster(lab / "inputs" / "nine_bands.tif")  # B02 ... B8A, B11
    swapped = nine.sel(band=[*nine["band"].values[:7], "B11", "B8A"])
    cases = [
        (crop, open_raster(lab / "inputs" / "quarter.tif"), r"before has shape \(10, 64, 64\) and after \(10, 32, 32\)"),
        (crop, open_raster(lab / "inputs" / "other_crs.tif"), r"before is in CRS EPSG:32618 but after in EPSG:32617"),
        (crop, open_raster(lab / "inputs" / "beside.tif"), r"same size but different transforms"),
        (nine, swapped, r"before has bands B02, .*B8A, B11 but after has B02, .*B11, B8A"),
    ]
    for before, after, message in cases:
        with pytest.raises(ValueError, match=message):
            change_map_cva(before, after)
    with pytest.raises(ValueError, match=r"label_10px\.tif is 10 x 10 px, the before image 64 x 64"):
        read_label(lab / "inputs" / "label_10px.tif", crop)
    with pytest.raises(ValueError, match=r"probability has shape \(64, 64\) but the label \(10, 10\)"):
        score_change(np.zeros((64, 64)), np.zeros((10, 10)))


def test_checkpoints_are_data_never_code(lab):
    models, marker = lab / "models", lab / "UNPICKLED"
    pickle.loads((models / "evil.pt").read_bytes())  # the payload is live: unpickling it creates the marker ...
    assert marker.exists()
    marker.unlink()
    for path in ("evil.pt", "disguised.safetensors", "disguised.json", "disguised"):
        with pytest.raises(CheckpointError, match="pickle-based"):
            load_model(models / path)
    assert not marker.exists()  # ... and s2lab never unpickled it
    with pytest.raises(CheckpointError, match=r"does not match the sha256 recorded in tampered\.json"):
        load_model(models / "tampered")
    with pytest.raises(CheckpointError) as caught:
        load_model(models / "wide")
    message = str(caught.value)
    assert "checkpoint does not fit S2MAE: 0 missing, 0 unexpected" in message
    assert re.search(r"\(embed\.weight, expected \(\d+, 48\), found \(\d+, 32\)\)", message)
    with pytest.raises(CheckpointError, match=r"models is a folder; expected a checkpoint file"):
        load_model(models)


if __name__ == "__main__":
    _serve(*sys.argv[1:3])
