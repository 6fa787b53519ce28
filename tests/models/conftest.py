"""Fixtures of the model tests: crops of the real BigEarthNet S1 + S2 patches."""

import pytest
import torch

from s2lab.data.bigearthnet import bigearthnet_patches, load_bigearthnet_patch


@pytest.fixture(scope="module")
def real_pair():
    """S2 (B, 10, 32, 32) and S1 (B, 2, 32, 32) crops of the real BigEarthNet patches."""
    patches = [load_bigearthnet_patch(name) for name in bigearthnet_patches()]
    s2 = torch.stack([torch.as_tensor(p.s2.values[:, :32, :32]) for p in patches]).float()
    s1 = torch.stack([torch.as_tensor(p.s1.values[:, :32, :32]) for p in patches]).float()
    return s2, s1
