"""Solutions to the exercises of notebook 09, SAR + optical fusion. Run: python notebooks/solutions/09_sar_optical_fusion.py

Real data: the 6 BigEarthNet S1 + S2 patches of bigearthnet-common. Six patches are a demonstration, not a benchmark.
"""

import os

import pandas as pd
import torch

from s2lab import exercises
from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.tiles import tile, to_tensor
from s2lab.models import load_model
from s2lab.models.fusmae import FUSMAE, modality_masks
from s2lab.scaling import scale_unit
from s2lab.sensors import S2_10BANDS
from s2lab.tasks import fusion_task
from s2lab.train import TrainConfig, fit

SMALL = {"img_size": 48, "patch_size": 8, "bands_per_token": 2, "embed_dim": 64, "depth": 2, "num_heads": 4,
         "decoder_embed_dim": 64, "decoder_depth": 2, "decoder_num_heads": 4, "pos_embed": "sincos"}
# S2LAB_SOLUTIONS_QUICK=1 (tests/test_solutions.py sets it) trains for fewer steps: it tests the code and its
# asserts, not the numbers quoted in the comments, which are from the full runs.
STEPS, HELD_OUT = 40 if os.environ.get("S2LAB_SOLUTIONS_QUICK") == "1" else 100, 0
patches = [load_bigearthnet_patch(n, root=EMBEDDED, bands=S2_10BANDS) for n in bigearthnet_patches(EMBEDDED)]
train_patches = [p for i, p in enumerate(patches) if i != HELD_OUT]
s2_held = to_tensor(patches[HELD_OUT].s2)[None]  # (1, 10, 120, 120)
s1_held = to_tensor(patches[HELD_OUT].s1)[None]  # (1, 2, 120, 120)


def train(masking: str) -> FUSMAE:
    torch.manual_seed(0)
    model = FUSMAE(**SMALL, modality_masking=masking)
    batch_fn, loss_fn = fusion_task(model, train_patches, batch_size=16, img_size=48)
    fit(model, loss_fn=loss_fn, batch_fn=batch_fn,
        config=TrainConfig(steps=STEPS, lr=2e-3, warmup_steps=10, device="cpu", progress=False))
    return model.eval()


def held_out_mse(model: FUSMAE, s1: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        out = model(s2_held, s1, mask_ratio=0.75, generator=torch.Generator().manual_seed(1))
    return {
        "S2": float(((out.s2_pred - out.s2_target) ** 2).mean(-1)[out.s2_mask.bool()].mean()),
        "S1": float(((out.s1_pred - out.s1_target) ** 2).mean(-1)[out.s1_mask.bool()].mean()),
    }


# 1. Consistent vs independent masks. Independent masks usually give the lower held-out error when scored with
#    independent masks, because a place hidden in one sensor is often visible in the other (and in other S2 groups),
#    so the task is easier. A lower reconstruction error is not a better representation: what counts is how well the
#    encoder serves a downstream task (fine-tuning or a linear probe), which this does not measure.
models = {masking: train(masking) for masking in ("consistent", "independent")}
table = pd.DataFrame({masking: held_out_mse(m, s1_held) for masking, m in models.items()}).T
print(f"1. held-out masked-token MSE after {STEPS} steps (each scored with its own kind of mask):\n", table.round(4))
assert (table.values > 0).all()

# 2. Does the model use the radar? Replace S1 and watch S2's error. A change means the S2 reconstruction reads S1;
#    after so little training the effect is small and may go either way.
model = models["consistent"]
other = to_tensor(patches[(HELD_OUT + 1) % len(patches)].s1)[None]
radar = {"own S1": s1_held, "another patch's S1": other, "constant S1": torch.full_like(s1_held, -12.0)}
effect = pd.Series({name: held_out_mse(model, s1)["S2"] for name, s1 in radar.items()}, name="S2 masked-token MSE")
print("\n2.", effect.round(4), sep="\n")
assert effect.nunique() > 1  # S2's reconstruction depends on the radar it is given

# 3. Early fusion by hand, checked with a forward hook on s2_from_s1. With ratio 0 every token is kept, but in the
#    mask's random order (ids_keep), so the same generator seed gives the model's order.
s2, s1 = s2_held[:, :, :48, :48], s1_held[:, :, :48, :48]
hw, N = (6, 6), 36
G = model.s2_tokenizer.G
m2, m1 = modality_masks(1, G, N, 0.0, consistent=True, generator=torch.Generator().manual_seed(0))
assert not m2.mask.any() and torch.equal(m2.ids_keep.sort().values, torch.arange(G * N)[None])
with torch.no_grad():
    x2 = model.s2_embed(model.s2_tokenizer.patchify(scale_unit(s2)[0])) + model.s2_pos(hw) + model.modality[0]
    x1 = model.s1_embed(model.s1_tokenizer.patchify(scale_unit(s1)[0])) + model.s1_pos(hw) + model.modality[1]
    by_hand = model.s2_from_s1(x2[:, m2.ids_keep[0]], x1[:, m1.ids_keep[0]])  # (1, G * N, D), in kept order
caught = []
hook = model.s2_from_s1.register_forward_hook(lambda module, inputs, output: caught.append(output))
with torch.no_grad():
    model(s2, s1, mask_ratio=0.0, generator=torch.Generator().manual_seed(0))
hook.remove()
assert torch.allclose(caught[0], by_hand, atol=1e-5)
print("\n3. early fusion by hand matches the model's s2_from_s1 output:", tuple(by_hand.shape))

# 4. Which modality does the shipped model's S2 reconstruction lean on? Section 8's radar test by hand, at this
#    student's mask ratio and seeds, on every whole window of the two patches the shipped model never saw.
shipped, info = load_model("fusmae-ben-small")
size = shipped.config.img_size


def windows_of(image: torch.Tensor) -> torch.Tensor:
    """Every whole size x size window of a (C, H, W) image: (n, C, size, size)."""
    return tile(image[:, : image.shape[1] // size * size, : image.shape[2] // size * size], size, stride=size,
                drop_nan=False)[0]


held = [load_bigearthnet_patch(n, root=EMBEDDED, bands=S2_10BANDS)
        for n in info["meta"]["held_out"]["bigearthnet_patches"]]
s2_w = torch.cat([windows_of(to_tensor(p.s2)) for p in held])  # (B, 10, 32, 32), the patches in order
s1_w = torch.cat([windows_of(to_tensor(p.s1)) for p in held])  # (B, 2, 32, 32)
mine = exercises.data("09.4")
cases = {"own": s1_w, "another patch's": s1_w.roll(len(s1_w) // 2, dims=0),
         "constant": s1_w.mean(dim=(-2, -1), keepdim=True).expand_as(s1_w)}
mse = {case: [] for case in cases}
with torch.no_grad():
    for seed in mine["seeds"]:
        for case, s1 in cases.items():  # the same masks for the three cases
            rec = shipped.reconstruct(s2_w, s1, mask_ratio=mine["ratio"], generator=torch.Generator().manual_seed(seed))
            mse[case].append(float(((rec.prediction - s2_w)[rec.mask.bool()] ** 2).mean()))
own = torch.tensor(mse["own"])
minus_own = {case: torch.tensor(mse[case]) - own for case in ("another patch's", "constant")}  # paired by seed
uses_radar = all(bool(d.mean() > d.std()) for d in minus_own.values())
print(f"\n4. mask ratio {mine['ratio']}: S2 MSE x 1e4 with own S1 {1e4 * own.mean():.2f}; "
      + "; ".join(f"{case} - own {1e4 * d.mean():+.2f} (sd {1e4 * d.std():.2f})" for case, d in minus_own.items())
      + f"; uses the radar: {uses_radar}")
# The constant radar hurts by far more than its spread: the model leans on having radar-like input. Another patch's
# radar does as well as the window's own, within the spread (on the runs tried, from slightly better to slightly
# worse): the model does not read what the radar says about this place, so by the notebook's rule it does not use it.
assert exercises.check("09.4", (1e4 * float(own.mean()), 1e4 * float(minus_own["another patch's"].mean()), uses_radar))
