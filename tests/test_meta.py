"""Model metadata is checked when read: types, ranges, lengths, finiteness, bounded sizes, with the field named."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from actionrec.errors import UsageError
from actionrec.meta import LIMITS, ModelMeta, Preprocess, meta_from_json

GOOD = {"arch": "r2plus1d_18", "num_classes": 5, "class_names": list("abcde"), "arch_kwargs": {"widths": [4, 8, 8, 8]}}


def test_round_trip() -> None:
    meta = ModelMeta.from_dict(GOOD)
    assert ModelMeta.from_json(meta.to_json()) == meta and meta.label(4) == "e" and meta.label(9) == "9"
    assert isinstance(meta.preprocess.mean, tuple)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_classes": 9_000_000, "class_names": None}, r"'num_classes' must be an integer in 1..100000, got 9000000"),
        ({"num_classes": "5"}, r"'num_classes' must be an integer"),
        ({"num_classes": True, "class_names": None}, r"'num_classes' must be an integer"),
        ({"class_names": ["a", "b"]}, r"'class_names' must be a list of num_classes \(5\) names or null, got 2"),
        ({"class_names": [0, 1, 2, 3, 4]}, r"'class_names\[0\]' must be a string"),
        ({"arch_kwargs": {"widths": [16, 32, 64, 200000]}}, r"'arch_kwargs.widths\[3\]' must be an integer in 1..8192"),
        ({"arch_kwargs": {"layers": [1]}}, r"unknown 'arch_kwargs' entry 'layers'"),
        ({"arch_kwargs": {"in_channels": 2}}, r"'arch_kwargs.in_channels' is 2 but modality 'rgb' has 3 channels"),
        ({"preprocess": {"clip_len": 100_000_000}}, r"'preprocess.clip_len' must be an integer in 1..1024"),
        ({"preprocess": {"crop_size": 5000, "resize_short": 5000}}, r"'preprocess.resize_short' must be an integer in 1..4096"),
        ({"preprocess": {"mean": [math.nan] * 3}}, r"'preprocess.mean' must be a list of 1 to 8 finite numbers"),
        ({"preprocess": {"std": [0.5, 0.0, 0.5]}}, r"'preprocess.std' must be a list of 1 to 8 positive"),
        ({"preprocess": {"mean": [0.5] * 4}}, r"'preprocess.mean' must be a list of 1 to 8|'preprocess.mean' has 4 values"),
        ({"preprocess": {"gamma": 2}}, r"unknown fields \['gamma'\]"),
        ({"modality": "depth"}, r"'modality' must be 'rgb' or 'flow'"),
        ({"arch": "../x"}, r"'arch' must be a model name"),
        ({"extra": 1}, r"unknown fields \['extra'\]"),
    ],
)
def test_bad_values_are_named(changes: dict, message: str) -> None:
    d = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        d[k] = v if k != "preprocess" else {**d.get("preprocess", {}), **v}
    with pytest.raises(UsageError, match=message):
        ModelMeta.from_dict(d)


def test_json_errors_name_the_file() -> None:
    with pytest.raises(UsageError, match=r"^ckpt.safetensors: model metadata is not valid JSON"):
        meta_from_json("{'arch'", source="ckpt.safetensors")
    with pytest.raises(UsageError, match=r"^x.onnx: model metadata must be a JSON object"):
        meta_from_json("[1]", source="x.onnx")
    with pytest.raises(UsageError, match=r"^x.onnx: model metadata is not valid JSON"):
        meta_from_json("[" * 100_000 + "]" * 100_000, source="x.onnx")


def test_limits_are_documented_bounds() -> None:
    assert LIMITS["num_classes"] == 100_000 and LIMITS["clip_len"] == 1024 and LIMITS["size"] == 4096 and LIMITS["width"] == 8192
    Preprocess(clip_len=1024, resize_short=4096, crop_size=4096)  # the bounds themselves are allowed


def test_override_returns_a_checked_copy_and_warns_once_per_changed_field(caplog: pytest.LogCaptureFixture) -> None:
    base = Preprocess(clip_len=16, frame_stride=1, resize_short=128, crop_size=112)
    with caplog.at_level(logging.WARNING, logger="actionrec.meta"):
        new = base.override(arch="r2plus1d_18", clip_len=32, frame_stride=1, resize_short=None, crop_size=None)
    assert (new.clip_len, new.frame_stride, new.resize_short, new.crop_size) == (32, 1, 128, 112)
    assert new is not base and base.clip_len == 16 and new.mean == base.mean  # the original is untouched
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["r2plus1d_18: clip_len=32 overrides the model's clip_len=16 (its weights were made for the latter)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="actionrec.meta"):
        same = base.override(arch="i3d", warn=False, resize_short=256, crop_size=224)
        assert base.override() == base
    assert (same.resize_short, same.crop_size) == (256, 224) and not caplog.records


@pytest.mark.parametrize(("changes", "message"), [
    ({"mean": 0.5}, r"unknown preprocessing override\(s\) \['mean'\]; choose from clip_len, frame_stride, resize_short, crop_size"),
    ({"clip_length": 8}, r"\['clip_length'\]"),
    ({"clip_len": 0}, r"clip_len must be an integer in \[1, 1024\], got 0"),
    ({"crop_size": 4097}, r"crop_size must be an integer in \[1, 4096\], got 4097"),
    ({"frame_stride": True}, r"frame_stride must be an integer"),
    ({"resize_short": 8.0}, r"resize_short must be an integer"),
    ({"crop_size": 200}, r"resize_short \(128\) must be ≥ crop_size \(200\)"),  # against the model's resize
    ({"resize_short": 64, "crop_size": 96}, r"resize_short \(64\) must be ≥ crop_size \(96\)"),
])
def test_override_rejects_bad_changes(changes: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Preprocess().override(arch="r3d_18", **changes)


def test_normalisation_constants_are_defined_once() -> None:
    import actionrec.meta as meta
    from actionrec.models.registry import build_model

    assert meta.KINETICS_MEAN == (0.43216, 0.394666, 0.37645) and meta.KINETICS_STD == (0.22803, 0.22145, 0.216989)
    assert meta.IMAGENET_MEAN == (0.485, 0.456, 0.406) and meta.IMAGENET_STD == (0.229, 0.224, 0.225)
    pre = {name: build_model(name, num_classes=2, **kw).meta.preprocess
           for name, kw in [("r3d_18", {}), ("r2plus1d_mm_18", {}), ("i3d", {}), ("mc3_18", {"in_channels": 2})]}
    assert pre["r3d_18"].mean == meta.KINETICS_MEAN and pre["r3d_18"].std == meta.KINETICS_STD
    assert pre["r2plus1d_mm_18"].mean == meta.IMAGENET_MEAN and pre["r2plus1d_mm_18"].std == meta.IMAGENET_STD
    assert pre["i3d"].mean == pre["i3d"].std == (meta.UNIT_RANGE,) * 3 and pre["mc3_18"].mean == (meta.UNIT_RANGE,) * 2
    # no other module of the package spells the numbers out
    package = Path(meta.__file__).parent
    literals = ("0.43216", "0.22803", "0.485, 0.456", "0.229, 0.224")
    found = [f"{p.relative_to(package)}: {lit}" for p in package.rglob("*.py") if p.name != "meta.py" or p.parent != package
             for lit in literals if lit in p.read_text()]
    assert found == []
