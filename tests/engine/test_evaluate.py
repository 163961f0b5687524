"""Evaluation on saved predictions, two-stream fusion, several checkpoints in one summary, eval errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from actionrec.cli import main
from actionrec.engine.evaluate import Predictions, fuse_predictions, write_summary
from actionrec.engine.metrics import summarize

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

CLASSES = ["a", "b", "c"]


def _preds(path: Path, logits: list, labels: list[int], videos: list[str] | None = None) -> Path:
    videos = videos or [f"v{i}.mp4" for i in range(len(labels))]
    return Predictions(videos, np.array(labels), np.array(logits, dtype=np.float32), CLASSES).save(path)


def test_saved_predictions_round_trip_and_known_numbers(tmp_path: Path) -> None:
    logits = [[[2.0, 0, 0], [0, 1.0, 0]], [[0, 0, 3.0], [0, 0, 3.0]], [[0, 2.0, 0], [1.0, 0, 0]], [[0, 0, 1.0], [0, 1.0, 0.9]]]
    p = Predictions.load(_preds(tmp_path / "p.npz", logits, [0, 2, 0, 1]))
    assert p.videos[1] == "v1.mp4" and p.view_logits.shape == (4, 2, 3) and p.class_names == CLASSES
    m = summarize(p.view_logits, p.labels)
    assert m.clip_top1 == pytest.approx(5 / 8)  # views right: v0 #0, v1 #0 and #1, v2 #1, v3 #1
    # softmax means: v0 -> a (right), v1 -> c (right), v2 -> b (wrong), v3 -> c (0.478 vs b 0.316: wrong)
    assert m.video_top1 == pytest.approx(2 / 4)
    assert m.per_class == pytest.approx([0.5, 0.0, 1.0])


def test_fuse_two_streams(tmp_path: Path) -> None:
    labels = [0, 1, 2]
    rgb = _preds(tmp_path / "rgb.npz", [[[3.0, 0, 0]], [[2.0, 1.0, 0]], [[0, 2.0, 0]]], labels)  # right, wrong, wrong
    # the flow file lists the same videos in another order
    flow = _preds(tmp_path / "flow.npz", [[[0, 0, 3.0]], [[0, 4.0, 0]], [[1.0, 0, 0]]], [2, 1, 0], ["v2.mp4", "v1.mp4", "v0.mp4"])
    fused = fuse_predictions([rgb, flow], [1.0, 1.0])
    assert fused.videos == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert summarize(fused.view_logits, fused.labels).video_top1 == pytest.approx(1.0)
    assert summarize(fuse_predictions([rgb, flow], [1.0, 0.0]).view_logits, fused.labels).video_top1 == pytest.approx(1 / 3)
    fused_logits = fuse_predictions([rgb, flow], on="logits")
    np.testing.assert_allclose(fused_logits.view_logits[:, 0], [[4.0, 0, 0], [2.0, 5.0, 0], [0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="not the same videos"):
        fuse_predictions([rgb, _preds(tmp_path / "x.npz", [[[1.0, 0, 0]]], [0])])
    with pytest.raises(ValueError, match="2 weights for 3"):
        fuse_predictions([rgb, flow, flow], [1, 2])
    assert main(["fuse", str(rgb), str(flow), "--weights", "1", "2", "--out", str(tmp_path / "fused")]) == 0
    assert json.loads((tmp_path / "fused" / "metrics.json").read_text())["video_top1"] == pytest.approx(1.0)
    rows = [{"name": "x", "video_top1": 0.5}, {"name": "y", "video_top1": 0.75}]
    csv_path, md_path = write_summary(rows, tmp_path)
    assert csv_path.read_text().splitlines() == ["name,video_top1", "x,0.5000", "y,0.7500"]
    assert "| y | 0.7500 |" in md_path.read_text()


def test_eval_cli_several_checkpoints(make_config, synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from actionrec.engine.train import train

    cfg = make_config("m", train={"epochs": 2, "keep_last": 2}, eval={"every": 0})
    train(cfg)
    ckpts = [str(Path(cfg.output_dir) / n) for n in ("best.safetensors", "last.safetensors")]
    copy = tmp_path / "copy" / "best.safetensors"  # another run's checkpoint with the same file name
    copy.parent.mkdir()
    copy.write_bytes(Path(ckpts[0]).read_bytes())
    ckpts.insert(1, str(copy))
    out = tmp_path / "ev"
    args = ["eval", *ckpts, "--root", str(synth_root), "--list", "val.txt", "--clips", "2", "--crops", "1", "--out", str(out), "--backend", "torch"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "clip-level top-1" in text and "video-level top-1" in text
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["copy_best", "m_best", "m_last"]  # none overwritten
    for sub in (out / "m_best", out / "copy_best", out / "m_last"):
        assert {"predictions.npz", "metrics.json", "per_class.csv", "confusion.png"} <= {p.name for p in sub.iterdir()}
        p = Predictions.load(sub / "predictions.npz")
        assert p.view_logits.shape == (4, 2, 4)  # 4 val videos x 2 clips x 4 classes
    lines = (out / "summary.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("folder,name,videos,views,clip_top1")
    assert [ln.split(",")[0] for ln in lines[1:]] == ["m_best", "copy_best", "m_last"]
    # a checkpoint for another class count
    other = make_config("o", train={"epochs": 1}, eval={"every": 0}, data={"val_list": "val.txt"})
    train(other)
    bad_list = tmp_path / "two.txt"
    bad_list.write_text("move_left/move_left_004.mp4 0\nmove_right/move_right_004.mp4 1\n")
    (tmp_path / "classes.txt").write_text("x\ny\n")
    bad_out = tmp_path / "bad_ev"
    assert main(["eval", ckpts[0], "--root", str(synth_root), "--list", str(bad_list), "--backend", "torch", "--out", str(bad_out)]) == 2
    assert not bad_out.exists()  # nothing created for a run that failed on its input
    assert "predicts 4 classes but the dataset has 2" in capsys.readouterr().err
    assert main(["eval", ckpts[0], "--root", str(tmp_path / "missing"), "--list", "val.txt"]) == 2
    assert "data.root: no such directory" in capsys.readouterr().err


def test_eval_parity_torch_and_onnxruntime(make_config, synth_root: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """Accuracy parity is one command per backend: the same split, the same views, the same logits."""
    from actionrec.engine.train import train

    cfg = make_config("p", train={"epochs": 1}, eval={"every": 0})
    train(cfg)
    ckpt = Path(cfg.output_dir) / "best.safetensors"
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path)]) == 0
    common = ["--root", str(synth_root), "--list", "val.txt", "--clips", "2", "--crops", "3"]
    assert main(["eval", str(ckpt), *common, "--backend", "torch", "--out", str(tmp_path / "t")]) == 0
    assert main(["eval", str(onnx_path), *common, "--backend", "onnxruntime", "--out", str(tmp_path / "o")]) == 0
    t = Predictions.load(tmp_path / "t" / "predictions.npz")
    o = Predictions.load(tmp_path / "o" / "predictions.npz")
    assert t.videos == o.videos and t.view_logits.shape == o.view_logits.shape == (4, 6, 4)
    assert np.abs(t.view_logits - o.view_logits).max() < 1e-3
    mt = json.loads((tmp_path / "t" / "metrics.json").read_text())
    mo = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert mt == mo or all(abs(mt[k] - mo[k]) < 1e-9 for k in mt if isinstance(mt[k], float))


@pytest.mark.slow
def test_eval_deployed_artifacts_report_agreement_with_the_float_model(make_config, synth_root: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    """One list, three artifacts (checkpoint, ONNX, PT2E int8 package): top-1 for each, and agreement with the float model."""
    from actionrec.deploy.clips import collect_clips
    from actionrec.deploy.quantize import quantize_pt2e
    from actionrec.engine.train import train
    from actionrec.factory import load_model

    cfg = make_config("dep", train={"epochs": 1}, eval={"every": 0})
    train(cfg)
    ckpt = Path(cfg.output_dir) / "best.safetensors"
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path)]) == 0
    # the int8 package alone (`export --format pt2 --int8` also compiles the fp32 one: tests/deploy/test_pt2.py)
    model = load_model(ckpt)
    calib = collect_clips([synth_root / "move_left", synth_root / "move_up"], model.meta, max_clips=32)
    int8 = tmp_path / "m.int8.pt2"
    quantize_pt2e(model, int8, clips=calib, max_calib=8)
    common = ["--root", str(synth_root), "--list", "val.txt", "--clips", "2", "--crops", "1", "--reference", str(ckpt)]
    capsys.readouterr()
    rows = {}
    for name, model, backend in (("ckpt", ckpt, "torch"), ("onnx", onnx_path, "auto"), ("int8", int8, "pt2-int8")):
        assert main(["eval", str(model), *common, "--backend", backend, "--out", str(tmp_path / name)]) == 0
        rows[name] = json.loads((tmp_path / name / "metrics.json").read_text())
        assert "top-1 agreement" in capsys.readouterr().out
    assert rows["ckpt"]["clip_top1_agreement"] == 1.0 and rows["ckpt"]["max_abs_logit_diff"] <= 1e-4
    assert rows["onnx"]["clip_top1_agreement"] == 1.0 and rows["onnx"]["max_abs_logit_diff"] <= 1e-3
    assert rows["onnx"]["video_top1"] == rows["ckpt"]["video_top1"]
    assert 0.0 <= rows["int8"]["clip_top1_agreement"] <= 1.0 and 0.0 < rows["int8"]["max_abs_logit_diff"] < 10.0
    assert rows["int8"]["runtime"]["backend"] == "pt2" and rows["int8"]["runtime"]["cpu_capability"]
