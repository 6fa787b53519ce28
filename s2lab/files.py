"""Writing files safely: a folder proven writable before any work starts, and a file replaced only by whole content.

- ``check_writable(folder)``: creates and removes a temporary file in ``folder``; raises ``OSError`` (its
  ``strerror`` says why) when that fails. Permission bits do not stop root, so trying is the only true test.
- ``atomic_path(path)``: a temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
  without an error, removed when it raises. A reader (or a crash) sees the old file or the whole new one, never a
  part, and nothing the user had is lost to a failed write.

The checks that name what a user gave (``s2lab.train.check_out_dir``, the command line's output checks) and the
writers (``s2lab.checkpoints``, ``s2lab.data.export.write_geotiff``) build on these two.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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
