"""Weights by name against a real HTTP server on 127.0.0.1: fetch → verify → convert → predict, and every failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.errors import UsageError
from tests.hub.conftest import Served, WeightServer, cfg_json, tree

VIDEO = Path(__file__).parents[1] / "data" / "short.mp4"


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("zoo", ["torchvision", "piergiaj", "gluoncv", "mmaction2"])
def test_fetch_convert_predict_then_no_network(zoo: str, hub: WeightServer, served_files: dict[str, Served],
                                               tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    s = served_files[zoo]
    code, out, err = _cli(capsys, "weights", "fetch", s.cfg.name)
    assert code == 0, err
    ckpt = Path(out.strip())
    assert ckpt == tmp_path / "home" / "weights" / f"{s.cfg.name}.safetensors" and ckpt.is_file()
    record = json.loads(ckpt.with_suffix(".json").read_text())
    assert record["origin"] == hub.url + s.url_path and record["file_size"] == len(s.body)
    assert hub.full_downloads(s.url_path) == 1
    hub.stop()  # from here on, any network access would fail
    code, out, err = _cli(capsys, "predict", s.cfg.name, str(VIDEO), "--json", "--topk", "2", "--clips", "1")
    assert code == 0, err
    row = json.loads(out.splitlines()[0])
    assert len(row["predictions"]) == 2 and row["predictions"][0]["label"] and "error" not in row
    code, out, err = _cli(capsys, "weights", "verify", s.cfg.name)
    assert code == 0 and f"{s.cfg.name}: ok" in out, err


def test_api_names_and_catalogue_preprocessing(hub: WeightServer, served_files: dict[str, Served]) -> None:
    import actionrec
    from actionrec.inference import Predictor

    gcv = served_files["gluoncv"].cfg
    model = actionrec.create_model("r2plus1d_18", pretrained=gcv.name, num_classes=5)  # fine-tuning start
    assert model.meta.num_classes == 5 and model.meta.preprocess.frame_stride == 2  # the catalogue's input
    assert actionrec.load_model(gcv.name).meta.class_names[0] == "abseiling"
    same = actionrec.create_model("r2plus1d_18", pretrained="testset_gluoncv")  # by tag
    assert same.meta.num_classes == 400
    with pytest.raises(UsageError, match="is for mc3_18, not r2plus1d_18"):
        actionrec.create_model("r2plus1d_18", pretrained=served_files["torchvision"].cfg.name)
    pred = Predictor(served_files["torchvision"].cfg.name)
    assert pred.predict(str(VIDEO)).topk[0][0]
    assert hub.full_downloads(served_files["gluoncv"].url_path) == 1


def test_dropped_connection_resumes_with_range(hub: WeightServer, served_files: dict[str, Served],
                                               capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    s = served_files["piergiaj"]
    hub.modes[s.url_path] = "drop"
    code, _, err = _cli(capsys, "weights", "fetch", s.cfg.name)
    assert code == 0, err
    ranges = [r for p, r in hub.requests if p == s.url_path]
    assert ranges[0] == "" and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0  # resumed, not restarted
    assert "connection lost after" in caplog.text and "resuming" in caplog.text


@pytest.mark.parametrize("fault, message", [
    ("hash", r"is not the published file \(126178\d\d\d bytes\): its SHA-1 is [0-9a-f]{16}…, expected [0-9a-f]{16}…; nothing was kept"),
    ("html", r"sent an HTML page, not weights"),
    ("404", r"not found at http://127\.0\.0\.1:\d+/torch/models/r2plus1d_v1_resnet18_kinetics400-\w{8}\.pth \(HTTP 404\)"),
    ("truncated", r"is not the published file \(truncated: 42\.1 MB of about 126 MB\)"),
])
def test_bad_downloads_exit_2_and_leave_nothing(fault: str, message: str, hub: WeightServer, served_files: dict[str, Served],
                                                tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    s = served_files["gluoncv"]
    if fault == "hash":
        hub.files[s.url_path] = s.body[:-1] + bytes([s.body[-1] ^ 1])
    elif fault == "html":
        hub.modes[s.url_path] = "html"
    elif fault == "404":
        del hub.files[s.url_path]
    else:
        hub.files[s.url_path] = s.body[: len(s.body) // 3]
        import dataclasses

        from actionrec.models import registry
        registry._PRETRAINED._items[s.cfg.name] = dataclasses.replace(s.cfg, size_mb=len(s.body) / 1e6)
    code, out, err = _cli(capsys, "weights", "fetch", s.cfg.name)
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert lines[-1].startswith(f"actionrec weights: error: {s.cfg.name}: ") and len(lines[-1]) <= 360
    import re
    assert re.search(message, lines[-1]), lines[-1]
    assert tree(tmp_path / "home") == []


def test_cache_hit_touches_no_network_even_with_upstream_unreachable(hub: WeightServer, served_files: dict[str, Served],
                                                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    s = served_files["torchvision"]
    assert _cli(capsys, "weights", "fetch", s.cfg.name)[0] == 0
    monkeypatch.setenv("ACTIONREC_WEIGHTS_MIRROR", "http://127.0.0.1:9")  # discard port: nothing listens
    import socket

    def no_network(*a: object, **k: object) -> None:
        raise AssertionError("network touched")

    monkeypatch.setattr(socket, "create_connection", no_network)
    code, out, err = _cli(capsys, "weights", "fetch", s.cfg.name)
    assert code == 0 and out.strip().endswith(".safetensors"), err


def test_two_concurrent_fetches_end_with_one_good_file(hub: WeightServer, served_files: dict[str, Served], tmp_path: Path) -> None:
    s = served_files["torchvision"]
    hub.modes[s.url_path] = "slow"
    child = ("import sys; from tests.hub.conftest import register_from_json; register_from_json(sys.argv[1]); "
             "from actionrec.cli import main; sys.exit(main(['weights', 'fetch', sys.argv[2]]))")
    env = {**__import__("os").environ}
    procs = [subprocess.Popen([sys.executable, "-c", child, cfg_json(s.cfg), s.cfg.name], cwd=Path(__file__).parents[2],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]  # the same path
    assert sum("another process is fetching it; waiting" in err for _, err in results) == 1  # they did overlap
    assert hub.full_downloads(s.url_path) == 1  # the second waited for the first, then used its file
    files = tree(tmp_path / "home")
    assert files == sorted([f"sources/{s.cfg.name}/{s.cfg.file_name}", f"weights/{s.cfg.name}.json",
                            f"weights/{s.cfg.name}.safetensors"]), files


def test_folder_mirror_and_import(hub: WeightServer, served_files: dict[str, Served], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    s = served_files["piergiaj"]
    flat = tmp_path / "usb"
    flat.mkdir()
    (flat / s.cfg.file_name).write_bytes(s.body)  # a folder with the files by name, as copied by hand
    monkeypatch.setenv("ACTIONREC_WEIGHTS_MIRROR", str(flat))
    assert _cli(capsys, "weights", "fetch", s.cfg.name)[0] == 0
    assert hub.requests == []
    t = served_files["torchvision"]
    bad = tmp_path / "download.pth"
    bad.write_bytes(t.body[:1000])
    code, _, err = _cli(capsys, "weights", "import", t.cfg.name, str(bad))
    assert code == 2 and "is not the published file" in err and not (tmp_path / "home" / "sources" / t.cfg.name / t.cfg.file_name).exists()
    good = tmp_path / "by_hand.pth"
    good.write_bytes(t.body)
    code, out, err = _cli(capsys, "weights", "import", t.cfg.name, str(good))
    assert code == 0 and out.strip().endswith(f"{t.cfg.name}.safetensors"), err
    code, out, _ = _cli(capsys, "weights", "path", t.cfg.name)
    assert code == 0 and Path(out.strip()).is_file()


def test_import_without_a_published_hash_checks_the_model_and_records_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    """MindVideo publishes neither a stable URL nor a hash: import converts, checks arch and classes, records the SHA-256."""
    import dataclasses

    from actionrec.hub.store import hash_file
    from actionrec.models import registry
    from tests.convert.seeded import seeded_array
    from tests.convert.test_mindspore import REF, write_ckpt

    monkeypatch.setenv("ACTIONREC_HOME", str(tmp_path / "home"))
    shipped = registry.get_pretrained("r2plus1d_18_kinetics400_mindspore")
    cfg = dataclasses.replace(shipped, tag="testset_mindspore", labels="ucf101", file_name="r2plus1d18_ucf101.ckpt")
    monkeypatch.setitem(registry._PRETRAINED._items, cfg.name, cfg)
    rec = next(r for r in REF["models"] if r["model"] == "R2Plus1d18")  # 101 classes
    write_ckpt({k: seeded_array(k, tuple(s)) for k, s in rec["keys"]}, tmp_path / "mindvideo.ckpt")
    code, out, err = _cli(capsys, "weights", "import", cfg.name, str(tmp_path / "mindvideo.ckpt"))
    assert code == 0, err
    record = json.loads(Path(out.strip()).with_suffix(".json").read_text())
    assert record["file_sha256"] == hash_file(tmp_path / "mindvideo.ckpt")["sha256"] and record["catalogue_digest"] is None
    assert "upstream publishes no checksum" in caplog.text
    wrong = dataclasses.replace(cfg, tag="testset_mindspore_k400", labels="kinetics400")  # the file has 101 classes
    monkeypatch.setitem(registry._PRETRAINED._items, wrong.name, wrong)
    code, _, err = _cli(capsys, "weights", "import", wrong.name, str(tmp_path / "mindvideo.ckpt"))
    assert code == 2 and "does not convert as mindspore weights of a r2plus1d_18" in err
    assert not (tmp_path / "home" / "weights" / f"{wrong.name}.safetensors").exists()
    assert not any((tmp_path / "home" / "sources" / wrong.name).iterdir())
