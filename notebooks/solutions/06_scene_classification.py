"""Solutions to the exercises of notebook 06, scene classification. Run: python notebooks/solutions/06_scene_classification.py

Uses the SYNTHETIC EuroSAT-like set (32 px, real windows and real spectra) unless EuroSAT is found; the numbers are
about that set, and short CPU runs make them rough (a few points either way between seeds).
"""

import copy
import os

import numpy as np
import torch
from torch import nn

from s2lab import exercises
from s2lab.classification_metrics import accuracy
from s2lab.data.eurosat import eurosat_available, load_eurosat
from s2lab.data.synthetic import synthetic_scene_classification
from s2lab.models import S2MAE, SceneClassifier, load_model
from s2lab.sensors import S2_10BANDS
from s2lab.tasks import classification_task
from s2lab.train import TrainConfig, fit

# S2LAB_SOLUTIONS_QUICK=1 (tests/test_solutions.py sets it) trains for fewer steps: it tests the code and its
# asserts, not the numbers quoted in the comments, which are from the full runs.
SIZE, STEPS, BATCH = 32, 12 if os.environ.get("S2LAB_SOLUTIONS_QUICK") == "1" else 60, 16
generator = torch.Generator().manual_seed(0)
if eurosat_available():
    DATA = "EuroSAT"
    x, y, classes = load_eurosat(bands=S2_10BANDS, limit_per_class=25, generator=generator)
    x = x[..., 16:48, 16:48]
    order = torch.randperm(len(x), generator=generator)
    train_x, train_y, test_x, test_y = x[order[50:]], y[order[50:]], x[order[:50]], y[order[:50]]
else:
    DATA = "SYNTHETIC EuroSAT-like"
    train_x, train_y, classes = synthetic_scene_classification(20, size=SIZE, rng=generator, split="train")
    test_x, test_y, _ = synthetic_scene_classification(8, size=SIZE, rng=generator, split="eval")
K = len(classes)


def train_and_score(model: nn.Module, lr: float, x: torch.Tensor = train_x, y: torch.Tensor = train_y) -> float:
    batch_fn, loss_fn = classification_task(model, x, y, batch_size=BATCH)
    fit(model, loss_fn=loss_fn, batch_fn=batch_fn,
        config=TrainConfig(steps=STEPS, lr=lr, warmup_steps=6, progress=False, device="cpu"))
    with torch.no_grad():
        return accuracy(model.eval()(test_x), test_y)


s2mae, _ = load_model("s2mae-s2-small")
satmae, _ = load_model("satmae-s2-small")

# 1. Linear probes of the two shipped encoders, same images, steps and learning rate.
probes = {name: train_and_score(SceneClassifier(encoder=copy.deepcopy(enc), num_classes=K, linear_probe=True), 1e-2)
          for name, enc in (("S2MAE", s2mae), ("SatMAE", satmae))}
print(f"1. {DATA}, linear probe accuracy:", {k: f"{v:.0%}" for k, v in probes.items()})
assert all(v > 1 / K for v in probes.values())

# 2. Label efficiency. The usual claim is that pretrained features matter most when labels are few. This budget
#    cannot show it: with the same short run at every label count the model from scratch barely learns, so the gap
#    between probe and scratch does not shrink as labels grow; on these runs it widens (the printed accuracies).
#    Testing the claim needs a from-scratch arm trained to convergence at each label count, thousands of steps.
print(f"2. {DATA}, accuracy by training images per class (probe vs from scratch):")
for per_class in (2, 5, 20):
    keep = torch.cat([torch.nonzero(train_y == k).flatten()[:per_class] for k in range(K)])
    probe = train_and_score(SceneClassifier(encoder=copy.deepcopy(s2mae), num_classes=K, linear_probe=True), 1e-2,
                            train_x[keep], train_y[keep])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        scratch_model = SceneClassifier(encoder=S2MAE(**s2mae.config_dict()), num_classes=K)  # same scaling
    scratch = train_and_score(scratch_model, 1e-3, train_x[keep], train_y[keep])
    print(f"   {per_class:2d} per class: probe {probe:.0%}, from scratch {scratch:.0%}")


# 3. A probe on the tokens of one spectral group only.
class GroupProbe(nn.Module):
    """Frozen encoder; LayerNorm + Linear on the mean of the N tokens of spectral group g."""

    def __init__(self, encoder: nn.Module, group: int, num_classes: int):
        super().__init__()
        self.encoder, self.group = encoder.requires_grad_(False), group
        D = encoder.config.embed_dim
        self.head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder.encode(x)  # (B, G * N, D), group-major
        N = tokens.shape[1] // self.encoder.tokenizer.G
        return self.head(tokens[:, self.group * N:(self.group + 1) * N].mean(dim=1))  # (B, K)


print(f"3. {DATA}, probe accuracy from the tokens of one band group:")
for g, bands in enumerate(s2mae.tokenizer.bands_of_group):
    acc = train_and_score(GroupProbe(copy.deepcopy(s2mae), g, K), 1e-2)
    print(f"   group {g} ({', '.join(S2_10BANDS[b] for b in bands)}): {acc:.0%}")


# 4. Reading a confusion matrix, on this student's (synthetic) logits and labels.
mine = exercises.data("06.4")
predicted, truth, names = mine["logits"].argmax(axis=1), mine["truth"], mine["classes"]  # (N,), (N,), K names
matrix = np.zeros((len(names), len(names)), dtype=np.int64)  # rows truth, columns prediction
np.add.at(matrix, (truth, predicted), 1)
off_diagonal = matrix - np.diag(np.diag(matrix))
true_k, predicted_k = np.unravel_index(off_diagonal.argmax(), matrix.shape)
precision = np.diag(matrix) / matrix.sum(axis=0)  # (K,) a column: of the images called k, the share that are k
recall = np.diag(matrix) / matrix.sum(axis=1)  # (K,) a row: of the images of k, the share called k
least = names[int(precision.argmin())]
print(f"4. accuracy {np.trace(matrix) / matrix.sum():.3f}; most frequent confusion {names[true_k]} -> "
      f"{names[predicted_k]} ({off_diagonal.max()}x): recall of {names[true_k]} {recall[true_k]:.2f}, precision of "
      f"{names[predicted_k]} {precision[predicted_k]:.2f}; lowest precision: {least} {precision.min():.2f}")
# A confusion of a as b costs a's recall (a row) and b's precision (a column) at once. The class of lowest precision
# need not be the one of the largest confusion: a class that takes one stray image from many classes loses more
# precision than one that takes several from a single class.
assert exercises.check("06.4", (np.trace(matrix) / matrix.sum(), (names[true_k], names[predicted_k]), least))
