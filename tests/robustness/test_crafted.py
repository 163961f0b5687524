"""A bounded sample of hostile model files, pickles, recipes and arguments through the real CLI.

Each must end in a clean one-line error naming the file or field (exit 2) or, for the valid controls, a
correct run; no traceback, hang, crash or payload execution, and little memory (every file ≤ 1 MB).
The full set runs in ``benchmarks/robustness/{models,configs}.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.cli_checks import run_cases, sample, summarize
from tests.robustness.crafted import all_model_cases
from tests.robustness.recipes import all_config_cases


def test_crafted_inputs_fail_cleanly(tmp_path: Path) -> None:
    cases = all_model_cases(tmp_path) + all_config_cases(tmp_path)
    assert len(cases) > 150
    for c in cases:
        for arg in c.argv:
            p = Path(arg)
            if p.is_file() and tmp_path in p.parents:
                assert p.stat().st_size <= 1 << 20, p
    chosen = sample(cases, 60)
    assert len({c.cls for c in chosen}) == len({c.cls for c in cases})
    outcomes = run_cases(chosen, timeout=60, worker_per_class=False)
    bad = [f"{o.case.cls}/{o.case.name}: {o.outcome}: {o.detail}" for o in outcomes if o.outcome not in ("ok", "clean")]
    assert bad == []
    assert all(o.outcome == ("clean" if o.case.must_fail else "ok") for o in outcomes)
    assert not any(Path(c.marker).exists() for c in chosen if c.marker)
    rows = summarize(outcomes)
    assert max(r["peak_rss_mb"] for r in rows) < 1024, rows


@pytest.mark.parametrize("name", ["classes_7_of_5", "flow_meta_rgb_graph"])
def test_onnx_metadata_must_fit_the_graph(tmp_path: Path, name: str) -> None:
    from actionrec.deploy.onnx_export import read_onnx_meta
    from actionrec.errors import ActionrecError
    from tests.robustness.crafted import tiny_meta, tiny_onnx

    meta = tiny_meta(arch_kwargs={})
    bad = {"classes_7_of_5": {**meta, "num_classes": 7, "class_names": None},
           "flow_meta_rgb_graph": {**meta, "modality": "flow", "preprocess": {**meta["preprocess"], "mean": [0.5], "std": [0.5]}}}[name]
    assert read_onnx_meta(tiny_onnx(tmp_path / "ok.onnx", meta=meta)).num_classes == 5
    path = tiny_onnx(tmp_path / f"{name}.onnx", meta=bad)
    with pytest.raises(ActionrecError, match=rf"{name}\.onnx: the metadata says"):
        read_onnx_meta(path)
