"""Record PyTorchVideo's and mmaction2's own X3D outputs for tests/convert/test_x3d.py.

Run in a scratch environment where both are installed (not actionrec's), from the repository root:

    python3 -m venv /work/scratch/x3d
    /work/scratch/x3d/bin/pip install torch==2.13.0 pytorchvideo==0.1.5 mmaction2==1.2.0 mmengine==0.10.7 \\
        mmcv-lite==2.1.0 importlib_metadata
    /work/scratch/x3d/bin/python tools/record_x3d.py

Workarounds, both for imports that X3D does not use: pytorchvideo 0.1.5's ``models/head.py`` imports
``torchvision.ops.RoIAlign`` (for its detection head), and PyPI's torchvision wheel does not load on the CPU
build of torch, so a stand-in ``torchvision.ops`` module is registered; mmaction2 1.2.0's wheel lacks
``mmaction/models/localizers/drn`` (imported by ``mmaction.models``), so ``mmaction.models.localizers`` is
stubbed as in ``tools/record_mmaction2.py``.

Each network is built by its project's own code: PyTorchVideo's torch.hub builders ``x3d_xs``/``x3d_s``/``x3d_m``
(``create_x3d`` with the model zoo's clip length and crop; ``head_activation=None``, so the output is logits
rather than the default softmax) and mmaction2's ``X3D`` backbone + ``X3DHead`` as its
``configs/_base_/models/x3d.py`` builds them (X3D-S and -M are one network there). Every tensor is filled
with ``tests/convert/seeded.py`` values for its own key and shape (``noise=True``: full-rank values; the default
sinusoid makes this deep network's logits almost its bias alone); each model runs two seeded clips: at the size
it is built for and at its 3-crop test size (PyTorchVideo's head pool then covers several positions).
Outputs: ``tests/data/reference/x3d_pytorchvideo.json`` and ``x3d_mmaction2.json`` (key lists, parameter
counts, input shapes and logits rounded to 1e-6).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "convert"))
from seeded import seeded_array, seeded_input  # noqa: E402

_tv, _ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
_ops.RoIAlign = type("RoIAlign", (), {})  # only pytorchvideo's RoI head uses it
_tv.ops = _ops
sys.modules.setdefault("torchvision", _tv)
sys.modules.setdefault("torchvision.ops", _ops)
sys.modules["mmaction.models.localizers"] = types.ModuleType("mmaction.models.localizers")

import mmaction  # noqa: E402
import pytorchvideo  # noqa: E402
from mmaction.models.backbones.x3d import X3D as MMX3D  # noqa: E402
from mmaction.models.heads.x3d_head import X3DHead  # noqa: E402
from pytorchvideo.models.hub import x3d as ptv_hub  # noqa: E402

OUT = ROOT / "tests" / "data" / "reference"


class MMRecognizer(torch.nn.Module):
    """``Recognizer3D``'s forward for one clip: backbone → head (the data preprocessor is left out)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = MMX3D(gamma_w=1, gamma_b=2.25, gamma_d=2.2)  # configs/_base_/models/x3d.py
        self.cls_head = X3DHead(num_classes=num_classes, in_channels=432, spatial_type="avg", dropout_ratio=0.5, fc1_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(x))


def seed_and_run(model: torch.nn.Module, inputs: list[tuple[int, ...]]) -> tuple[list, list[dict]]:
    model.eval()
    sd = model.state_dict()
    model.load_state_dict({k: torch.from_numpy(seeded_array(k, tuple(v.shape), noise=True)) for k, v in sd.items()}, strict=True)
    runs = []
    for seed, shape in enumerate(inputs):
        with torch.no_grad():
            logits = model(torch.from_numpy(seeded_input(shape, seed, noise=True)))[0]
        runs.append({"input_shape": list(shape), "seed": seed, "logits": [round(float(v), 6) for v in logits]})
    return [[k, list(v.shape)] for k, v in sd.items()], runs


def record_pytorchvideo() -> dict:
    models, networks = [], {}
    for size, num_classes, (t, crop, test) in (("xs", 400, (4, 160, 182)), ("s", 101, (13, 160, 182)), ("m", 400, (16, 224, 256))):
        model = getattr(ptv_hub, f"x3d_{size}")(pretrained=False, head_activation=None, model_num_class=num_classes)
        keys, runs = seed_and_run(model, [(1, 3, t, crop, crop), (1, 3, t, test, test)])
        net = f"x3d_{num_classes}"
        assert networks.setdefault(net, keys) == keys  # XS, S and M: one network
        models.append({"arch": f"x3d_{size}", "builder": f"pytorchvideo.models.hub.x3d_{size}(head_activation=None, "
                       f"model_num_class={num_classes})", "network": net, "num_classes": num_classes,
                       "params": sum(p.numel() for p in model.parameters()), "runs": runs})
    return {"recorded_with": f"pytorchvideo {pytorchvideo.__version__}, torch {torch.__version__}",
            "networks": networks, "models": models}


def record_mmaction2() -> dict:
    models, networks = [], {}
    for size, num_classes, (t, crop, test) in (("s", 400, (13, 160, 182)), ("m", 51, (16, 224, 256))):
        model = MMRecognizer(num_classes)
        keys, runs = seed_and_run(model, [(1, 3, t, crop, crop), (1, 3, t, test, test)])
        net = f"x3d_{num_classes}"
        networks[net] = keys
        models.append({"arch": f"x3d_{size}", "builder": "mmaction.models.X3D(gamma_w=1, gamma_b=2.25, gamma_d=2.2) + "
                       f"X3DHead(num_classes={num_classes}, in_channels=432, fc1_bias=False)", "network": net,
                       "num_classes": num_classes, "params": sum(p.numel() for p in model.parameters()), "runs": runs})
    return {"recorded_with": f"mmaction2 {mmaction.__version__}, torch {torch.__version__}", "networks": networks, "models": models}


def main() -> None:
    torch.set_num_threads(2)
    for name, rec in (("x3d_pytorchvideo.json", record_pytorchvideo()), ("x3d_mmaction2.json", record_mmaction2())):
        path = OUT / name
        path.write_text(json.dumps(rec, separators=(",", ":")) + "\n")
        for m in rec["models"]:
            for r in m["runs"]:
                lg = torch.tensor(r["logits"])
                print(f"{name} {m['arch']} {r['input_shape']}: {m['params']:,} parameters, "
                      f"logits mean {lg.mean():.3f} std {lg.std():.3f} range [{lg.min():.3f}, {lg.max():.3f}]")
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
