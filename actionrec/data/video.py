"""Frame-accurate video reading on PyAV (FFmpeg), with seeking and a frame index from the container.

A :class:`VideoReader` demuxes the file once when opened (no decoding: a few milliseconds for
a short clip) and builds an index of the *displayable* frames: packets that an MP4 edit list
marks as discarded are left out, so ``len(reader)`` is what a full decode yields, not what
the header claims (an MP4 trimmed by stream copy may claim 197 frames and decode 152).

``get_frames(indices)`` seeks to the key frame before each requested frame when that skips
decoding work, and otherwise decodes forward. Frames are identified by their presentation
timestamp (MP4, MOV, MKV, WebM) or, in AVI files whose timestamps are only decode times, by
counting from a verified key frame; anything that cannot be verified falls back to decoding
from the start. Rotation metadata (phone videos) is applied to every frame.
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from actionrec.data.frames import DEFAULT_FPS, MAX_FPS, FrameFolderReader
from actionrec.errors import ActionrecError, FramesMissingError, UsageError, VideoDecodeError

__all__ = ["VideoReader", "open_video", "probe_video", "VideoDecodeError", "FramesMissingError", "VIDEO_EXTENSIONS"]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv")


# Frames larger than this are refused before anything is allocated for them (8K UHD: 7680 x 4320)
MAX_FRAME_SIDE = 8192
MAX_FRAME_PIXELS = 7680 * 4320


@runtime_checkable
class Reader(Protocol):
    """What every reader offers: videos and frame folders alike."""

    path: str
    fps: float

    def __len__(self) -> int: ...

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, C)``."""
        ...


def open_video(path: str | os.PathLike, *, modality: str = "rgb", threads: int = 1) -> Reader:
    """Open a video file (:class:`VideoReader`) or a folder of frames (:class:`FrameFolderReader`).

    ``modality`` is ``"rgb"`` (3 channels) or ``"flow"`` (2 channels, x and y; frame folders only).
    """
    p = Path(path)
    if modality not in ("rgb", "flow"):
        raise UsageError(f"modality must be 'rgb' or 'flow', got {modality!r}")
    if p.is_dir():
        return FrameFolderReader(p, modality=modality)
    if p.is_symlink() and not p.exists():
        raise VideoDecodeError(p, f"dangling symbolic link to {os.readlink(p)}")
    if not p.exists():
        # a list may name "x.avi" while the frames were extracted to the folder "x"
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.with_suffix("").is_dir():
            return FrameFolderReader(p.with_suffix(""), modality=modality)
        raise FileNotFoundError(f"video not found: {p}")
    if modality == "flow":
        raise UsageError(f"flow input must be a folder of flow frames (see `actionrec prep flow`), got the file {p}")
    return VideoReader(p, threads=threads)


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    errs: list[type[BaseException]] = [OSError, ValueError, UnicodeDecodeError, MemoryError]
    for name in ("FFmpegError", "AVError"):
        if hasattr(av, name):
            errs.append(getattr(av, name))
    return tuple(errs)


class VideoReader:
    """Random access to the frames of one video file, decoded to RGB uint8.

    Attributes: ``path``, ``fps``, ``rotation`` (degrees, counter-clockwise, as stored), and
    ``len(reader)``: the number of displayable frames.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1) -> None:
        self.path = str(path)
        self._threads = threads
        self._errors = _av_errors()
        if os.path.isdir(self.path):
            raise VideoDecodeError(self.path, "a directory, not a video file")
        if os.path.getsize(self.path) == 0:
            raise VideoDecodeError(self.path, "the file is empty")
        self._container = None
        self._rgb = None
        try:
            self._open()
            self._build_index()
        except VideoDecodeError:
            self.close()
            raise
        except self._errors as e:
            self.close()
            raise VideoDecodeError(self.path, f"{type(e).__name__}: {e}") from e
        self.rotation: int | None = None  # known after the first decoded frame

    # --- setup -----------------------------------------------------------------------------
    def _open(self) -> None:
        import av

        self.close()
        self._container = av.open(self.path)
        if not self._container.streams.video:
            raise VideoDecodeError(self.path, "no video stream")
        self._stream = self._container.streams.video[0]
        cc = self._stream.codec_context
        if cc is None:  # FFmpeg has no decoder for this codec (or the codec tag is damaged)
            tag = getattr(self._stream, "codec_tag", "") or "?"
            raise VideoDecodeError(self.path, f"no decoder for the video codec (tag {tag!r})")
        check_frame_size(self.path, cc.width, cc.height, what="header")
        cc.options = {**cc.options, "max_pixels": str(MAX_FRAME_PIXELS)}  # FFmpeg refuses larger frames too
        if self._threads > 1:
            cc.thread_type = "AUTO"
            cc.thread_count = self._threads
        else:
            cc.thread_count = 1

    def _build_index(self) -> None:
        s = self._stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        self.fps = float(rate) if rate else 0.0
        if not 0 < self.fps <= MAX_FPS:  # damaged time bases give 0, inf or nonsense: unknown
            self.fps = 0.0
        packets = []  # (pts, dts, keyframe) of displayable packets, decode order
        for pkt in self._container.demux(s):
            if pkt.size == 0 or pkt.is_discard:
                continue
            packets.append((pkt.pts, pkt.dts, pkt.is_keyframe, pkt.size))
        if not packets:
            raise VideoDecodeError(self.path, "no video frames")
        self._n = len(packets)
        pts = [p[0] for p in packets]
        has_pts = None not in pts and len(set(pts)) == len(pts)
        self._is_avi = "avi" in self._container.format.name.split(",")
        # AVI often stores decode times only (pts == dts): then frames are counted from the start
        # and packed B-frames (DivX/XviD "N-VOP" placeholders of a few bytes) scramble timestamps
        packed = self._is_avi and any(p[3] <= 8 for p in packets)
        self._pts_mode = has_pts and not packed and (not self._is_avi or any(p[0] != p[1] for p in packets))
        if self._pts_mode:
            disp = sorted(pts)
            self._index_of = {p: i for i, p in enumerate(disp)}
            kfs = sorted((self._index_of[p[0]], p[0]) for p in packets if p[2])
        else:
            self._index_of = {}
            kfs = []
        if not kfs or kfs[0][0] != 0:
            kfs.insert(0, (0, None))  # None: decode from the start
        self._kf_index = [k[0] for k in kfs]
        self._kf_ts = [k[1] for k in kfs]
        # display times: pts × time_base from the container's start (its first stream may begin before this one)
        tb = float(s.time_base) if s.time_base else 0.0
        start = self._container.start_time
        origin = start / 1_000_000 if start is not None else (disp[0] * tb if self._pts_mode else 0.0)
        self._pts_s = (np.asarray(disp, dtype=np.float64) * tb - origin) if self._pts_mode and tb > 0 else None
        if not self.fps and self._n > 1 and self._pts_mode and s.time_base:
            span = float((disp[-1] - disp[0]) * s.time_base)
            fps = (self._n - 1) / span if span > 0 else 0.0
            self.fps = fps if 0 < fps <= MAX_FPS else 0.0
        self._needs_reopen = True  # demuxing consumed the file: reopen before decoding

    # --- public interface ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def duration(self) -> float:
        """Seconds covered by the decodable frames (``len / fps``)."""
        return self._n / self.fps if self.fps else 0.0

    def __repr__(self) -> str:
        return f"VideoReader({self.path!r}, frames={self._n}, fps={self.fps:.3f})"

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        c = getattr(self, "_container", None)
        if c is not None:
            c.close()
            self._container = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def read_all(self) -> np.ndarray:
        """Every frame, decoded sequentially from the start: uint8 ``(N, H, W, 3)``."""
        frames = list(self.iter_frames())
        if not frames:
            raise VideoDecodeError(self.path, "no frame decoded")
        if len(frames) != self._n:
            log.debug("%s: index said %d frames, decoding gave %d", self.path, self._n, len(frames))
            self._n = len(frames)
        return np.stack(frames)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, decoded sequentially: uint8 ``(H, W, 3)`` each."""
        try:
            for frame in self._decode_from_start():
                yield self._to_array(frame)
        except self._errors as e:
            raise VideoDecodeError(self.path, f"{type(e).__name__}: {e}") from e

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, 3)``.

        Raises ``IndexError`` for an index outside ``[0, len)``, :class:`VideoDecodeError` if
        the file fails to decode.
        """
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not idx:
            raise UsageError("get_frames needs at least one index")
        bad = [i for i in idx if i < 0 or i >= self._n]
        if bad:
            raise IndexError(f"{self.path}: frame index {bad[0]} out of range [0, {self._n})")
        try:
            got = self._fetch(sorted(set(idx)))
        except (VideoDecodeError, IndexError):
            raise
        except self._errors as e:
            raise VideoDecodeError(self.path, f"{type(e).__name__}: {e}") from e
        return np.stack([got[i] for i in idx])

    def frame_times(self) -> np.ndarray:
        """When each displayable frame is shown, in seconds from the start of the file: float64 ``(len,)``.

        From the stream's timestamps (pts × time_base), so a variable-frame-rate video gets its real times;
        ``index / fps`` where the container has no usable timestamps (AVI, which has a constant rate).
        """
        if self._pts_s is not None:
            return np.maximum(self._pts_s[: self._n], 0.0)
        return np.arange(self._n, dtype=np.float64) / (self.fps or DEFAULT_FPS)

    def iter_selected(self, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, frame)`` for increasing display ``indices`` (any iterable, read lazily): uint8 ``(H, W, 3)``.

        One forward decode from the key frame before the first index (a seek where the timestamps allow it,
        else decoding from the start and skipping), one frame in memory at a time, whatever the video's
        length. A frame that does not decode is replaced by the next one that does; past the last decodable
        frame raises :class:`FramesMissingError`.
        """
        it = iter(indices)
        want = next(it, None)
        if want is None:
            return
        if not 0 <= want < self._n:
            raise IndexError(f"{self.path}: frame index {want} out of range [0, {self._n})")
        j = -1
        try:
            for j, frame in self._frames_from(int(want)):
                while want is not None and want <= j:
                    yield want, self._to_array(frame)
                    prev, want = want, next(it, None)
                    if want is not None and not prev < want < self._n:
                        raise UsageError(f"{self.path}: iter_selected needs increasing indices below {self._n}, got {want} after {prev}")
                if want is None:
                    return
        except ActionrecError:
            raise
        except self._errors as e:
            raise VideoDecodeError(self.path, f"{type(e).__name__}: {e}") from e
        self._truncated(j + 1, want)

    # --- decoding --------------------------------------------------------------------------
    def _frames_from(self, t: int):  # noqa: ANN202 - generator of (display index, av frame)
        """Decoded frames from the key frame before ``t`` on, with strictly increasing display indices."""
        pos = -1
        if self._pts_mode:
            frames, floor = self._seek(self._kf_before(t))
            for frame in frames:
                j = self._index_of.get(frame.pts)
                if j is None or j < floor:
                    continue  # a leading frame outside the index, or before the key frame
                if j <= pos or (pos < 0 and j > t):  # out of display order, or the seek went past t
                    log.debug("%s: timestamps cannot be trusted, counting frames from the start", self.path)
                    self._pts_mode, self._kf_index, self._kf_ts = False, [0], [None]
                    break
                pos = j
                yield j, frame
            else:
                return
        for n, frame in enumerate(self._decode_from_start()):
            if n > pos:
                yield n, frame

    def _to_array(self, frame) -> np.ndarray:  # noqa: ANN001
        check_frame_size(self.path, frame.width, frame.height, what="decoded frame")
        if self.rotation is None:
            self.rotation = int(round(getattr(frame, "rotation", 0) or 0))
        if self._rgb is None:  # one converter per reader: frame.to_ndarray(format=) builds one per frame (~1 ms)
            from av.video.reformatter import VideoReformatter

            self._rgb = VideoReformatter()
        arr = self._rgb.reformat(frame, format="rgb24").to_ndarray()
        k = (self.rotation // 90) % 4 if self.rotation % 90 == 0 else 0
        return np.ascontiguousarray(np.rot90(arr, k)) if k else arr

    def _decode_from_start(self):  # noqa: ANN202 - generator of av frames
        self._open()
        self._needs_reopen = False
        yield from self._container.decode(self._stream)

    def _kf_before(self, t: int) -> int:
        return bisect.bisect_right(self._kf_index, t) - 1

    def _seek(self, k: int):  # noqa: ANN202
        """Position the decoder at key frame ``k`` (list position); return (frames, index of next)."""
        ts = self._kf_ts[k]
        if ts is None or self._kf_index[k] == 0:
            return self._decode_from_start(), 0
        if self._needs_reopen:
            self._open()
            self._needs_reopen = False
        self._container.seek(int(ts), stream=self._stream, backward=True, any_frame=False)
        return self._container.decode(self._stream), self._kf_index[k]

    def _fetch(self, wanted: list[int]) -> dict[int, np.ndarray]:
        got: dict[int, np.ndarray] = {}
        wanted_set = set(wanted)
        i = 0
        pos = -1  # display index of the last decoded frame
        frames = None
        verify_ts = None
        while i < len(wanted):
            t = wanted[i]
            k = self._kf_before(t)
            if frames is None or self._kf_index[k] > pos + 1 or t <= pos:
                if t <= pos:  # the decoder skipped frame t: trust a plain decode instead
                    return self._fetch_sequential(wanted)
                frames, pos = self._seek(k)
                floor = pos
                pos -= 1
                verify_ts = self._kf_ts[k] if pos >= 0 else None
            for frame in frames:
                if self._pts_mode:
                    j = self._index_of.get(frame.pts)
                    if j is None or j < floor:
                        continue  # a leading frame outside the index, or before the key frame
                    if (verify_ts is not None and j > t) or j <= pos:
                        # the seek went past the target, or timestamps are not in display order
                        # (packed B-frames in AVI): count frames from the start instead
                        self._pts_mode = False
                        self._kf_index, self._kf_ts = [0], [None]
                        return self._fetch_sequential(wanted)
                    pos = j
                else:
                    pos += 1
                verify_ts = None
                if pos in wanted_set:
                    got[pos] = self._to_array(frame)
                while i < len(wanted) and wanted[i] in got:
                    i += 1
                if i == len(wanted) or self._kf_index[self._kf_before(wanted[i])] > pos + 1:
                    break
            else:
                if i < len(wanted):
                    self._truncated(pos + 1, wanted[i])
        return got

    def _fetch_sequential(self, wanted: list[int]) -> dict[int, np.ndarray]:
        log.debug("%s: seek could not be verified, decoding from the start", self.path)
        got: dict[int, np.ndarray] = {}
        last = wanted[-1]
        wanted_set = set(wanted)
        n = 0
        for n, frame in enumerate(self._decode_from_start()):
            if n in wanted_set:
                got[n] = self._to_array(frame)
            if n >= last:
                return got
        self._truncated(n + 1, last)
        return got

    def _truncated(self, decoded: int, wanted: int) -> None:
        self._n = min(self._n, decoded)
        raise FramesMissingError(self.path, f"frame {wanted} requested but it does not decode ({decoded} frames decoded)")


def check_frame_size(path: str, width: int, height: int, *, what: str) -> None:
    """Refuse frame sizes no real video has (before any frame of that size is allocated)."""
    if width < 0 or height < 0 or width > MAX_FRAME_SIDE or height > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        raise VideoDecodeError(path, f"{what} frame size {width}x{height} is out of range "
                                     f"(at most {MAX_FRAME_SIDE} per side and {MAX_FRAME_PIXELS} pixels)")


def probe_video(path: str | os.PathLike) -> dict:
    """Frame count, fps, duration and size of a video (count from the container index)."""
    with VideoReader(path) as r:
        return {"path": r.path, "frames": len(r), "fps": r.fps, "duration": r.duration}
