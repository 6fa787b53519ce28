"""FUS-MAE on the real BigEarthNet S1 + S2 patches, and the task heads."""

import pytest
import torch

from s2lab.data.bigearthnet import bigearthnet_patches, load_bigearthnet_patch
from s2lab.models import FUSMAE, S2MAE, ChangeDetector, SceneClassifier, build, head_config
from s2lab.models.fusmae import RADAR_CASES, radar_use

SMALL = {"img_size": 32, "embed_dim": 64, "depth": 2, "num_heads": 4, "decoder_embed_dim": 64, "decoder_depth": 1}


@pytest.fixture(scope="module")
def real_pair():
    """S2 (B, 10, 32, 32) and S1 (B, 2, 32, 32) crops of the real BigEarthNet patches."""
    patches = [load_bigearthnet_patch(name) for name in bigearthnet_patches()]
    s2 = torch.stack([torch.as_tensor(p.s2.values[:, :32, :32]) for p in patches]).float()
    s1 = torch.stack([torch.as_tensor(p.s1.values[:, :32, :32]) for p in patches]).float()
    return s2, s1


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


def test_classifier_heads_and_linear_probe(real_pair):
    s2, _ = real_pair
    probe = SceneClassifier(encoder=S2MAE(**SMALL), num_classes=19, multilabel=True, linear_probe=True)
    assert probe(s2).shape == (s2.shape[0], 19)
    probe.loss(s2, torch.ones(s2.shape[0], 19)).backward()
    assert all(p.grad is None for p in probe.encoder.parameters())
    assert probe.head[1].weight.grad is not None
    single = SceneClassifier(encoder=S2MAE(**SMALL), num_classes=10)
    single.loss(s2, torch.zeros(s2.shape[0], dtype=torch.long)).backward()
    assert single.encoder.embed.weight.grad is not None


def test_change_detector_full_resolution_and_rebuild(real_pair):
    s2, _ = real_pair
    model = ChangeDetector(encoder=S2MAE(**SMALL), hidden=16)
    logits = model(s2, s2.flip(0))
    assert logits.shape == (s2.shape[0], 32, 32)
    again = build("change", head_config(model))
    again.load_state_dict(model.state_dict())
    assert torch.allclose(again(s2, s2.flip(0)), logits)
    with pytest.raises(ValueError, match="must have the same shape"):
        model(s2, s2[..., :16, :16])
