"""The task heads on the real BigEarthNet S2 patches: scene classifiers (linear probe, fine-tuning), change detector.

``real_pair`` (crops of the real patches) comes from tests/models/conftest.py.
"""

import pytest
import torch

from s2lab.models import S2MAE, ChangeDetector, SceneClassifier, build, head_config
from _tiny import SMALL


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
