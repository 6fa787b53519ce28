"""data.download against a real HTTP server on 127.0.0.1 serving real files (the BigEarthNet example archives)."""

import hashlib
import importlib.util
import io
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s2lab import settings
from s2lab.data.bigearthnet import bigearthnet_patches, load_bigearthnet_patch
from s2lab.data.download import (
    SOURCES,
    DownloadError,
    RemoteFile,
    Source,
    download,
    extract,
    fetch,
)


def archive_path(name: str) -> Path:
    """An archive of real BigEarthNet patches inside the installed bigearthnet-common package."""
    folder = Path(next(iter(importlib.util.find_spec("bigearthnet_common").submodule_search_locations)))
    return folder / name


HAVE_BEN = importlib.util.find_spec("bigearthnet_common") is not None
PAYLOAD = archive_path("BigEarthNet-S1-Example.tar.bz2").read_bytes() if HAVE_BEN else b""  # 605 kB of real data
pytestmark = pytest.mark.skipif(not HAVE_BEN, reason="bigearthnet-common ships the served files")


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 with switchable Range support and a one-time connection drop."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # path -> body
        self.ranges = True  # answer Range requests with 206
        self.drop_after: int | None = None  # send this many bytes of the next answer, then close
        self.log: list[dict] = []  # one entry per request: path, range header, status, bytes sent
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                body = server.files.get(self.path)
                entry = {"path": self.path, "range": self.headers.get("Range"), "status": 404, "sent": 0}
                server.log.append(entry)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if server.ranges and match:
                    start = int(match.group(1))
                    if start >= len(body):
                        entry["status"] = 416
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    entry["status"] = 206
                else:
                    self.send_response(200)
                    entry["status"] = 200
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                part = body[start:]
                drop = server.drop_after is not None
                if drop:
                    part, server.drop_after = part[: server.drop_after], None
                entry["sent"] = len(part)  # logged before writing: the client may check as soon as it has read
                self.wfile.write(part)
                if drop:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_WR)
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    s = LocalServer()
    s.files["/ben-s1.tar.bz2"] = PAYLOAD
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_good_download_is_verified_and_complete(server, tmp_path):
    dest = tmp_path / "sub" / "ben-s1.tar.bz2"
    out = download(
        server.url("/ben-s1.tar.bz2"),
        dest,
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        md5=hashlib.md5(PAYLOAD).hexdigest(),
        expected_size=len(PAYLOAD),
        chunk_size=64 << 10,
    )
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "ben-s1.tar.bz2.part").exists()
    assert [e["status"] for e in server.log] == [200] and server.log[0]["range"] is None
    with tarfile.open(dest) as tf:  # real bytes: the archive opens
        assert any(name.endswith("_VV.tif") for name in tf.getnames())


def test_corrupt_download_is_refused_and_removed(server, tmp_path):
    corrupt = bytearray(PAYLOAD)
    corrupt[len(corrupt) // 2] ^= 0xFF
    server.files["/ben-s1.tar.bz2"] = bytes(corrupt)
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    dest = tmp_path / "ben-s1.tar.bz2"
    with pytest.raises(DownloadError) as info:
        download(server.url("/ben-s1.tar.bz2"), dest, sha256=expected, progress=False)
    message = str(info.value)
    assert expected in message and hashlib.sha256(corrupt).hexdigest() in message
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    dest = tmp_path / "ben-s1.tar.bz2"
    part = tmp_path / "ben-s1.tar.bz2.part"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    server.drop_after = len(PAYLOAD) // 2
    with pytest.raises(DownloadError, match="resume"):
        download(server.url("/ben-s1.tar.bz2"), dest, sha256=sha, chunk_size=32 << 10, progress=False)
    assert not dest.exists()
    have = part.stat().st_size
    assert 0 < have <= len(PAYLOAD) // 2
    assert part.read_bytes() == PAYLOAD[:have]
    download(server.url("/ben-s1.tar.bz2"), dest, sha256=sha, chunk_size=32 << 10)
    second = server.log[-1]
    assert second["range"] == f"bytes={have}-" and second["status"] == 206
    assert second["sent"] == len(PAYLOAD) - have  # only the rest crossed the wire
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    dest = tmp_path / "ben-s1.tar.bz2"
    part = tmp_path / "ben-s1.tar.bz2.part"
    part.write_bytes(b"not the start of the archive" * 100)  # a stale .part that must not survive
    server.ranges = False
    download(server.url("/ben-s1.tar.bz2"), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(), progress=False)
    assert server.log[-1]["range"] == f"bytes={len(b'not the start of the archive') * 100}-"
    assert server.log[-1]["status"] == 200 and server.log[-1]["sent"] == len(PAYLOAD)
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_complete_part_file_is_verified_without_downloading_again(server, tmp_path):
    dest = tmp_path / "ben-s1.tar.bz2"
    (tmp_path / "ben-s1.tar.bz2.part").write_bytes(PAYLOAD)
    download(server.url("/ben-s1.tar.bz2"), dest, md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert server.log[-1]["status"] == 416 and server.log[-1]["sent"] == 0
    assert dest.read_bytes() == PAYLOAD


def test_no_network_names_the_url_and_the_way_out(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/EuroSAT_MS.zip"
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "EuroSAT_MS.zip", timeout=5, progress=False)
    message = str(info.value)
    assert url in message and "S2LAB_DATA_DIR" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_http_errors_are_download_errors(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(server.url("/missing.zip"), tmp_path / "missing.zip", progress=False)


def test_existing_file_is_verified_never_overwritten(server, tmp_path):
    dest = tmp_path / "ben-s1.tar.bz2"
    dest.write_bytes(PAYLOAD)
    assert download(server.url("/ben-s1.tar.bz2"), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest()) == dest
    assert server.log == []  # nothing was asked of the server
    dest.write_bytes(PAYLOAD[:-1])
    with pytest.raises(DownloadError, match="delete it"):
        download(server.url("/ben-s1.tar.bz2"), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD[:-1] and server.log == []


def test_extract_zip_and_tar_archives(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("nested/folder/ben-s1.tar.bz2", PAYLOAD)
    assert extract(tmp_path / "a.zip", tmp_path / "z") == tmp_path / "z"
    assert (tmp_path / "z" / "nested" / "folder" / "ben-s1.tar.bz2").read_bytes() == PAYLOAD
    extract(archive_path("BigEarthNet-S1-Example.tar.bz2"), tmp_path / "t")
    assert len(list((tmp_path / "t" / "BigEarthNet-S1-Example").glob("*/*_VH.tif"))) == 6
    with pytest.raises(DownloadError, match="expected one of .zip"):
        extract(tmp_path / "a.rar", tmp_path / "r")


def tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        good = tarfile.TarInfo("ok/readme.txt")
        good.size = 2
        tf.addfile(good, io.BytesIO(b"ok"))
        tf.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "member",
    [
        ("../evil.txt", tarfile.REGTYPE, ""),
        ("/tmp/evil.txt", tarfile.REGTYPE, ""),
        ("ok/link", tarfile.SYMTYPE, "../../outside"),
        ("ok/hard", tarfile.LNKTYPE, "../../etc/passwd"),
        ("ok/dev", tarfile.CHRTYPE, ""),
    ],
)
def test_extract_refuses_members_outside_the_folder(tmp_path, member):
    name, kind, link = member
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 4 if kind == tarfile.REGTYPE else 0
    archive = tar_with(tmp_path / "bad.tar.gz", info, b"evil")
    with pytest.raises(DownloadError, match="outside|neither"):
        extract(archive, tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "dest" / "ok" / "link").exists()


def test_extract_refuses_zip_traversal(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("fine.txt", b"fine")
        zf.writestr("../evil.txt", b"evil")
    with pytest.raises(DownloadError, match="outside"):
        extract(tmp_path / "bad.zip", tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "dest" / "fine.txt").exists()


def test_extract_tar_zst(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    with (
        tarfile.open(archive_path("BigEarthNet-S1-Example.tar.bz2")) as raw,
        tarfile.open(tmp_path / "s1.tar", mode="w") as tf,
    ):
        for member in raw:
            tf.addfile(member, raw.extractfile(member) if member.isfile() else None)
    (tmp_path / "s1.tar.zst").write_bytes(zstandard.ZstdCompressor().compress((tmp_path / "s1.tar").read_bytes()))
    extract(tmp_path / "s1.tar.zst", tmp_path / "out")
    assert len(list((tmp_path / "out" / "BigEarthNet-S1-Example").glob("*/*_VV.tif"))) == 6


def test_fetch_downloads_and_unpacks_into_the_data_folder(server, tmp_path, monkeypatch):
    s2 = archive_path("BigEarthNet-S2-Example.tar.bz2").read_bytes()
    server.files["/ben-s2.tar.bz2"] = s2
    source = Source(
        dataset="bigearthnet",
        files=(
            RemoteFile(url=server.url("/ben-s2.tar.bz2"), filename="ben-s2.tar.bz2", md5=hashlib.md5(s2).hexdigest()),
            RemoteFile(
                url=server.url("/ben-s1.tar.bz2"),
                filename="ben-s1.tar.bz2",
                sha256=hashlib.sha256(PAYLOAD).hexdigest(),
            ),
        ),
        homepage="http://127.0.0.1",
        citation="test",
        licence="CDLA-Permissive-1.0",
    )
    monkeypatch.setitem(SOURCES, "local-bigearthnet", source)
    monkeypatch.setenv("S2LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("S2LAB_BIGEARTHNET_DIR", raising=False)
    monkeypatch.setenv("S2LAB_DATA_DIR", str(tmp_path / "nothing-here"))
    root = fetch("local-bigearthnet", progress=False, keep_archives=False)
    assert root == tmp_path / "cache" / "bigearthnet" == settings.data_dir("bigearthnet")
    assert not (root / "ben-s2.tar.bz2").exists()  # unpacked, then removed
    names = bigearthnet_patches()
    assert len(names) == 6
    patch = load_bigearthnet_patch(names[0])
    assert patch.s2.shape == (10, 120, 120) and patch.s1.shape == (2, 120, 120)
    requests = len(server.log)
    assert fetch("local-bigearthnet", progress=False) == root
    assert len(server.log) == requests  # already unpacked: nothing fetched again


def test_fetch_explains_manual_datasets_and_unknown_names():
    with pytest.raises(DownloadError, match="IEEE DataPort.*login"):
        fetch("oscd")
    with pytest.raises(ValueError, match="eurosat"):
        fetch("imagenet")


def test_sources_are_well_formed():
    assert {"eurosat", "oscd", "bigearthnet-v1", "bigearthnet-v2"} <= set(SOURCES)
    for name, source in SOURCES.items():
        assert source.dataset in settings.DATASETS, name
        assert source.files or source.manual, name
        for remote in source.files:
            assert remote.url.startswith("https://"), remote.url
            assert remote.md5 is None or re.fullmatch(r"[0-9a-f]{32}", remote.md5), remote
            assert remote.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", remote.sha256), remote
            assert remote.filename.endswith((".zip", ".tar.gz", ".tar.zst", ".parquet")), remote
