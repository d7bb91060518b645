"""Fetch a file by URL with a pinned sha256: nothing unverified ever lands at the destination.

The body streams into ``<dest>.part``; only when its sha256 matches the pin is it renamed into
place. A mismatch deletes the partial file and raises `ChecksumMismatch`. Plain urllib, so it
needs no extra package.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ctbench.errors import DatasetError


class FetchError(DatasetError):
    code = "UNAVAILABLE"


class ChecksumMismatch(DatasetError):
    code = "DATA_LOSS"


def fetch_url(
    url: str,
    dest: str | Path,
    sha256: str | None,
    *,
    timeout: float = 60.0,
    max_bytes: int = 2 << 30,
) -> Path:
    """Download `url` to `dest` and check it against `sha256` (hex). Returns `dest`.

    `sha256=None` is refused unless the caller passes the string ``"unpinned"``, so an
    unverified download is always a visible choice.
    """
    dest = Path(dest)
    if sha256 is None:
        raise FetchError(f"no sha256 pinned for {url}; pass the expected checksum (or 'unpinned')")
    expected = None if sha256 == "unpinned" else sha256.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": "ctbench"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, part.open("wb") as out:
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(f"{url}: larger than the {max_bytes}-byte bound; refusing", dest)
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}", dest) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{url}: cannot download ({reason})", dest) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{url}: sha256 is {actual}, expected {expected}; the file was not kept", dest
        )
    os.replace(part, dest)
    return dest
