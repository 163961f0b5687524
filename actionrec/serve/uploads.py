"""Uploads: the request body streamed to a private file under the size limit, then probed as a video.

Nothing is trusted before it is checked: a declared ``Content-Length`` over the limit is refused
before a byte is read, the running byte count is checked on every chunk, a client that stops
sending for ``read_timeout`` seconds is dropped, and the file must open as a container with a video
stream within the duration, frame-count and frame-size limits before anything decodes it.

Uploads in progress are counted by :class:`UploadGate` (in total and per client address), not by the
inference queue: a slow or stalled client holds an upload slot and a file descriptor, never a slot of
the model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Limits", "UploadError", "UploadGate", "receive_upload", "probe_video", "client_key"]

log = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one request may send; every limit is checked before the work it protects."""

    max_bytes: int = 100 * MB
    max_duration: float = 300.0  # seconds of video
    max_frames: int = 18_000  # displayable frames (10 min at 30 fps)
    max_pixels: int = 3840 * 2160  # per frame (4K UHD)
    read_timeout: float = 15.0  # seconds a client may pause while sending the body


class UploadError(Exception):
    """A request the server refuses: ``status`` (4xx) and a message for the JSON ``error`` field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def client_key(host: str | None) -> str:
    """Who a per-client limit counts: the IPv4 address, or the /64 of an IPv6 one (one host's usual share)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class UploadGate:
    """Uploads in progress: at most ``total`` at once, and ``per_client`` from one address.

    Used on the event loop only (no lock). Over a cap, :meth:`acquire` raises :class:`UploadError`:
    429 for one client's cap, 503 for the total; the app adds ``Retry-After``.
    """

    def __init__(self, total: int, per_client: int) -> None:
        self.total = max(1, int(total))
        self.per_client = max(1, int(per_client))
        self.active = 0
        self._by_client: dict[str, int] = {}

    def acquire(self, client: str) -> None:
        """Take an upload slot for ``client`` (a :func:`client_key`) or raise :class:`UploadError` 429/503."""
        held = self._by_client.get(client, 0)
        if held >= self.per_client:
            raise UploadError(429, f"too many uploads in progress from your address ({held}, the limit): "
                                   "wait for one to finish")
        if self.active >= self.total:
            raise UploadError(503, f"server busy: {self.active} uploads in progress (the limit)")
        self.active += 1
        self._by_client[client] = held + 1

    def release(self, client: str) -> None:
        self.active -= 1
        left = self._by_client[client] - 1
        if left:
            self._by_client[client] = left
        else:
            del self._by_client[client]

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """:meth:`acquire` … :meth:`release`."""
        self.acquire(client)
        try:
            yield
        finally:
            self.release(client)

    @property
    def clients(self) -> int:
        """Addresses with an upload in progress."""
        return len(self._by_client)


@dataclass
class Upload:
    path: Path
    filename: str  # the client's name for it (display only), or "upload"
    size: int
    seconds: float = 0.0  # from the first read to the last byte


def _safe_name(name: str | None) -> str:
    """The client's file name for display: base name only, printable, at most 120 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w .,()+=@-]", "_", base).strip(" .")
    return base[:120] or "upload"


async def receive_upload(request: Any, directory: Path, limits: Limits) -> Upload:
    """Stream the body of ``request`` (raw video, or ``multipart/form-data`` with one file) to ``directory``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise UploadError(400, f"invalid Content-Length {declared[:40]!r}") from None
        if n > limits.max_bytes:
            raise UploadError(413, f"upload of {n} bytes is over the limit of {limits.max_bytes} bytes")
    ctype = request.headers.get("content-type", "")
    path = directory / "upload"
    sink = _MultipartSink(path, ctype) if ctype.lower().startswith("multipart/form-data") else _RawSink(path)
    total, t0 = 0, time.perf_counter()
    stream = request.stream().__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), timeout=limits.read_timeout)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                raise UploadError(408, f"the upload stalled: no data for {limits.read_timeout:g} s") from None
            total += len(chunk)
            if total > limits.max_bytes:
                raise UploadError(413, f"upload is over the limit of {limits.max_bytes} bytes")
            sink.write(chunk)
    except UploadError:
        sink.close()
        raise
    except Exception as e:  # noqa: BLE001 - the client went away mid-body (ClientDisconnect) and the like
        sink.close()
        raise UploadError(400, f"the upload was not completed ({type(e).__name__})") from e
    size, name = sink.finish()
    if size == 0:
        raise UploadError(400, "empty upload: send a video file as the request body or as a multipart 'file' field")
    if declared is not None and total != int(declared):
        raise UploadError(400, f"the body has {total} bytes, Content-Length said {declared}")
    return Upload(path, _safe_name(name or request.query_params.get("filename")), size, time.perf_counter() - t0)


class _RawSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "wb")  # noqa: SIM115 - closed in finish/close
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.f.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.f.close()

    def finish(self) -> tuple[int, str | None]:
        self.close()
        return self.size, None


class _MultipartSink:
    """Writes the first file field of a ``multipart/form-data`` body; other fields are ignored."""

    def __init__(self, path: Path, content_type: str) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadError(400, "multipart/form-data without a boundary")
        self.raw = _RawSink(path)
        self.filename: str | None = None
        self._field = b""
        self._value = b""
        self._disposition = b""
        self._in_file = False
        self._done_file = False
        cb = {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, a, b: self._hdr("_field", d[a:b]),
            "on_header_value": lambda d, a, b: self._hdr("_value", d[a:b]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }
        self.parser = MultipartParser(boundary, cb)

    def _hdr(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)
        if len(self._field) + len(self._value) > 8192:
            raise UploadError(400, "multipart part header too long")

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._disposition)
        self._in_file = not self._done_file and (b"filename" in params or params.get(b"name") in (b"file", b"video"))
        if self._in_file:
            self.filename = params.get(b"filename", b"").decode("utf-8", "replace") or None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.raw.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self._done_file = False, True

    def write(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except UploadError:
            raise
        except Exception as e:  # noqa: BLE001 - python-multipart's parse errors
            raise UploadError(400, f"malformed multipart body: {e}") from e

    def close(self) -> None:
        self.raw.close()

    def finish(self) -> tuple[int, str | None]:
        try:
            self.parser.finalize()
        except Exception as e:  # noqa: BLE001
            self.close()
            raise UploadError(400, f"malformed multipart body: {e}") from e
        self.close()
        if not self._done_file and self.raw.size == 0:
            raise UploadError(400, "multipart body without a file field (send the video as field 'file')")
        return self.raw.size, self.filename


def probe_video(path: str | os.PathLike, limits: Limits, *, name: str) -> dict[str, Any]:
    """Open ``path`` by probing its content (not its name) and check it against ``limits``.

    Returns ``{"format", "codec", "width", "height", "frames", "duration"}``; raises
    :class:`UploadError` 415 (not a video), 422 (unreadable) or 413 (over a limit).
    """
    import av

    try:
        container = av.open(str(path))
    except (av.error.InvalidDataError, av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as e:
        raise UploadError(415, f"{name}: not a video file this server can read ({_first_line(e)})") from e
    try:
        if not container.streams.video:
            raise UploadError(415, f"{name}: the file has no video stream (format {container.format.name})")
        s = container.streams.video[0]
        w, h = s.codec_context.width or 0, s.codec_context.height or 0
        if w <= 0 or h <= 0:
            raise UploadError(422, f"{name}: the video stream has no frame size")
        if w * h > limits.max_pixels:
            raise UploadError(413, f"{name}: frames of {w}x{h} are over the limit of {limits.max_pixels} pixels")
        duration = _declared_duration(container, s)
        if duration is not None and duration > limits.max_duration:
            raise UploadError(413, f"{name}: the video is {duration:.1f} s long, over the limit of {limits.max_duration:g} s")
        frames = 0
        try:
            for pkt in container.demux(s):
                if pkt.size:
                    frames += 1
                    if frames > limits.max_frames:
                        raise UploadError(413, f"{name}: the video has more than {limits.max_frames} frames (the limit)")
        except (av.error.FFmpegError, ValueError, OSError) as e:
            raise UploadError(422, f"{name}: the video is damaged ({_first_line(e)})") from e
        if frames == 0:
            raise UploadError(422, f"{name}: the video has no frames")
        return {"format": container.format.name, "codec": s.codec_context.name, "width": w, "height": h,
                "frames": frames, "duration": duration}
    finally:
        container.close()


def _declared_duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _first_line(e: BaseException) -> str:
    """FFmpeg's reason without the server's file name (``strerror`` of PyAV errors), one line."""
    text = getattr(e, "strerror", None) or str(e)
    return (str(text).strip().splitlines() or [type(e).__name__])[0][:200]
