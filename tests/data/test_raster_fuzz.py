"""Fuzzing of the raster readers (data.raster's ``open_raster``) with damaged files.

The readers get random bytes, truncated and bit-flipped real GeoTIFFs (a crop of the embedded scene), files with the
header of another format, empty files and folders of junk. Every call must end in a ``RasterError`` (a
``ValueError``) whose message names the file, the folder or the band, or in a correct array; never another
exception, and never a hang (an alarm turns one into a failure).
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.raster import RasterError, open_raster
from s2lab.sensors import S2_13BANDS

HANG_SECONDS = 20  # one read of a 64 x 64 px file taking longer than this counts as a hang
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail with TimeoutError if the block runs longer than ``seconds`` (SIGALRM, main thread)."""

    def alarm(signum, frame):
        raise TimeoutError(f"the reader hung for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def real() -> dict:
    """A real 64 x 64 px 10-band GeoTIFF (bytes), and one band file of it (bytes), from the embedded scene."""
    crop = open_embedded_scene().isel(y=slice(300, 364), x=slice(1500, 1564))
    with tempfile.TemporaryDirectory() as folder:
        write_geotiff(crop, Path(folder) / "crop.tif")
        write_geotiff(crop.sel(band=["B03"]) * 10000, Path(folder) / "band.tif", dtype="uint16")  # DN
        return {"file": (Path(folder) / "crop.tif").read_bytes(), "band": (Path(folder) / "band.tif").read_bytes()}


def read_or_refuse(path: Path, names: tuple[str, ...]) -> object:
    """open_raster(path) with its pixels read (a file is read lazily): the array, or the RasterError after checking
    its message names ``names`` (any)."""
    try:
        with no_hang():
            return open_raster(path).load()
    except RasterError as err:
        message = str(err)
        assert message and any(name in message for name in names), message
        return err


def read_bytes(data: bytes, suffix: str = ".tif") -> object:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"scene{suffix}"
        path.write_bytes(data)
        return read_or_refuse(path, (path.name,))


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".tif", ".tiff", ".jp2", ".dat"]))
def test_random_bytes_are_refused(data, suffix):
    result = read_bytes(data, suffix)  # a format GDAL happens to recognise would be read, never crash
    assert isinstance(result, RasterError) or (result.ndim == 3 and result.dtype == np.float32)


@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_geotiffs_are_refused_or_read_whole(real, cut):
    result = read_bytes(real["file"][: int(cut * len(real["file"]))])
    assert isinstance(result, RasterError) or result.shape == (10, 64, 64)


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=30))
def test_bit_flipped_geotiffs_are_refused_or_read_at_their_size(real, flips):
    data = bytearray(real["file"])
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    result = read_bytes(bytes(data))
    event("refused" if isinstance(result, RasterError) else "read")
    assert isinstance(result, RasterError) or (result.ndim == 3 and result.dtype == np.float32)


HEADERS = {
    "little-endian TIFF": b"II*\x00",
    "big-endian TIFF": b"MM\x00*",
    "BigTIFF": b"II+\x00\x08\x00\x00\x00",
    "PNG": b"\x89PNG\r\n\x1a\n",
    "JPEG 2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n",
    "GIF": b"GIF89a",
    "HDF5 / NetCDF-4": b"\x89HDF\r\n\x1a\n",
    "zip": b"PK\x03\x04",
}


@FUZZ
@given(header=st.sampled_from(sorted(HEADERS)), body=st.binary(max_size=2048), keep=st.integers(0, 400))
def test_wrong_or_damaged_headers_are_refused(real, header, body, keep):
    data = HEADERS[header] + (real["file"][len(HEADERS[header]) : keep] if header.endswith(" TIFF") else b"") + body
    assert isinstance(read_bytes(data), RasterError)


JUNK = ("empty", "text", "random", "truncated", "real", "folder")


@st.composite
def junk_folders(draw):
    """[(file name, content kind)] for a folder: band-named files (some duplicated), other files, sub-folders."""
    names = st.one_of(
        st.sampled_from(S2_13BANDS).map(lambda b: f"T31_{b}.tif"),
        st.sampled_from(["B02", "b3", "B8a", "B99"]).map(lambda b: f"x-{b}.jp2"),
        st.sampled_from(["notes.txt", "preview.png", "T31_TCI.tif", ".hidden_B04.tif"]),
    )
    entries = draw(st.lists(st.tuples(names, st.sampled_from(JUNK)), max_size=6, unique_by=lambda e: e[0]))
    return entries, draw(st.binary(max_size=256))


@FUZZ
@given(folder=junk_folders())
def test_folders_of_junk_are_refused_or_read_from_their_real_band_files(real, folder):
    entries, noise = folder
    with tempfile.TemporaryDirectory() as root:
        root = Path(root) / "scene"
        root.mkdir()
        for name, kind in entries:
            path = root / name
            if kind == "folder":
                path.mkdir()
                continue
            content = {"empty": b"", "text": b"hello\n", "random": noise, "truncated": real["band"][:300],
                       "real": real["band"]}[kind]
            path.write_bytes(content)
        result = read_or_refuse(root, (root.name, *(name for name, _ in entries), "band"))
    event("refused" if isinstance(result, RasterError) else "read")
    if isinstance(result, RasterError):
        return
    assert result.dims == ("band", "y", "x") and result.shape[1:] == (64, 64)  # only real band files were read
    assert set(result["band"].values) <= {*S2_13BANDS, "B99"} and len(result["band"]) >= 1
    assert np.isfinite(result.values).all()
