"""Files remoteenv fetches on this side (installers for hosts without internet), kept in its cache.

A download goes to NAME.part and is resumed from there (an HTTP Range request) when cut off; it
becomes NAME only whole and, when a SHA-256 is known, only when it matches. A file in the cache is
used again when its SHA-256 matches, so a fleet downloads once.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from remoteenv import paths
from remoteenv.errors import RemoteenvError

CHUNK = 1 << 20


class DownloadFailed(RemoteenvError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_folder() -> Path:
    folder = paths.cache_dir() / "installers"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_text(url: str, timeout: float = 15, limit: int = 1 << 16) -> str:
    """A small text file (a published checksum)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read(limit).decode("utf-8", errors="replace")
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise DownloadFailed(f"cannot read {url}: {_reason(exc)}",
                             "check the URL and this machine's network (proxy variables are honoured)") from None


def fetch(url: str, name: str, sha256: str | None = None, *, timeout: float = 30,
          on_progress: Callable[[int, int | None], None] | None = None) -> Path:
    """The file at `url`, in the cache as `name` (downloaded only when not there already)."""
    folder = cache_folder()
    target = folder / name
    if target.is_file() and (sha256 is None or sha256_file(target) == sha256):
        return target
    part = folder / f"{name}.part"
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:
                have = 0  # the server sends the whole file: start over
            total = response.length + have if response.length is not None else None
            with open(part, "ab" if have else "wb") as out:
                done = have
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(done, total)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise DownloadFailed(f"download of {url} failed: {_reason(exc)} (the partial file is kept for a resume)",
                             "check the URL and this machine's network, then re-run") from None
    if sha256 is not None:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise DownloadFailed(f"{url} has SHA-256 {got}, not {sha256}: removed it, nothing was installed",
                                 "the file or the expected checksum is wrong; check where each came from")
    os.replace(part, target)
    return target


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
