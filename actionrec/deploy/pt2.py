"""Compiled model packages: ``torch.export`` + AOTInductor (with freezing) into one ``.pt2`` file.

A package holds a shared library with the network's kernels and its weights (oneDNN-prepacked
convolutions with BatchNorm, ReLU and residual adds fused in) and, as plain JSON in the
library's metadata, our :class:`~actionrec.meta.ModelMeta` plus what the package accepts:

* ``actionrec``: the ModelMeta JSON;
* ``actionrec_pt2``: ``{"format", "torch", "precision", "input_dims", "cpu_flags", ...}`` where
  ``input_dims`` gives ``[min, max]`` per input axis (batch dynamic; the clip length too where the
  architecture allows it).

Loading reads and validates that JSON from the zip first (no unpickling: the package has no
pickled entries and we refuse any that has), checks the torch version and that this CPU has
the instruction set the kernels were built for, and only then maps the library. A ``.pt2`` is
native code: load only packages you built or trust, like any shared library.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from actionrec.deploy.onnx_export import FIXED_TIME_ARCHS, ExportError, _quiet_exporter, export_inputs
from actionrec.errors import UsageError
from actionrec.io import atomic_path
from actionrec.meta import ModelMeta

__all__ = ["Pt2Report", "Pt2Predictor", "export_pt2", "read_pt2_meta", "load_pt2", "PT2_FORMAT", "cpu_isa_supported", "cpu_flags",
           "cached_pt2_path", "find_cached_pt2"]

log = logging.getLogger(__name__)

PT2_FORMAT = 1
META_KEY = "actionrec"
INFO_KEY = "actionrec_pt2"
MAX_BATCH = 1024
# zip members a package of ours may contain (below its top folder); anything else (pickled
# constants, serialized exported programs) is refused before torch sees the file.
_ALLOWED = ("archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id")
_AOTI_DIR = "data/aotinductor/"
_AOTI_SUFFIXES = (".so", ".cpp", ".json", ".o", ".h")
# AOTI_CPU_ISA words -> this CPU has it
_ISA_CHECKS = {
    "AVX2": lambda: torch.cpu._is_avx2_supported(),
    "AVX512": lambda: torch.cpu._is_avx512_supported(),
    "AVX512_VNNI": lambda: torch.cpu._is_vnni_supported(),
    "AVX512_BF16": lambda: torch.cpu._is_avx512_bf16_supported(),
    "AMX_TILE": lambda: torch.cpu._is_amx_tile_supported(),
    "AMX_FP16": lambda: torch.cpu._is_amx_fp16_supported(),
}


@dataclass
class Pt2Report:
    """What :func:`export_pt2` wrote and how well it matches PyTorch."""

    path: str
    precision: str  # "fp32" or "int8"
    input_dims: list[list[int]]  # [min, max] per input axis (N, C, T, H, W)
    max_abs_diff: float | None = None  # vs the source model over the checked inputs (fp32 only)
    checked_shapes: list[tuple[int, ...]] = field(default_factory=list)
    export_s: float = 0.0  # torch.export
    compile_s: float = 0.0  # AOTInductor + C++ compiler
    size_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags() -> list[str]:
    """The vector-ISA words (as AOTInductor names them) this CPU has, e.g. ``["AVX2", "AVX512", "AVX512_VNNI"]``."""
    return [word for word, check in _ISA_CHECKS.items() if check()]


def cpu_isa_supported(isa: str) -> list[str]:
    """The words of an ``AOTI_CPU_ISA`` string (e.g. ``"AVX512 AVX512_VNNI"``) this CPU lacks (or cannot be checked)."""
    missing = []
    for word in isa.split():
        check = _ISA_CHECKS.get(word.upper())
        if check is None or not check():
            missing.append(word)
    return missing


def _torch_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        yield


def _input_dims(program: torch.export.ExportedProgram) -> list[list[int]]:
    """[min, max] of every axis of the program's one tensor input."""
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name in program.graph_signature.user_inputs)
    dims = []
    for s in node.meta["val"].shape:
        if isinstance(s, int):
            dims.append([s, s])
            continue
        vr = program.range_constraints.get(s.node.expr)
        lo, hi = (vr.lower, vr.upper) if vr is not None else (1, MAX_BATCH)
        try:
            hi = int(hi)
        except (TypeError, ValueError, AttributeError, OverflowError):  # unbounded (sympy oo)
            hi = 2**31 - 1
        dims.append([max(1, int(lo)), hi])
    return dims


def _channels_last_weights(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose 5-D weights are ``channels_last_3d``, as oneDNN reads them next to channels-last activations.

    Inductor's freezing makes 4-D conv weights channels-last but leaves 5-D ones as they are, and
    with a dynamic batch it does not prepack them either: every call of the package then copied
    each Conv3d weight into channels-last order (34 copies, 218 ms of a 1.5 s R(2+1)D-18 call at
    batch 1). Weights stored channels-last are read as they are.
    """
    if not any(p.dim() == 5 for p in model.parameters()):
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last_3d)


def _export_program(model: nn.Module, example: torch.Tensor, *, dynamic_time: bool) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    shapes: dict[int, Any] = {0: batch}
    if dynamic_time:
        shapes[2] = torch.export.Dim.AUTO  # the range the architecture allows (strides, pooling) is found by export
    with _quiet(), torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=(shapes,))


def cxx_compiler() -> str | None:
    """The C++ compiler AOTInductor will use (``$CXX``, else ``g++``), if installed."""
    return shutil.which(os.environ.get("CXX") or "g++")


def _compile(program: torch.export.ExportedProgram, dst: Path, metadata: dict[str, str]) -> None:
    """AOTInductor with freezing (weights become constants: prepacked oneDNN convs, BN folded) into ``dst``."""
    configs = {"freezing": True, "aot_inductor.metadata": metadata, "aot_inductor.package_constants_in_so": True}
    with _quiet(), torch.no_grad():  # freezing only applies without autograd
        torch._inductor.aoti_compile_and_package(program, package_path=str(dst), inductor_configs=configs)


def export_pt2(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    meta: ModelMeta | None = None,
    batch: int = 2,
    example: torch.Tensor | None = None,
    dynamic_time: bool | None = None,
    check: bool = True,
    tol: float = 1e-3,
    precision: str = "fp32",
    extra: dict[str, Any] | None = None,
    verify: Callable[[Pt2Predictor], Any] | None = None,
) -> Pt2Report:
    """Compile ``model`` into a ``.pt2`` package at ``path`` (written atomically, only if it passes the check).

    Args:
        model: (N, C, T, H, W) → (N, K) network in eval mode (a PT2E-quantised module for int8).
        path: destination, must end in ``.pt2``.
        meta: stored in the package; default ``model.meta``.
        batch: batch size of the traced example (the batch axis is dynamic, 1 to 1024).
        example: traced input instead of a seeded N(0, 1) tensor of ``meta.input_shape(batch)``.
        dynamic_time: make the clip length dynamic too (default: unless the architecture needs a fixed T).
        check: compare the loaded package with ``model`` at ``batch`` and at batch 1 (and another
            clip length if dynamic); raise :class:`ExportError` if max |Δlogit| > ``tol``.
        precision: ``"fp32"`` or ``"int8"`` (recorded; int8 packages are checked by agreement, by the caller).
        extra: more JSON-able facts to store under ``actionrec_pt2`` (e.g. how it was quantised).
        verify: called with the loaded package before it is published (e.g. int8 agreement); may raise.
    """
    meta, path, example, gen = export_inputs(model, path, meta=meta, suffix=".pt2", batch=batch, example=example)
    if precision not in ("fp32", "int8"):
        raise UsageError(f"precision must be 'fp32' or 'int8', not {precision!r}")
    if cxx_compiler() is None:
        raise ExportError("pt2 export compiles C++: install a C++ compiler (e.g. `apt-get install g++`) or set $CXX")
    model.eval()  # (not reassigned: exported graphs return None from eval())
    if example.shape[0] < 2:
        example = example.expand(2, *example.shape[1:]).contiguous()  # batch 1 would be specialised by torch.export
    if dynamic_time is None:
        dynamic_time = meta.arch not in FIXED_TIME_ARCHS

    t0 = time.perf_counter()
    traced = _channels_last_weights(model) if precision == "fp32" else model
    try:
        try:
            program = _export_program(traced, example, dynamic_time=dynamic_time)
        except Exception as e:  # noqa: BLE001 - retry with a fixed clip length
            if not dynamic_time:
                raise
            log.info("clip length cannot be dynamic for %s (%s); exporting with T=%d", meta.arch, type(e).__name__, example.shape[2])
            program = _export_program(traced, example, dynamic_time=False)
    except Exception as e:
        raise ExportError(f"torch.export of {meta.arch} failed: {type(e).__name__}: {e}") from e
    dims = _input_dims(program)
    if dims[0][0] == dims[0][1]:
        raise ExportError(f"{meta.arch}: torch.export fixed the batch axis; cannot make a batch-agnostic package")
    export_s = time.perf_counter() - t0
    info = {"format": PT2_FORMAT, "torch": torch.__version__, "precision": precision, "input_dims": dims,
            "cpu_flags": cpu_flags(), **(extra or {})}
    report = Pt2Report(path=str(path), precision=precision, input_dims=dims, export_s=round(export_s, 2))
    with atomic_path(path, suffix=".pt2") as tmp:
        t1 = time.perf_counter()
        try:
            _compile(program, tmp, {META_KEY: meta.to_json(), INFO_KEY: json.dumps(info)})
        except Exception as e:
            raise ExportError(f"AOTInductor compilation of {meta.arch} failed: {type(e).__name__}: {e}") from e
        report.compile_s = round(time.perf_counter() - t1, 2)
        report.size_mb = round(tmp.stat().st_size / 2**20, 2)
        if check:
            pred = load_pt2(tmp)
            shapes = [example, example[:1]]
            t_lo, t_hi = dims[2]
            if t_lo != t_hi:
                t2 = min(t_hi, example.shape[2] * 2) if example.shape[2] * 2 <= t_hi else t_lo
                if t2 != example.shape[2]:
                    shapes.append(torch.randn(1, example.shape[1], t2, *example.shape[3:], generator=gen))
            diffs = []
            for x in shapes:
                with torch.inference_mode():
                    ref = model(x).float()
                got = pred(x)
                if got.shape != ref.shape:
                    raise ExportError(f"package output shape {tuple(got.shape)} != PyTorch {tuple(ref.shape)} for input {tuple(x.shape)}")
                diffs.append(float((got.double() - ref.double()).abs().max()))
                report.checked_shapes.append(tuple(x.shape))
            report.max_abs_diff = max(diffs)
            log.info("pt2 parity vs PyTorch: max |Δlogit| %.2e over inputs %s", report.max_abs_diff, report.checked_shapes)
            if not report.max_abs_diff <= tol:
                raise ExportError(f"pt2 package differs from PyTorch by max |Δlogit| {report.max_abs_diff:.3g} > {tol:g}; not written")
        if verify is not None:
            verify(load_pt2(tmp))
    return report


def _metadata_json(path: Path) -> dict[str, str]:
    """The AOTInductor metadata (a JSON object of strings) inside the package, after checking its members."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ExportError(f"{path}: not a .pt2 package ({e})") from e
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names}
        if len(tops) != 1 or not names:
            raise ExportError(f"{path}: not a .pt2 package (expected one top folder, found {sorted(tops)[:3]})")
        top = tops.pop() + "/"
        meta_files = []
        for n in names:
            rel = n[len(top):]
            if rel in _ALLOWED:
                continue
            if rel.startswith(_AOTI_DIR) and rel.endswith(_AOTI_SUFFIXES) and ".." not in rel:
                if rel.endswith("wrapper_metadata.json"):
                    meta_files.append(n)
                continue
            raise ExportError(f"{path}: unexpected member {rel!r} (only AOTInductor libraries are accepted; "
                              "re-export it with `actionrec export --format pt2`)")
        if len(meta_files) != 1:
            raise ExportError(f"{path}: expected one compiled model in the package, found {len(meta_files)}")
        info = zf.getinfo(meta_files[0])
        if info.file_size > 10 * 2**20:
            raise ExportError(f"{path}: metadata of {info.file_size} bytes; refusing to read it")
        try:
            data = json.loads(zf.read(meta_files[0]))
        except (ValueError, UnicodeDecodeError) as e:
            raise ExportError(f"{path}: unreadable package metadata ({e})") from e
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ExportError(f"{path}: package metadata is not a JSON object of strings")
    return data


def read_pt2_meta(path: str | os.PathLike) -> tuple[ModelMeta, dict[str, Any]]:
    """``(ModelMeta, package info)`` of one of our packages, validated, without loading its code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .pt2 package")
    data = _metadata_json(path)
    if META_KEY not in data or INFO_KEY not in data:
        raise ExportError(f"{path}: .pt2 package without actionrec metadata (export it with `actionrec export --format pt2`)")
    try:
        meta = ModelMeta.from_json(data[META_KEY])
        info = json.loads(data[INFO_KEY])
    except (ValueError, TypeError) as e:
        raise ExportError(f"{path}: invalid actionrec metadata in the package ({e})") from e
    if not isinstance(info, dict) or info.get("format") != PT2_FORMAT:
        raise ExportError(f"{path}: package format {info.get('format') if isinstance(info, dict) else info!r}, "
                          f"this actionrec reads format {PT2_FORMAT}")
    dims = info.get("input_dims")
    if (not isinstance(dims, list) or len(dims) != 5
            or not all(isinstance(d, list) and len(d) == 2 and all(isinstance(v, int) and v >= 1 for v in d) and d[0] <= d[1] for d in dims)):
        raise ExportError(f"{path}: invalid input_dims {dims!r} in the package metadata")
    if dims[1] != [meta.in_channels, meta.in_channels]:
        raise ExportError(f"{path}: package takes {dims[1][0]} channels but its metadata says {meta.in_channels}")
    if info.get("precision") not in ("fp32", "int8"):
        raise ExportError(f"{path}: unknown precision {info.get('precision')!r} in the package metadata")
    built, here = str(info.get("torch", "?")), torch.__version__
    if _torch_minor(built) != _torch_minor(here):
        raise ExportError(f"{path}: compiled with torch {built}, this is torch {here}; re-export it with this torch")
    isa = data.get("AOTI_CPU_ISA", "")
    missing = cpu_isa_supported(isa)
    if missing:
        raise ExportError(f"{path}: compiled for CPU instructions {isa!r}; this CPU lacks {' '.join(missing)}; re-export it here")
    if data.get("AOTI_DEVICE_KEY", "cpu") != "cpu":
        raise ExportError(f"{path}: compiled for {data.get('AOTI_DEVICE_KEY')}, only CPU packages are supported")
    return meta, info


class Pt2Predictor:
    """An AOTInductor package of ours: ``(N, C, T, H, W) float32 → (N, K)`` logits, input shape checked.

    Same interface as :class:`actionrec.deploy.predictor.Predictor` (``meta``, ``backend``, ``info``, call).
    """

    backend = "pt2"

    def __init__(self, runner: Any, meta: ModelMeta, *, info: dict[str, Any]) -> None:
        self.runner = runner
        self.meta = meta
        self.device = "cpu"
        self.info = dict(info)
        self._dims = info["input_dims"]
        t_lo, t_hi = self._dims[2]
        self.fixed_clip_len = t_lo if t_lo == t_hi else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            raise UsageError(f"pt2 predictor: expected an (N, C, T, H, W) tensor, got {getattr(x, 'shape', type(x))}")
        for axis, (size, (lo, hi)) in enumerate(zip(x.shape, self._dims)):
            if not lo <= size <= hi:
                name = ("batch", "channels", "clip length", "height", "width")[axis]
                want = f"{lo}" if lo == hi else f"{lo}..{hi}"
                raise UsageError(f"pt2 package of {self.meta.arch}: {name} must be {want}, got input of shape {tuple(x.shape)}")
        x = x.detach().to("cpu", torch.float32).contiguous()
        with torch.inference_mode():
            out = self.runner(x)
        return out.float()

    def __repr__(self) -> str:
        return f"Pt2Predictor(arch={self.meta.arch!r}, file={self.info.get('file')!r}, precision={self.info.get('precision')!r})"


def load_pt2(path: str | os.PathLike) -> Pt2Predictor:
    """Validate the package's metadata (:func:`read_pt2_meta`), then load its compiled model (threads: the runtime's)."""
    path = Path(path)
    meta, info = read_pt2_meta(path)
    t0 = time.perf_counter()
    try:
        with _quiet():
            runner = torch._inductor.aoti_load_package(str(path))
    except Exception as e:
        raise ExportError(f"{path}: cannot load the compiled model ({type(e).__name__}: {e})") from e
    info = {**info, "file": str(path), "load_s": round(time.perf_counter() - t0, 3)}
    return Pt2Predictor(runner, meta, info=info)


def cached_pt2_path(checkpoint: str | os.PathLike) -> Path:
    """Where the checkpoint's cached package lives: next to it, keyed on its content, torch and the CPU.

    ``dir/name.safetensors`` → ``dir/name.<key>.pt2`` with ``key`` = 16 hex digits of
    sha256(checkpoint sha256, torch version, CPU vector ISA): a new checkpoint, torch or CPU never
    picks up a stale package.
    """
    checkpoint = Path(checkpoint)
    h = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    key = hashlib.sha256(f"{h.hexdigest()}|{torch.__version__}|{' '.join(cpu_flags())}|{PT2_FORMAT}".encode()).hexdigest()[:16]
    return checkpoint.with_name(f"{checkpoint.stem}.{key}.pt2")


def find_cached_pt2(checkpoint: str | os.PathLike) -> Path | None:
    """The checkpoint's cached package if it exists (cheap when there is none: no hashing)."""
    checkpoint = Path(checkpoint)
    if not any(checkpoint.parent.glob(f"{glob.escape(checkpoint.stem)}.*.pt2")):
        return None
    path = cached_pt2_path(checkpoint)
    return path if path.is_file() else None
