"""The command line starts without torch: ``actionrec --help`` and every ``actionrec CMD --help``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from actionrec.cli import build_parser

PROBE = ("import sys, runpy; sys.argv = ['actionrec'] + sys.argv[1:] + ['--help']\n"
         "try:\n    runpy.run_module('actionrec.cli', run_name='__main__')\n"
         "except SystemExit as e:\n    code = e.code\n"
         "print('TORCH=%d CODE=%s' % ('torch' in sys.modules, code))")


def _commands() -> list[list[str]]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    out = [[]]
    for name, parser in sub.choices.items():
        nested = [a for a in parser._actions if getattr(a, "choices", None) and a.dest.endswith("_command")]
        out += [[name, n] for n in nested[0].choices] if nested else [[name]]
    return out


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a) or "actionrec")
def test_help_does_not_import_torch(argv: list[str]) -> None:
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120, check=False)
    assert "usage: actionrec" in p.stdout, p.stderr
    assert "TORCH=0 CODE=0" in p.stdout, f"actionrec {' '.join(argv)} --help imported torch (or failed): {p.stderr[-500:]}"


def test_import_actionrec_is_lazy() -> None:
    code = "import sys, actionrec; assert 'torch' not in sys.modules; actionrec.Predictor; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
