"""``--engine`` options: checked before any work, with or without the ray extra installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrec.cli import main

VIDEO = str(Path(__file__).parents[1] / "data" / "short.mp4")


def test_engine_options_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for args, message in ((["--ray-workers", "2"], "--ray-workers needs --engine ray"),
                          (["--engine", "ray", "--shard", "0/2"], "use one or the other"),
                          (["--engine", "ray", "--workers", "2"], "use --ray-workers"),
                          (["--engine", "ray", "--ray-workers", "3,1"], "1 <= MIN <= MAX"),
                          (["--engine", "ray", "--threads", "2"], "--cpus-per-worker")):
        assert main(["predict", "m.safetensors", VIDEO, *args]) == 2
        assert message in capsys.readouterr().err
    assert main(["prep", "frames", "in", "out", "--engine", "ray", "--workers", "2"]) == 2
    assert "--workers is the local engine's; with --engine ray use --ray-workers" in capsys.readouterr().err


def test_without_the_extra_the_option_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    import actionrec.distributed.cluster as cluster

    monkeypatch.setattr(cluster, "ray_available", lambda: False)
    for cmd in (["predict", "m.safetensors", VIDEO], ["prep", "frames", "in", "out"]):
        assert main([*cmd, "--engine", "ray"]) == 2
        assert "pip install 'actionrec[ray]'" in capsys.readouterr().err
