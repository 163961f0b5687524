"""`actionrec prep` on one output from two processes, after `kill -9`, with damaged or colliding inputs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.io import output_lock
from actionrec.prep.common import FLOW_LAYOUT, FRAMES_LAYOUT, check_folder
from tests.robustness import prep_trials as pt


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Videos, their frames and the flow of an undisturbed run (the reference)."""
    root = tmp_path_factory.mktemp("prep")
    vids = pt.make_videos(root)
    frames, flow = root / "frames", root / "flow"
    assert main(["prep", "frames", str(vids), str(frames), *pt.FRAMES_ARGS]) == 0
    assert main(["prep", "flow", str(frames), str(flow), *pt.FLOW_ARGS]) == 0
    return {"vids": vids, "frames": frames, "flow": flow}


@pytest.mark.parametrize("step", ["frames", "flow"])
def test_two_runs_on_one_output(step: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    src = inputs["vids"] if step == "frames" else inputs["frames"]
    cmd = (pt.frames_cmd if step == "frames" else pt.flow_cmd)(src, tmp_path / "out")
    pair = pt.run_pair(cmd, tmp_path / "out")
    assert pair.rcs[0] == 0
    if pair.overlapped:  # the second run stops at once, naming the holder
        assert pair.rcs[1] == 2 and pair.refused == 1
        assert "in use by actionrec prep" in pair.errs[1] and "pid" in pair.errs[1]
    assert pt.tree(tmp_path / "out") == pt.tree(inputs[step])  # nothing corrupt, nothing lost
    assert pt.temp_entries(tmp_path / "out") == []


def test_second_run_names_the_holder(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    with output_lock(tmp_path / "out", purpose="actionrec prep flow"):
        assert main(["prep", "flow", str(inputs["frames"]), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "in use by actionrec prep flow" in err and "wait for it to finish" in err


def test_shards_of_one_job_run_side_by_side(inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    procs = [subprocess.Popen(pt.frames_cmd(inputs["vids"], out) + ["--shard", f"{i}/2"], env=pt.env(),
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:  # each shard holds its own lock
        assert p.wait() == 0, p.stderr.read()
    assert pt.tree(out) == pt.tree(inputs["frames"])


@pytest.mark.parametrize("step", ["frames", "flow"])
def test_kill_9_then_rerun_leaves_no_temporary_files(step: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    src = inputs["vids"] if step == "frames" else inputs["frames"]
    cmd = (pt.frames_cmd if step == "frames" else pt.flow_cmd)(src, tmp_path / "out")
    left, _ = pt.kill_during(cmd, tmp_path / "out")
    assert left, "the run was killed before it wrote anything: no test"
    assert subprocess.run(cmd, env=pt.env()).returncode == 0
    assert pt.temp_entries(tmp_path / "out") == []
    assert pt.tree(tmp_path / "out") == pt.tree(inputs[step])


def test_inconsistent_published_folder_is_redone(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    import shutil

    out = tmp_path / "flow"
    shutil.copytree(inputs["flow"], out)
    bad = out / "b" / "xvid"
    for k in range(100, 164):  # as in the issue: n_flow says 163, flow_x/flow_y files are missing
        (bad / f"flow_x_{k:05d}.jpg").unlink()
    (bad / "flow_y_00150.jpg").unlink()
    assert check_folder(bad, FLOW_LAYOUT, deep=False) is not None
    capsys.readouterr()
    assert main(["prep", "flow", str(inputs["frames"]), str(out), *pt.FLOW_ARGS]) == 0
    assert "1 done, 1 already done" in capsys.readouterr().out
    assert check_folder(bad, FLOW_LAYOUT, deep=True) is None
    assert pt.tree(bad) == pt.tree(inputs["flow"] / "b" / "xvid")


def test_verification_refuses_incomplete_folders(tmp_path: Path) -> None:
    d = tmp_path / "v"
    d.mkdir()
    (d / "fps").write_text("30\n")
    (d / "n_frames").write_text("2\n")
    jpeg = b"\xff\xd8" + b"\0" * 10 + b"\xff\xd9"
    (d / "img_00001.jpg").write_bytes(jpeg)
    assert "1 file(s) are missing" in check_folder(d, FRAMES_LAYOUT, deep=False)
    (d / "img_00002.jpg").write_bytes(jpeg[:-2])  # cut short
    assert check_folder(d, FRAMES_LAYOUT, deep=False) is None
    assert "img_00002.jpg is empty or not a complete JPEG" in check_folder(d, FRAMES_LAYOUT, deep=True)
    (d / "n_frames").write_text("x\n")
    assert "no readable n_frames" in check_folder(d, FRAMES_LAYOUT, deep=False)


def test_folder_not_written_by_prep_is_left_alone(inputs: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    vids = pt.make_videos(tmp_path)
    out = tmp_path / "out"
    (out / "a" / "short").mkdir(parents=True)
    (out / "a" / "short" / "mine.txt").write_text("user data")
    assert main(["prep", "frames", str(vids), str(out), "--short-side", "32", "--no-progress"]) == 1
    assert "not written by actionrec prep" in capsys.readouterr().out
    assert (out / "a" / "short" / "mine.txt").read_text() == "user data"


def test_name_collision_stops_before_any_work(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    vids = pt.make_videos(tmp_path)
    (vids / "a" / "short.avi").write_bytes((vids / "b" / "xvid.avi").read_bytes())
    assert main(["prep", "frames", str(vids), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "a/short.avi and a/short.mp4 -> a/short" in err and "rename" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("step", "args", "message"), [
    ("flow", ["--chunk", "-3"], "--chunk must be an integer >= 1, got -3"),
    ("flow", ["--chunk", "0"], "--chunk must be"),
    ("flow", ["--workers", "0"], "--workers must be an integer >= 1, got 0"),
    ("flow", ["--workers", "-2"], "--workers must be"),
    ("flow", ["--bound", "nan"], "--bound must be a finite number > 0"),
    ("flow", ["--bound", "-1"], "--bound must be"),
    ("flow", ["--quality", "0"], "--quality must be an integer in 1..100"),
    ("flow", ["--short-side", "0"], "--short-side must be"),
    ("flow", ["--tvl1-scales", "0"], "--tvl1-scales must be"),
    ("flow", ["--tvl1-warps", "-1"], "--tvl1-warps must be"),
    ("frames", ["--workers", "-2"], "--workers must be"),
    ("frames", ["--quality", "101"], "--quality must be"),
    ("frames", ["--short-side", "-5"], "--short-side must be"),
])
def test_bad_numbers_are_refused(step: str, args: list[str], message: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "in").mkdir()
    assert main(["prep", step, str(tmp_path / "in"), str(tmp_path / "out"), *args, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_synthetic_workers_checked(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["prep", "synthetic", str(tmp_path / "s"), "--workers", "-2"]) == 2
    assert "--workers must be an integer >= 1, got -2" in capsys.readouterr().err


def test_output_must_differ_from_input(inputs: dict[str, Path], capsys) -> None:  # noqa: ANN001
    assert main(["prep", "flow", str(inputs["frames"]), str(inputs["frames"]), "--no-progress"]) == 2
    assert "must differ from the frames folder" in capsys.readouterr().err


def test_shards_share_the_output_and_exclude_an_unsharded_run(tmp_path: Path) -> None:
    """Shards of one job run side by side; an unsharded run (which sweeps every temporary folder) waits for none of them."""
    from actionrec.errors import LockedError
    from actionrec.prep.common import locked_output

    with locked_output(tmp_path, purpose="prep flow", shard=(0, 2)):
        with locked_output(tmp_path, purpose="prep flow", shard=(1, 2)):
            with pytest.raises(LockedError, match="in use by prep flow shard"):
                with locked_output(tmp_path, purpose="prep flow", shard=(0, 1)):
                    pass
            with pytest.raises(LockedError):  # the same shard twice
                with locked_output(tmp_path, purpose="prep flow", shard=(0, 2)):
                    pass
    with locked_output(tmp_path, purpose="prep flow", shard=(0, 1)):
        with pytest.raises(LockedError, match="in use by prep flow"):
            with locked_output(tmp_path, purpose="prep flow", shard=(1, 2)):
                pass
    with locked_output(tmp_path, purpose="prep flow", shard=(0, 1)):  # all released
        pass
