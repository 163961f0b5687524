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


class TrainingError(ActionrecError):
    """Training cannot go on: e.g. the loss or the weights became non-finite (learning rate too high)."""
