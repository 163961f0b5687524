"""X3D weights by name from a local HTTP server: PyTorchVideo's real catalogue entry (no published hash) and an
mmaction2 entry (SHA-256 prefix): fetch → convert → the catalogue's input in the metadata → predict."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from actionrec.cli import main
from actionrec.models import registry
from actionrec.models.registry import PretrainedCfg, get_pretrained
from tests.convert.seeded import seeded_array
from tests.convert.test_x3d import MM
from tests.hub.conftest import WeightServer

VIDEO = Path(__file__).parents[1] / "data" / "short.mp4"


def _pyth(tmp: Path) -> bytes:
    import actionrec

    sd = {k: torch.from_numpy(seeded_array(k, tuple(v.shape), noise=True)) for k, v in actionrec.create_model("x3d_xs").state_dict().items()}
    torch.save({"model_state": sd, "epoch": 300, "optimizer_state": {"state": {}}}, tmp / "X3D_XS.pyth")
    return (tmp / "X3D_XS.pyth").read_bytes()


def _mmaction2(tmp: Path) -> tuple[PretrainedCfg, bytes, str]:
    rec = next(r for r in MM["models"] if r["num_classes"] == 400)
    sd = {k: torch.from_numpy(seeded_array(k, tuple(s), noise=True)) for k, s in MM["networks"][rec["network"]]}
    torch.save({"state_dict": sd}, tmp / "mm.pth")
    body = (tmp / "mm.pth").read_bytes()
    prefix = hashlib.sha256(body).hexdigest()[:8]
    name = f"x3d_s_13x6x1_facebook-kinetics400-rgb_20201027-{prefix}.pth"
    path = f"/mmaction/v1.0/recognition/x3d/facebook/{name}"
    cfg = PretrainedCfg(arch="x3d_s", tag="testset_mmaction2", source="mmaction2", labels="kinetics400", description="test",
                        urls=(f"https://download.openmmlab.com{path}",), file_name=name, digest=f"sha256-prefix:{prefix}",
                        preprocess={"resize_short": 182, "crop_size": 182})
    return cfg, body, path


def _fetch_and_predict(name: str, capsys: pytest.CaptureFixture) -> dict:
    assert main(["weights", "fetch", name]) == 0, capsys.readouterr().err
    ckpt = Path(capsys.readouterr().out.strip())
    assert main(["predict", name, str(VIDEO), "--json", "--topk", "2", "--clips", "1"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert len(row["predictions"]) == 2 and row["predictions"][0]["label"] and "error" not in row
    assert main(["info", str(ckpt), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_x3d_weights_fetch_convert_predict(server: WeightServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("ACTIONREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACTIONREC_WEIGHTS_MIRROR", server.url)
    ptv = get_pretrained("x3d_xs_kinetics400_pytorchvideo")  # the real entry: the mirror keeps upstream's path
    server.files["/pytorchvideo/model_zoo/kinetics/X3D_XS.pyth"] = _pyth(tmp_path)
    info = _fetch_and_predict(ptv.name, capsys)
    assert info["arch"] == "x3d_xs" and info["arch_kwargs"] == {} and info["num_classes"] == 400
    pre = info["preprocess"]
    assert (pre["clip_len"], pre["frame_stride"], pre["resize_short"], pre["crop_size"]) == (4, 12, 182, 182)

    cfg, body, path = _mmaction2(tmp_path)
    monkeypatch.setitem(registry._PRETRAINED._items, cfg.name, cfg)
    server.files[path] = body
    info = _fetch_and_predict(cfg.name, capsys)
    assert info["arch"] == "x3d_s" and info["arch_kwargs"] == {"layout": "mmaction2"}
    pre = info["preprocess"]
    assert (pre["clip_len"], pre["frame_stride"], pre["resize_short"], pre["crop_size"]) == (13, 6, 182, 182)
    assert pre["std"] == pytest.approx([57.38 / 255] * 3)
