"""Record mmaction2's own R(2+1)D outputs for tests/convert/test_mmaction2.py.

Run in a scratch environment where mmaction2 is installed (not actionrec's), from the repository root:

    python3 -m venv /work/scratch/i11-models/mm
    /work/scratch/i11-models/mm/bin/pip install torch mmaction2==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0 importlib_metadata
    /work/scratch/i11-models/mm/bin/python tools/record_mmaction2.py

It builds mmaction2's ``ResNet2Plus1d`` backbone + ``I3DHead`` exactly as the
``r2plus1d_r34_8x8x1_180e`` configs do (depth 18 and 34), fills every tensor with
``tests/convert/seeded.py`` values for its mmaction2 key and shape, runs a seeded clip and writes
the key list and the logits to ``tests/data/reference/mmaction2_r2plus1d.json``.
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

# mmaction2 1.2.0's wheel lacks mmaction/models/localizers/drn (imported by mmaction.models); the
# recognition models do not need the localizers.
sys.modules["mmaction.models.localizers"] = types.ModuleType("mmaction.models.localizers")
import mmaction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmaction.models.backbones.resnet2plus1d import ResNet2Plus1d  # noqa: E402
from mmaction.models.heads.i3d_head import I3DHead  # noqa: E402

init_default_scope("mmaction")  # their Conv2plus1d is found in mmaction's registry
INPUT = (1, 3, 8, 112, 112)


class Recognizer(torch.nn.Module):
    """``Recognizer3D``'s forward for one clip: backbone → head (the data preprocessor is left out)."""

    def __init__(self, depth: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = ResNet2Plus1d(
            depth=depth, pretrained=None, pretrained2d=False, norm_eval=False,
            conv_cfg=dict(type="Conv2plus1d"), norm_cfg=dict(type="BN3d", requires_grad=True, eps=1e-3),
            act_cfg=dict(type="ReLU"), conv1_kernel=(3, 7, 7), conv1_stride_t=1, pool1_stride_t=1,
            inflate=(1, 1, 1, 1), spatial_strides=(1, 2, 2, 2), temporal_strides=(1, 2, 2, 2), zero_init_residual=False,
        )  # fmt: skip
        self.cls_head = I3DHead(num_classes=num_classes, in_channels=512, spatial_type="avg", dropout_ratio=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(x))


def record(depth: int, num_classes: int) -> dict:
    model = Recognizer(depth, num_classes).eval()
    sd = model.state_dict()
    seeded = {k: torch.from_numpy(seeded_array(k, tuple(v.shape))) for k, v in sd.items()}
    model.load_state_dict(seeded, strict=True)
    with torch.no_grad():
        logits = model(torch.from_numpy(seeded_input(INPUT)))
    return {
        "depth": depth,
        "num_classes": num_classes,
        "params": sum(p.numel() for p in model.parameters()),
        "keys": [[k, list(v.shape)] for k, v in sd.items()],
        "logits": logits[0].tolist(),
    }


def main() -> None:
    out = {
        "recorded_with": f"mmaction2 {mmaction.__version__}, torch {torch.__version__}",
        "input_shape": list(INPUT),
        "models": [record(34, 101), record(34, 400), record(18, 51)],
    }
    path = ROOT / "tests" / "data" / "reference" / "mmaction2_r2plus1d.json"
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    for m in out["models"]:
        lg = torch.tensor(m["logits"])
        print(f"depth {m['depth']}: {m['params']:,} parameters, logits range [{lg.min():.3f}, {lg.max():.3f}]")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
