"""Record MindVideo's own R(2+1)D-18 and I3D outputs, and write tiny real MindSpore checkpoints.

Run in a scratch environment with MindSpore and MindVideo's source (ZJUT-ERCISS/zjut_mindvideo,
Apache-2.0; its ``mindvideo/`` folder of ``.py`` files), from the repository root:

    python3 -m venv /work/scratch/i11-models/ms && /work/scratch/i11-models/ms/bin/pip install mindspore==2.7.1
    MINDVIDEO_SRC=/path/to/zjut_mindvideo /work/scratch/i11-models/ms/bin/python tools/record_mindspore.py

Outputs:
* ``tests/data/reference/mindvideo.json``: parameter names/shapes and logits of MindVideo's
  ``R2Plus1d18`` and ``I3D`` with every parameter set to ``tests/convert/seeded.py`` values for
  its MindSpore name and shape, on a seeded clip;
* ``tests/data/mindspore/*.ckpt``: small checkpoints written by ``mindspore.save_checkpoint``
  (plain, ``crc_check=True``, split into chunks, and encrypted), values from the same seeds.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "convert"))
from seeded import seeded_array, seeded_input  # noqa: E402

import mindspore as ms  # noqa: E402
import mindspore.train.serialization as ms_serialization  # noqa: E402
from mindspore import Parameter, Tensor, nn  # noqa: E402


def _package(name: str, path: Path) -> types.ModuleType:
    """Register a package without running its ``__init__`` (which imports every MindVideo model)."""
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod
    return mod


def import_mindvideo(src: Path) -> tuple[type, type]:
    _package("mindvideo", src / "mindvideo")
    _package("mindvideo.utils", src / "mindvideo" / "utils")
    _package("mindvideo.models", src / "mindvideo" / "models")
    layers = _package("mindvideo.models.layers", src / "mindvideo" / "models" / "layers")
    from mindvideo.models.layers import adaptiveavgpool3d, dropout_dense, resnet3d, unit3d

    for m in (unit3d, resnet3d, dropout_dense, adaptiveavgpool3d):
        layers.__dict__.update({k: v for k, v in vars(m).items() if not k.startswith("_")})
    from mindvideo.models.i3d import I3D
    from mindvideo.models.r2plus1d import R2Plus1d18

    return R2Plus1d18, I3D


def seed_parameters(net: nn.Cell) -> list[list]:
    keys = []
    for name, p in net.parameters_and_names():
        shape = tuple(int(s) for s in p.shape)
        p.set_data(Tensor(seeded_array(name, shape)))
        keys.append([name, list(shape)])
    return keys


def record(net: nn.Cell, input_shape: tuple[int, ...], **info: object) -> dict:
    keys = seed_parameters(net)
    net.set_train(False)
    logits = net(Tensor(seeded_input(input_shape))).asnumpy()[0]
    print(f"{info['model']}: {len(keys)} parameters, logits range [{logits.min():.3f}, {logits.max():.3f}], std {logits.std():.3f}")
    return {**info, "input_shape": list(input_shape), "keys": keys, "logits": logits.tolist()}


class Tiny(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, kernel_size=(1, 3, 3), has_bias=False)
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Dense(4, 3)
        self.big = Parameter(Tensor(np.zeros((32, 40), np.float32)), name="big")
        self.steps = Parameter(Tensor(np.zeros((2,), np.int32)), name="steps", requires_grad=False)


def write_tiny_checkpoints(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    net = Tiny()
    for name, p in net.parameters_and_names():
        a = seeded_array(name, tuple(p.shape))
        p.set_data(Tensor(a.astype(np.int32) if name == "steps" else a))
    ms.save_checkpoint(net, str(out / "tiny.ckpt"))
    ms.save_checkpoint(net, str(out / "tiny_crc.ckpt"), crc_check=True)
    ms.save_checkpoint(net, str(out / "tiny_encrypted.ckpt"), enc_key=b"0123456789abcdef")
    slice_kb = ms_serialization.SLICE_SIZE
    ms_serialization.SLICE_SIZE = 1  # KB: "big" (5 KB) is written as several chunks, as a >512 MB tensor would be
    try:
        ms.save_checkpoint(net, str(out / "tiny_chunked.ckpt"), crc_check=True)
    finally:
        ms_serialization.SLICE_SIZE = slice_kb


def main() -> None:
    src = Path(os.environ.get("MINDVIDEO_SRC", "/work/scratch/i11-models/mindvideo_src"))
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    R2Plus1d18, I3D = import_mindvideo(src)
    models = [
        record(R2Plus1d18(num_classes=101), (1, 3, 8, 112, 112), model="R2Plus1d18", num_classes=101),
        record(I3D(num_classes=51), (1, 3, 16, 224, 224), model="I3D", num_classes=51),
    ]
    ref = {"recorded_with": f"MindSpore {ms.__version__} + MindVideo (ZJUT-ERCISS/zjut_mindvideo)", "models": models}
    path = ROOT / "tests" / "data" / "reference" / "mindvideo.json"
    path.write_text(json.dumps(ref, separators=(",", ":")) + "\n")
    write_tiny_checkpoints(ROOT / "tests" / "data" / "mindspore")
    print(f"wrote {path} and tests/data/mindspore/*.ckpt")


if __name__ == "__main__":
    main()
