"""Solutions to the exercises of notebook 05, pretraining. Run: python notebooks/solutions/05_pretraining.py"""

import tempfile
from pathlib import Path

import pandas as pd
import torch

from s2lab import exercises
from s2lab.baselines import FILL_NAMES
from s2lab.models import S2MAE, load_model
from s2lab.pos_embed import sincos_2d
from s2lab.reconstruct import reconstruct_tiles
from s2lab.data.pretraining import pretraining_images
from s2lab.tasks import pretrain_task
from s2lab.train import TrainConfig, fit

SMALL = {"img_size": 32, "in_chans": 10, "patch_size": 8, "bands_per_token": 2, "embed_dim": 64, "depth": 2,
         "num_heads": 4, "decoder_embed_dim": 48, "decoder_depth": 1, "decoder_num_heads": 4}


def new_model(**changes) -> S2MAE:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return S2MAE(**{**SMALL, **changes})


train_images = pretraining_images(["embedded:train"])
eval_images = pretraining_images(["embedded:eval"])


# 1. Resume: an interrupted and resumed run ends with the same weights as an uninterrupted one.
class Stop(Exception):
    pass


def stop_after_19(step: int, loss: float, model: torch.nn.Module) -> None:
    if step == 19:
        raise Stop


config = TrainConfig(steps=40, lr=1e-3, checkpoint_every=10, progress=False, device="cpu")
with tempfile.TemporaryDirectory() as tmp:
    whole, split = new_model(), new_model()
    batch_fn, loss_fn = pretrain_task(whole, train_images, batch_size=8, img_size=32, mask_ratio=0.75)
    fit(whole, loss_fn=loss_fn, batch_fn=batch_fn, config=config, out_dir=Path(tmp) / "A")
    try:
        fit(split, loss_fn=loss_fn, batch_fn=batch_fn, config=config, out_dir=Path(tmp) / "B", callback=stop_after_19)
    except Stop:
        pass
    resumed = new_model()  # a fresh process would start from fresh weights; resume loads step 20's state
    result = fit(resumed, loss_fn=loss_fn, batch_fn=batch_fn, config=config, out_dir=Path(tmp) / "B", resume=True)
    assert result.start_step == 20 and len(result.losses) == 40
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    print("1. resumed at step", result.start_step, "-> weights identical to the uninterrupted run")

# 2. Naive fills and the shipped model across mask ratios, on the lab's yardstick (masked MSE in reflectance), the
#    same held-out tiles and masks. With more tokens removed, the visible neighbours of a removed value get rarer and
#    farther, so spatial copying's edge over the band mean shrinks, but up to 0.9 every spatial fill keeps it (the best
#    fill's masked MSE x 1e4 is 1.54 against the band mean's 10.33 at 0.25, 7.19 against 11.04 at 0.9); the learnt
#    model's lead over the best fill is largest at high ratios, where copying fails (0.99 at 0.25, 4.10 at 0.9).
shipped, _ = load_model("s2mae-s2-small")
draw, _ = pretrain_task(shipped, eval_images, batch_size=64, img_size=32)
held_out = draw(0, torch.Generator().manual_seed(1))  # (64, 10, 32, 32) from the bottom half
rows = {}
for ratio in (0.25, 0.5, 0.75, 0.9):
    scores = reconstruct_tiles(shipped, held_out, mask_ratio=ratio, seed=0)["scores"]
    rows[ratio] = {("shipped" if name == "model" else name): 1e4 * s["mse"] for name, s in scores.items()}
table = pd.DataFrame(rows).T  # masked MSE x 1e4, reflectance
table["lead over best fill"] = table[list(FILL_NAMES)].min(axis=1) - table["shipped"]
print("2. masked MSE x 1e4 (reflectance)\n", table.round(3).to_string())
assert (table["lead over best fill"] > 0).all()
mine = exercises.data("05.2")  # this student's tiles, ratio and mask
own_draw, _ = pretrain_task(shipped, eval_images, batch_size=mine["tiles"], img_size=mine["img_size"])
own_tiles = own_draw(0, torch.Generator().manual_seed(mine["tile_seed"]))
own = reconstruct_tiles(shipped, own_tiles, mask_ratio=mine["ratio"], seed=mine["mask_seed"])["scores"]
best_fill = min(FILL_NAMES, key=lambda name: own[name]["mse"])
print(f"   your tiles at ratio {mine['ratio']}: best fill {best_fill}, shipped {1e4 * own['model']['mse']:.3f}")
assert exercises.check("05.2", (best_fill, 1e4 * own["model"]["mse"]))

# 3. A sincos model recomputes its spatial table for a new grid instead of interpolating the old one.
fixed = new_model(pos_embed="sincos")
table = fixed.pos.spatial_table((8, 8))  # what a 64 px image gets
assert torch.equal(table, sincos_2d(fixed.pos.spat_dim, 8, 8))
assert not torch.allclose(table, fixed.pos.spatial_table((4, 4)).repeat_interleave(4, 0))
print("3. sincos on an 8 x 8 grid is sincos_2d(d, 8, 8) itself:", tuple(table.shape))
