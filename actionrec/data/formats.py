"""Dataset formats: the names ``data.format``, ``--format`` and ``prep lists`` take, and what each is.

Torch-free (the CLI lists the names in ``--help``). The indexers live in :mod:`actionrec.data.annotations`
and are imported when used. A new format: its indexer there, an entry here, a test in
``tests/data_pkg/test_annotations.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actionrec.registry import Registry, lazy

__all__ = ["DatasetFormat", "FORMATS", "format_names", "list_kinds"]


@dataclass(frozen=True)
class DatasetFormat:
    """``index(root, annotations, *, split, subset, val_fraction, seed, classes, left_out) -> (samples, class_names, root)``.

    ``classes``: the model's class names, for formats whose labels are names (``csv``); ``left_out``: a
    :class:`~actionrec.data.annotations.LeftOut` the index records dropped rows in. Indexers ignore what they do not use.
    """

    name: str
    summary: str
    index: Callable[..., Any]
    needs_annotations: bool  # a list, split folder or CSV must be given
    official_splits: bool  # numbered train/test splits (ucf101, hmdb51)
    lists: bool = True  # `prep lists` writes mmaction2 lists for it
    list_files: bool = False  # annotations are data.train_list / data.val_list (`--list`), not data.annotations
    json_name: str = "{name}.json"  # 3D-ResNets' name for its JSON ({split}: the split number)

    def json_file(self, split: int) -> str:
        """The file name 3D-ResNets' ``util_scripts`` give this format's JSON (``ucf101_01.json``)."""
        return self.json_name.format(name=self.name, split=split)


FORMATS: Registry[DatasetFormat] = Registry("dataset format", hint="see `actionrec train --help`")

_A = "actionrec.data.annotations:"
for _f in (
    DatasetFormat("list", "an mmaction2 list ('path label' / 'dir n_frames label') or 3D-ResNets JSON",
                  lazy(_A + "_index_list"), needs_annotations=True, official_splits=False, lists=False, list_files=True),
    DatasetFormat("csv", "a CSV 'file,label' with class names as labels (matched to the model's class names; header row optional)",
                  lazy(_A + "_index_csv"), needs_annotations=True, official_splits=False, lists=False, list_files=True),
    DatasetFormat("folder", "class folders (root/class/video), or root/{train,val}/class/video",
                  lazy(_A + "_index_folder"), needs_annotations=False, official_splits=False),
    DatasetFormat("ucf101", "UCF101 with its split files (classInd.txt, trainlist0N.txt, testlist0N.txt)",
                  lazy(_A + "_index_ucf101"), needs_annotations=True, official_splits=True, json_name="ucf101_0{split}.json"),
    DatasetFormat("hmdb51", "HMDB51 with its split files (<class>_test_splitN.txt)",
                  lazy(_A + "_index_hmdb51"), needs_annotations=True, official_splits=True, json_name="hmdb51_{split}.json"),
    DatasetFormat("kinetics", "Kinetics-400/600 with its CSV", lazy(_A + "_index_kinetics"),
                  needs_annotations=True, official_splits=False),
):
    FORMATS.register(_f.name, _f)


def format_names() -> list[str]:
    """Every format (``data.format``, ``--format``)."""
    return FORMATS.names()


def list_kinds() -> list[str]:
    """The formats ``prep lists`` writes lists for."""
    return [name for name, f in FORMATS.items() if f.lists]
