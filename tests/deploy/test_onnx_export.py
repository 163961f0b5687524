import json

import numpy as np
import onnx
import pytest
import torch

from actionrec.deploy.onnx_export import ExportError, export_onnx, ort_session, read_onnx_meta
from tests.deploy.conftest import tiny_model

CASES = [
    ("r2plus1d_18", 3, True),  # (R(2+1)D-34: the same blocks, deeper; not exported separately)
    ("r3d_18", 3, True),
    ("mc3_18", 3, True),
    ("i3d", 3, False),  # TF "SAME" padding makes the exporter fix T
    ("i3d", 2, False),  # flow
]


@pytest.mark.parametrize("arch,channels,time_dynamic", CASES)
def test_export_parity_metadata_and_dynamic_batch(tmp_path, arch, channels, time_dynamic):
    model = tiny_model(arch, in_channels=channels)
    model.meta.class_names = [f"class {i}" for i in range(5)]
    x = torch.randn(2, channels, 4, 32, 32)
    out = tmp_path / f"{arch}.onnx"
    report = export_onnx(model, out, example=x)
    assert out.is_file() and not list(tmp_path.glob(".*"))  # no temporary files left
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-3
    assert report.dynamic_axes.get("0") == "batch"
    assert ("2" in report.dynamic_axes) == time_dynamic
    assert (1, channels, 4, 32, 32) in [tuple(s) for s in report.checked_shapes]

    meta = read_onnx_meta(out)
    assert meta.arch == arch and meta.modality == ("flow" if channels == 2 else "rgb")
    assert meta.class_names == model.meta.class_names
    assert meta.preprocess.clip_len == 4
    props = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert json.loads(props["class_names"])[4] == "class 4"
    assert json.loads(props["preprocess"])["crop_size"] == 32

    # a batch size never seen during export
    sess = ort_session(out)
    y = torch.randn(3, channels, 4, 32, 32)
    got = sess.run(None, {"video": y.numpy()})[0]
    with torch.inference_mode():
        ref = model(y).numpy()
    assert got.shape == (3, 5)
    assert np.abs(got - ref).max() <= 1e-3


def test_export_rejects_bad_input(tmp_path):
    model = tiny_model("r3d_18")
    with pytest.raises(ExportError, match=r"\.onnx"):
        export_onnx(model, tmp_path / "m.bin", example=torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ExportError, match="example input must be"):
        export_onnx(model, tmp_path / "m.onnx", example=torch.randn(1, 2, 4, 32, 32))
    with pytest.raises(ExportError, match="ModelMeta"):
        export_onnx(torch.nn.Conv3d(3, 3, 1), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_parity_failure_is_an_error_and_writes_nothing(tmp_path):
    model = tiny_model("mc3_18")
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(model, out, example=torch.randn(1, 3, 4, 32, 32), tol=0.0)  # no float is that exact
    assert not out.exists()


def test_read_onnx_meta_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_onnx_meta(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ExportError, match="bad.onnx"):
        read_onnx_meta(bad)
