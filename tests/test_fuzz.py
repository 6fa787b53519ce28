"""Property tests and fuzzing: tokenization and masking over random shapes, the raster readers over damaged files.

test_tokenize.py and test_masking.py hold the round trips and kept counts; here are the properties around them:
tokens are a pure rearrangement (every value once, padding exactly zero, at the documented place), masks obey the
MAE unshuffle contract and keep each strategy's structure at any size, and drawing a mask touches no global state.

The raster readers get random bytes, truncated and bit-flipped real GeoTIFFs (a crop of the embedded scene), files
with the header of another format, empty files and folders of junk. Every call must end in a ``RasterError`` (a
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
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.raster import RasterError, open_raster
from s2lab.masking import STRATEGIES, draw_mask, num_kept
from s2lab.sensors import S2_13BANDS
from s2lab.tokenize import CubeTokenizer, patchify, patchify_groups

HANG_SECONDS = 20  # one read of a 64 x 64 px file taking longer than this counts as a hang
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- tokenization --------------------------------------------------------------------------------------------------
@st.composite
def cube_images(draw):
    """(x (B, C, H, W), p, s) with H, W multiples of p and 1 <= s <= C."""
    C, p = draw(st.integers(1, 13)), draw(st.sampled_from([1, 2, 4, 8]))
    s = draw(st.integers(1, C))
    shape = (draw(st.integers(1, 3)), C, draw(st.integers(1, 3)) * p, draw(st.integers(1, 3)) * p)
    seed = draw(st.integers(0, 2**31))
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)), p, s


@settings(max_examples=60, deadline=None)
@given(case=cube_images(), probe=st.integers(0, 10**6))
def test_tokens_are_a_pure_rearrangement_in_the_documented_order(case, probe):
    x, p, s = case
    B, C, H, W = x.shape
    tokenizer = CubeTokenizer(patch_size=p, bands_per_token=s, in_chans=C)
    G, N = tokenizer.G, (H // p) * (W // p)
    tokens = patchify(x, p, s).view(B, G, N, s * p * p)  # (B, G, N, P)
    valid, by_position = tokenizer.valid, tokens.transpose(1, 2)  # (G, P), (B, N, G, P)
    assert (by_position[:, :, ~valid] == 0).all()  # padding bands hold exactly zero
    assert torch.equal(by_position[:, :, valid].flatten().sort().values, x.flatten().sort().values)  # each value once
    b, g, n = probe % B, probe // B % G, probe // (B * G) % N  # token l = g * N + n holds bands g*s ..
    row, col = divmod(n, W // p)
    cube = x[b, g * s : (g + 1) * s, row * p : (row + 1) * p, col * p : (col + 1) * p]  # (<= s, p, p)
    assert torch.equal(tokens[b, g, n, : cube.numel()], cube.flatten())  # band, row, column


@settings(max_examples=40, deadline=None)
@given(case=cube_images(), scale=st.floats(-4, 4, allow_nan=False), seed=st.integers(0, 1000))
def test_patchify_commutes_with_pixelwise_arithmetic_and_batch_order(case, scale, seed):
    x, p, s = case
    y = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(patchify(scale * x + y, p, s), scale * patchify(x, p, s) + patchify(y, p, s))
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    assert torch.equal(patchify(x[order], p, s), patchify(x, p, s)[order])


@settings(max_examples=40, deadline=None)
@given(C=st.integers(2, 13), p=st.sampled_from([2, 4]), seed=st.integers(0, 10**6))
def test_group_tokens_hold_their_groups_bands_in_order(C, p, seed):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(C, generator=g).tolist()
    cuts = sorted(set(torch.randint(1, C, (3,), generator=g).tolist()))
    groups = [order[a:b] for a, b in zip([0, *cuts], [*cuts, C])]
    x = torch.randn(1, C, p, 2 * p, generator=g)  # N = 2
    tokens = patchify_groups(x, p, groups).view(1, len(groups), 2, -1)  # (1, G, N, c_max * p * p)
    for k, bands in enumerate(groups):
        expected = x[0, bands, :, p : 2 * p].flatten()  # the second spatial position, the group's bands in order
        assert torch.equal(tokens[0, k, 1, : expected.numel()], expected)
        assert (tokens[0, k, 1, expected.numel() :] == 0).all()


@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 8), H=st.integers(1, 40), W=st.integers(1, 40))
def test_sizes_not_divisible_by_the_patch_are_refused_with_the_sizes(p, H, W):
    x = torch.zeros(1, 3, H, W)
    if H % p == 0 and W % p == 0:
        assert patchify(x, p, 1).shape == (1, 3 * (H // p) * (W // p), p * p)
    else:
        with pytest.raises(ValueError, match=rf"{H} x {W} pixels is not divisible by patch size {p}"):
            patchify(x, p, 1)


# -- masking -------------------------------------------------------------------------------------------------------
masks = {
    "strategy": st.sampled_from(sorted(STRATEGIES)),
    "B": st.integers(1, 3),
    "G": st.integers(1, 6),
    "N": st.integers(1, 30),
    "ratio": st.floats(0.0, 0.95),
    "seed": st.integers(0, 2**31),
}


@settings(max_examples=80, deadline=None)
@given(**masks)
def test_masks_obey_the_unshuffle_contract_and_touch_no_global_state(strategy, B, G, N, ratio, seed):
    assume(round(G * N * (1 - ratio)) >= 1)  # a mask keeping nothing is refused (test_masking.py)
    state = torch.random.get_rng_state()
    m = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(torch.random.get_rng_state(), state)  # only the generator passed in was used
    again = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    assert all(torch.equal(a, b) for a, b in zip(m, again))
    L, K = G * N, num_kept(G * N, ratio)
    x = torch.randn(B, L, 3)
    kept = torch.gather(x, 1, m.ids_keep[..., None].expand(-1, -1, 3))  # (B, K, 3): what the encoder sees
    filler = torch.full((B, L - K, 3), float("inf"))  # the decoder's mask tokens
    restored = torch.gather(torch.cat([kept, filler], 1), 1, m.ids_restore[..., None].expand(-1, -1, 3))
    removed = m.mask.bool()[..., None].expand(-1, -1, 3)
    assert torch.equal(restored[~removed], x[~removed]) and torch.isinf(restored[removed]).all()


@settings(max_examples=80, deadline=None)
@given(**masks)
def test_each_strategy_keeps_its_structure_at_any_size(strategy, B, G, N, ratio, seed):
    assume(round(G * N * (1 - ratio)) >= 1)
    m = draw_mask(strategy, B, G, N, ratio, generator=torch.Generator().manual_seed(seed))
    grid = m.mask.view(B, G, N)  # 1 = removed
    per_column, per_group = grid.sum(1), grid.sum(2)  # (B, N) removed groups, (B, G) removed positions
    if strategy in ("tube", "consistent"):  # a position is removed in all groups or none, but for one split
        assert (((per_column > 0) & (per_column < G)).sum(1) <= 1).all()
    if strategy == "spectral":  # a group is removed at all positions or none, but for one split
        assert (((per_group > 0) & (per_group < N)).sum(1) <= 1).all()
    if strategy == "balanced":  # every group keeps the same share, to within one token
        assert ((per_group.max(1).values - per_group.min(1).values) <= 1).all()


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(sorted(STRATEGIES)),
    ratio=st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0), st.just(float("nan"))),
)
def test_ratios_outside_the_unit_interval_are_refused_by_every_strategy(strategy, ratio):
    with pytest.raises(ValueError, match=r"mask ratio must be in \[0, 1\), got "):
        draw_mask(strategy, 1, 2, 8, ratio, generator=torch.Generator().manual_seed(0))


# -- the raster readers --------------------------------------------------------------------------------------------
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
