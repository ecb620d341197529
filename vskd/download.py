"""Putting a real dataset's raw files on disk: from a local copy, or downloaded over HTTP.

Standard library only (urllib, hashlib, zipfile, tarfile). A download

* streams to ``NAME.part`` beside its destination with a progress bar, and resumes an
  interrupted transfer with an HTTP ``Range`` request (within one run, after a cut
  connection, and across runs, from the ``.part`` file left behind);
* is checked against its size and SHA-256 where params.yaml knows them: a mismatch deletes
  the file and names the expected and actual values;
* is renamed to its final name only once complete and verified.

An archive is integrity-checked in full (every zip member's CRC, every tar member read to the
end) before anything is extracted; a truncated archive is deleted with an error saying so.
Extraction goes to a hidden temporary folder whose contents are moved into place only when
the whole archive has been extracted. The download stage writes all of this inside its own
temporary output folder, renamed onto ``data/DATASET/raw`` at the very end: on any failure
nothing is left that looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from tqdm import tqdm

CHUNK = 1 << 20
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


class DownloadError(ValueError):
    """A transfer that failed or gave the wrong bytes; the message says what to do."""


class ArchiveError(ValueError):
    """A truncated, corrupt or unsafe archive."""


class SourceError(FileNotFoundError):
    """The dataset's files are not available: no usable local source and nothing to download."""


class _Retryable(Exception):
    """A transient failure (cut connection, timeout, 5xx): resume with a Range request."""


def _bar(total: int | None, desc: str, initial: int = 0):
    # Same rule as vskd.progress.progress (quiet in piped logs), without importing torch.
    disable = not (sys.stderr.isatty() or os.environ.get("VSKD_PROGRESS") == "1")
    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=disable, dynamic_ncols=True, leave=False)


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: str | Path, *, size: int | None = None, sha256: str | None = None,
                label: str | None = None, remove: bool = True) -> None:
    """Check a file's size and SHA-256 (each only if given); a mismatch deletes it (``remove``)."""
    path = Path(path)
    label = label or str(path)
    actual = path.stat().st_size
    if size is not None and actual != size:
        if remove:
            path.unlink()
        raise DownloadError(
            f"{label}: {actual} bytes, expected {size}. The file is truncated or not the one "
            f"expected{'; it was deleted' if remove else ''}. Download it again."
        )
    if sha256:
        got = sha256_of(path)
        if got != sha256.lower():
            if remove:
                path.unlink()
            raise DownloadError(
                f"{label}: SHA-256 mismatch: expected {sha256.lower()}, got {got}"
                f"{'; the file was deleted' if remove else ''}. Download it again; if the host "
                "has changed the file on purpose, check it and update the sha256 in params.yaml."
            )


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """'bytes 100-999/1000' -> (100, 1000); the total may be '*'."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = span.partition("-")[0]
    return (int(start) if start.isdigit() else None), (int(total) if total.isdigit() else None)


def _transfer(url: str, part: Path, expected: int | None, timeout: float, chunk_size: int) -> bool:
    """One request, appended to ``part``. True when the file is whole, False when cut short."""
    have = part.stat().st_size if part.exists() else 0
    if expected is not None and have > expected:
        part.unlink()
        have = 0
    if expected is not None and have == expected and have > 0:
        return True
    headers = {"User-Agent": "vskd-download"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is whole
            return True
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retryable(f"HTTP {exc.code} {exc.reason}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. Check the URL under "
                            "'download.urls' in params.yaml, or download the file yourself "
                            "and set the dataset's 'source' to it.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Retryable(str(getattr(exc, "reason", exc))) from None
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        start, total = _content_range(response.headers.get("Content-Range"))
        if response.status == 206 and start != have:  # not the bytes asked for: start over
            part.unlink(missing_ok=True)
            raise _Retryable(f"the server sent bytes from {start}, not from {have}")
        if have and response.status == 206:
            mode = "ab"
        else:  # 200: the server ignored the Range header (or never got one): start over
            have, mode, total = 0, "wb", length
        if expected is not None and total is not None and total != expected:
            part.unlink(missing_ok=True)  # a partial copy of some other file is of no use
            raise DownloadError(f"{url}: the server offers {total} bytes, params.yaml expects "
                                f"{expected}. The file on the host has changed or the size is wrong.")
        with open(part, mode) as out, _bar(total, Path(part.name[:-5]).name, initial=have) as bar:
            while True:
                try:
                    block = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
                    raise _Retryable(f"connection lost ({type(exc).__name__})") from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    return total is None or part.stat().st_size >= total


def fetch(url: str, dest: str | Path, *, sha256: str | None = None, size: int | None = None,
          retries: int = 5, timeout: float = 60.0, backoff: float = 2.0,
          chunk_size: int = CHUNK) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename. Returns ``dest``.

    A cut connection is resumed up to ``retries`` times in this call; past that the ``.part``
    file is kept and the error says to run again, which resumes from it.
    """
    dest = Path(dest)
    if dest.is_file():
        try:  # kept from an earlier run: reuse it if it still verifies
            verify_file(dest, size=size, sha256=sha256)
            return dest
        except DownloadError:
            pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    print(f"download: {url} -> {dest}", file=sys.stderr)
    failures = 0
    while True:
        try:
            if _transfer(url, part, size, timeout, chunk_size):
                break
            raise _Retryable(f"connection closed after {part.stat().st_size} bytes")
        except _Retryable as exc:
            failures += 1
            kept = part.stat().st_size if part.exists() else 0
            if failures > retries:
                raise DownloadError(
                    f"{url}: transfer failed {failures} times (last: {exc}). {kept} bytes are kept "
                    f"in {part}; run the stage again to resume from there."
                ) from None
            print(f"download: {exc}; resuming from byte {kept} ({failures}/{retries})", file=sys.stderr)
            time.sleep(backoff * failures)
    verify_file(part, size=size, sha256=sha256, label=url)
    os.replace(part, dest)
    return dest


# --- archives ---------------------------------------------------------------------------
def is_archive(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def _check_member_name(archive: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise ArchiveError(f"{archive}: member {name!r} would be written outside the extraction "
                           "folder; refusing to extract this archive.")


def verify_archive(path: str | Path) -> int:
    """Read the whole archive and check it; returns its number of members.

    zip: the central directory (lost when the file is truncated) and every member's CRC.
    tar: every member's data is read to its end (a truncated .tar.gz fails here).
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                members = zf.infolist()
                for info in members:
                    _check_member_name(path, info.filename)
                bad = zf.testzip()
            if bad is not None:
                raise ArchiveError(f"{path}: member {bad} fails its CRC check: the archive is "
                                   "corrupt. Delete it and download it again.")
            count = len(members)
        elif name.endswith(ARCHIVE_SUFFIXES):
            count = 0
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    _check_member_name(path, member.name)
                    count += 1
                    if member.isfile():
                        stream = tf.extractfile(member)
                        while stream.read(CHUNK):
                            pass
        else:
            raise ArchiveError(f"{path}: not an archive this project reads "
                               f"({', '.join(ARCHIVE_SUFFIXES)})")
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{path}: truncated or corrupt archive ({exc}). Delete it and "
                           "download it again.") from None
    if count == 0:
        raise ArchiveError(f"{path}: the archive is empty")
    return count


def _merge(src: Path, dst: Path) -> None:
    if dst.is_dir() and src.is_dir() and not dst.is_symlink():
        for child in src.iterdir():
            _merge(child, dst / child.name)
        src.rmdir()
    else:
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)


def extract_archive(archive: str | Path, into: str | Path) -> list[str]:
    """Extract ``archive`` into the folder ``into`` (merging with what is there).

    Members go to a hidden temporary folder first and are moved into ``into`` only after the
    whole archive extracted; on failure the temporary folder is removed. Returns the
    top-level names added.
    """
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    tmp = into / f".extract-{archive.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member_name(archive, info.filename)
                zf.extractall(tmp)
        else:
            with tarfile.open(archive, "r:*") as tf:
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tf.extractall(tmp, filter="data")
                else:  # member names were checked by verify_archive / _check_member_name
                    for member in tf.getmembers():
                        _check_member_name(archive, member.name)
                    tf.extractall(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            _merge(tmp / name, into / name)
        return names
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{archive}: cannot be extracted ({exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- a dataset's raw folder ---------------------------------------------------------------
@dataclass(frozen=True)
class RawSpec:
    """What the download stage needs to know about one real dataset's distribution."""

    dataset: str
    page: str                   # where a person gets the files
    instructions: str           # printed when there is neither a source nor a URL
    check: Callable[[Path], list[str]] | None = None  # missing components of a staged copy


def url_filename(url: str) -> str:
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name:
        raise DownloadError(f"{url}: the URL names no file")
    return name


def _known(download: dict, key: str, name: str):
    return (download.get(key) or {}).get(name) or None


def stage_local_source(source: Path, out_dir: Path, download: dict) -> dict:
    """A local archive: check and extract it. A local folder: extract the archives at its top
    level (checked against the sizes and SHA-256 in ``download`` where known) and copy
    everything else as it is."""
    archives = copied = 0
    entries = [source] if source.is_file() else sorted(source.iterdir())
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file() and is_archive(entry):
            verify_file(entry, size=_known(download, "sizes", entry.name),
                        sha256=_known(download, "sha256", entry.name), remove=False)
            verify_archive(entry)
            extract_archive(entry, out_dir)
            archives += 1
        elif entry is source:
            raise SourceError(f"{source}: neither a folder nor an archive "
                              f"({', '.join(ARCHIVE_SUFFIXES)})")
        elif entry.is_dir():
            shutil.copytree(entry, out_dir / entry.name, dirs_exist_ok=True)
            copied += 1
        else:
            shutil.copy2(entry, out_dir / entry.name)
            copied += 1
    return {"source": str(source), "archives": archives, "copied": copied}


def download_urls(download: dict, out_dir: Path, cache_dir: Path, **fetch_kw) -> dict:
    """Fetch every URL in ``download.urls`` into ``cache_dir``, check it, extract it."""
    urls = download.get("urls") or []
    for url in urls:
        name = url_filename(url)
        archive = fetch(url, cache_dir / name, sha256=_known(download, "sha256", name),
                        size=_known(download, "sizes", name), **fetch_kw)
        if is_archive(archive):
            try:
                verify_archive(archive)
            except ArchiveError as exc:
                archive.unlink()
                raise ArchiveError(f"{exc.args[0]} (downloaded from {url}; deleted, run the "
                                   "stage again to download it afresh)") from None
            extract_archive(archive, out_dir)
        else:
            shutil.copy2(archive, out_dir / name)
    return {"downloaded": len(urls), "archives_kept_in": str(cache_dir)}


def prepare_raw(block: dict, out_dir: str | Path, spec: RawSpec, cache_dir: str | Path | None = None,
                **fetch_kw) -> dict:
    """The download stage for a real dataset: ``source`` if set, else ``download.urls``.

    Downloaded archives are kept in ``cache_dir`` (default: ``downloads/`` beside
    ``out_dir``) so an interrupted or repeated run does not fetch them again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    download = block.get("download") or {}
    source = str(block.get("source") or "").strip()
    if source:
        path = Path(source).expanduser()
        if not path.exists():
            raise SourceError(f"{spec.dataset}.source = {source}: no such file or folder. "
                              + spec.instructions)
        summary = stage_local_source(path, out_dir, download)
    elif download.get("urls"):
        cache = Path(cache_dir) if cache_dir is not None else out_dir.parent / "downloads"
        summary = download_urls(download, out_dir, cache, **fetch_kw)
    else:
        raise SourceError(f"{spec.dataset}: no local copy ('{spec.dataset}.source' is empty) and "
                          f"nothing to download. {spec.instructions}")
    if spec.check is not None:
        missing = spec.check(out_dir)
        if missing:
            where = source or "the downloaded archives"
            raise SourceError(f"{spec.dataset}: {where} lacks " + "; ".join(missing) + ". "
                              + spec.instructions)
    return summary
