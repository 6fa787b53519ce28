"""FUS-MAE on the real BigEarthNet S1 + S2 patches: fusions and masking schemes, scaling, reconstruction, radar use.

``real_pair`` (crops of the real patches) comes from tests/models/conftest.py.
"""

import pytest
import torch

from s2lab.models import FUSMAE
from s2lab.models.fusmae import RADAR_CASES, radar_use
from _tiny import SMALL


@pytest.mark.parametrize("fusion", ["early", "feature", "both"])
@pytest.mark.parametrize("masking", ["consistent", "independent"])
def test_fusmae_masks_and_shapes(fusion, masking, real_pair):
    s2, s1 = real_pair
    model = FUSMAE(**SMALL, fusion=fusion, modality_masking=masking)
    out = model(s2, s1, mask_ratio=0.75, generator=torch.Generator().manual_seed(0))
    B = s2.shape[0]
    assert out.s2_pred.shape == (B, 5 * 16, 128) and out.s1_pred.shape == (B, 16, 128)
    assert (out.s1_mask.sum(1) == 12).all() and (out.s2_mask.sum(1) == 60).all()
    if masking == "consistent":
        assert (out.s2_mask.view(B, 5, 16) == out.s1_mask[:, None]).all()
    else:
        assert not torch.equal(out.s2_mask.view(B, 5, 16)[:, 0], out.s1_mask)
    out.loss.backward()
    early_grad = model.s2_from_s1 is not None and model.s2_from_s1.attn.qkv.weight.grad is not None
    assert early_grad == (fusion in ("early", "both"))


def test_fusmae_scaling_leaks_nothing_of_the_removed_values(real_pair):
    """New values where S2 or S1 tokens are removed change no prediction: each window's range is taken from what the
    model sees."""
    s2, s1 = real_pair
    model = FUSMAE(**SMALL, modality_masking="independent").eval()
    out = model(s2, s1, mask_ratio=0.75, generator=torch.Generator().manual_seed(2))
    gone2, gone1 = model.removed_image(out.s2_mask, 2, s2), model.removed_image(out.s1_mask, 1, s1)
    again = model(torch.where(gone2, s2 * 3 + 0.5, s2), torch.where(gone1, s1 - 20, s1), mask_ratio=0.75,
                  generator=torch.Generator().manual_seed(2))
    assert torch.equal(again.s2_mask, out.s2_mask) and torch.equal(again.s1_mask, out.s1_mask)
    assert torch.allclose(again.s2_pred, out.s2_pred, atol=1e-5)
    assert torch.allclose(again.s1_pred, out.s1_pred, atol=1e-5)


def test_fusmae_reconstruct_gives_s2_reflectance_and_radar_use_pairs_the_cases(real_pair):
    s2, s1 = real_pair
    model = FUSMAE(**SMALL, modality_masking="independent").eval()
    rec = model.reconstruct(s2, s1, mask_ratio=0.75, generator=torch.Generator().manual_seed(5))
    assert rec.prediction.shape == rec.pasted.shape == rec.mask.shape == s2.shape
    assert rec.mask.mean().item() == pytest.approx(0.75)
    assert torch.equal(rec.pasted[rec.mask == 0], s2[rec.mask == 0])  # the visible values are the image's own
    use = radar_use(model, s2, s1, mask_ratio=0.75, seeds=[5, 6])
    own = float(((rec.prediction - s2)[rec.mask.bool()] ** 2).mean())
    assert use["mse"]["own"][0] == pytest.approx(own)  # the same masks in every case
    assert set(use["mean"]) == set(RADAR_CASES) and len(use["mse"]["constant"]) == 2
    assert use["minus_own"]["constant"]["mean"] == pytest.approx(use["mean"]["constant"] - use["mean"]["own"])
    assert use["mean"]["constant"] != use["mean"]["own"]  # the radar reaches the S2 reconstruction
    with pytest.raises(ValueError, match="needs at least 2"):
        radar_use(model, s2[:1], s1[:1])


def test_fusmae_refuses_mismatched_modalities(real_pair):
    s2, s1 = real_pair
    with pytest.raises(ValueError, match="must share batch and grid"):
        FUSMAE(**SMALL)(s2, s1[:, :, :16, :16])
