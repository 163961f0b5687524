"""``actionrec serve`` refuses unsafe or invalid settings before it loads a model or opens a port."""

from __future__ import annotations

import pytest

from actionrec.cli import main


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.7", "::", "example.org"])
def test_non_loopback_address_needs_a_token(host: str, tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("ACTIONREC_TOKEN", raising=False)
    assert main(["serve", str(tmp_path / "missing.safetensors"), "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"--host {host}" in err and "--token" in err


@pytest.mark.parametrize(("flag", "value"), [("--max-batch", "0"), ("--timeout", "0"), ("--max-upload-mb", "-1"), ("--port", "70000"),
                                           ("--max-uploads", "0"), ("--max-uploads-per-client", "0"), ("--job-workers", "0"),
                                           ("--job-retention", "5x"), ("--job-max-duration", "0h")])
def test_invalid_settings_are_named(flag: str, value: str, tmp_path, capsys) -> None:  # noqa: ANN001
    assert main(["serve", str(tmp_path / "m.safetensors"), flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_missing_model_is_a_one_line_error(tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ACTIONREC_TOKEN", "secret")  # the token from the environment allows a public address
    assert main(["serve", str(tmp_path / "nope.safetensors"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "nope.safetensors" in err and "internal error" not in err


def test_the_upload_caps_and_job_flags_are_in_the_help(capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--max-uploads ", "--max-uploads-per-client", "--state-dir", "--media-root", "--max-jobs", "--job-workers",
                 "--job-retention", "--job-max-upload-mb", "--job-max-duration", "--no-jobs"):
        assert flag in out, flag


def test_a_state_directory_in_use_is_a_one_line_error(tiny_ckpt, tmp_path, capsys) -> None:  # noqa: ANN001
    from actionrec.serve.jobs import JobManager, JobSettings

    held = JobManager(JobSettings(state_dir=tmp_path))
    try:
        assert main(["serve", str(tiny_ckpt), "--state-dir", str(tmp_path), "--no-optimize", "--threads", "1"]) == 2
    finally:
        held.stop()
    assert "in use by another actionrec serve process" in capsys.readouterr().err
