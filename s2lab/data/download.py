"""Real downloads of the public datasets: resumable, checksummed, with a progress bar and a clear error offline.

Only the standard library talks to the network (``urllib``). A download goes to ``<dest>.part`` first; when it
stops halfway, the next call continues it with an HTTP ``Range`` request (or starts again when the server
answers the whole file instead). The digests are checked before the ``.part`` file is renamed over ``dest``,
so ``dest`` either does not exist or is complete and verified.

``SOURCES`` lists where each dataset lives and its published checksums; ``fetch(name)`` downloads and unpacks
one of them into its data folder, where the readers (``s2lab.data.eurosat``, ``s2lab.data.bigearthnet``,
``s2lab.data.oscd``) find it through ``s2lab.settings.data_dir``. Nothing is downloaded at import.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from s2lab import __version__, settings

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst")


class DownloadError(RuntimeError):
    """A download or an extraction that failed: no network, a bad answer, a wrong checksum, a hostile archive."""


@dataclass(frozen=True, kw_only=True)
class RemoteFile:
    """One file of a dataset as its publisher serves it."""

    url: str  # where the publisher serves it
    filename: str  # the name it gets on disk
    md5: str | None = None  # the digest the publisher states (most publish MD5); None when none is published
    sha256: str | None = None  # a SHA-256 digest when one is published; None otherwise


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a dataset comes from and how to get it."""

    dataset: str  # the ``settings.DATASETS`` name whose folder it fills
    files: tuple[RemoteFile, ...]  # what ``fetch`` downloads, in order; empty when only a manual download works
    homepage: str  # the publisher's page
    citation: str  # the paper to cite
    licence: str  # the licence of the data
    manual: str = ""  # how to get it by hand (required when ``files`` is empty)


SOURCES: dict[str, Source] = {
    "eurosat": Source(
        dataset="eurosat",
        files=(
            RemoteFile(
                url="https://zenodo.org/records/7711810/files/EuroSAT_MS.zip",
                filename="EuroSAT_MS.zip",
                md5="091174add3c8e680a49244acf185b9f0",  # as listed on the Zenodo record (2.07 GB)
            ),
        ),
        homepage="https://github.com/phelber/EuroSAT",
        citation="Helber, Bischke, Dengel, Borth. EuroSAT. IEEE JSTARS 12(7), 2019; IGARSS 2018.",
        licence="MIT",
        manual=(
            "Download EuroSAT_MS.zip from https://zenodo.org/records/7711810, unzip it into a folder <root>/eurosat "
            "and set S2LAB_DATA_DIR=<root> (or S2LAB_EUROSAT_DIR=<root>/eurosat)."
        ),
    ),
    "eurosat-allbands": Source(
        dataset="eurosat",
        files=(
            RemoteFile(
                url="https://madm.dfki.de/files/sentinel/EuroSATallBands.zip",
                filename="EuroSATallBands.zip",
                md5="5ac12b3b2557aa56e1826e981e8e200e",  # the digest torchgeo checks this zip against
            ),
        ),
        homepage="https://github.com/phelber/EuroSAT",
        citation="Helber, Bischke, Dengel, Borth. EuroSAT. IEEE JSTARS 12(7), 2019; IGARSS 2018.",
        licence="MIT",
        manual=(
            "The authors' original zip (classes nested under ds/images/remote_sensing/otherDatasets/sentinel_2/tif/). "
            "Unzip it into <root>/eurosat and set S2LAB_DATA_DIR=<root>."
        ),
    ),
    "bigearthnet-v1": Source(
        dataset="bigearthnet",
        files=(
            RemoteFile(
                url="https://bigearth.net/downloads/BigEarthNet-S2-v1.0.tar.gz",
                filename="BigEarthNet-S2-v1.0.tar.gz",
                md5="5a64e9ce38deb036a435a7b59494924c",  # published by bigearth.net; also in bigearthnet-common
            ),
            RemoteFile(
                url="https://bigearth.net/downloads/BigEarthNet-S1-v1.0.tar.gz",
                filename="BigEarthNet-S1-v1.0.tar.gz",
                md5="94ced73440dea8c7b9645ee738c5a172",  # published by bigearth.net; also in bigearthnet-common
            ),
        ),
        homepage="https://bigearth.net",
        citation=(
            "Sumbul et al. BigEarthNet-MM. IEEE GRSM 9(3), 2021; Sumbul et al. BigEarthNet. IGARSS 2019."
        ),
        licence="CDLA-Permissive-1.0",
        manual=(
            "About 66 GB (S2) and 55 GB (S1). Unpack both archives into <root>/bigearthnet (the folders "
            "BigEarthNet-v1.0/ and BigEarthNet-S1-v1.0/) and set S2LAB_DATA_DIR=<root>."
        ),
    ),
    "bigearthnet-v2": Source(
        dataset="bigearthnet",
        files=(
            # bigearth.net states no digests for the v2 archives here; None until they can be checked.
            RemoteFile(url="https://bigearth.net/downloads/BigEarthNet-S2.tar.zst", filename="BigEarthNet-S2.tar.zst"),
            RemoteFile(url="https://bigearth.net/downloads/BigEarthNet-S1.tar.zst", filename="BigEarthNet-S1.tar.zst"),
            RemoteFile(url="https://bigearth.net/downloads/Reference_Maps.tar.zst", filename="Reference_Maps.tar.zst"),
            RemoteFile(url="https://bigearth.net/downloads/metadata.parquet", filename="metadata.parquet"),
        ),
        homepage="https://bigearth.net",
        citation="Clasen et al. reBEN: Refined BigEarthNet Dataset for Remote Sensing Image Analysis. IGARSS 2025.",
        licence="CDLA-Permissive-1.0",
        manual=(
            "Unpacking .tar.zst needs `pip install zstandard`. Version 2 keeps its labels in metadata.parquet and "
            "nests patches by tile; s2lab.data.bigearthnet reads the version 1 layout."
        ),
    ),
    "oscd": Source(
        dataset="oscd",
        files=(),
        homepage="https://rcdaudt.github.io/oscd/",
        citation="Caye Daudt, Le Saux, Boulch, Gousseau. Urban change detection for multispectral earth observation "
        "using convolutional neural networks. IGARSS 2018.",
        licence="images: modified Copernicus Sentinel data; change labels: CC BY-NC-SA 4.0",
        manual=(
            "OSCD is served by IEEE DataPort (https://ieee-dataport.org/open-access/oscd-onera-satellite-change-"
            "detection), which requires a free IEEE account login, so it cannot be fetched automatically. Log in, "
            "download 'Onera Satellite Change Detection dataset - Images.zip', '... - Train Labels.zip' and "
            "'... - Test Labels.zip', unzip them into <root>/oscd (s2lab.data.download.extract does it safely) and "
            "set S2LAB_DATA_DIR=<root> (or S2LAB_OSCD_DIR=<root>/oscd)."
        ),
    ),
}


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    expected_size: int | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 30,
) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted download and verifying it before it is kept.

    Args:
        url: an ``http(s)://`` (or ``file://``) address.
        dest: the file to write. An existing ``dest`` is never overwritten: it is verified and returned.
        sha256: the expected SHA-256 hex digest, or None to skip that check.
        md5: the expected MD5 hex digest (what most publishers state), or None to skip that check.
        expected_size: the expected size in bytes, or None to trust the server's ``Content-Length``.
        progress: show a ``tqdm.auto`` progress bar.
        chunk_size: bytes read per network call.
        timeout: seconds to wait for the server before giving up.

    Returns:
        ``dest`` as a ``Path``, complete and verified.

    Raises:
        DownloadError: no network, an HTTP error, a download cut short (run again: it resumes from
            ``dest.part``), a size or digest that does not match (the ``.part`` file is deleted), or an
            existing ``dest`` that fails its digests.
    """
    dest = Path(dest)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1 byte, got {chunk_size}")
    wanted = {name: digest.lower() for name, digest in (("sha256", sha256), ("md5", md5)) if digest}
    if dest.exists():
        _verify(dest, wanted, expected_size, hashers=None, remove=False)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    hashers = _hash_file(part, wanted) if offset else {name: hashlib.new(name) for name in wanted}
    if expected_size is None or offset < expected_size:
        offset = _fetch_into(url, part, offset, hashers, progress, chunk_size, timeout, dest.name)
    _verify(part, wanted, expected_size, hashers=hashers, remove=True)
    os.replace(part, dest)
    return dest


def _fetch_into(
    url: str,
    part: Path,
    offset: int,
    hashers: dict[str, hashlib._Hash],
    progress: bool,
    chunk_size: int,
    timeout: float,
    label: str,
) -> int:
    """Append the bytes of ``url`` from ``offset`` on to ``part`` (restarting at 0 when the server ignores Range).

    Returns the size of ``part`` afterwards. Updates ``hashers`` in place.
    """
    headers = {"User-Agent": f"s2lab/{__version__} (+urllib)"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return offset  # the .part file already holds every byte; the digests decide whether it is good
        raise DownloadError(f"{url} answered HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
        raise DownloadError(_offline_message(url, part, error)) from error
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        if offset and not (status == 206 and content_range.startswith(f"bytes {offset}-")):
            offset = 0  # the server sent the whole file (no Range support): start again
            hashers.update({name: hashlib.new(name) for name in hashers})
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None else None
        total = offset + remaining if remaining is not None else None
        received = 0
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            try:
                while chunk := response.read(chunk_size):
                    out.write(chunk)
                    for hasher in hashers.values():
                        hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (TimeoutError, ConnectionError, http.client.HTTPException, urllib.error.URLError) as error:
                raise DownloadError(
                    f"download of {url} stopped after {offset + received} bytes ({error}); "
                    f"call again to resume from {part}"
                ) from error
    if remaining is not None and received < remaining:
        raise DownloadError(
            f"download of {url} stopped after {offset + received} of {total} bytes (connection closed); "
            f"call again to resume from {part}"
        )
    return offset + received


def _offline_message(url: str, part: Path, error: BaseException) -> str:
    """One line that says what failed and what to do without network."""
    reason = getattr(error, "reason", error)
    return (
        f"cannot reach {url} ({reason}); without network, download it by hand to {part.with_suffix('')} "
        "(or unpack the dataset anywhere) and point S2LAB_DATA_DIR at the folder that holds it"
    )


def _hash_file(path: Path, wanted: dict[str, str]) -> dict[str, hashlib._Hash]:
    """Hashers for each algorithm in ``wanted``, fed with the bytes of ``path``."""
    hashers = {name: hashlib.new(name) for name in wanted}
    if not hashers:
        return hashers
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            for hasher in hashers.values():
                hasher.update(block)
    return hashers


def _verify(
    path: Path,
    wanted: dict[str, str],
    expected_size: int | None,
    *,
    hashers: dict[str, hashlib._Hash] | None,
    remove: bool,
) -> None:
    """Raise DownloadError (deleting ``path`` when ``remove``) unless its size and digests match."""
    size = path.stat().st_size
    problems = []
    if expected_size is not None and size != expected_size:
        problems.append(f"size: expected {expected_size} bytes, found {size}")
    hashers = hashers if hashers is not None else _hash_file(path, wanted)
    found = {name: h.hexdigest() for name, h in hashers.items()}
    for name, want in wanted.items():
        if found[name] != want:
            problems.append(f"{name}: expected {want}, found {found[name]}")
    if not problems:
        return
    if remove:
        path.unlink()
        raise DownloadError(f"{path.name} failed verification and was deleted ({'; '.join(problems)})")
    raise DownloadError(
        f"existing file {path} failed verification ({'; '.join(problems)}); delete it to download again"
    )


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a ``.zip`` or ``.tar`` (``.gz``, ``.bz2``, ``.xz``, ``.zst``) archive into ``dest``.

    Every member is checked before it is written: absolute paths, ``..`` components, links that point outside
    ``dest`` and device files are refused. Tar archives are read in one streaming pass (a 66 GB archive is
    decompressed once).

    Args:
        archive: the archive file. ``.tar.zst`` needs the ``zstandard`` package.
        dest: the folder to unpack into (created when missing).

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        DownloadError: an unknown archive type, or a member that would land outside ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    name = archive.name.lower()
    dest.mkdir(parents=True, exist_ok=True)
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(archive, dest, info.filename)
            zf.extractall(dest)
        return dest
    if not name.endswith(_TAR_SUFFIXES):
        raise DownloadError(f"cannot unpack {archive}: expected one of .zip, {', '.join(_TAR_SUFFIXES)}")
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with _open_tar(archive) as tf:
        for member in tf:
            _check_member(archive, dest, member.name)
            if member.issym() or member.islnk():
                base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
                _check_member(archive, dest, str(base / member.linkname), what=f"link {member.name} ->")
            elif not (member.isfile() or member.isdir()):
                raise DownloadError(f"{archive} holds {member.name}, which is neither a file, a folder nor a link")
            tf.extract(member, dest, **safe)
    return dest


@contextmanager
def _open_tar(archive: Path) -> Iterator[tarfile.TarFile]:
    """A streaming TarFile on ``archive``; zstandard goes through the optional ``zstandard`` package."""
    if not archive.name.lower().endswith((".tar.zst", ".tzst")):
        with tarfile.open(archive, mode="r|*") as tf:
            yield tf
        return
    try:
        import zstandard
    except ImportError as error:
        raise DownloadError(f"unpacking {archive} needs the zstandard package: pip install zstandard") from error
    with (
        open(archive, "rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as reader,
        tarfile.open(fileobj=reader, mode="r|") as tf,
    ):
        yield tf


def _check_member(archive: Path, dest: Path, member: str, what: str = "member") -> None:
    """Raise DownloadError when ``member`` (a path inside ``archive``) would resolve outside ``dest``."""
    path = PurePosixPath(member.replace("\\", "/"))
    root = dest.resolve()
    target = (root / path).resolve()
    if path.is_absolute() or ".." in path.parts or (target != root and root not in target.parents):
        raise DownloadError(f"{archive} {what} {member!r} would land outside {dest}; refusing to unpack it")


def fetch(
    name: str, root: str | os.PathLike | None = None, *, progress: bool = True, keep_archives: bool = True
) -> Path:
    """Download and unpack dataset ``name`` of ``SOURCES`` into its data folder.

    Args:
        name: a key of ``SOURCES`` (``"eurosat"``, ``"eurosat-allbands"``, ``"bigearthnet-v1"``,
            ``"bigearthnet-v2"``, ``"oscd"``).
        root: the folder to fill; default: the dataset's existing folder (``settings.data_dir``), else
            ``settings.cache_dir() / <dataset>``.
        progress: show progress bars.
        keep_archives: keep the downloaded archives next to what they unpacked to.

    Returns:
        The folder that now holds the dataset (what ``settings.data_dir(<dataset>)`` will find).

    Raises:
        ValueError: an unknown ``name``.
        DownloadError: a dataset that only a manual download can get (the message says how), or any
            download failure.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)}")
    source = SOURCES[name]
    if not source.files:
        raise DownloadError(f"{name} cannot be downloaded automatically: {source.manual}")
    if root is None:
        root = settings.data_dir(source.dataset) or settings.cache_dir() / source.dataset
    root = Path(root)
    for remote in source.files:
        target = root / remote.filename
        if not _is_archive(remote.filename):
            download(remote.url, target, sha256=remote.sha256, md5=remote.md5, progress=progress)
            continue
        unpacked = root / f".{remote.filename}.unpacked"
        if unpacked.exists():
            continue
        download(remote.url, target, sha256=remote.sha256, md5=remote.md5, progress=progress)
        extract(target, root)
        unpacked.touch()
        if not keep_archives:
            target.unlink()
    return root


def _is_archive(filename: str) -> bool:
    """Whether ``filename`` is something ``extract`` unpacks."""
    return filename.lower().endswith((".zip", *_TAR_SUFFIXES))


__all__ = ["SOURCES", "DownloadError", "RemoteFile", "Source", "download", "extract", "fetch"]
