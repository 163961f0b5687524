"""PyTorchVideo's X3D ``.pyth`` (``{"model_state": state_dict, ...}``, ``create_x3d``'s keys) → our ``x3d_*``.

Our X3D keeps PyTorchVideo's module names, so the state dict is taken as it is (read with the restricted
unpickler, :mod:`actionrec.convert.safe_pickle`; the optimizer state and anything else in the file are
never run). X3D-XS, -S and -M share one network: the size is read from the file name (``X3D_XS.pyth``,
``x3d_m_*.pyth``), as PyTorchVideo's hub names its files, and is assumed to be S (with a warning) when the
name does not say; X3D-L is told by its depth.
"""

from __future__ import annotations

from actionrec.convert.common import complete_bn, x3d_size
from actionrec.convert.registry import Converted, Converter, Foreign, register_converter
from actionrec.errors import UsageError

_STEM = ("blocks.0.conv.conv_t.weight", "blocks.0.conv.conv_xy.weight")


def _matches(f: Foreign) -> bool:
    return all(k in f.tensors for k in _STEM) and "blocks.5.proj.weight" in f.tensors


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    if not all(k in f.tensors for k in _STEM):
        raise UsageError(f"{f.path}: not a PyTorchVideo X3D (no {_STEM[0]!r}, {_STEM[1]!r})")
    if "blocks.5.proj.weight" not in f.tensors:
        raise UsageError(f"{f.path}: PyTorchVideo X3D without its classifier 'blocks.5.proj.weight'")
    sd = complete_bn(dict(f.tensors))
    if int(sd[_STEM[0]].shape[1]) != 3:
        raise UsageError(f"{f.path}: X3D with {int(sd[_STEM[0]].shape[1])} input channels (RGB only)")
    return Converted(f"x3d_{x3d_size(sd, f.path)}", sd)


register_converter(Converter("pytorchvideo", "PyTorchVideo X3D .pyth (create_x3d: XS, S, M, L)", ("torch",), _matches, convert))
