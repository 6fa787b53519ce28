"""S2MAE and SatMAE: shapes, masking, targets, reconstruction, any band count, and overfitting real patches."""

import json

import pytest
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.tiles import random_tiles, to_tensor
from s2lab.masking import mask_from_removed
from s2lab.models import S2MAE, SatMAE, build
from s2lab.models.mae import reflectance_weight
from s2lab.scaling import band_stats, scale_unit
from s2lab.sensors import S2_10BANDS, S2_12BANDS, wavelengths
from _tiny import SMALL


@pytest.fixture(scope="module")
def real_tiles():
    """Eight 32 x 32 tiles of the real embedded Sentinel-2 scene, 10 bands, reflectance."""
    scene = to_tensor(open_embedded_scene())
    return random_tiles(scene, 32, 8, torch.Generator().manual_seed(0))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("model_cls, L, P", [(S2MAE, 5 * 16, 2 * 64), (SatMAE, 3 * 16, 4 * 64)])
def test_forward_shapes_and_mask_count(model_cls, L, P, real_tiles):
    model = model_cls(**SMALL)
    out = model(real_tiles, mask_ratio=0.75, generator=_gen())
    assert out.pred.shape == out.target.shape == (8, L, P)
    assert (out.mask.sum(1) == L - round(L * 0.25)).all()
    assert out.loss.ndim == 0 and out.loss > 0


def test_unit_target_is_the_image_under_the_models_scaling(real_tiles):
    model = S2MAE(**SMALL)
    assert model.config.scaling == "dataset"
    assert torch.allclose(torch.tensor(model.config.band_mean), band_stats(S2_10BANDS)[0])
    out = model(real_tiles, mask_ratio=0.5, generator=_gen())
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (model.config.band_mean, model.config.band_std))
    expected = (real_tiles - (mean - 2 * std)) / (4 * std)  # SentinelNormalize, without its clip
    assert torch.allclose(model.tokenizer.unpatchify(out.target, 32, 32), expected, atol=1e-5)
    windowed = S2MAE(**SMALL, scaling="window")
    out = windowed(real_tiles, mask_ratio=0.5, generator=_gen())
    visible = out.target[out.mask == 0]  # (K, P): the range comes from these values only
    assert visible.min() >= 0 and visible.max() <= 1 and out.target[out.mask == 1].min() < 0  # hidden ones may not
    removed = windowed.mask_image(out.mask, 32, 32).bool()
    assert torch.allclose(windowed.tokenizer.unpatchify(out.target, 32, 32),
                          scale_unit(real_tiles, removed=removed)[0])
    assert not torch.allclose(windowed.tokenizer.unpatchify(out.target, 32, 32), scale_unit(real_tiles)[0])
    none = S2MAE(**SMALL, scaling="none")(real_tiles, mask_ratio=0.5, generator=_gen()).target
    assert torch.allclose(S2MAE(**SMALL).tokenizer.unpatchify(none, 32, 32), real_tiles)


def test_dataset_scaling_keeps_the_absolute_level_window_scaling_does_not(real_tiles):
    """A brighter image gives another input under dataset scaling; under per-window min-max the same one."""
    brighter = 2.5 * real_tiles + 0.1
    for scaling, same in (("dataset", False), ("window", True)):
        model = S2MAE(**SMALL, scaling=scaling)
        assert torch.allclose(model.scale(real_tiles)[0], model.scale(brighter)[0], atol=1e-5) is same, scaling


def test_patch_target_and_the_old_raw_target(real_tiles):
    patch = S2MAE(**SMALL, target="patch")(real_tiles, mask_ratio=0.5, generator=_gen()).target
    assert patch.mean(-1).abs().max() < 1e-4  # each token standardised
    with pytest.raises(ValueError, match="target 'raw' is now scaling='none'"):
        S2MAE(**SMALL, target="raw")


@pytest.mark.parametrize("scaling", ["window", "dataset"])
def test_reflectance_loss_is_the_reflectance_mse_of_the_removed_values(scaling, real_tiles):
    """loss='reflectance' = the masked MSE after undoing the scaling, over the batch's mean squared band range."""
    model = S2MAE(**SMALL, scaling=scaling, loss="reflectance")
    out = model(real_tiles, mask_ratio=0.75, generator=_gen(3))
    lo, hi = out.lo, out.hi
    unscaled = model.tokenizer.unpatchify((out.pred.float() - out.target) * 1.0, 32, 32) * (hi - lo)  # reflectance
    removed = model.mask_image(out.mask, 32, 32).bool()  # (B, C, H, W)
    expected = (unscaled[removed] ** 2).mean() / ((hi - lo) ** 2).mean()
    assert torch.allclose(out.loss, expected, rtol=1e-4)
    scaled = S2MAE(**SMALL, scaling=scaling)
    scaled.load_state_dict(model.state_dict())
    assert not torch.allclose(scaled(real_tiles, mask_ratio=0.75, generator=_gen(3)).loss, out.loss, rtol=1e-3)


def test_reconstruct_with_a_given_mask_removes_those_tokens(real_tiles):
    model = S2MAE(**SMALL).eval()
    drawn = model.reconstruct(real_tiles, mask_ratio=0.75, generator=_gen(1))
    removed = model.tokenizer.patchify(drawn.mask).amax(dim=-1).bool()  # (B, L)
    given = model.reconstruct(real_tiles, mask=mask_from_removed(removed))
    assert torch.equal(given.mask, drawn.mask) and torch.allclose(given.prediction, drawn.prediction, atol=1e-5)
    with pytest.raises(ValueError, match=r"the mask covers \(8, 80\) tokens; this batch has \(2, 80\)"):
        model.reconstruct(real_tiles[:2], mask=mask_from_removed(removed))


def test_balanced_loss_weighs_every_band_alike_on_average():
    lo = torch.rand(6, 10, 1, 1) * 0.1
    hi = lo + torch.rand(6, 10, 1, 1) * torch.linspace(0.01, 0.5, 10).view(1, 10, 1, 1)  # bright bands: wide ranges
    plain, balanced = (reflectance_weight(lo, hi, torch.Size((6, 10, 4, 4)), balanced=b) for b in (False, True))
    assert torch.allclose(balanced.mean(dim=(0, 2, 3)), torch.ones(10), atol=1e-5)  # every band's mean weight 1
    assert plain.mean(dim=(0, 2, 3))[-1] > 10 * plain.mean(dim=(0, 2, 3))[0]  # reflectance: wide bands dominate
    assert torch.allclose(plain.mean(), torch.tensor(1.0), atol=1e-5)


def test_bad_loss_names_the_choices():
    with pytest.raises(ValueError, match="unknown loss 'l1'; expected one of scaled, reflectance, balanced"):
        S2MAE(**SMALL, loss="l1")
    with pytest.raises(ValueError, match="take loss='scaled' with it"):
        S2MAE(**SMALL, loss="reflectance", target="patch")


def test_dataset_scaling_needs_statistics_for_other_band_counts():
    with pytest.raises(ValueError, match=r"scaling='dataset' needs band_mean with one value per band \(12\)"):
        S2MAE(**{**SMALL, "in_chans": 12})
    assert S2MAE(**{**SMALL, "in_chans": 12}, scaling="window").config.band_mean is None


def test_window_scaling_leaks_nothing_of_the_removed_values(real_tiles):
    """Changing the removed values changes neither the reconstruction of a window-scaled model nor its range."""
    model = S2MAE(**SMALL, scaling="window").eval()
    rec = model.reconstruct(real_tiles, mask_ratio=0.75, generator=_gen(4))
    tampered = torch.where(rec.mask.bool(), real_tiles * 3 + 0.5, real_tiles)  # new values where removed only
    again = model.reconstruct(tampered, mask_ratio=0.75, generator=_gen(4))
    assert torch.equal(again.mask, rec.mask) and torch.allclose(again.prediction, rec.prediction, atol=1e-6)


def test_scale_unit_falls_back_where_a_band_has_no_visible_value():
    x = torch.tensor([[[[0.1, 0.3]], [[0.5, 0.9]]]])  # (1, 2, 1, 2)
    removed = torch.tensor([[[[False, False]], [[True, True]]]])  # band 1 wholly hidden
    _, lo, hi = scale_unit(x, removed=removed)
    assert lo.flatten().tolist() == pytest.approx([0.1, 0.1]) and hi.flatten().tolist() == pytest.approx([0.3, 0.3])
    _, lo, hi = scale_unit(x, removed=torch.ones_like(removed))
    assert lo.flatten().tolist() == [0.0, 0.0] and hi.flatten().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("target, scaling", [("unit", "dataset"), ("patch", "dataset"), ("unit", "window"),
                                             ("unit", "none")])
def test_reconstruction_keeps_visible_pixels(target, scaling, real_tiles):
    model = S2MAE(**SMALL, target=target, scaling=scaling)
    rec = model.reconstruct(real_tiles, mask_ratio=0.75, generator=_gen())
    assert rec.pasted.shape == rec.prediction.shape == rec.mask.shape == real_tiles.shape
    visible = rec.mask == 0
    assert torch.equal(rec.pasted[visible], real_tiles[visible])
    assert abs(rec.mask.mean().item() - 0.75) < 0.02


def test_same_generator_same_mask(real_tiles):
    model = S2MAE(**SMALL)
    a = model(real_tiles, mask_ratio=0.9, strategy="tube", generator=_gen(3)).mask
    b = model(real_tiles, mask_ratio=0.9, strategy="tube", generator=_gen(3)).mask
    assert torch.equal(a, b)


def test_encoder_sees_visible_tokens_only(real_tiles):
    """Changing the removed tokens cannot change what the encoder produces."""
    model = S2MAE(**SMALL).eval()
    tokens = model.tokenizer.patchify(model.scale(real_tiles)[0])  # (8, 80, 128)
    latent, mask = model.forward_encoder(tokens, (4, 4), 0.75, "random", _gen(9))
    assert latent.shape == (8, 20, 64)
    tampered = torch.where(mask.mask.bool()[..., None], torch.rand_like(tokens), tokens)
    again, _ = model.forward_encoder(tampered, (4, 4), 0.75, "random", _gen(9))
    assert torch.allclose(latent, again)


def test_wavelength_model_takes_any_band_count(real_tiles):
    model = S2MAE(**SMALL, pos_embed="wavelength", wavelengths=tuple(wavelengths(S2_10BANDS)))
    out10 = model(real_tiles, mask_ratio=0.5, generator=_gen())
    with pytest.raises(ValueError, match="give band_mean and band_std of the 12 new bands"):
        model.for_bands(wavelengths(S2_12BANDS))
    twelve = model.for_bands(wavelengths(S2_12BANDS), band_mean=band_stats(S2_12BANDS)[0].tolist(),
                             band_std=band_stats(S2_12BANDS)[1].tolist())
    x12 = random_tiles(to_tensor(open_embedded_scene(bands=S2_12BANDS)), 32, 2, _gen())
    out12 = twelve(x12, mask_ratio=0.5, generator=_gen())
    assert out10.pred.shape[1] == 5 * 16 and out12.pred.shape[1] == 6 * 16
    assert twelve.embed.weight is model.embed.weight  # the same weights
    with pytest.raises(ValueError, match="tied to its 10 bands"):
        S2MAE(**SMALL).for_bands(wavelengths(S2_12BANDS))


def test_bad_input_names_the_expected_shape(real_tiles):
    with pytest.raises(ValueError, match=r"takes \(B, 10, H, W\) images, got shape \(8, 9, 32, 32\)"):
        S2MAE(**SMALL)(real_tiles[:, :9])
    with pytest.raises(ValueError, match="not a multiple of the patch size 8"):
        S2MAE(**SMALL)(real_tiles[..., :30, :30])
    with pytest.raises(ValueError, match="unknown reconstruction target"):
        S2MAE(**SMALL, target="zscore")


def test_build_from_json_config_round_trip():
    model = SatMAE(**SMALL)
    config = json.loads(json.dumps(model.config_dict()))
    again = build("satmae", config)
    again.load_state_dict(model.state_dict())
    assert again.config == model.config


@pytest.mark.parametrize("model_cls", [S2MAE, SatMAE])
def test_small_model_overfits_one_batch_of_real_patches(model_cls, real_tiles):
    """The loss on one batch of real Sentinel-2 patches (one fixed mask) falls at least tenfold."""
    torch.manual_seed(0)
    model = model_cls(**SMALL)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    first = None
    for step in range(300):
        loss = model(real_tiles, mask_ratio=0.5, generator=_gen()).loss
        first = first if first is not None else loss.item()
        if loss.item() <= first / 10:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() <= first / 10, f"loss fell from {first:.4f} to {loss.item():.4f} in {step + 1} steps"


# The bf16 training step (s2lab.device.training_autocast) against float32 on the same weights, batch and mask. The
# products round to bf16's 8 significant bits, the weights, norms and loss stay float32, so the loss agrees to within
# 0.5 % and the gradient, as one vector over every parameter, to within 2 % of its norm (measured: 0.07 % and 0.6 %).
BF16_LOSS_RTOL, BF16_GRAD_RTOL = 5e-3, 2e-2


@pytest.mark.parametrize("kind, fields", [("s2mae", {}), ("satmae", {}), ("s2mae", {"bands_per_token": 10}),
                                          ("s2mae", {"scaling": "window", "loss": "reflectance"})])
def test_a_bf16_training_step_gives_the_float32_loss_and_gradients(kind, fields, real_tiles):
    torch.manual_seed(0)
    model = build(kind, {**SMALL, **fields})
    results = []
    for bf16 in (False, True):
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what training_autocast turns on
            loss = model(real_tiles, generator=_gen(1)).loss
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((loss.detach(), grads))
    (loss32, grad32), (loss16, grad16) = results
    assert loss16.dtype == torch.float32
    assert abs(loss16 - loss32) <= BF16_LOSS_RTOL * loss32
    assert (grad16 - grad32).norm() <= BF16_GRAD_RTOL * grad32.norm()
    assert not torch.equal(grad16, grad32)  # bf16 did run


def test_the_loss_without_padding_equals_the_weighted_one(real_tiles):
    from s2lab.models.mae import masked_mse

    pred, target = torch.rand(3, 7, 5, generator=_gen(1)), torch.rand(3, 7, 5, generator=_gen(2))
    mask = (torch.rand(3, 7, generator=_gen(3)) > 0.5).float()
    everything = torch.ones(7, 5, dtype=torch.bool)
    assert torch.allclose(masked_mse(pred, target, mask, None), masked_mse(pred, target, mask, everything))


def test_embedding_only_the_kept_tokens_gives_the_latent_of_embedding_all(real_tiles):
    torch.manual_seed(0)
    model = build("s2mae", SMALL)
    hw = (4, 4)
    tokens01 = model.tokenizer.patchify(model.scale(real_tiles)[0])  # (B, L, P)
    latent, mask = model.forward_encoder(tokens01, hw, 0.75, "random", _gen(4))
    x = model.embed(tokens01) + model.pos(hw, model.group_wavelengths())  # every token embedded, then K kept
    x = torch.gather(x, 1, mask.ids_keep[..., None].expand(-1, -1, x.shape[-1]))
    for block in model.blocks:
        x = block(x)
    assert torch.allclose(latent, model.norm(x), atol=1e-5)
