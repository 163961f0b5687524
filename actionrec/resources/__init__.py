"""Files shipped with the package: class-name lists of the standard datasets."""

from __future__ import annotations

from importlib import resources

from actionrec.registry import Registry

#: Label-set name → the shipped file of its class names, one per line, in its models' index order.
LABEL_SETS: Registry[str] = Registry("label set")
for _name in ("kinetics400", "kinetics600", "ucf101", "hmdb51"):
    LABEL_SETS.register(_name, f"{_name}.txt")


def class_names(name: str) -> list[str]:
    """Class names of a standard dataset in its models' index order (``kinetics400``, ``ucf101``, …)."""
    text = resources.files(__package__).joinpath(LABEL_SETS.get(name)).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]
