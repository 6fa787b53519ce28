"""s2lab.bench.peer_code: the patches check their targets, and loading says why it cannot run here."""

import importlib.util

import pytest

from s2lab.bench.peer_code import PATCHES, PEER_FILES, PeerPatchError, patched_source, skip_reason


def _fake_peers(folder, *, repeat: str | None = None):
    """A peers folder whose files hold every patch target exactly as often as expected (``repeat``: one twice)."""
    for files in PEER_FILES.values():
        for name in files:
            text = "".join(p.old * p.count + "\n" for p in PATCHES if p.file == name)
            if repeat is not None and repeat in text:
                text += repeat + "\n"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("# a stand-in\n" + text)
    return folder


def test_patches_apply_when_every_target_occurs_as_expected(tmp_path):
    folder = _fake_peers(tmp_path)
    for patch in PATCHES:
        text = patched_source(folder, patch.file)
        assert patch.old not in text and patch.new in text
    assert all(p.why for p in PATCHES)  # every patch says why it is needed


@pytest.mark.parametrize("index", range(len(PATCHES)))
def test_a_target_found_too_often_or_not_at_all_stops_with_a_clear_message(tmp_path, index):
    patch = PATCHES[index]
    folder = _fake_peers(tmp_path, repeat=patch.old)
    with pytest.raises(PeerPatchError, match=rf"expected {patch.count} occurrence\(s\).*found {patch.count + 1}"):
        patched_source(folder, patch.file)
    (folder / patch.file).write_text("# changed upstream\n")
    with pytest.raises(PeerPatchError, match="found 0"):
        patched_source(folder, patch.file)


def test_without_timm_the_part_names_the_environment_to_make(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    reason = skip_reason(_fake_peers(tmp_path))
    assert "timm is not installed" in reason and "scripts/peer_env.sh" in reason
