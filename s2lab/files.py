"""Writing files safely: a folder proven writable before any work starts, and a file replaced only by whole content.

- ``check_writable(folder)``: creates and removes a temporary file in ``folder``; raises ``OSError`` (its
  ``strerror`` says why) when that fails. Permission bits do not stop root, so trying is the only true test.
- ``atomic_path(path)``: a temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
  without an error, removed when it raises. A reader (or a crash) sees the old file or the whole new one, never a
  part, and nothing the user had is lost to a failed write.

- ``check_output(path, inputs)``: an output file path refused before any work when it is one of the inputs, a
  folder, or in a missing or unwritable folder; the error names the output and what was expected.

The checks that name what a user gave (``s2lab.train.check_out_dir``, the command line's outputs,
``s2lab.data.export.check_target``) and the writers (``s2lab.checkpoints``, ``s2lab.data.export.write_geotiff``)
build on these.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def check_writable(folder: str | os.PathLike) -> None:
    """Raise ``OSError`` unless a file can be created in the existing ``folder`` (nothing is left behind)."""
    with tempfile.TemporaryFile(dir=folder):
        pass


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder (named ``.<name>.<random><suffix>``); on a clean exit it is
    made readable by all (0o644) and renamed over ``path``, on an error removed.

    Raises:
        OSError: the folder does not exist or is not writable (from creating the temporary file).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """The output file ``path`` (user home expanded), refused before any work is done.

    Raises:
        ValueError: it is one of the ``inputs`` (the files the output is made from), or a folder.
        NotADirectoryError: its folder is a file. FileNotFoundError: its folder does not exist.
        PermissionError: no file can be created in its folder.
    """
    out = Path(path).expanduser()
    for given in inputs:
        if Path(given).expanduser().resolve() == out.resolve():
            raise ValueError(f"output {out} is the input {given}; choose another output path")
    if out.is_dir():
        raise ValueError(f"output {out} is a folder; expected a file path such as out.tif")
    if out.parent.exists() and not out.parent.is_dir():
        raise NotADirectoryError(f"output {out} is inside {out.parent}, which is a file; expected a folder")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder {out.parent} of output {out} does not exist; create it first")
    try:
        check_writable(out.parent)
    except OSError as err:
        raise PermissionError(
            f"cannot write output {out}: its folder {out.parent} is not writable ({err.strerror})"
        ) from None
    return out
