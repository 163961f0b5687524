"""X3D-XS through `actionrec export` (ONNX) and the backends: ONNX Runtime and the optimised torch path agree with eager."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.deploy.backends import load_backend
from actionrec.deploy.onnx_export import read_onnx_meta
from actionrec.factory import create_model
from tests.convert.seeded import seeded_array


def test_x3d_xs_export_and_backends_agree_with_torch(tmp_path: Path) -> None:
    model = create_model("x3d_xs", num_classes=5).eval()
    model.load_state_dict({k: torch.from_numpy(seeded_array(k, tuple(v.shape), noise=True)) for k, v in model.state_dict().items()})
    p = model.meta.preprocess
    p.crop_size, p.resize_short = 64, 73  # small clips: the export's checks run at 4×64²
    ckpt = save_model(model, tmp_path / "x3d_xs.safetensors")
    out = tmp_path / "x3d_xs.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--json", str(tmp_path / "export.json")]) == 0
    report = json.loads((tmp_path / "export.json").read_text())["export"]
    assert report["max_abs_diff"] <= 1e-3 and report["dynamic_axes"] == {"0": "batch", "2": "time"}
    assert read_onnx_meta(out).arch == "x3d_xs"

    clips = torch.randn(3, 3, 8, 64, 64)  # a batch size and a clip length the export did not see
    with torch.inference_mode():
        ref = model(clips)
    assert ref.std() > 0.05  # not near-constant logits
    for name, backend in (("onnxruntime", load_backend(out)), ("torch fold_cl", load_backend(ckpt))):
        got = backend(clips)
        assert got.shape == (3, 5) and (got - ref).abs().max() <= 1e-3, name
