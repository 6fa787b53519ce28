"""Task heads on a pretrained encoder: scene classification, multi-label classification, change detection.

The encoder is a ``MaskedAutoencoder`` (S2MAE or SatMAE) used without masking (``encode`` / ``feature_map``).
``linear_probe=True`` freezes it, so only the head learns: the standard test of what pretraining learned.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from s2lab.models.mae import MaskedAutoencoder


class SceneClassifier(nn.Module):
    """Mean-pooled encoder tokens -> LayerNorm -> Linear. One label (softmax) or many (sigmoid).

    Args:
        encoder: a pretrained or fresh ``MaskedAutoencoder``.
        num_classes: K.
        multilabel: sigmoid outputs and binary cross-entropy (BigEarthNet) instead of softmax (EuroSAT).
        linear_probe: freeze the encoder.
    """

    kind = "classifier"

    def __init__(self, *, encoder: MaskedAutoencoder, num_classes: int, multilabel: bool = False,
                 linear_probe: bool = False):
        super().__init__()
        self.config = {"num_classes": num_classes, "multilabel": multilabel, "linear_probe": linear_probe}
        self.encoder, self.multilabel, self.linear_probe = encoder, multilabel, linear_probe
        self.encoder.requires_grad_(not linear_probe)
        D = encoder.config.embed_dim
        self.head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) reflectance -> logits (B, K)."""
        return self.head(self.encoder.encode(x).mean(dim=1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """y: (B,) class indices, or (B, K) multi-hot when multilabel."""
        logits = self.forward(x)
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, y.float())
        return F.cross_entropy(logits, y)


class ChangeDetector(nn.Module):
    """A siamese encoder and a decoder to a full-resolution change map.

    Both dates go through the same encoder; the token features' difference is decoded and upsampled by p to the pixel
    grid, where it meets a few convolutions on the two [0, 1]-scaled images (each scaled on its own: a radiometric
    normalisation that uses no labels) for sharp edges.

    Args:
        encoder: a pretrained or fresh ``MaskedAutoencoder``.
        hidden: channels of the decoder.
        linear_probe: freeze the encoder.
    """

    kind = "change"

    def __init__(self, *, encoder: MaskedAutoencoder, hidden: int = 32, linear_probe: bool = False):
        super().__init__()
        self.config = {"hidden": hidden, "linear_probe": linear_probe}
        self.encoder, self.linear_probe = encoder, linear_probe
        self.encoder.requires_grad_(not linear_probe)
        D, C = encoder.config.embed_dim, encoder.config.in_chans
        self.token_head = nn.Sequential(nn.Conv2d(2 * D, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1))
        self.pixel_head = nn.Sequential(nn.Conv2d(3 * C, hidden, 3, padding=1), nn.GELU())
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * hidden, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, 1, 1)
        )

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """before, after: (B, C, H, W) reflectance on one grid -> change logits (B, H, W)."""
        if before.shape != after.shape:
            raise ValueError(f"before {tuple(before.shape)} and after {tuple(after.shape)} must have the same shape")
        B = before.shape[0]
        feats = self.encoder.feature_map(torch.cat([before, after]))  # (2B, D, h, w), one pass for both dates
        f1, f2 = feats[:B], feats[B:]
        tokens = self.token_head(torch.cat([(f1 - f2).abs(), f1 + f2], dim=1))  # (B, hidden, h, w)
        tokens = F.interpolate(tokens, size=before.shape[-2:], mode="bilinear", align_corners=False)
        b01, a01 = self.encoder.scale(before)[0], self.encoder.scale(after)[0]  # the encoder's input scaling
        pixels = self.pixel_head(torch.cat([b01, a01, (b01 - a01).abs()], dim=1))  # (B, hidden, H, W)
        return self.fuse(torch.cat([tokens, pixels], dim=1))[:, 0]

    def loss(self, before: torch.Tensor, after: torch.Tensor, label: torch.Tensor,
             pos_weight: float | None = None) -> torch.Tensor:
        """Binary cross-entropy against label (B, H, W) in {0, 1}; ``pos_weight`` up-weights the rare change class."""
        weight = None if pos_weight is None else torch.tensor(pos_weight, device=before.device)
        return F.binary_cross_entropy_with_logits(self.forward(before, after), label.float(), pos_weight=weight)
