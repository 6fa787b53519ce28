"""data.pairs: every source of change pairs returns the one ChangePair type, its truth called ``label``."""

import dataclasses

import numpy as np
import pytest
import torch

from s2lab.data.embedded import open_embedded_scene
from s2lab.data.oscd import OSCDPair, load_oscd_city, oscd_cities
from s2lab.data.pairs import ChangePair
from s2lab.data.synthetic import PlantedPair, plant_changes
from s2lab.settings import data_dir
from s2lab.tasks import _pair_tensors


@pytest.fixture(scope="module")
def planted():
    crop = open_embedded_scene().isel(y=slice(1100, 1164), x=slice(500, 564))
    return plant_changes(crop, n=3, rng=np.random.default_rng(0))


def test_planted_pair_is_a_change_pair_with_a_label(planted):
    assert isinstance(planted, ChangePair) and isinstance(planted, PlantedPair)
    assert planted.synthetic is True and planted.name.startswith("SYNTHETIC") and "SYNTHETIC" in planted.description
    assert planted.label.dims == ("y", "x") and planted.label.dtype == np.uint8
    np.testing.assert_array_equal(planted.label.values, (planted.regions.values > 0).astype(np.uint8))
    assert not hasattr(planted, "mask")


def test_a_pair_unpacks_as_before_after_label(planted):
    before, after, label = planted
    assert before is planted.before and after is planted.after and label is planted.label
    stack = _pair_tensors(planted)  # what change_task trains on: (2C + 1, H, W)
    assert stack.shape == (2 * planted.before.sizes["band"] + 1, 64, 64)
    assert torch.equal(stack[-1], torch.as_tensor(planted.label.values, dtype=torch.float32))
    assert torch.equal(_pair_tensors(tuple(planted)), stack)  # a plain tuple trains the same


def test_a_pair_is_frozen(planted):
    with pytest.raises(dataclasses.FrozenInstanceError):
        planted.label = None


@pytest.mark.skipif(data_dir("oscd") is None, reason="OSCD not found: set S2LAB_OSCD_DIR or S2LAB_DATA_DIR")
def test_oscd_cities_are_change_pairs_labelled_or_not():
    labelled, unlabelled = oscd_cities(labelled=True)[0], oscd_cities(labelled=False)
    pair = load_oscd_city(labelled)
    assert isinstance(pair, OSCDPair) and isinstance(pair, ChangePair)
    assert pair.name == f"OSCD {labelled}" and pair.synthetic is False and pair.label.dims == ("y", "x")
    assert set(np.unique(pair.label.values).tolist()) == {0, 1}
    if unlabelled:
        bare = load_oscd_city(unlabelled[0])
        assert bare.label is None and "no change label" in bare.description
        with pytest.raises(ValueError, match="without a label"):
            _pair_tensors(bare)
