"""Files shipped with the package: class-name lists of the standard datasets."""

from __future__ import annotations

from importlib import resources

from actionrec.errors import UsageError

LABEL_SETS = ("kinetics400", "kinetics600", "ucf101", "hmdb51")


def class_names(name: str) -> list[str]:
    """Class names of a standard dataset in its models' index order (``kinetics400``, ``ucf101``, …)."""
    if name not in LABEL_SETS:
        raise UsageError(f"unknown label set {name!r}; known: {', '.join(LABEL_SETS)}")
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]
