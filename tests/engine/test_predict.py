"""Prediction: DeepMind's cricket clip with the converted I3D weights; JSON output; the sliding window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from actionrec.cli import main
from actionrec.inference import Predictor

DATA = Path(__file__).resolve().parents[1] / "data"


def test_predict_cricket_with_deepmind_i3d(i3d_kinetics_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gif = tmp_path / "result.gif"
    code = main(["predict", str(i3d_kinetics_ckpt), str(DATA / "cricket_rgb.gif"), "--topk", "3", "--json", "--out", str(gif), "--backend", "torch", "--clips", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert result["video"].endswith("cricket_rgb.gif")
    top = result["predictions"]
    assert len(top) == 3 and top[0]["label"] == "playing cricket" and top[0]["score"] > 0.9
    assert top[0]["score"] >= top[1]["score"] >= top[2]["score"]
    with Image.open(gif) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    # 79 frames at 25 fps -> the GIF's 10 fps cap keeps 32; 224-px frames are drawn at 256 px
    assert len(frames) == 32 and frames[0].shape == (256, 256, 3)
    assert frames[0][:10].mean() < frames[0][40:].mean()  # the dark label band is drawn at the top


def test_predict_and_stream_on_synthetic(make_config, synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from actionrec.engine.train import train

    cfg = make_config("m", train={"epochs": 1}, eval={"every": 0})
    train(cfg)
    ckpt = Path(cfg.output_dir) / "best.safetensors"
    video = synth_root / "move_up" / "move_up_000.mp4"
    predictor = Predictor(ckpt, backend="torch", threads=1)
    meta = predictor.meta
    res = predictor.predict(video, topk=2)
    assert res.probs.shape == (4,) and abs(res.probs.sum() - 1) < 1e-5
    assert len(res.topk) == 2 and res.topk[0][1] >= res.topk[1][1]
    assert res.topk[0][0] == meta.class_names[int(res.probs.argmax())]
    assert res.topk[0][1] == pytest.approx(float(res.probs.max()))
    capsys.readouterr()
    mp4 = tmp_path / "stream.mp4"
    assert main(["stream", str(ckpt), str(video), "--json", "--step", "2", "--smooth", "2", "--out", str(mp4), "--backend", "torch"]) == 0
    events = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    # 8 frames, window of 4 frames 2 apart spans (4 - 1) * 2 + 1 = 7 frames -> full at frame 6; step 2 -> frame 8 is past the end
    assert [e["frame"] for e in events] == [6] and len(events[0]["predictions"]) == 3
    import av

    with av.open(str(mp4)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8
    with pytest.raises(FileNotFoundError, match="video not found"):
        predictor.predict(tmp_path / "missing.mp4")
