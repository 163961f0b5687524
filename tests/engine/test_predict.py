"""Prediction: DeepMind's cricket clip with the converted I3D weights; JSON output; the sliding window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from actionrec.cli import main
from actionrec.engine.predict import clip_indices, load_for_inference, predict_video

DATA = Path(__file__).resolve().parents[1] / "data"


def test_clip_indices_rules() -> None:
    assert clip_indices(79, clip_len=64, stride=1) == [list(range(79))]  # short video: one whole clip
    assert clip_indices(10, clip_len=16, stride=1) == [np.linspace(0, 9, 16).round().astype(int).tolist()]
    clips = clip_indices(300, clip_len=16, stride=2)  # long: min(10, ceil(300 / 32)) = 10 uniform clips
    assert len(clips) == 10 and clips[0][0] == 0 and clips[-1][-1] == 298 and all(len(c) == 16 for c in clips)
    assert len(clip_indices(300, clip_len=16, stride=2, num_clips=3)) == 3
    with pytest.raises(ValueError, match="no frames"):
        clip_indices(0, clip_len=8)


def test_predict_cricket_with_deepmind_i3d(i3d_kinetics_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gif = tmp_path / "result.gif"
    code = main(["predict", str(i3d_kinetics_ckpt), str(DATA / "cricket_rgb.gif"), "--topk", "3", "--json", "--out", str(gif), "--backend", "torch"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert result["video"].endswith("cricket_rgb.gif")
    top = result["predictions"]
    assert len(top) == 3 and top[0]["label"] == "playing cricket" and top[0]["score"] > 0.9
    assert top[0]["score"] >= top[1]["score"] >= top[2]["score"]
    with Image.open(gif) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) == 79 and frames[0].shape == (224, 224, 3)
    assert frames[0][:10].mean() < frames[0][40:].mean()  # the dark label band is drawn at the top


def test_predict_and_stream_on_synthetic(make_config, synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from actionrec.engine.train import train

    cfg = make_config("m", train={"epochs": 1}, eval={"every": 0})
    train(cfg)
    ckpt = Path(cfg.output_dir) / "best.safetensors"
    video = synth_root / "move_up" / "move_up_000.mp4"
    predictor, meta = load_for_inference(ckpt, backend="torch")
    res = predict_video(predictor, meta, video, topk=2)
    assert res.probs.shape == (4,) and abs(res.probs.sum() - 1) < 1e-5
    assert len(res.topk) == 2 and res.topk[0][1] >= res.topk[1][1]
    assert res.topk[0][0] == meta.class_names[int(res.probs.argmax())]
    assert res.topk[0][1] == pytest.approx(float(res.probs.max()))
    capsys.readouterr()
    mp4 = tmp_path / "stream.mp4"
    assert main(["stream", str(ckpt), str(video), "--json", "--step", "2", "--smooth", "2", "--out", str(mp4), "--backend", "torch"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    # 8 frames, window 4 x stride 2 = 8 frames -> one full window at frame 7
    assert [e["frame"] for e in events] == [7] and len(events[0]["predictions"]) == 3
    import av

    with av.open(str(mp4)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8
    with pytest.raises(FileNotFoundError, match="video not found"):
        predict_video(predictor, meta, tmp_path / "missing.mp4")
