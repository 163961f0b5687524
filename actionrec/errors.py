"""The error types the command line turns into one-line messages (exit code 2).

Anything raised that is *not* an :class:`ActionrecError` (or an ``OSError`` naming a file) is a
bug: the CLI reports it with exit code 1 and a hint to rerun with ``--debug``.
This module imports nothing from the package, so every layer can use it.
"""

from __future__ import annotations


class ActionrecError(Exception):
    """A problem with the user's input, files or environment, not with actionrec itself."""


class UsageError(ActionrecError, ValueError):
    """A bad value: an argument, an option, a config field, a metadata field."""


class LockedError(ActionrecError):
    """An output directory is in use by another run (see :func:`actionrec.io.output_lock`)."""


class VideoDecodeError(ActionrecError, RuntimeError):
    """A video that cannot be opened or decoded: corrupt, truncated, unknown codec, no video stream,
    no frames, absurd header values, or not a video at all (text, HTML, a directory, a dangling link).

    The one error type of every reader in :mod:`actionrec.data` (frame folders raise the subclass
    :class:`FrameFolderError`); datasets skip and count it. ``path`` and ``reason`` are attributes.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")


class FramesMissingError(VideoDecodeError, IndexError):
    """Fewer frames decode than the container index promised (a truncated or damaged file).

    Also an ``IndexError``, so a caller may sample again within the new ``len(reader)``.
    """


class FrameFolderError(VideoDecodeError):
    """A frame folder that is empty, inconsistent or holds an unreadable image."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        Exception.__init__(self, f"cannot read frame folder {self.path}: {reason}")


class TrainingError(ActionrecError):
    """Training cannot go on: e.g. the loss or the weights became non-finite (learning rate too high)."""
