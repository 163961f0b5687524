"""Model metadata is checked when read: types, ranges, lengths, finiteness, bounded sizes, with the field named."""

from __future__ import annotations

import json
import math

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
