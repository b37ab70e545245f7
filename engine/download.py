"""Downloading one weight file: streamed to ``NAME.part``, resumable, cancellable, verified.

Standard library only (``urllib``), so proxies come from the usual environment variables
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), which urllib's default opener reads. The file
appears under its final name only once it is complete and verified (``os.replace``), so a
crash, a cancel or a lost connection never leaves a half file where the app looks for weights;
the ``.part`` file stays and the next download continues from where it stopped (HTTP Range).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from engine.errors import MaskScopeError

CHUNK_BYTES = 64 * 1024
REPORT_INTERVAL_S = 0.1  # progress callbacks at most this often (plus the first and the last)
USER_AGENT = "MaskScope-model-download/1"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class DownloadError(MaskScopeError):
    """A download failed; the message says why and what to do."""


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept for a later resume."""


class HashMismatch(DownloadError):
    """The downloaded file is not the published one; it has been deleted."""


@dataclass(frozen=True)
class Progress:
    done: int  # bytes on disk, including a resumed part
    total: int | None  # None when the server does not say
    rate: float  # bytes per second during this session
    eta: float | None  # seconds left; None when unknown

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressCallback = Callable[[Progress], None]
CancelFlag = threading.Event | Callable[[], bool] | None


def part_path(dest: Path) -> Path:
    """Where the unfinished download of ``dest`` is kept."""
    return dest.with_name(dest.name + ".part")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_cancelled(cancel: CancelFlag) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


class _Reporter:
    """Rate and ETA over this session's bytes (a resumed part was not downloaded now)."""

    def __init__(self, callback: ProgressCallback | None, start: int, total: int | None) -> None:
        self.callback = callback
        self.start = start
        self.total = total
        self.t0 = time.monotonic()
        self.last = -1.0

    def __call__(self, done: int, final: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if not final and self.last >= 0 and now - self.last < REPORT_INTERVAL_S:
            return
        self.last = now
        elapsed = max(now - self.t0, 1e-6)
        rate = (done - self.start) / elapsed
        eta = (self.total - done) / rate if self.total is not None and rate > 0 else None
        self.callback(Progress(done, self.total, rate, eta))


def download(
    url: str,
    dest: str | Path,
    *,
    sha256_prefix: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag = None,
    timeout: float = 30.0,
    chunk_bytes: int = CHUNK_BYTES,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    Resumes ``dest.part`` when present. With ``sha256_prefix`` the finished file's SHA-256 must
    start with it (torchvision puts that prefix in its file names); a mismatch deletes the file
    and raises ``HashMismatch``. ``cancel`` (an Event or a callable) stops it with
    ``DownloadCancelled``, keeping the part for later. Other failures raise ``DownloadError``.
    """
    dest = Path(dest)
    part = part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A new opener per download: it reads the proxy variables as they are now.
    opener = urllib.request.build_opener()
    for _attempt in range(2):  # a second try only after a partial file the server cannot continue
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 416 and offset:
                    match = _UNSATISFIED_RANGE.search(exc.headers.get("Content-Range", ""))
                    if match and int(match.group(1)) == offset:
                        break  # the part is already complete
                    part.unlink()  # larger than the file, or from another version: start over
                    continue
            raise DownloadError(f"Downloading {url} failed: the server answered HTTP {exc.code} {exc.reason}.") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise DownloadError(
                f"Could not connect to {urlparse(url).netloc or url} ({reason}). Check the network "
                "connection; behind a proxy, set the HTTPS_PROXY / HTTP_PROXY environment variables."
            ) from exc
        with response:
            _stream(response, url, part, offset, progress, cancel, chunk_bytes)
        break
    if sha256_prefix:
        actual = sha256_of(part)
        if not actual.startswith(sha256_prefix.lower()):
            part.unlink()
            raise HashMismatch(
                f"The downloaded {dest.name} is not the published file: its SHA-256 starts with "
                f"{actual[: len(sha256_prefix)]}, not {sha256_prefix}. The file was deleted; download it again "
                "(if this repeats, a proxy or mirror is changing it)."
            )
    os.replace(part, dest)
    return dest


def _stream(
    response: http.client.HTTPResponse,
    url: str,
    part: Path,
    offset: int,
    progress: ProgressCallback | None,
    cancel: CancelFlag,
    chunk_bytes: int,
) -> None:
    """Append the body to ``part`` (or rewrite it when the server sent the whole file)."""
    total: int | None
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if offset and response.status == 206 and match and int(match.group(1)) == offset:
        total = int(match.group(3)) if match.group(3) != "*" else None
        mode = "ab"
    else:
        # Fresh download, or a server that ignores Range and sends everything from byte 0.
        offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
    done = offset
    report = _Reporter(progress, offset, total)
    # read1 returns what has arrived (up to chunk_bytes): progress and Cancel stay live on a slow link.
    read = getattr(response, "read1", response.read)
    with open(part, mode) as f:
        while True:
            if _is_cancelled(cancel):
                report(done, final=True)
                raise DownloadCancelled(
                    f"Download of {part.name.removesuffix('.part')} cancelled after {_mb(done)}; "
                    "downloading again continues from there."
                )
            try:
                chunk = read(chunk_bytes)
            except (OSError, http.client.HTTPException) as exc:
                raise _interrupted(part, done, total, str(exc) or type(exc).__name__) from exc
            if not chunk:
                break
            f.write(chunk)
            done += len(chunk)
            report(done)
    report(done, final=True)
    if total is not None and done < total:
        raise _interrupted(part, done, total, "the server closed the connection")


def _interrupted(part: Path, done: int, total: int | None, why: str) -> DownloadError:
    of = f" of {_mb(total)}" if total else ""
    return DownloadError(
        f"The download of {part.name.removesuffix('.part')} stopped after {_mb(done)}{of} ({why}). "
        "Download again to continue from there."
    )


def format_eta(seconds: float) -> str:
    """'0:42', '12:05', '1:02:03'."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
