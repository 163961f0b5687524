"""Compiled .pt2 packages: export through the CLI, parity, loading, validation, the checkpoint cache, PT2E int8.

One tiny R(2+1)D package is compiled per module (AOTInductor + the C++ compiler: tens of seconds);
the other tests reuse it or tamper with copies of it.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.deploy.onnx_export import ExportError
from actionrec.deploy.backends import load_backend
from actionrec.deploy.pt2 import cached_pt2_path, cpu_flags, cxx_compiler, export_pt2, find_cached_pt2, load_pt2, read_pt2_meta
from actionrec.errors import UsageError
from actionrec.models.x3d import SqueezeExcitation
from tests.deploy.conftest import tiny_model

pytestmark = [pytest.mark.slow, pytest.mark.numerics,
              pytest.mark.skipif(cxx_compiler() is None, reason="pt2 export needs a C++ compiler (g++)")]

DATA = Path(__file__).parents[1] / "data"
CLASSES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(checkpoint, package, export record) made by `actionrec export --format pt2`."""
    d = tmp_path_factory.mktemp("pt2")
    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    model.meta.class_names = CLASSES
    ckpt = save_model(model, d / "tiny.safetensors")
    out = d / "tiny.pt2"
    assert main(["export", str(ckpt), "--format", "pt2", "-o", str(out), "--json", str(d / "export.json")]) == 0
    return ckpt, out, json.loads((d / "export.json").read_text())["export"]


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the package, passing every member through ``edit(name, bytes) -> [(name, bytes), ...]``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            for name, data in edit(info.filename, zin.read(info)):
                zout.writestr(name, data)
    return dst


def _edit_meta(fn):
    def edit(name, data):
        if name.endswith("wrapper_metadata.json"):
            d = json.loads(data)
            fn(d)
            data = json.dumps(d).encode()
        return [(name, data)]

    return edit


def test_export_parity_dynamic_batch_and_time(exported):
    ckpt, out, report = exported
    assert report["precision"] == "fp32" and report["max_abs_diff"] <= 1e-3
    assert report["input_dims"][0] == [1, 1024]  # dynamic batch
    t_lo, t_hi = report["input_dims"][2]
    assert t_lo < 8 <= t_hi  # dynamic clip length for R(2+1)D
    assert [list(s) for s in report["checked_shapes"]][:2] == [[2, 3, 8, 32, 32], [1, 3, 8, 32, 32]]
    meta, info = read_pt2_meta(out)
    assert meta.class_names == CLASSES and meta.arch == "r2plus1d_18" and info["torch"] == torch.__version__
    # the package vs the checkpoint's eager model, at batch sizes and a clip length not traced
    model = load_backend(ckpt, backend="torch", optimize=False)
    pred = load_pt2(out)
    assert pred.info["load_s"] < 5
    for shape in [(3, 3, 8, 32, 32), (1, 3, 8, 32, 32), (2, 3, t_lo, 32, 32)]:
        x = torch.randn(shape)
        assert (pred(x) - model(x)).abs().max() <= 1e-3


def test_predictor_backends_and_input_checks(exported):
    ckpt, out, _ = exported
    pred = load_backend(out)  # auto: .pt2 → pt2
    assert pred.backend == "pt2" and pred.meta.class_names == CLASSES
    with pytest.raises(UsageError, match="height must be 32"):
        pred(torch.randn(1, 3, 8, 40, 40))
    with pytest.raises(UsageError, match="channels must be 3"):
        pred(torch.randn(1, 2, 8, 32, 32))
    with pytest.raises(UsageError, match="expected an"):
        pred(torch.randn(3, 8, 32, 32))
    with pytest.raises(UsageError, match="runs with --backend pt2"):
        load_backend(out, backend="onnxruntime")
    with pytest.raises(UsageError, match="no pt2 package cached"):
        load_backend(ckpt, backend="pt2")
    with pytest.raises(UsageError, match="is an fp32 package; run it with --backend pt2"):
        load_backend(out, backend="pt2-int8")


def test_predict_and_bench_load_the_package(exported, tmp_path, capsys):
    ckpt, out, _ = exported
    assert main(["predict", str(out), str(DATA / "short.mp4"), "--clips", "2", "--json"]) == 0
    via_pt2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["predict", str(ckpt), str(DATA / "short.mp4"), "--clips", "2", "--json"]) == 0
    via_torch = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [p["label"] for p in via_pt2["predictions"]] == [p["label"] for p in via_torch["predictions"]]
    for a, b in zip(via_pt2["predictions"], via_torch["predictions"]):
        assert abs(a["score"] - b["score"]) < 1e-4
    md = tmp_path / "bench.md"
    assert main(["bench", str(out), "--batch-sizes", "1,2", "--min-calls", "2", "--min-time", "0", "-o", str(md)]) == 0
    data = json.loads(md.with_suffix(".json").read_text())
    assert {(r["backend"], r["batch"]) for r in data["rows"]} == {("pt2", 1), ("pt2", 2)}
    assert data["setup"]["pt2"]["load_s"] < 5


def test_cached_package_is_the_default_and_keyed_on_the_checkpoint(exported, tmp_path):
    ckpt, out, _ = exported
    local = tmp_path / ckpt.name
    shutil.copy(ckpt, local)
    assert find_cached_pt2(local) is None
    assert load_backend(local).backend == "torch"
    cache = cached_pt2_path(local)
    assert cache.parent == tmp_path and cache.name.startswith("tiny.") and cache.suffix == ".pt2"
    shutil.copy(out, cache)  # what `actionrec export CKPT --format pt2 --cache` writes
    pred = load_backend(local)
    assert pred.backend == "pt2" and pred.info["optimize"] == "pt2-cache"
    assert load_backend(local, optimize=False).backend == "torch"  # explicit choices still win
    assert load_backend(local, backend="torch").backend == "torch"
    assert load_backend(local, backend="pt2").backend == "pt2"
    # a changed checkpoint has another key: the stale package is not used
    local.write_bytes(local.read_bytes() + b" ")
    assert cached_pt2_path(local) != cache and find_cached_pt2(local) is None


def test_tampered_packages_are_refused_before_loading(exported, tmp_path):
    _, out, _ = exported
    pickled = _rewrite(out, tmp_path / "pickled.pt2",
                       lambda n, d: [(n, d)] + ([(n.split("/")[0] + "/data/constants/w.pt", b"\x80\x02}q\x00.")] if n.endswith("archive_format") else []))
    with pytest.raises(ExportError, match="unexpected member 'data/constants/w.pt'"):
        load_pt2(pickled)
    no_meta = _rewrite(out, tmp_path / "nometa.pt2", _edit_meta(lambda d: d.pop("actionrec")))
    with pytest.raises(ExportError, match="without actionrec metadata"):
        read_pt2_meta(no_meta)
    old = _rewrite(out, tmp_path / "old.pt2", _edit_meta(lambda d: d.update(actionrec_pt2=d["actionrec_pt2"].replace(torch.__version__, "1.13.1"))))
    with pytest.raises(ExportError, match="compiled with torch 1.13.1"):
        load_pt2(old)
    # what this host has plus one word no CPU has: only the unknown word is missing, on any x86 host
    # (AVX2-only, AVX-512, AMX): the test once assumed AVX-512 and failed on AVX2-only hosts
    isa = " ".join([*cpu_flags(), "FANCY_NEW_ISA"])
    amx = _rewrite(out, tmp_path / "isa.pt2", _edit_meta(lambda d: d.update(AOTI_CPU_ISA=isa)))
    with pytest.raises(ExportError, match=r"this CPU lacks FANCY_NEW_ISA; re-export"):
        load_pt2(amx)
    bad_meta = _rewrite(out, tmp_path / "badmeta.pt2", _edit_meta(lambda d: d.update(actionrec='{"arch": "x", "num_classes": 2, "bogus": 1}')))
    with pytest.raises(ExportError, match="invalid actionrec metadata"):
        read_pt2_meta(bad_meta)
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    with pytest.raises(ExportError, match="not a .pt2 package"):
        load_pt2(tmp_path / "junk.pt2")
    assert main(["predict", str(tmp_path / "old.pt2"), str(DATA / "short.mp4")]) == 2


def test_failed_export_writes_nothing(tmp_path, monkeypatch):
    model = tiny_model("r3d_18", clip_len=4, size=32)

    def broken(program, *, package_path, inductor_configs):  # a compiler that "succeeds" but produces a wrong model
        with zipfile.ZipFile(package_path, "w") as z:
            z.writestr("x/archive_format", "pt2")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", broken)
    dst = tmp_path / "m.pt2"
    with pytest.raises(ExportError, match="expected one compiled model in the package"):
        export_pt2(model, dst)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError, match="must end in .pt2"):
        export_pt2(model, tmp_path / "m.onnx")


def _package_sources(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return "\n".join(z.read(n).decode() for n in z.namelist() if n.endswith(".cpp"))


def test_pt2e_int8_runs_every_conv3d_but_the_stem_as_onednn_int8(tmp_path):
    """torchao's quantiser and Inductor stop at 2-D convs; ours reach every Conv3d, and the package runs them in int8."""
    from actionrec.deploy.clips import collect_clips
    from actionrec.deploy.quantize import quantize_pt2e

    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    clips = collect_clips([DATA / "short.mp4", DATA / "h264.mp4"], model.meta, max_clips=6)
    out = tmp_path / "m.int8.pt2"
    report = quantize_pt2e(model, out, clips=clips, max_calib=3)
    n_conv = sum(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    assert f"int8 convs {n_conv - 1}/{n_conv}" in report.method and f"fp32: {model.first_conv}" in report.method
    meta, info = read_pt2_meta(out)
    assert info["precision"] == "int8" and info["int8"]["method"] == report.method
    assert _package_sources(out).count("qconv_pointwise") >= n_conv - 1  # oneDNN int8 kernels were compiled in
    # measured on every window; int8 moves the logits (an fp32 package stays within ~1e-7), but not far
    assert report.eval_windows == len(clips) and 1e-5 < report.max_abs_diff < 1.0
    pred = load_pt2(out)
    with torch.inference_mode():
        got, ref = pred(clips[:1]), model(clips[:1])
    assert got.shape == ref.shape and float((got - ref).abs().max()) == pytest.approx(float((pred(clips)[:1] - ref).abs().max()), abs=1e-5)


def _quantized_and_lowered(model: torch.nn.Module, *, size: int) -> tuple:
    """PT2E with our quantiser (stem fp32), calibrated on one random batch, then :func:`lower_conv3d`.

    Returns (quantiser, lowered graph, its ConvCounts, (input, fp32 logits, converted logits, lowered logits)).
    """
    from actionrec.deploy.qconv3d import lower_conv3d, make_quantizer
    from actionrec.deploy.quantize import _torchao_pt2e

    prepare_pt2e, convert_pt2e, _, xiq = _torchao_pt2e()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, size, size, generator=gen)
    quantizer = make_quantizer(xiq, keep_fp32=(model.first_conv,))
    with torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
        prepared(torch.randn(2, 3, 4, size, size, generator=gen))
        converted = convert_pt2e(prepared)
        before = converted(x)
        counts = lower_conv3d(converted, example=x)
        return quantizer, converted, counts, (x, model(x), before, converted(x))


def test_lowered_conv3d_graph_matches_the_converted_graph():
    """The rewrite into oneDNN int8 convolutions only changes rounding: far less than int8 itself changes the logits."""
    model = tiny_model("r2plus1d_18", clip_len=4, size=32).eval()
    _, converted, counts, (x, fp32, before, after) = _quantized_and_lowered(model, size=32)
    n_conv = sum(isinstance(m, torch.nn.Conv3d) for m in model.modules())
    assert counts.fp32 == 1 and counts.int8_u8 == n_conv - 1  # every conv, residual ends included, writes u8
    assert not any(n.target is torch.ops.aten.conv3d.default and n.args[0].op != "placeholder" for n in converted.graph.nodes)
    # every weight prepacked for its layer's input at batch 1 (unpacked shapes made oneDNN reorder weights on every call)
    prepacks = [n for n in converted.graph.nodes if n.target is torch.ops.onednn.qconv_prepack.default]
    assert len(prepacks) == n_conv - 1 and all(n.args[-1] is not None and n.args[-1][0] == 1 for n in prepacks)
    lowering, int8 = float((after - before).abs().max()), float((before - fp32).abs().max())
    print(f"lowering changed the logits by {lowering:.2e}; int8 by {int8:.2e}")
    assert lowering <= 0.5 * int8


def test_pt2e_int8_refuses_when_no_convolution_would_be_int8(tmp_path):
    """Every conv kept fp32 (here by name) means no int8 package: a clear error, nothing written."""
    from actionrec.deploy.clips import collect_clips
    from actionrec.deploy.quantize import quantize_pt2e

    model = tiny_model("r3d_18", clip_len=8, size=32)
    clips = collect_clips([DATA / "short.mp4"], model.meta, max_clips=2)
    convs = tuple(n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv3d))
    out = tmp_path / "m.int8.pt2"
    with pytest.raises(UsageError, match="none of the .* convolutions of r3d_18 can run in int8"):
        quantize_pt2e(model, out, clips=clips, max_calib=1, keep_fp32=convs)
    assert not out.exists()


def test_x3d_lowering_keeps_depthwise_and_one_position_convs_fp32():
    """X3D: depthwise 3×3×3 convs (no fast oneDNN int8 kernel) and the SE/head convs over one position stay fp32;
    the rest (the 1×1×1 expansions and projections, the shortcuts) run in int8."""
    from actionrec.factory import create_model
    from tests.convert.seeded import seeded_array

    model = create_model("x3d_xs", num_classes=5).eval()
    model.load_state_dict({k: torch.from_numpy(seeded_array(k, tuple(v.shape), noise=True)) for k, v in model.state_dict().items()})
    convs = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv3d)}
    depthwise = [n for n, m in convs.items() if m.groups == m.in_channels > 1]
    se = [n for n, m in model.named_modules() if isinstance(m, SqueezeExcitation)]
    assert len(depthwise) == 1 + 26 and len(se) == 2 + 3 + 6 + 4  # stem + one per block; SE on every other block
    kept = len(depthwise) + 2 * len(se) + 1  # + the head's 432→2048 projection, over one position at 64²
    quantizer, converted, counts, (_, fp32, before, after) = _quantized_and_lowered(model, size=64)
    assert quantizer.kept_fp32 == kept
    assert counts.int8 == len(convs) - 1 - kept and counts.fp32 == 1 + kept
    assert sum(n.target is torch.ops.aten.conv3d.default for n in converted.graph.nodes) == 1 + kept
    lowering, int8, spread = float((after - before).abs().max()), float((after - fp32).abs().max()), float(fp32.std())
    print(f"lowering changed the logits by {lowering:.2e}; int8 by {int8:.2e}; their spread {spread:.2e}")
    assert 0 < int8 < 0.1 * spread and lowering < 0.1 * spread
