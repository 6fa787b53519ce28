"""s2lab.files: a folder proven writable, and a file replaced only by whole new content."""

import os
import stat

import pytest

from s2lab.files import atomic_path, check_output, check_writable


def test_atomic_path_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "map.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="half written"):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".map.tif.") and tmp.suffix == ".part"
            tmp.write_text("new, but not")
            raise RuntimeError("half written")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["map.tif"]  # kept, and no temporary file left
    with atomic_path(target, suffix=".tmp") as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing changes before the block ends
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["map.tif"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by all, unlike mkstemp's 0o600


def test_check_writable_leaves_nothing_and_names_a_missing_folder(tmp_path):
    check_writable(tmp_path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        check_writable(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        with atomic_path(tmp_path / "missing" / "out.tif"):
            pass


def test_check_output_refuses_inputs_folders_and_missing_folders(tmp_path):
    source = tmp_path / "in.tif"
    source.write_bytes(b"data")
    assert check_output(tmp_path / "out.tif", [source]) == tmp_path / "out.tif"
    with pytest.raises(ValueError, match=r"output .*in\.tif is the input .*in\.tif; choose another output path"):
        check_output(tmp_path / "." / "in.tif", [source])
    with pytest.raises(ValueError, match="is a folder; expected a file path"):
        check_output(tmp_path)
    with pytest.raises(NotADirectoryError, match=r"in\.tif, which is a file; expected a folder"):
        check_output(source / "out.tif")
    with pytest.raises(FileNotFoundError, match=r"the folder .*nowhere of output .* does not exist; create it first"):
        check_output(tmp_path / "nowhere" / "out.tif")
    assert source.read_bytes() == b"data" and sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
