"""Solutions to the exercises of notebook 07, multi-label classification. Run: python notebooks/solutions/07_multilabel.py

Exercise 2 trains a linear probe on the SYNTHETIC BigEarthNet-19-like set (real windows and real spectra); exercise 3
uses the 6 REAL BigEarthNet patches of bigearthnet-common.
"""

import os

import numpy as np
import torch

from s2lab import exercises
from s2lab.classification_metrics import binary_scores, mean_average_precision
from s2lab.data.bigearthnet import EMBEDDED, bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.corine import LABELS_19
from s2lab.data.synthetic import synthetic_multilabel
from s2lab.models import SceneClassifier, load_model
from s2lab.tasks import multilabel_task
from s2lab.train import TrainConfig, fit

# S2LAB_SOLUTIONS_QUICK=1 (tests/test_solutions.py sets it) trains for fewer steps: it tests the code and its
# asserts, not the numbers quoted in the comments, which are from the full runs.
STEPS = 100 if os.environ.get("S2LAB_SOLUTIONS_QUICK") == "1" else 250


def ap_by_hand(scores: np.ndarray, truth: np.ndarray) -> float:
    hits = truth[np.argsort(-scores, kind="stable")]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


# 1. Macro vs micro. Micro pools all decisions, so the frequent class (two thirds of all positives) dominates it;
#    macro gives each class a quarter. A perfect frequent class with random rare ones: micro high (about 0.8), macro
#    middling (about 0.6, three classes of four are random). Perfect rare classes with a random frequent one: macro
#    high (about 0.9), micro lower (about 0.7, the random ranking of the frequent class weighs most).
rng = np.random.default_rng(0)
B, shares = 100, (0.5, 0.2, 0.05, 0.01)
truth = np.stack([np.arange(B) < round(f * B) for f in shares], axis=1).astype(float)  # (100, 4)
rng.shuffle(truth)
for perfect in ((0,), (1, 2, 3)):
    scores = rng.random((B, 4))
    for k in perfect:
        scores[:, k] = truth[:, k] + 0.1 * rng.random(B)  # every positive above every negative
    macro = np.mean([ap_by_hand(scores[:, k], truth[:, k]) for k in range(4)])
    micro = ap_by_hand(scores.ravel(), truth.ravel())
    assert abs(macro - mean_average_precision(torch.tensor(scores), torch.tensor(truth))) < 1e-9
    assert abs(micro - mean_average_precision(torch.tensor(scores), torch.tensor(truth), "micro")) < 1e-9
    print(f"1. perfect classes {perfect}: macro mAP {macro:.3f}, micro mAP {micro:.3f}")
mine = exercises.data("07.1")  # this student's scores and labels
macro = np.mean([ap_by_hand(mine["scores"][:, k], mine["truth"][:, k]) for k in range(4)])
micro = ap_by_hand(mine["scores"].ravel(), mine["truth"].ravel())
print(f"1. your scores (perfect classes {mine['perfect']}): macro mAP {macro:.3f}, micro mAP {micro:.3f}")
assert exercises.check("07.1", (macro, micro))

# 2. Per-class thresholds chosen on the SYNTHETIC test set vs one threshold of 0.5 (chosen and scored on the same
#    images, so the per-class F1 is optimistic; a fair version picks thresholds on a separate validation set).
generator = torch.Generator().manual_seed(0)
train = synthetic_multilabel(300, size=32, rng=generator, split="train", max_regions=3)
test = synthetic_multilabel(60, size=32, rng=generator, split="eval", max_regions=3)
encoder, _ = load_model("s2mae-s2-small")
model = SceneClassifier(encoder=encoder, num_classes=19, multilabel=True, linear_probe=True)
batch_fn, loss_fn = multilabel_task(model, train.x, train.y, batch_size=16)
fit(model, loss_fn=loss_fn, batch_fn=batch_fn,
    config=TrainConfig(steps=STEPS, lr=3e-2, warmup_steps=25, progress=False, device="cpu"))
with torch.no_grad():
    prob = torch.sigmoid(model.eval()(test.x))  # (60, 19)
print("2. SYNTHETIC test images, F1 per class: shared 0.5 vs best threshold per class")
for k, name in enumerate(LABELS_19):
    if test.y[:, k].sum() == 0:
        continue
    fixed = binary_scores(prob[:, k] >= 0.5, test.y[:, k])["f1"]
    best = max((binary_scores(prob[:, k] >= t, test.y[:, k])["f1"], t) for t in np.unique(prob[:, k].numpy()))
    assert best[0] >= fixed
    print(f"   {name[:40]:40s} F1 at 0.5: {fixed:.2f}   best F1 {best[0]:.2f} at {best[1]:.2f}")

# 3. Sentinel-1 backscatter of the REAL patches. Calm open water reflects the radar away from the sensor (very dark,
#    VV below about -15 dB, so water pixels pull a patch's mean down); forest scatters in volume, which raises the
#    cross-polarised VH; smooth bare fields are dark in VH. Patch means mix all of a patch's classes, so with six
#    patches the link is weak, and season matters too: the February patch (frozen or snow-covered ground) is the
#    brightest in VV. Per-pixel maps tell more than means (notebook 09).
print("3. REAL patches, mean backscatter (dB):")
for name in bigearthnet_patches(EMBEDDED):
    p = load_bigearthnet_patch(name, root=EMBEDDED)
    vv, vh = (float(p.s1.sel(band=b).mean()) for b in ("VV", "VH"))
    assert vh < vv  # cross-polarised returns are weaker than co-polarised ones
    print(f"   {name.split('_', 2)[2]:24s} VV {vv:6.1f}  VH {vh:6.1f}  {', '.join(p.labels19)}")
