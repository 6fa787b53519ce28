"""The training recipes of s2lab.tasks: which images, which windows, which losses."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.embedded import open_embedded_scene
from s2lab.data.export import write_geotiff
from s2lab.data.oscd import IMAGES, oscd_cities
from s2lab.data.pairs import ChangePair
from s2lab.data.pretraining import pretraining_images
from s2lab.models import FUSMAE, S2MAE, ChangeDetector
from s2lab.settings import data_dir
from s2lab.tasks import (
    RATIO_STEP,
    change_task,
    classification_task,
    fusion_task,
    mask_ratios,
    multilabel_task,
    pretrain_task,
)

TINY = {"img_size": 16, "embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 16, "decoder_depth": 1,
        "decoder_num_heads": 2}


def coded(C: int, H: int, W: int) -> torch.Tensor:
    """(C, H, W) whose every value is unique and says where it sits: 1e6 c + 1e3 row + column."""
    c, r, w = torch.meshgrid(torch.arange(C), torch.arange(H), torch.arange(W), indexing="ij")
    return (c * 1_000_000 + r * 1000 + w).float()


def dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 turns and mirror images of x (..., S, S)."""
    turns = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
    return turns + [t.flip(-1) for t in turns]


class RecordingMAE(nn.Module):
    """Stands in for an MAE: records the mask ratio of every call and returns a loss of the batch's mean."""

    def __init__(self):
        super().__init__()
        self.ratios = []

    def forward(self, x, *, mask_ratio, strategy, generator):
        self.ratios.append(mask_ratio)
        return SimpleNamespace(loss=x.mean())


@pytest.fixture(scope="module")
def crop_path(tmp_path_factory):
    """A 10-band 96 x 80 GeoTIFF cut from the embedded real scene."""
    path = tmp_path_factory.mktemp("tasks") / "crop.tif"
    write_geotiff(open_embedded_scene().isel(y=slice(300, 396), x=slice(200, 280)), path)
    return path


# -- pretraining_images --------------------------------------------------------------------------------------------
def test_pretraining_images_embedded_and_user_files(crop_path):
    embedded, crop, again = pretraining_images(["embedded", str(crop_path), crop_path.parent])
    assert embedded.shape == (10, 1947, 1933) and embedded.dtype == torch.float32
    assert crop.shape == (10, 96, 80)
    assert torch.equal(crop, again)  # a folder of multi-band GeoTIFFs gives each of them
    assert torch.equal(crop, embedded[:, 300:396, 200:280])
    assert 0 < float(crop.mean()) < 1  # reflectance, not digital numbers


def test_pretraining_images_oscd_gives_both_dates_of_every_city(tmp_path, monkeypatch):
    root = data_dir("oscd")
    if root is None:
        pytest.skip("OSCD is absent (set S2LAB_OSCD_DIR or S2LAB_DATA_DIR)")
    city = "bercy" if "bercy" in oscd_cities() else oscd_cities()[0]
    images = tmp_path / "oscd" / IMAGES
    images.mkdir(parents=True)
    (images / city).symlink_to((root / IMAGES / city).resolve())  # an OSCD folder holding one real city
    monkeypatch.setenv("S2LAB_OSCD_DIR", str(tmp_path / "oscd"))
    before, after = pretraining_images(["oscd"], bands=("B02", "B03", "B04", "B08"))
    assert before.shape[0] == 4 and before.shape == after.shape
    assert not torch.equal(before, after)


def test_pretraining_images_refuses_missing_paths_and_nodata(tmp_path, crop_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pretraining_images([str(tmp_path / "nowhere.tif")])
    with pytest.raises(ValueError, match="no pretraining data"):
        pretraining_images([])
    holes = open_embedded_scene().isel(y=slice(0, 32), x=slice(0, 32))
    holes[0, 3, 4] = np.nan
    write_geotiff(holes, tmp_path / "holes.tif")
    with pytest.raises(ValueError, match="1 nodata"):
        pretraining_images([str(tmp_path / "holes.tif")])


# -- pretrain_task -------------------------------------------------------------------------------------------------
def test_pretrain_batches_are_real_windows_drawn_from_the_generator():
    image = coded(3, 40, 50)
    batch_fn, _ = pretrain_task(RecordingMAE(), [image], batch_size=6, img_size=8, mask_ratio=0.5)
    x = batch_fn(0, torch.Generator().manual_seed(1))
    assert x.shape == (6, 3, 8, 8)
    for window in x:
        r, c = int(window[0, 0, 0]) // 1000, int(window[0, 0, 0]) % 1000
        assert torch.equal(window, image[:, r:r + 8, c:c + 8])
    assert torch.equal(x, batch_fn(0, torch.Generator().manual_seed(1)))
    assert not torch.equal(x, batch_fn(0, torch.Generator().manual_seed(2)))


def test_pretrain_windows_fall_on_images_in_proportion_to_their_area():
    small, large = torch.zeros(1, 16, 16), torch.ones(1, 16, 48)  # 256 and 768 pixels
    batch_fn, _ = pretrain_task(RecordingMAE(), [small, large], batch_size=2000, img_size=8)
    x = batch_fn(0, torch.Generator().manual_seed(0))
    share = float(x[:, 0, 0, 0].mean())  # windows from the large image
    assert abs(share - 0.75) < 0.04


def test_pretrain_mask_ratio_range_draws_one_ratio_per_batch():
    model = RecordingMAE()
    batch_fn, loss_fn = pretrain_task(model, [torch.rand(2, 32, 32)], batch_size=2, img_size=8,
                                      mask_ratio=(0.5, 0.95))
    generator = torch.Generator().manual_seed(0)
    for step in range(200):
        loss_fn(model, batch_fn(step, generator), generator)
    assert len(model.ratios) == 200
    assert set(model.ratios) == set(mask_ratios((0.5, 0.95)))  # every ratio of the grid, and only those
    fixed = RecordingMAE()
    _, loss_fn = pretrain_task(fixed, [torch.rand(2, 32, 32)], batch_size=2, img_size=8, mask_ratio=0.9)
    for _ in range(3):
        loss_fn(fixed, torch.rand(2, 2, 8, 8), generator)
    assert fixed.ratios == [0.9] * 3
    # a fixed ratio takes one draw per batch, as before ranges were drawn on a grid: its masks are unchanged
    drawn, alone = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    loss_fn(fixed, torch.rand(2, 2, 8, 8), drawn)
    torch.rand((), generator=alone)
    assert torch.equal(torch.rand(4, generator=drawn), torch.rand(4, generator=alone))


def test_mask_ratios_of_a_range_are_the_sliders_steps():
    assert mask_ratios(0.75) == (0.75,) and mask_ratios((0.8, 0.8)) == (0.8,)
    assert mask_ratios((0.6, 0.9)) == (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
    assert mask_ratios((0.6, 0.62)) == (0.6, 0.62)  # a narrow range keeps both ends
    ratios = mask_ratios((0.13, 0.87))
    assert ratios[0] == 0.13 and ratios[-1] == 0.87 and np.allclose(np.diff(ratios), np.diff(ratios)[0], atol=1e-5)
    assert abs(np.diff(ratios)[0] - RATIO_STEP) < RATIO_STEP / 2
    for bad in ((0.9, 0.6), (0.5, 1.0), -0.1):
        with pytest.raises(ValueError, match="mask ratio must be in"):
            mask_ratios(bad)


def test_pretrain_task_trains_a_real_s2mae():
    model = S2MAE(**TINY)
    batch_fn, loss_fn = pretrain_task(model, [torch.rand(10, 40, 40)], batch_size=2, img_size=16,
                                      mask_ratio=(0.5, 0.9), strategy="tube")
    generator = torch.Generator().manual_seed(0)
    loss = loss_fn(model, batch_fn(0, generator), generator)
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    assert all(p.grad is not None for p in model.blocks.parameters())
    assert float(model.decoder_pred.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mask_ratio": 1.0}, "mask ratio"),
        ({"mask_ratio": (0.9, 0.5)}, "mask ratio"),
        ({"strategy": "zigzag"}, "unknown masking strategy"),
        ({"img_size": 64}, "smaller than img_size 64"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_pretrain_task_refuses_bad_settings(kwargs, message):
    settings = {"batch_size": 2, "img_size": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        pretrain_task(RecordingMAE(), [torch.rand(2, 32, 40)], **settings)


def test_pretrain_task_scans_for_nodata_once_at_set_up_not_per_batch(monkeypatch):
    image = torch.rand(2, 32, 40)
    image[1, 5, 7] = float("nan")
    with pytest.raises(ValueError, match="pretraining image 1 holds 1 nodata"):
        pretrain_task(RecordingMAE(), [torch.rand(2, 32, 40), image], batch_size=2, img_size=8)
    batch_fn, _ = pretrain_task(RecordingMAE(), [torch.rand(2, 32, 40)], batch_size=2, img_size=8)
    scans = []
    real_isnan = torch.isnan
    monkeypatch.setattr(torch, "isnan", lambda x: scans.append(x.numel()) or real_isnan(x))
    generator = torch.Generator().manual_seed(0)
    for step in range(3):
        batch_fn(step, generator)
    assert scans == [], "a batch scanned its images for NaN again"


# -- change_task ---------------------------------------------------------------------------------------------------
def test_change_windows_stay_aligned_under_flips_and_turns():
    before = coded(2, 12, 12)
    after = before + 0.5
    label = (before[0] % 2 == 1).float()  # odd columns changed
    batch_fn, _ = change_task(None, [(before, after, label)], batch_size=64, img_size=12)
    b, a, y = batch_fn(0, torch.Generator().manual_seed(0))
    assert b.shape == (64, 2, 12, 12) and a.shape == b.shape and y.shape == (64, 12, 12)
    assert torch.equal(a - b, torch.full_like(b, 0.5))
    assert torch.equal(y, (b[:, 0] % 2 == 1).float())
    seen = set()
    for window in b:  # the window is the whole image: each is one of its 8 symmetries, and several occur
        matches = [k for k, t in enumerate(dihedral(before)) if torch.equal(window, t)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 6


def test_change_task_accepts_change_pairs_and_weighs_change():
    scene = open_embedded_scene(("B02", "B03", "B04")).isel(y=slice(0, 24), x=slice(0, 24))
    label = scene.isel(band=0, drop=True) > float(scene[0].median())
    pair = ChangePair(before=scene, after=scene * 1.1, label=label.astype("uint8"), name="test", synthetic=False)

    def zeros(before, after):  # logits 0: every pixel's loss is log 2, times pos_weight where changed
        return torch.zeros(before.shape[0], *before.shape[-2:])

    batch_fn, loss_fn = change_task(None, [pair], batch_size=4, img_size=16, pos_weight=7.0)
    generator = torch.Generator().manual_seed(0)
    batch = batch_fn(0, generator)
    expected = math.log(2) * float((1 + 6 * batch[2]).mean())
    assert float(loss_fn(zeros, batch, generator)) == pytest.approx(expected, rel=1e-5)
    _, plain = change_task(None, [pair], batch_size=4, img_size=16)
    assert float(plain(zeros, batch, generator)) == pytest.approx(math.log(2), rel=1e-5)


def test_change_task_trains_a_real_change_detector():
    model = ChangeDetector(encoder=S2MAE(**TINY), hidden=8)
    before = torch.rand(10, 32, 32)
    pair = (before, before.flip(-1), (torch.rand(32, 32) > 0.9).float())
    batch_fn, loss_fn = change_task(model, [pair], batch_size=2, img_size=16, pos_weight=3.0)
    generator = torch.Generator().manual_seed(0)
    loss = loss_fn(model, batch_fn(0, generator), generator)
    loss.backward()
    assert math.isfinite(loss.item()) and model.fuse[-1].weight.grad.abs().sum() > 0


def test_change_task_refuses_unlabelled_or_misaligned_pairs():
    x = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="without a label"):
        change_task(None, [(x, x, None)], batch_size=1, img_size=8)
    with pytest.raises(ValueError, match="one \\(H, W\\) grid"):
        change_task(None, [(x, torch.rand(3, 16, 12), torch.zeros(16, 16))], batch_size=1, img_size=8)
    with pytest.raises(ValueError, match="smaller than img_size"):
        change_task(None, [(x, x, torch.zeros(16, 16))], batch_size=1, img_size=32)


# -- classification and multi-label --------------------------------------------------------------------------------
def test_classification_batches_keep_labels_with_their_images():
    x = torch.arange(20.0)[:, None, None, None].expand(20, 2, 8, 8).clone()  # image i holds the value i
    y = torch.arange(20) % 4
    batch_fn, loss_fn = classification_task(None, x, y, batch_size=16)
    images, labels = batch_fn(0, torch.Generator().manual_seed(0))
    assert images.shape == (16, 2, 8, 8) and labels.dtype == torch.int64
    assert torch.equal(labels, images[:, 0, 0, 0].long() % 4)

    def logits(batch):  # (B, 4), certain of class 0
        return torch.tensor([[9.0, 0, 0, 0]]).expand(len(batch), 4)

    expected = nn.functional.cross_entropy(logits(images), labels)
    assert float(loss_fn(logits, (images, labels), None)) == pytest.approx(float(expected))


def test_multilabel_batches_are_float_multi_hot():
    x, y = torch.rand(12, 3, 8, 8), (torch.rand(12, 5) > 0.5).long()
    batch_fn, loss_fn = multilabel_task(None, x, y, batch_size=4)
    images, targets = batch_fn(0, torch.Generator().manual_seed(0))
    assert targets.shape == (4, 5) and targets.dtype == torch.float32
    loss = loss_fn(lambda b: torch.zeros(len(b), 5), (images, targets), None)
    assert float(loss) == pytest.approx(math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="N rows"):
        multilabel_task(None, x, y[:5], batch_size=4)


# -- fusion (FUS-MAE) ----------------------------------------------------------------------------------------------
def test_fusion_windows_of_both_modalities_stay_aligned_under_flips_and_turns():
    s2 = coded(3, 12, 12)
    s1 = s2[:2] + 0.5  # S1 "is" S2's first two bands, shifted: alignment shows as an exact difference
    batch_fn, _ = fusion_task(None, [(s2, s1)], batch_size=64, img_size=12)
    b2, b1 = batch_fn(0, torch.Generator().manual_seed(0))
    assert b2.shape == (64, 3, 12, 12) and b1.shape == (64, 2, 12, 12)
    assert torch.equal(b1 - b2[:, :2], torch.full_like(b1, 0.5))
    seen = {next(k for k, t in enumerate(dihedral(s2)) if torch.equal(w, t)) for w in b2}
    assert len(seen) >= 6


def test_fusion_task_trains_fusmae_on_real_bigearthnet_patches():
    patches = [load_bigearthnet_patch(n, root=EMBEDDED) for n in bigearthnet_patches(EMBEDDED)[:2]]
    model = FUSMAE(**TINY)
    batch_fn, loss_fn = fusion_task(model, patches, batch_size=2, img_size=16, mask_ratio=(0.5, 0.9))
    generator = torch.Generator().manual_seed(0)
    s2, s1 = batch_fn(0, generator)
    assert s2.shape == (2, 10, 16, 16) and s1.shape == (2, 2, 16, 16)
    assert 0 <= float(s2.min()) and float(s2.max()) < 2  # S2 reflectance
    assert float((s1 < 0).float().mean()) > 0.9  # S1 backscatter in dB, nearly all negative
    loss = loss_fn(model, (s2, s1), generator)
    loss.backward()
    assert math.isfinite(loss.item()) and model.s1_embed.weight.grad.abs().sum() > 0


def test_fusion_task_refuses_missing_s1_misaligned_or_mixed_pairs():
    s2 = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match="no Sentinel-1"):
        fusion_task(None, [SimpleNamespace(s2=s2, s1=None)], batch_size=1, img_size=8)
    with pytest.raises(ValueError, match="one \\(H, W\\) grid"):
        fusion_task(None, [(s2, torch.rand(2, 16, 12))], batch_size=1, img_size=8)
    with pytest.raises(ValueError, match="different band counts"):
        fusion_task(None, [(s2, torch.rand(2, 16, 16)), (s2[:2], torch.rand(2, 16, 16))], batch_size=1, img_size=8)
    with pytest.raises(ValueError, match="smaller than img_size"):
        fusion_task(None, [(s2, torch.rand(2, 16, 16))], batch_size=1, img_size=32)
