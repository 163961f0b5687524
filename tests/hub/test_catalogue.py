"""The built-in catalogue: every entry is fetchable in principle (converter, labels, architecture, digest, URL or a reason)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actionrec.convert.registry import list_converters
from actionrec.hub.download import MIRROR_ENV, candidates
from actionrec.models.registry import DIGEST_ALGOS, get_pretrained, list_models, list_pretrained
from actionrec.resources import class_names

ISSUE_LIST = {  # what the catalogue must hold (issue 21), by upstream
    "r2plus1d_18_kinetics400_torchvision", "r3d_18_kinetics400_torchvision", "mc3_18_kinetics400_torchvision",
    "r2plus1d_34_kinetics400_gluoncv", "r2plus1d_mm_34_kinetics400_mmaction2", "i3d_kinetics400",
    "i3d_rgb_imagenet_kinetics400_piergiaj", "i3d_flow_imagenet_kinetics400_piergiaj", "r2plus1d_18_kinetics400_mindspore",
}


def test_catalogue_entries_are_complete() -> None:
    names = list_pretrained()
    assert ISSUE_LIST <= set(names)
    for name in names:
        ws = get_pretrained(name)
        assert ws.arch in list_models() and ws.source in list_converters(), name
        assert len(class_names(ws.labels)) > 0 and ws.description and ws.license, name
        assert ws.accuracy is not None and ws.accuracy.reference, f"{name}: published accuracy with its source"
        assert ws.urls or ws.pip_requirement or "by hand" in ws.notes, name
        assert all(u.startswith("https://") for u in ws.urls), name
        assert not ws.digest or ws.digest_algo in DIGEST_ALGOS, name
        if ws.digest_algo == "sha256-prefix":  # torch.hub / mmaction2: the prefix is in the file name
            assert f"-{ws.digest_value}." in ws.file_name, name
        if ws.digest_algo == "sha1" and ws.source == "gluoncv":  # GluonCV: the file name carries sha1[:8]
            assert f"-{ws.digest_value[:8]}.pth" == ws.file_name[-13:], name
    defaults = [get_pretrained(n) for n in names if get_pretrained(n).default]
    assert len({w.arch for w in defaults}) == len(defaults)  # at most one default per architecture
    assert get_pretrained("r2plus1d_34", "default").name == "r2plus1d_34_kinetics400_gluoncv"


def test_mirror_replaces_the_host_and_keeps_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ws = get_pretrained("r3d_18_kinetics400_torchvision")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert candidates(ws) == ["https://download.pytorch.org/models/r3d_18-b3b3357e.pth"]
    monkeypatch.setenv(MIRROR_ENV, "http://10.0.0.5:8080/zoo/")
    assert candidates(ws) == ["http://10.0.0.5:8080/zoo/models/r3d_18-b3b3357e.pth", "http://10.0.0.5:8080/zoo/r3d_18-b3b3357e.pth"]
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert candidates(ws) == [str(tmp_path / "models/r3d_18-b3b3357e.pth"), str(tmp_path / "r3d_18-b3b3357e.pth")]


def test_weights_list_shows_every_entry_without_importing_torch(tmp_path: Path) -> None:
    code = ("import sys; from actionrec.cli import main; rc = main(['weights', 'list']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    env = {"ACTIONREC_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2])
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for name in list_pretrained():
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.rstrip().endswith("no") and "kinetics400" in row
    assert "71.1/89.3 Kinetics-400 test" in next(line for line in lines if line.startswith("i3d_rgb_imagenet"))
    js = subprocess.run([sys.executable, "-m", "actionrec.cli", "weights", "list", "--json", "--arch", "i3d"],
                        capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2])
    rows = json.loads(js.stdout)["weights"]
    assert {r["name"] for r in rows} == set(list_pretrained("i3d")) and all(r["cached"] == "no" for r in rows)


def test_unknown_names_and_nothing_to_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from actionrec.cli import main

    monkeypatch.setenv("ACTIONREC_HOME", str(tmp_path))
    assert main(["weights", "fetch", "r2plus1d_18_kinetics400_torchvison"]) == 2
    assert "did you mean 'r2plus1d_18_kinetics400_torchvision'" in capsys.readouterr().err
    assert main(["weights", "verify"]) == 2
    assert f"nothing to verify: no weight set is cached under {tmp_path}" in capsys.readouterr().err
    assert main(["weights", "path", "i3d_kinetics400"]) == 2
    assert "is not cached" in capsys.readouterr().err
    assert main(["weights", "fetch", "r2plus1d_18_kinetics400_mindspore"]) == 2
    err = capsys.readouterr().err
    assert "no download is published" in err and "actionrec weights import r2plus1d_18_kinetics400_mindspore FILE" in err
    assert list(tmp_path.rglob("*.part")) == []


def test_docs_table_is_the_catalogue() -> None:
    """docs/pretrained.md's table is tools/weights_table.py's output (rerun it after changing the catalogue)."""
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "pretrained.md").read_text()
    table = doc.split("<!-- catalogue table: python tools/weights_table.py -->\n")[1].split("<!-- end of catalogue table -->")[0]
    run = subprocess.run([sys.executable, "tools/weights_table.py"], capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr
    assert table == run.stdout


def test_docs_model_cards_are_the_catalogue_and_the_recorded_benchmarks() -> None:
    """docs/pretrained.md's model cards are ``tools/weights_table.py --cards benchmarks/results/cpu_inference*.json``:
    one per weight set, its GFLOPs and parameters counted, its CPU figures from the committed benchmark run."""
    root = Path(__file__).parents[2]
    doc = (root / "docs" / "pretrained.md").read_text()
    marker = "<!-- model cards: python tools/weights_table.py --cards benchmarks/results/cpu_inference*.json -->\n"
    cards = doc.split(marker)[1].split("<!-- end of model cards -->")[0]
    bench = sorted(str(p.relative_to(root)) for p in (root / "benchmarks" / "results").glob("cpu_inference*.json"))
    assert bench, "no recorded benchmark run in benchmarks/results"
    run = subprocess.run([sys.executable, "tools/weights_table.py", "--cards", *bench], capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr
    assert cards == run.stdout
    from actionrec.models.registry import list_pretrained

    assert [line.split("`")[1] for line in cards.splitlines() if line.startswith("### ")] == list_pretrained()
