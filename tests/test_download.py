"""The download mechanics against a local HTTP server (127.0.0.1, http.server in a thread)."""

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from vskd.datasets import get_adapter
from vskd.datasets import utd_mhad
from vskd.download import (ArchiveError, DownloadError, SourceError, extract_archive, fetch,
                           prepare_raw, verify_archive)
from vskd.h5store import atomic_path


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-``; cuts the connection after the
    number of body bytes popped from ``server.cuts[path]`` (one entry per request)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        rng = self.headers.get("Range")
        server.requests.append((self.path, rng))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not server.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cuts = server.cuts.get(self.path) or []
        if cuts:
            cut = cuts.pop(0)
            server.served += cut  # counted before sending: the client may finish first
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # the connection dies mid-file
            return
        server.served += len(body)
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.cuts, httpd.requests, httpd.served, httpd.ignore_range = {}, {}, [], 0, False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def payload(n=300_000, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_download_succeeds_and_verifies(server, tmp_path):
    data = payload()
    server.files["/Inertial.zip"] = data
    dest = fetch(f"{server.url}/Inertial.zip", tmp_path / "Inertial.zip", sha256=sha(data), size=len(data))
    assert dest.read_bytes() == data
    assert leftovers(tmp_path) == ["Inertial.zip"]                  # no .part left
    assert server.requests == [("/Inertial.zip", None)]
    # a verified copy is reused, not fetched again
    fetch(f"{server.url}/Inertial.zip", dest, sha256=sha(data), size=len(data))
    assert len(server.requests) == 1


def test_connection_cut_mid_file_is_resumed_with_range(server, tmp_path):
    data = payload()
    server.files["/RGB.zip"] = data
    server.cuts["/RGB.zip"] = [100_000, 50_000]                   # two cuts, then whole
    dest = fetch(f"{server.url}/RGB.zip", tmp_path / "RGB.zip", sha256=sha(data), backoff=0)
    assert dest.read_bytes() == data
    assert [r for _, r in server.requests] == [None, "bytes=100000-", "bytes=150000-"]
    assert server.served == len(data)                             # not one byte sent twice
    assert leftovers(tmp_path) == ["RGB.zip"]


def test_interrupted_run_keeps_part_and_next_run_resumes(server, tmp_path):
    data = payload()
    server.files["/RGB.zip"] = data
    server.cuts["/RGB.zip"] = [120_000]
    with pytest.raises(DownloadError, match="120000 bytes are kept in .*RGB.zip.part; run the stage again"):
        fetch(f"{server.url}/RGB.zip", tmp_path / "RGB.zip", size=len(data), retries=0)
    assert leftovers(tmp_path) == ["RGB.zip.part"]                 # nothing that looks complete
    assert (tmp_path / "RGB.zip.part").stat().st_size == 120_000
    fetch(f"{server.url}/RGB.zip", tmp_path / "RGB.zip", size=len(data), sha256=sha(data))
    assert (tmp_path / "RGB.zip").read_bytes() == data
    assert server.requests[-1] == ("/RGB.zip", "bytes=120000-")


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    data = payload()
    server.files["/a.bin"] = data
    server.cuts["/a.bin"] = [70_000]
    server.ignore_range = True
    fetch(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=sha(data), backoff=0)
    assert (tmp_path / "a.bin").read_bytes() == data               # not 70000 bytes twice


def test_checksum_mismatch_is_clear_and_leaves_nothing(server, tmp_path):
    data = payload()
    server.files["/RGB.zip"] = data
    wrong = "0" * 64
    with pytest.raises(DownloadError) as err:
        fetch(f"{server.url}/RGB.zip", tmp_path / "RGB.zip", sha256=wrong)
    message = str(err.value)
    assert f"SHA-256 mismatch: expected {wrong}, got {sha(data)}" in message
    assert "deleted" in message
    assert leftovers(tmp_path) == []


def test_size_announced_by_server_must_match(server, tmp_path):
    server.files["/RGB.zip"] = payload(1000)
    with pytest.raises(DownloadError, match="server offers 1000 bytes, params.yaml expects 1106885499"):
        fetch(f"{server.url}/RGB.zip", tmp_path / "RGB.zip", size=1_106_885_499)
    assert leftovers(tmp_path) == []


def test_missing_file_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{server.url}/nope.zip", tmp_path / "nope.zip", backoff=0)
    assert len(server.requests) == 1 and leftovers(tmp_path) == []


# --- archives -----------------------------------------------------------------------------
def zip_bytes(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def targz_bytes(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.mark.parametrize("name, make", [("RGB.zip", zip_bytes), ("acc_phone_clip.tar.gz", targz_bytes)])
def test_truncated_archive_is_detected(tmp_path, name, make):
    data = make({"top/a.bin": payload(200_000, 1), "top/b.bin": payload(200_000, 2)})
    whole = tmp_path / name
    whole.write_bytes(data)
    assert verify_archive(whole) == 2
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ArchiveError, match="truncated or corrupt archive"):
        verify_archive(cut)


def test_corrupt_zip_member_fails_its_crc(tmp_path):
    content = b"x" * 5000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("Inertial/a1_s1_t1_inertial.mat", content)
    data = bytearray(buf.getvalue())
    data[data.index(content) + 100] ^= 0xFF                        # flip one stored byte
    path = tmp_path / "Inertial.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="a1_s1_t1_inertial.mat fails its CRC check"):
        verify_archive(path)


def test_member_escaping_the_folder_is_refused(tmp_path):
    path = tmp_path / "evil.zip"
    path.write_bytes(zip_bytes({"../outside.txt": b"x"}))
    with pytest.raises(ArchiveError, match="outside the extraction folder"):
        verify_archive(path)
    with pytest.raises(ArchiveError, match="outside the extraction folder"):
        extract_archive(path, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()


def test_extraction_merges_archives_and_leaves_no_temporary(tmp_path):
    (tmp_path / "Inertial.zip").write_bytes(zip_bytes({"Inertial/a1_s1_t1_inertial.mat": b"1"}))
    (tmp_path / "RGB.zip").write_bytes(zip_bytes({"RGB/a1_s1_t1_color.avi": b"2"}))
    out = tmp_path / "raw"
    assert extract_archive(tmp_path / "Inertial.zip", out) == ["Inertial"]
    assert extract_archive(tmp_path / "RGB.zip", out) == ["RGB"]
    assert leftovers(out) == ["Inertial", "RGB", "a1_s1_t1_color.avi", "a1_s1_t1_inertial.mat"]


# --- the download stage of a real dataset -------------------------------------------------
def utd_archives(root):
    """Inertial.zip and RGB.zip of a 2-recording UTD-MHAD tree in the official layout."""
    import scipy.io

    from tests.test_frames import write_video

    inertial, rgb = io.BytesIO(), io.BytesIO()
    with zipfile.ZipFile(inertial, "w") as zi, zipfile.ZipFile(rgb, "w") as zr:
        for a, s, t in ((1, 1, 1), (22, 2, 3)):
            mat = io.BytesIO()
            scipy.io.savemat(mat, {"d_iner": np.full((30, 6), float(a))})
            zi.writestr(f"Inertial/a{a}_s{s}_t{t}_inertial.mat", mat.getvalue())
            video = root / f"a{a}_s{s}_t{t}_color.avi"
            write_video(video, [(255, 0, 0)] * 8, 32, 24)
            zr.writestr(f"RGB/a{a}_s{s}_t{t}_color.avi", video.read_bytes())
            video.unlink()
    return inertial.getvalue(), rgb.getvalue()


def utd_block(server, sums):
    return {"source": "", "download": {"urls": [f"{server.url}/UTD-MAD/Inertial.zip",
                                                f"{server.url}/UTD-MAD/RGB.zip"],
                                       "sha256": sums, "sizes": {}},
            "video": {}, "sensor": {}}


def test_utd_download_stage_from_http(server, tmp_path, monkeypatch):
    monkeypatch.setattr("vskd.download.time.sleep", lambda seconds: None)  # no back-off wait
    inertial, rgb = utd_archives(tmp_path)
    server.files.update({"/UTD-MAD/Inertial.zip": inertial, "/UTD-MAD/RGB.zip": rgb})
    server.cuts["/UTD-MAD/RGB.zip"] = [len(rgb) // 2]
    block = utd_block(server, {"Inertial.zip": sha(inertial), "RGB.zip": sha(rgb)})
    out = tmp_path / "data" / "utd_mhad" / "raw"
    with atomic_path(out) as tmp:
        summary = get_adapter("utd_mhad").prepare_raw(block, tmp)
    assert summary["downloaded"] == 2
    samples = utd_mhad.scan(out, num_actions=27)
    assert [s.id for s in samples] == ["a1_s1_t1", "a22_s2_t3"]
    assert samples[1].sensor == out / "Inertial" / "a22_s2_t3_inertial.mat"
    # archives are kept for later runs, verified, with no .part
    assert leftovers(tmp_path / "data" / "utd_mhad" / "downloads") == ["Inertial.zip", "RGB.zip"]


def test_host_truncating_an_archive_silently_leaves_nothing(server, tmp_path):
    inertial, rgb = utd_archives(tmp_path)
    # the host sends a shorter file with a matching Content-Length: no transfer error at all
    server.files.update({"/UTD-MAD/Inertial.zip": inertial, "/UTD-MAD/RGB.zip": rgb[: len(rgb) // 2]})
    block = utd_block(server, {})
    out = tmp_path / "data" / "utd_mhad" / "raw"
    with pytest.raises(ArchiveError, match="RGB.zip: truncated or corrupt archive.*deleted, run the stage again"):
        with atomic_path(out) as tmp:
            get_adapter("utd_mhad").prepare_raw(block, tmp)
    # the good Inertial.zip stays in the download cache; the bad RGB.zip and the raw folder do not
    assert leftovers(tmp_path / "data" / "utd_mhad") == ["Inertial.zip", "downloads"]
    assert not out.exists()


def test_checksum_mismatch_in_the_stage_leaves_no_raw_folder(server, tmp_path):
    inertial, rgb = utd_archives(tmp_path)
    server.files.update({"/UTD-MAD/Inertial.zip": inertial, "/UTD-MAD/RGB.zip": rgb})
    block = utd_block(server, {"RGB.zip": "f" * 64})
    out = tmp_path / "data" / "utd_mhad" / "raw"
    with pytest.raises(DownloadError, match="RGB.zip: SHA-256 mismatch"):
        with atomic_path(out) as tmp:
            get_adapter("utd_mhad").prepare_raw(block, tmp)
    assert not out.exists()
    assert not (tmp_path / "data" / "utd_mhad" / "downloads" / "RGB.zip").exists()
    assert not (tmp_path / "data" / "utd_mhad" / "downloads" / "RGB.zip.part").exists()
    assert [p.name for p in (tmp_path / "data" / "utd_mhad").iterdir()] == ["downloads"]


def test_no_source_and_no_urls_says_where_to_get_the_files(tmp_path):
    block = {"source": "", "download": {"urls": []}, "video": {}, "sensor": {}}
    with pytest.raises(SourceError, match="request form.*berkeley_mhad.source"):
        get_adapter("berkeley_mhad").prepare_raw(block, tmp_path / "raw")
    with pytest.raises(SourceError, match="personal.utdallas.edu"):
        get_adapter("utd_mhad").prepare_raw(block, tmp_path / "raw2")


def test_mmact_without_source_names_what_is_missing(tmp_path):
    block = {"source": "", "download": {}, "video": {"camera": 1}, "sensor": {"device": "phone"}}
    with pytest.raises(SourceError) as err:
        get_adapter("mmact").prepare_raw(block, tmp_path / "raw")
    message = str(err.value)
    for expected in ("licensed", "mmact19.github.io", "acc_phone_clip.tar.gz", "acc_watch_clip.tar.gz",
                     "trimmed RGB videos", "subject{X}/cam{C}/scene{Y}/session{Z}/{action}.mp4",
                     "mmact.source"):
        assert expected in message
    # a source that does not exist is named too
    block["source"] = str(tmp_path / "MMAct")
    with pytest.raises(SourceError, match=r"mmact.source = .*MMAct: no such file or folder"):
        get_adapter("mmact").prepare_raw(block, tmp_path / "raw3")


def test_local_archive_with_known_checksum_is_verified(tmp_path):
    inertial, rgb = utd_archives(tmp_path)
    src = tmp_path / "manual"
    src.mkdir()
    (src / "Inertial.zip").write_bytes(inertial)
    (src / "RGB.zip").write_bytes(rgb)
    block = {"source": str(src), "download": {"sha256": {"RGB.zip": "0" * 64}}}
    with pytest.raises(DownloadError, match="RGB.zip: SHA-256 mismatch"):
        prepare_raw(block, tmp_path / "raw", utd_mhad.SPEC)
    assert (src / "RGB.zip").read_bytes() == rgb                   # a user's own file is never deleted
    block["download"]["sha256"]["RGB.zip"] = sha(rgb)
    summary = prepare_raw(block, tmp_path / "raw2", utd_mhad.SPEC)
    assert summary == {"source": str(src), "archives": 2, "copied": 0}
    assert len(utd_mhad.scan(tmp_path / "raw2")) == 2
