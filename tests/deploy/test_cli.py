import json

import pytest
import torch

from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.deploy.onnx_export import read_onnx_meta
from actionrec.deploy.backends import load_backend
from tests.deploy.conftest import tiny_model

DATA = __import__("pathlib").Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    model.meta.class_names = ["a", "b", "c", "d", "e"]
    return save_model(model, tmp_path_factory.mktemp("cli") / "tiny.safetensors")


def test_export_command_with_int8(tmp_path, ckpt, capsys):
    out = tmp_path / "tiny.onnx"
    rc = main(["export", str(ckpt), "--format", "onnx", "-o", str(out), "--int8", "--calib", str(DATA / "short.mp4"),
               "--calib-max", "2", "--json", str(tmp_path / "export.json")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "max |Δlogit|" in text and "top-1 agrees with fp32" in text
    record = json.loads((tmp_path / "export.json").read_text())
    assert record["export"]["max_abs_diff"] <= 1e-3
    assert record["int8"]["calib_windows"] == 2 and record["int8"]["eval_windows"] == 4
    assert read_onnx_meta(out).class_names == ["a", "b", "c", "d", "e"]
    assert read_onnx_meta(tmp_path / "tiny.int8.onnx").arch == "r2plus1d_18"
    assert record["int8"]["method"].endswith("stem fp32")
    # --int8-stem quantises the stem too, and says so
    assert main(["export", str(ckpt), "-o", str(tmp_path / "s.onnx"), "--int8", "--int8-stem", "--calib", str(DATA / "short.mp4"),
                 "--calib-max", "2", "--json", str(tmp_path / "s.json")]) == 0
    assert "stem fp32" not in json.loads((tmp_path / "s.json").read_text())["int8"]["method"]
    # parity through the predictor: the same clips with both backends
    clips = torch.randn(2, 3, 8, 32, 32)
    ref = load_backend(ckpt)(clips)
    assert (load_backend(out)(clips) - ref).abs().max() <= 1e-3


def test_export_user_errors(tmp_path, ckpt, capsys):
    assert main(["export", str(ckpt), "-o", str(tmp_path / "m.onnx"), "--int8"]) == 2
    assert "--int8 needs --calib" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.safetensors"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "nope.safetensors" in capsys.readouterr().err


def test_bench_command_writes_markdown_and_json(tmp_path, ckpt, capsys):
    md = tmp_path / "bench.md"
    rc = main(["bench", str(ckpt), "--backends", "torch --no-optimize,torch,onnxruntime", "--batch-sizes", "1,2", "--threads", "2",
               "--min-calls", "2", "--min-time", "0", "-o", str(md)])
    assert rc == 0
    table = md.read_text()
    assert "2 threads" in table and "3×8×32×32" in table
    data = json.loads(md.with_suffix(".json").read_text())
    assert data["threads"] == 2 and data["input_shape"] == [3, 8, 32, 32]
    cells = {(r["backend"], r["batch"]) for r in data["rows"]}
    assert cells == {(b, n) for b in ("torch --no-optimize", "torch", "onnxruntime") for n in (1, 2)}
    for r in data["rows"]:
        assert r["clips_per_s"] > 0 and r["p90_ms"] >= r["p50_ms"] > 0 and r["gflops"] > 0
    assert data["gflop_per_clip"] > 0 and data["machine"]["logical_cpus"] >= 1
    assert data["machine"]["threads"] == 2 and data["machine"]["device"] == "cpu" and data["machine"]["cpu_capability"]
    assert data["setup"]["torch"]["optimize"] == "fold_cl" and data["setup"]["torch --no-optimize"]["optimize"] == "eager"
    assert "| torch | 2 |" in capsys.readouterr().out


def test_bench_onnx_source_and_bad_backend(tmp_path, ckpt):
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path)]) == 0
    md = tmp_path / "b.md"
    assert main(["bench", str(onnx_path), "--batch-sizes", "1", "--min-calls", "1", "--min-time", "0", "-o", str(md)]) == 0
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    from actionrec.deploy.backends import BACKENDS

    runs_onnx = ["onnxruntime"] + (["openvino"] if BACKENDS.get("openvino").is_available() else [])  # fp32 ONNX runners
    assert [r["backend"] for r in rows] == runs_onnx
    with pytest.raises(SystemExit) as e:
        main(["bench", str(ckpt), "--backends", "warp-drive", "-o", str(md)])
    assert e.value.code == 2
