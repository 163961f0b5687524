"""Where X3D's time goes on the CPU: depthwise vs other convolutions vs the rest, on our fast path (`torch` backend).

    python benchmarks/profile_x3d_convs.py                  # X3D-S, 13×160², batch 1, 2 threads
    python benchmarks/profile_x3d_convs.py --arch x3d_m --calls 10

torch.profiler self time of ``aten::mkldnn_convolution`` split by weight shape (depthwise: one input channel per
group), per clip, with each kind's GFLOPs (2 per multiply-add, counted with forward hooks) and GFLOP/s. Random weights.
Not a test; quoted in docs/deploy.md ("Five models on every backend").
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile


def _conv_flops(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(depthwise, other) convolution GFLOPs of one forward pass on ``x``."""
    totals = [0.0, 0.0]

    def hook(mod: torch.nn.Conv3d, _inp: tuple, out: torch.Tensor) -> None:
        k = mod.weight.shape
        totals[0 if mod.groups > 1 and k[1] == 1 else 1] += 2.0 * out.numel() * k[1] * k[2] * k[3] * k[4] / 1e9

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return totals[0], totals[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="x3d_s")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args()

    from actionrec.runtime import resolve_runtime

    resolve_runtime(threads=args.threads, interop_threads=1).apply()
    from actionrec.deploy.optimize import optimize_for_cpu
    from actionrec.factory import create_model

    model = create_model(args.arch).eval()
    pre = model.meta.preprocess
    x = torch.randn(1, 3, pre.clip_len, pre.crop_size, pre.crop_size)
    fast = optimize_for_cpu(model, example=x)
    with torch.inference_mode():
        for _ in range(3):
            fast(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.calls):
                fast(x)
    ms = {"depthwise": 0.0, "other": 0.0}
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key == "aten::mkldnn_convolution":
            w = e.input_shapes[1]
            kind = "depthwise" if len(w) == 5 and w[1] == 1 and w[0] > 1 else "other"
            ms[kind] += e.self_cpu_time_total / args.calls / 1e3
    total = sum(e.self_cpu_time_total for e in prof.key_averages()) / args.calls / 1e3
    gf = dict(zip(("depthwise", "other"), _conv_flops(model, x)))
    print(f"{args.arch} at {tuple(x.shape[2:])}, batch 1, {args.threads} threads: {total:.1f} ms a clip under the profiler")
    for kind in ("depthwise", "other"):
        print(f"- {kind} convolutions: {ms[kind]:.1f} ms, {gf[kind]:.2f} GFLOP, {gf[kind] / (ms[kind] / 1e3):.1f} GFLOP/s")
    print(f"- everything else (activations, SE, adds, pooling): {total - ms['depthwise'] - ms['other']:.1f} ms")


if __name__ == "__main__":
    main()
